#include "instance_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "components.h"
#include "pixel_metrics.h"

namespace pgn {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string where(int64_t image, int64_t index, int64_t width) {
  return "image " + std::to_string(image) + ": pixel (row " + std::to_string(index / width) + ", column " +
         std::to_string(index % width) + ")";
}

}  // namespace

std::vector<double> siou_thresholds() {
  // numpy.linspace(0.25, 0.75, 11): start + i·step with step = 0.5 / 10, the last value set to stop.
  std::vector<double> t(11);
  const double step = (0.75 - 0.25) / 10.0;
  for (int i = 0; i < 11; ++i) t[static_cast<size_t>(i)] = static_cast<double>(i) * step + 0.25;
  t[10] = 0.75;
  return t;
}

ImageInstances image_instances(const float* scores, const uint8_t* labels, int64_t height, int64_t width,
                               const InstanceOptions& options, int64_t image) {
  const int64_t count = height * width;
  const size_t n = static_cast<size_t>(count);
  std::vector<uint8_t> roi(n), gt_mask(n);
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t l = labels[i];
    if (l == kLabelVoid) continue;
    if (l > kLabelOod)
      throw std::invalid_argument(where(image, i, width) + " has label " + std::to_string(l) +
                                  "; labels must be 0 (in-distribution), 1 (OoD) or 255 (void)");
    const float s = scores[i];
    if (!std::isfinite(s))
      throw std::invalid_argument(where(image, i, width) + " has score " +
                                  (std::isnan(s) ? "NaN" : (s > 0 ? "Infinity" : "-Infinity")) +
                                  "; scores of non-void pixels must be finite");
    roi[static_cast<size_t>(i)] = 1;
    gt_mask[static_cast<size_t>(i)] = l == kLabelOod;
  }

  // Predicted components: score > threshold on non-void pixels, those under min_predicted pixels
  // dropped (the size filter sees whole components, before small ground truth is voided below).
  std::vector<uint32_t> pred_label(n), gt_label(n);
  ComponentInput in;
  in.scores = scores;
  in.batch = 1;
  in.height = height;
  in.width = width;
  in.connectivity = 8;
  in.threshold = threshold_from_double(options.threshold);
  in.roi = roi.data();
  in.min_area = options.min_predicted;
  ComponentOutput comp;
  comp.labels = pred_label.data();
  label_components(in, comp, 1);
  const auto n_pred = static_cast<uint32_t>(comp.segments[0].size());
  // Ground-truth components: the label-1 pixels as region of interest, every (finite) score foreground.
  in.threshold = -std::numeric_limits<float>::infinity();
  in.roi = gt_mask.data();
  in.min_area = 0;
  comp.labels = gt_label.data();
  label_components(in, comp, 1);
  const auto n_gt = static_cast<uint32_t>(comp.segments[0].size());
  std::vector<uint8_t>().swap(roi);
  std::vector<uint8_t>().swap(gt_mask);

  // Ground-truth components under min_gt pixels become void.
  std::vector<int64_t> gt_area(static_cast<size_t>(n_gt) + 1, 0);
  std::vector<bool> gt_kept(static_cast<size_t>(n_gt) + 1);
  for (uint32_t g = 1; g <= n_gt; ++g) {
    gt_area[g] = comp.segments[0][g - 1].area;
    gt_kept[g] = gt_area[g] >= options.min_gt;
  }

  // Non-void pixels only: predicted areas and the overlaps (ground truth g, prediction p).
  std::vector<int64_t> pred_area(static_cast<size_t>(n_pred) + 1, 0);
  std::unordered_map<uint64_t, int64_t> overlap;
  uint64_t last_key = 0;  // runs of one (g, p) pair along rows skip the hash lookup
  int64_t* last_count = nullptr;
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] == kLabelVoid) continue;
    const uint32_t g = gt_label[i];
    if (g > 0 && !gt_kept[g]) continue;  // voided ground truth
    const uint32_t p = pred_label[i];
    if (p == 0) continue;
    ++pred_area[static_cast<size_t>(p)];
    if (g == 0) continue;
    const uint64_t key = (static_cast<uint64_t>(g) << 32) | p;
    if (key != last_key) {
      last_key = key;
      last_count = &overlap[key];  // references to unordered_map values stay valid across inserts
    }
    ++*last_count;
  }

  // Adjacency both ways, plus each component's overlap total.
  std::vector<std::vector<std::pair<uint32_t, int64_t>>> by_gt(static_cast<size_t>(n_gt) + 1),
      by_pred(static_cast<size_t>(n_pred) + 1);
  std::vector<int64_t> gt_covered(static_cast<size_t>(n_gt) + 1, 0), pred_on_gt(static_cast<size_t>(n_pred) + 1, 0);
  for (const auto& [key, c] : overlap) {
    const auto g = static_cast<uint32_t>(key >> 32);
    const auto p = static_cast<uint32_t>(key & 0xffffffffu);
    by_gt[static_cast<size_t>(g)].push_back({p, c});
    by_pred[static_cast<size_t>(p)].push_back({g, c});
    gt_covered[static_cast<size_t>(g)] += c;
    pred_on_gt[static_cast<size_t>(p)] += c;
  }

  ImageInstances out;
  for (uint32_t g = 1; g <= n_gt; ++g) {
    if (!gt_kept[static_cast<size_t>(g)]) continue;
    const int64_t k = gt_area[static_cast<size_t>(g)];
    int64_t inter = 0, p_hat = 0, adjust = 0;
    for (const auto& [p, c] : by_gt[static_cast<size_t>(g)]) {
      inter += c;                                  // |k ∩ P̂|
      p_hat += pred_area[static_cast<size_t>(p)];  // |P̂|
      adjust += pred_on_gt[static_cast<size_t>(p)] - c;  // pixels of P̂ on other ground-truth components
    }
    out.siou.push_back(static_cast<double>(inter) / static_cast<double>(k + p_hat - inter - adjust));
    out.gt_area.push_back(k);
  }
  for (uint32_t p = 1; p <= n_pred; ++p) {
    const int64_t area = pred_area[static_cast<size_t>(p)];
    if (area == 0) continue;  // lying wholly on voided ground truth
    const int64_t inter = pred_on_gt[static_cast<size_t>(p)];
    int64_t g_hat = 0, adjust = 0;
    for (const auto& [g, c] : by_pred[static_cast<size_t>(p)]) {
      g_hat += gt_area[static_cast<size_t>(g)];
      adjust += gt_covered[static_cast<size_t>(g)] - c;
    }
    out.ppv.push_back(static_cast<double>(inter) / static_cast<double>(area));
    out.siou_pred.push_back(static_cast<double>(inter) / static_cast<double>(area + g_hat - inter - adjust));
    out.pred_area.push_back(area);
  }
  return out;
}

