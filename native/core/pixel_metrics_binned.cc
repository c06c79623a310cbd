// Binned mode: the SegmentMeIfYouCan benchmark (road_anomaly_benchmark, metrics/pixel_classification.py
// "PixBinaryClass": num_bins 768, bin_strategy 'percentiles'; curves_from_cmats in
// pixel_classification_curves.py), reimplemented step by step:
//
// per frame (binary_confusion_matrix): void dropped; edges = unique({0, 1} ∪ quantile(OoD scores,
//   linspace(0, 1, min(bins/2, #OoD))) ∪ quantile(ID scores, linspace(0, 1, min(bins/2, #ID))));
//   np.histogram counts per class (bins [e_i, e_i+1), the last one closed); bins listed from the top,
//   each with its lower edge as threshold.
// merge (aggregate_dynamic_bins): all frames' entries sorted by threshold, descending (argsort
//   reversed: among equal thresholds the later frame first — the official argsort is not stable, so
//   its order there is arbitrary; we take the stable one), cumulative TP and FP.
// curve (curves_from_cmats): keep the first entry, the last entry of every run of equal thresholds and
//   the last entry; prepend (0, 0) when the first point is not empty; precision 1 where nothing is
//   predicted; AP = Σ ΔR·P over the points, AUROC = trapezoid, FPR95 at the first point with
//   TPR ≥ 0.95 (np.searchsorted), best F1 = first maximum of 2TP / (2TP + FP + FN).
// Scores are the float16 values the benchmark stores when float16 is set; the quantiles follow numpy
// 1.24's linear method to the bit (the difference of neighbours in the data's precision, then a float64
// interpolation).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pixel_metrics.h"
#include "pixel_metrics_internal.h"

namespace pgn {

namespace {

class BinnedPixelMetrics final : public PixelMetrics {
 public:
  BinnedPixelMetrics(int bins, bool float16) : per_class_(std::max(bins / 2, 1)), float16_(float16) {}

  void add(const float* scores, const uint8_t* labels, int64_t height, int64_t width, int64_t image) override {
    const ClassCounts c = check_pixel_image(scores, labels, height, width, image);
    const int64_t count = height * width;
    std::vector<uint32_t> keys[2];
    keys[0].reserve(static_cast<size_t>(c.negatives));
    keys[1].reserve(static_cast<size_t>(c.positives));
    for (int64_t i = 0; i < count; ++i) {
      const uint8_t l = labels[i];
      if (l == kLabelVoid) continue;
      float s = scores[i];
      if (float16_) {
        s = round_to_half(s);
        if (std::isinf(s))
          throw std::invalid_argument("image " + std::to_string(image) + ": score " + number_text(scores[i]) + " at " +
                                      pixel_text(i, width) +
                                      " overflows float16 (|score| ≤ 65504), the precision the benchmark stores "
                                      "score maps in; rescale the scores or turn float16 off");
      }
      keys[l == kLabelOod ? 1 : 0].push_back(ascending_key(s));
    }
    std::vector<float> values[2];
    for (int cls = 0; cls < 2; ++cls) {
      std::vector<uint32_t> tmp(keys[cls].size());
      radix_sort_u32(keys[cls].data(), static_cast<int64_t>(keys[cls].size()), tmp.data());
      values[cls].resize(keys[cls].size());
      for (size_t i = 0; i < keys[cls].size(); ++i) values[cls][i] = from_ascending_key(keys[cls][i]);
      std::vector<uint32_t>().swap(keys[cls]);
    }

    std::vector<double> edges{0.0, 1.0};
    for (int cls = 1; cls >= 0; --cls) {  // OoD quantiles first, as the benchmark lists them (order is irrelevant after sorting)
      const auto& a = values[cls];
      const int64_t n = static_cast<int64_t>(a.size());
      if (n == 0) continue;
      const int64_t k = std::min<int64_t>(per_class_, n);
      const double step = k > 1 ? 1.0 / static_cast<double>(k - 1) : 0.0;
      for (int64_t i = 0; i < k; ++i) {
        const double q = (k > 1 && i == k - 1) ? 1.0 : static_cast<double>(i) * step + 0.0;
        edges.push_back(quantile(a, q));
      }
    }
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());

    // np.histogram with explicit edges: cumulative counts by searchsorted (left), the last edge right.
    const size_t nb = edges.size() - 1;
    std::vector<int64_t> hist[2];
    for (int cls = 0; cls < 2; ++cls) {
      const auto& a = values[cls];
      std::vector<int64_t> cum(edges.size());
      for (size_t j = 0; j < edges.size(); ++j) {
        const double e = edges[j];
        const auto it = j + 1 < edges.size()
                            ? std::lower_bound(a.begin(), a.end(), e, [](float v, double x) { return static_cast<double>(v) < x; })
                            : std::upper_bound(a.begin(), a.end(), e, [](double x, float v) { return x < static_cast<double>(v); });
        cum[j] = it - a.begin();
      }
      hist[cls].resize(nb);
      for (size_t i = 0; i < nb; ++i) hist[cls][i] = cum[i + 1] - cum[i];
    }
    std::vector<Entry> frame;
    frame.reserve(nb);
    for (size_t i = nb; i-- > 0;) frame.push_back({edges[i], image, hist[1][i], hist[0][i]});
    entries_.insert(entries_.end(), frame.begin(), frame.end());
    counts_[0] += c.negatives;
    counts_[1] += c.positives;
    ++images_;
  }

