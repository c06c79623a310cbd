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
} from './scores';
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
