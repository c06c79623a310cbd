/**
 * pgn-ood: pixel-wise gradient uncertainty for OoD segmentation (arXiv 2303.06920).
 *
 * The root entry holds what a user calls every day: the Scorer and the streaming pipeline, the
 * scores and segments of tensors, evaluation, backends, and the errors. Advanced pieces are subpath
 * entries (docs/api.md): `pgn-ood/model`, `pgn-ood/image`, `pgn-ood/scoring`, `pgn-ood/metrics`,
 * `pgn-ood/npy`, `pgn-ood/worker`.
 *
 * src/ reads as the pipeline, one folder per stage: common/ (errors, files, .npy) → addon/ (the
 * compiled addon) → scoring/ (native passes on tensors) → model/ (ONNX, surgery, card, session) →
 * image/ (decode, preprocess, overlays) → run/ (Scorer, streams) → batch/ (journal, shards) →
 * worker/ (queue worker) → eval/ (metrics, evaluation) → cli/ (`pgn`). A folder imports only folders before it (test/layout.test.ts).
 */
export * from './common/errors';
export * from './run';
export { computeScores, computeSecondLayerScores, upsample, backends } from './scoring/scores';
export type { ScoreKind, ScoreSpec, Backend, Tensor, MapStack, ScoreOptions, ScoreResult, UpsampleOptions, AddonInfo } from './scoring/scores';
export * from './scoring/segments';
export { evaluate } from './eval/evaluate';
export type { EvaluateOptions, Evaluation, EvaluationRow } from './eval/evaluate';
