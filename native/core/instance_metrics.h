// Component-level OoD metrics (DESIGN.md §2), as the SegmentMeIfYouCan benchmark's instance metrics
// (road_anomaly_benchmark/metrics/instance_segmentation.py: default_instancer + segment_metrics) compute
// them, accumulated one image at a time and pooled over the data set:
//
// per image: predicted OoD = score > threshold, void cleared; 8-connected components of the prediction
//   and of the ground truth (label 1); predicted components under min_predicted pixels removed; ground-truth
//   components under min_gt pixels turned into void; everything below restricted to non-void pixels.
//   sIoU of ground-truth component k: with P̂ the predicted components touching k and A the pixels of P̂
//   on other ground-truth components, |k ∩ P̂| / (|k| + |P̂| − |k ∩ P̂| − |A|).
//   PPV of predicted component p: its share of pixels on any ground-truth component. The benchmark's
//   symmetric sIoU of predicted components is computed too (reported, not used for FP).
// pooled: TP(τ) = #GT components with sIoU ≥ τ, FN(τ) the rest, FP(τ) = #predicted components with
//   PPV < τ, for τ = 0.25, 0.30, …, 0.75; F1(τ) = 2TP / (2TP + FN + FP); mean F1 over τ; mean sIoU and PPV
//   over all components of the data set.
// Components come from native/core/components.h (label_components, 8-connectivity).
#pragma once

#include <cstdint>
#include <vector>

namespace pgn {

struct InstanceOptions {
  double threshold = 0.0;       // predicted OoD where score > threshold
  int64_t min_predicted = 500;  // predicted components with fewer pixels are removed (obstacle track: 50)
  int64_t min_gt = 100;         // ground-truth components with fewer pixels become void (obstacle track: 10)
};

// One image's components, each list in raster order of the components' first pixels. Removed predicted
// components, voided ground-truth components and predicted components lying wholly on void are absent.
struct ImageInstances {
  std::vector<double> siou;        // per ground-truth component
  std::vector<int64_t> gt_area;    // its pixels
  std::vector<double> ppv;         // per predicted component
  std::vector<double> siou_pred;   // per predicted component (the benchmark's sIoU_pred)
  std::vector<int64_t> pred_area;  // its non-void pixels
};

// Throws std::invalid_argument naming the image and pixel for a label other than 0, 1, 255 or a
// non-finite score on a non-void pixel.
ImageInstances image_instances(const float* scores, const uint8_t* labels, int64_t height, int64_t width,
                               const InstanceOptions& options, int64_t image);

// τ = 0.25, 0.30, …, 0.75 exactly as numpy.linspace(0.25, 0.75, 11) computes them (0.25 + i·0.05).
std::vector<double> siou_thresholds();

struct InstanceResult {
  int64_t images = 0;
  int64_t gt_components = 0;
  int64_t predicted_components = 0;
  double mean_siou = 0;       // NaN without ground-truth components
  double mean_ppv = 0;        // NaN without predicted components
  double mean_siou_pred = 0;  // NaN without predicted components
  std::vector<double> thresholds;
  std::vector<int64_t> tp, fn, fp;
  std::vector<double> f1;     // NaN where 2TP + FN + FP = 0
  double mean_f1 = 0;
};

// Not thread-safe: callers serialize add() (the binding does).
class InstanceMetrics {
 public:
  explicit InstanceMetrics(InstanceOptions options);
  // Computes one image's components and pools them; a rejected image changes nothing.
  ImageInstances add(const float* scores, const uint8_t* labels, int64_t height, int64_t width, int64_t image);
  InstanceResult result() const;
  const InstanceOptions& options() const { return options_; }
  int64_t images() const { return images_; }

 private:
  InstanceOptions options_;
  std::vector<double> thresholds_;
  int64_t images_ = 0, gt_ = 0, pred_ = 0;
  double siou_sum_ = 0, ppv_sum_ = 0, siou_pred_sum_ = 0;
  std::vector<int64_t> tp_, fn_, fp_;
};

}  // namespace pgn