  PixelMetricsResult finish(int /*threads*/) override {
    PixelMetricsResult r;
    r.binned = true;
    r.images = images_;
    r.positives = counts_[1];
    r.negatives = counts_[0];
    if (r.positives == 0 || r.negatives == 0) {
      std::vector<Entry>().swap(entries_);
      throw_degenerate(r.images, r.positives, r.negatives);
    }
    std::vector<Entry> e;
    e.swap(entries_);
    std::sort(e.begin(), e.end(), [](const Entry& a, const Entry& b) {
      return a.threshold != b.threshold ? a.threshold > b.threshold : a.image > b.image;
    });
    const size_t L = e.size();
    // cumulative counts, then the official collapse: index 0, the last of every run, the last index
    std::vector<int64_t> ctp(L), cfp(L);
    int64_t tp = 0, fp = 0;
    for (size_t i = 0; i < L; ++i) {
      tp += e[i].tp;
      fp += e[i].fp;
      ctp[i] = tp;
      cfp[i] = fp;
    }
    std::vector<size_t> keep{0};
    for (size_t i = 0; i + 1 < L; ++i)
      if (e[i].threshold != e[i + 1].threshold) keep.push_back(i);
    keep.push_back(L - 1);

    struct Op {
      int64_t tp, fp;
      double threshold;
    };
    std::vector<Op> ops;
    const int64_t P = r.positives, N = r.negatives;
    if (ctp[keep[0]] != 0 || cfp[keep[0]] != 0) ops.push_back({0, 0, kInf});
    for (size_t i : keep) ops.push_back({ctp[i], cfp[i], e[i].threshold});
    if (ops.back().tp != P || ops.back().fp != N) ops.push_back({P, N, -kInf});

    const double Pd = static_cast<double>(P), Nd = static_cast<double>(N);
    Sum ap, auc;
    double prev_tpr = 0, prev_fpr = 0;
    bool has95 = false;
    size_t best = 0;
    double best_f1 = -1;
    for (size_t i = 0; i < ops.size(); ++i) {
      const double t = static_cast<double>(ops[i].tp), f = static_cast<double>(ops[i].fp);
      const double tpr = t / (t + (Pd - t));
      const double fpr = f / (f + (Nd - f));
      const double precision = ops[i].tp + ops[i].fp > 0 ? t / (t + f) : 1.0;
      if (i > 0) {
        ap.add((tpr - prev_tpr) * precision);
        auc.add((fpr - prev_fpr) * (tpr + prev_tpr) / 2.0);
      }
      if (!has95 && tpr >= 0.95) {
        has95 = true;
        r.fpr95 = fpr;
        r.fpr95_threshold = ops[i].threshold;
        r.official_fpr95_threshold = i < L ? e[i].threshold : kNaN;
      }
      const double f1 = 2.0 * t / (2.0 * t + f + (Pd - t));
      if (f1 > best_f1) {
        best_f1 = f1;
        best = i;
      }
      const bool first = i == 0;
      if (first || new_cell(ops[i - 1].tp, ops[i - 1].fp, ops[i].tp, ops[i].fp, P, N))
        push_point(r.curves, {ops[i].threshold, tpr, fpr, precision});
      prev_tpr = tpr;
      prev_fpr = fpr;
    }
    if (!has95) {  // cannot happen (the last point has TPR 1); the benchmark's fallback
      r.fpr95 = 1.0;
      r.fpr95_threshold = 0.0;
      r.official_fpr95_threshold = 0.0;
    }
    r.best_f1 = best_f1;
    r.best_f1_threshold = ops[best].threshold;
    r.official_best_f1_threshold = best < L ? e[best].threshold : kNaN;
    r.auprc = ap.value();
    r.auroc = auc.value();
    r.points = static_cast<int64_t>(ops.size());
    return r;
  }

  int64_t bytes() const override { return static_cast<int64_t>(entries_.capacity() * sizeof(Entry)); }
  int64_t images() const override { return images_; }

 private:
  struct Entry {
    double threshold;
    int64_t image;
    int64_t tp, fp;
  };

  // np.quantile(a, q) (method 'linear') of sorted a, in the data's precision (float16 or float32).
  double quantile(const std::vector<float>& a, double q) const {
    const int64_t n = static_cast<int64_t>(a.size());
    const double vi = static_cast<double>(n - 1) * q;
    if (vi >= static_cast<double>(n - 1)) return a[static_cast<size_t>(n - 1)];
    const double prev = std::floor(vi);
    const auto lo = static_cast<size_t>(prev);
    const double gamma = vi - prev;
    const float a_lo = a[lo], a_hi = a[lo + 1];
    float d = a_hi - a_lo;  // numpy subtracts in the array's dtype
    if (float16_) d = round_to_half(d);
    if (gamma >= 0.5) return static_cast<double>(a_hi) - static_cast<double>(d) * (1.0 - gamma);
    return static_cast<double>(a_lo) + static_cast<double>(d) * gamma;
  }

  int64_t per_class_;
  bool float16_;
  std::vector<Entry> entries_;
  int64_t counts_[2] = {0, 0};
  int64_t images_ = 0;
};

}  // namespace

std::unique_ptr<PixelMetrics> make_binned_pixel_metrics(int bins, bool float16) {
  return std::make_unique<BinnedPixelMetrics>(bins, float16);
}

}  // namespace pgn
