/**
 * src/eval/ owns evaluation as the SegmentMeIfYouCan benchmark does it, the subpath entry
 * `pgn-ood/metrics`: data sets (dataset.ts), the streaming pixel and component metrics (metrics.ts),
 * evaluation of a model or of tensors on a data set (evaluate.ts), the calibration of a segment
 * threshold (calibrate.ts, `pgn calibrate`), and the HTML report (report.ts).
 * evaluate() is also on the root entry.
 */
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
export { readDataset, readLabelMask } from './dataset';
export type { DatasetItem, LabelMask } from './dataset';
export { evaluate } from './evaluate';
export type { EvaluateOptions, Evaluation, EvaluationRow } from './evaluate';
export { writeReport, renderReport } from './report';
export { calibrate } from './calibrate';
export type { CalibrateOptions, CalibrationObjective } from './calibrate';
