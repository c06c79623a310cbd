/**
 * src/scoring/ owns the native passes on tensors, the subpath entry `pgn-ood/scoring`: the scores
 * (scores.ts: PGN and baselines, upsampling, the class map), the second-to-last layer's scores
 * (second-layer.ts), the OoD segments and thresholdAtFpr (segments.ts) and its streaming form over any
 * number of images, FprThreshold (fpr-threshold.ts). The everyday functions (computeScores,
 * upsample, findSegments, thresholdAtFpr, backends) are also on the root entry.
 */
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
  upsampleArgmax,
  backends,
  cpuIsa,
  limitCpuIsa,
  spinWait,
  setSpinWait,
} from './scores';
export type { ScoreKind, ScoreSpec, Backend, Tensor, MapStack, ScoreOptions, ScoreResult, UpsampleOptions, AddonInfo } from './scores';
export type { AddonOrigin } from '../addon';
export type { CpuIsa } from '../addon';
export { sameConv, convOutputSize, parseActivation } from './second-layer';
export type { ActivationInfo, ConvGeometry, SecondLayerInfo, SecondLayerInputs } from './second-layer';
export * from './segments';
export { FprThreshold } from './fpr-threshold';
export type { FprThresholdOptions } from './fpr-threshold';
