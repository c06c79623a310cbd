/** pgn-ood: pixel-wise gradient uncertainty for OoD segmentation (arXiv 2303.06920). */
export * from './errors';
export * from './segments';
export * from './segment-images';
export {
  SCORE_KINDS,
  DEFAULT_P,
  parseScore,
  normalizeScore,
  scoreName,
  scoreLabel,
  computeScores,
  computeSecondLayerScores,
  upsample,
  backends,
  cpuIsa,
  limitCpuIsa,
  spinWait,
  setSpinWait,
} from './scores';
export type { CpuIsa } from './native';
export type { ScoreKind, ScoreSpec, Backend, Tensor, MapStack, ScoreOptions, ScoreResult, UpsampleOptions } from './scores';
export { sameConv, convOutputSize, parseActivation } from './second-layer';
export type { ActivationInfo, ConvGeometry, SecondLayerInfo, SecondLayerInputs } from './second-layer';
export { readNpy, readFloatNpy, writeNpy, parseNpy, encodeNpy } from './npy';
export type { Npy, NpyArray } from './npy';
export { PixelMetrics, InstanceMetrics, TRACK_SIZES, formatPercent, metricsTable } from './metrics';
export type {
  PixelMetricsMode,
  PixelMetricsOptions,
  PixelMetricsResult,
  MetricCurves,
  Track,
  InstanceMetricsOptions,
  InstanceMetricsResult,
  ImageComponents,
} from './metrics';
export { upsampleArgmax } from './scores';
export { Scorer, score, DEMO_MODEL } from './scorer';
export type { ScorerOptions, SegmentsOption, ImageInput, ImageResult, ScoredMap, StageTimings } from './scorer';
export { scoreStream, scoreImages } from './pipeline';
export type { StreamOptions, StreamItem } from './pipeline';
export { ModelSession, cudaAvailable } from './session';
export type { ExecutionProvider, SessionOptions, SessionOutputs } from './session';
export { analyzeModel, exposeFeatures } from './graph-surgery';
export type { ModelAnalysis, SecondLayerAnalysis } from './graph-surgery';
export { loadModelCard, parseModelCard, checkCardAgainstModel, modelCardSchema } from './model-card';
export type { ModelCard, ModelCardInput } from './model-card';
export { decodeImage, toTensor } from './preprocess';
export type { DecodedImage, ImageBatch } from './preprocess';
export { readDataset, readLabelMask } from './dataset';
export type { DatasetItem, LabelMask } from './dataset';
export { evaluate } from './evaluate';
export type { EvaluateOptions, Evaluation, EvaluationRow } from './evaluate';
export { writeReport, renderReport } from './report';
