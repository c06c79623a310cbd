// Dataset-wide pixel-level OoD metrics (DESIGN.md §2): AUROC, average precision (AuPRC), FPR at 95 % TPR
// and the best-F1 threshold, accumulated one image at a time. OoD (label 1) is the positive class,
// in-distribution (label 0) the negative one, void (label 255) is skipped before anything else.
//
// Two accumulators share one interface:
// - exact: every distinct score is a threshold and ties are treated as scikit-learn does
//   (roc_curve / average_precision_score). Holds 4 bytes per non-void pixel in sorted chunks.
// - binned: the SegmentMeIfYouCan benchmark's percentile bins, per-frame histograms merged as its
//   code merges them (see pixel_metrics_binned.cc). Holds ≤ bins + 2 entries per image, no pixels.
//
// Neither is thread-safe: callers serialize add() and finish() on one accumulator (the binding does).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace pgn {

// Label values of the benchmark's masks.
constexpr uint8_t kLabelInDistribution = 0;
constexpr uint8_t kLabelOod = 1;
constexpr uint8_t kLabelVoid = 255;

// A curve reduced for plotting (≤ kMaxCurvePoints points), in order of decreasing threshold. The first
// point is (fpr 0, tpr 0, precision 1) at threshold +inf; recall is tpr. A pixel counts as OoD at a
// point when its score ≥ that point's threshold.
constexpr int kMaxCurvePoints = 1000;
struct PixelCurves {
  std::vector<double> threshold, tpr, fpr, precision;
};

struct PixelMetricsResult {
  bool binned = false;
  int64_t images = 0;
  int64_t positives = 0;  // OoD pixels (label 1)
  int64_t negatives = 0;  // in-distribution pixels (label 0)
  int64_t points = 0;     // operating points of the full curve (distinct thresholds; bins when binned)
  double auroc = 0;       // trapezoid over (FPR, TPR)
  double auprc = 0;       // average precision: Σ (R_n − R_{n−1}) · P_n
  double fpr95 = 0;       // FPR at the first operating point (decreasing threshold) where TPR ≥ 0.95
  double fpr95_threshold = 0;
  double best_f1 = 0;     // max over operating points of 2TP / (2TP + FP + FN), first one on ties
  double best_f1_threshold = 0;
  // Binned only (NaN otherwise): the thresholds exactly as the benchmark's code reports them. It indexes
  // its sorted, uncollapsed threshold list with the position on the collapsed curve, so these differ
  // from the thresholds of the operating points above (a quirk kept for reproducing its figures).
  double official_best_f1_threshold = 0;
  double official_fpr95_threshold = 0;
  PixelCurves curves;
};

// Checks one image before anything is added: every label is 0, 1 or 255, and every score of a non-void
// pixel is finite. Throws std::invalid_argument naming the image (its index in add order) and the pixel.
// Returns {OoD pixels, in-distribution pixels}.
struct ClassCounts {
  int64_t positives = 0, negatives = 0;
};
ClassCounts check_pixel_image(const float* scores, const uint8_t* labels, int64_t height, int64_t width, int64_t image);

class PixelMetrics {
 public:
  virtual ~PixelMetrics() = default;
  // Adds one image: scores and labels both [height, width], row-major. `image` is its index in add
  // order (used in error messages and, when binned, for the benchmark's tie order). Checks the image
  // first (see check_pixel_image): a rejected image leaves the accumulator unchanged.
  virtual void add(const float* scores, const uint8_t* labels, int64_t height, int64_t width, int64_t image) = 0;
  // Computes the figures and releases the pixel storage; the accumulator is empty afterwards.
  // Throws std::invalid_argument when no OoD or no in-distribution pixel was added (AUROC and AP are
  // undefined then).
  virtual PixelMetricsResult finish(int threads) = 0;
  // Bytes holding the accumulated data (not counting transient buffers of add and finish).
  virtual int64_t bytes() const = 0;
  virtual int64_t images() const = 0;
};

// Exact mode. chunk_values: values per sorted chunk (the unit of sorting and merging; the last chunk of
// each class is allocated at full size but only touched pages cost memory).
std::unique_ptr<PixelMetrics> make_exact_pixel_metrics(int64_t chunk_values = int64_t{1} << 24);

// The benchmark's binned mode: per image, bin edges {0, 1} ∪ quantiles of the OoD scores ∪ quantiles of
// the in-distribution scores (min(bins/2, count) each, numpy's linear method), np.histogram counts per
// class. float16: round scores to float16 first, as the benchmark stores score maps (its
// Evaluation.save_output); then |score| must stay ≤ 65504.
std::unique_ptr<PixelMetrics> make_binned_pixel_metrics(int bins = 768, bool float16 = true);

// float32 → float16 → float32 with round-to-nearest-even (numpy's astype(np.float16)).
float round_to_half(float value);

// Sorts n unsigned 32-bit keys ascending (LSD radix, 11-bit digits); tmp holds n keys.
void radix_sort_u32(uint32_t* data, int64_t n, uint32_t* tmp);

}  // namespace pgn
