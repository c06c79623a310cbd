/**
 * What the native metric accumulators return (native/binding/metrics_binding.cc): the dataset-wide
 * pixel and component figures. Declared beside the addon's interface, which returns them;
 * src/eval/metrics.ts re-exports them with the accumulators that produce them.
 */
export type PixelMetricsMode = 'exact' | 'binned';

/** ROC and PR curves reduced for plotting, by decreasing threshold; recall = tpr. */
export interface MetricCurves {
  /** A pixel counts as OoD at a point when its score ≥ the threshold; the first point's is +Infinity. */
  threshold: Float64Array;
  tpr: Float64Array;
  fpr: Float64Array;
  precision: Float64Array;
}

export interface PixelMetricsResult {
  mode: PixelMetricsMode;
  images: number;
  /** OoD pixels (label 1). */
  positives: number;
  /** In-distribution pixels (label 0). */
  negatives: number;
  /** Operating points of the full curve (distinct thresholds; when binned, those of the merged bins). */
  points: number;
  /** Area under the ROC curve (trapezoid). */
  auroc: number;
  /** Average precision Σ (R_n − R_{n−1}) P_n (scikit-learn's average_precision_score). */
  auprc: number;
  /** FPR at the first operating point (by decreasing threshold) whose TPR ≥ 0.95. */
  fpr95: number;
  fpr95Threshold: number;
  /** Best pixel F1 = 2TP / (2TP + FP + FN) over the operating points. */
  bestF1: number;
  /** The threshold of that point: the InstanceMetrics threshold (masks are score > threshold). */
  bestF1Threshold: number;
  /**
   * binned only: the thresholds as the benchmark's code reports them (it indexes its uncollapsed list
   * of thresholds with positions on the collapsed curve, so they differ slightly from the thresholds of
   * the operating points). Use `official.bestF1Threshold` to reproduce its component metrics.
   */
  official?: { bestF1Threshold: number; fpr95Threshold: number };
  curves?: MetricCurves;
}

/** One image's components (raster order of their first pixel); the areas count non-void pixels. */
export interface ImageComponents {
  /** Per ground-truth component: |k ∩ P̂| / (|k| + |P̂| − |k ∩ P̂| − |A|). */
  sIoU: Float64Array;
  gtArea: Float64Array;
  /** Per predicted component: its share of pixels on ground-truth components. */
  ppv: Float64Array;
  /** Per predicted component: the benchmark's symmetric sIoU (reported, not used for FP). */
  sIoUPred: Float64Array;
  predArea: Float64Array;
}

export interface InstanceMetricsResult {
  images: number;
  gtComponents: number;
  predictedComponents: number;
  /** Mean sIoU over all ground-truth components of the data set (NaN without any). */
  sIoU: number;
  /** Mean PPV over all predicted components of the data set (NaN without any). */
  ppv: number;
  sIoUPred: number;
  /** τ = 0.25, 0.30, …, 0.75 (as numpy.linspace computes them). */
  thresholds: number[];
  tp: number[];
  fn: number[];
  fp: number[];
  /** F1(τ) = 2TP / (2TP + FN + FP), NaN where there is nothing to count. */
  f1: number[];
  /** Mean of F1 over τ. */
  meanF1: number;
}