InstanceMetrics::InstanceMetrics(InstanceOptions options)
    : options_(options), thresholds_(siou_thresholds()), tp_(thresholds_.size()), fn_(thresholds_.size()),
      fp_(thresholds_.size()) {}

ImageInstances InstanceMetrics::add(const float* scores, const uint8_t* labels, int64_t height, int64_t width,
                                    int64_t image) {
  ImageInstances im = image_instances(scores, labels, height, width, options_, image);
  for (size_t t = 0; t < thresholds_.size(); ++t) {
    const double tau = thresholds_[t];
    for (double s : im.siou) (s >= tau ? tp_[t] : fn_[t]) += 1;
    for (double v : im.ppv) fp_[t] += v < tau;
  }
  for (double s : im.siou) siou_sum_ += s;
  for (double v : im.ppv) ppv_sum_ += v;
  for (double s : im.siou_pred) siou_pred_sum_ += s;
  gt_ += static_cast<int64_t>(im.siou.size());
  pred_ += static_cast<int64_t>(im.ppv.size());
  ++images_;
  return im;
}

InstanceResult InstanceMetrics::result() const {
  InstanceResult r;
  r.images = images_;
  r.gt_components = gt_;
  r.predicted_components = pred_;
  r.mean_siou = gt_ > 0 ? siou_sum_ / static_cast<double>(gt_) : kNaN;
  r.mean_ppv = pred_ > 0 ? ppv_sum_ / static_cast<double>(pred_) : kNaN;
  r.mean_siou_pred = pred_ > 0 ? siou_pred_sum_ / static_cast<double>(pred_) : kNaN;
  r.thresholds = thresholds_;
  r.tp = tp_;
  r.fn = fn_;
  r.fp = fp_;
  double f1_sum = 0;
  for (size_t t = 0; t < thresholds_.size(); ++t) {
    const int64_t d = 2 * tp_[t] + fn_[t] + fp_[t];
    const double f1 = d > 0 ? 2.0 * static_cast<double>(tp_[t]) / static_cast<double>(d) : kNaN;
    r.f1.push_back(f1);
    f1_sum += f1;
  }
  r.mean_f1 = f1_sum / static_cast<double>(thresholds_.size());
  return r;
}

}  // namespace pgn
