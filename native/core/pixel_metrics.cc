#include "pixel_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "parallel.h"

namespace pgn {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------------
// Float keys: an order-preserving map float → uint32 (−0 folded into +0, NaN never occurs here).

inline uint32_t ascending_key(float f) {
  if (f == 0.0f) f = 0.0f;  // −0 and +0 are one threshold, as numpy's comparisons treat them
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float from_ascending_key(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Exact mode stores descending keys: sorting them ascending walks scores from high to low.
inline uint32_t descending_key(float f) { return ~ascending_key(f); }
inline float from_descending_key(uint32_t k) { return from_ascending_key(~k); }

// Neumaier-compensated sum.
struct Sum {
  double sum = 0, comp = 0;
  void add(double x) {
    const double t = sum + x;
    comp += std::fabs(sum) >= std::fabs(x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  double value() const { return sum + comp; }
};

// The trapezoid sum Σ ΔFP·(TP_prev + TP) is an integer; keep it exact.
#if defined(__SIZEOF_INT128__)
using WideSum = unsigned __int128;
#else
using WideSum = long double;
#endif

[[noreturn]] void throw_degenerate(int64_t images, int64_t positives, int64_t negatives) {
  throw std::invalid_argument(
      "pixel metrics need both OoD (label 1) and in-distribution (label 0) pixels, but the " + std::to_string(images) +
      " image(s) added hold " + std::to_string(positives) + " OoD and " + std::to_string(negatives) +
      " in-distribution pixel(s): AUROC, AP and FPR95 are undefined");
}

std::string pixel_text(int64_t index, int64_t width) {
  return "pixel (row " + std::to_string(index / width) + ", column " + std::to_string(index % width) + ")";
}

std::string number_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Curve points for plotting: a point is kept when the TPR cell or the FPR cell (kCells per axis)
// changes, so at most 2·kCells + 1 points follow the initial one.
constexpr int64_t kCells = (kMaxCurvePoints - 2) / 2;
static_assert(2 * kCells + 2 <= kMaxCurvePoints, "curve budget");

inline bool new_cell(int64_t tp0, int64_t fp0, int64_t tp1, int64_t fp1, int64_t positives, int64_t negatives) {
  return tp0 * kCells / positives != tp1 * kCells / positives || fp0 * kCells / negatives != fp1 * kCells / negatives;
}

struct Point {
  double threshold, tpr, fpr, precision;
};

void push_point(PixelCurves& c, const Point& p) {
  c.threshold.push_back(p.threshold);
  c.tpr.push_back(p.tpr);
  c.fpr.push_back(p.fpr);
  c.precision.push_back(p.precision);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

float round_to_half(float value) {
  uint32_t x;
  std::memcpy(&x, &value, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  uint32_t h;
  if (absx >= 0x7f800000u) {
    h = sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u);  // inf stays inf, NaN stays NaN
  } else if (absx >= 0x477ff000u) {
    h = sign | 0x7c00u;  // ≥ 65520 rounds to infinity
  } else if (absx >= 0x38800000u) {  // normal half
    const uint32_t exp = (absx >> 23) - 127 + 15;
    const uint32_t mant = absx & 0x7fffffu;
    h = (exp << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carries into the exponent correctly
    h |= sign;
  } else if (absx <= 0x33000000u) {  // ≤ 2^-25 rounds to zero (ties to even)
    h = sign;
  } else {  // subnormal half: units of 2^-24
    const uint32_t e = absx >> 23;
    const uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;
    h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    h |= sign;
  }
  // half bits → float
  const uint32_t hs = (h & 0x8000u) << 16;
  const uint32_t he = (h >> 10) & 0x1fu;
  const uint32_t hm = h & 0x3ffu;
  uint32_t f;
  if (he == 0x1fu) {
    f = hs | 0x7f800000u | (hm << 13);
  } else if (he != 0) {
    f = hs | ((he - 15 + 127) << 23) | (hm << 13);
  } else if (hm == 0) {
    f = hs;
  } else {  // subnormal half → normal float
    uint32_t m = hm;
    int e = -14;
    while (!(m & 0x400u)) {
      m <<= 1;
      --e;
    }
    f = hs | (static_cast<uint32_t>(e + 127) << 23) | ((m & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &f, sizeof out);
  return out;
}

void radix_sort_u32(uint32_t* data, int64_t n, uint32_t* tmp) {
  if (n < 512) {
    std::sort(data, data + n);
    return;
  }
  constexpr int kBits = 11;
  constexpr uint32_t kMask = (1u << kBits) - 1;
  std::vector<int64_t> counts(3 * (size_t{1} << kBits), 0);
  int64_t* c0 = counts.data();
  int64_t* c1 = c0 + (1 << kBits);
  int64_t* c2 = c1 + (1 << kBits);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t v = data[i];
    ++c0[v & kMask];
    ++c1[(v >> kBits) & kMask];
    ++c2[v >> (2 * kBits)];
  }
  int64_t* tables[3] = {c0, c1, c2};
  uint32_t* src = data;
  uint32_t* dst = tmp;
  for (int pass = 0; pass < 3; ++pass) {
    int64_t* c = tables[pass];
    const int shift = pass * kBits;
    // a digit every key shares orders nothing: skip the pass
    bool trivial = false;
    for (uint32_t d = 0; d <= kMask; ++d) {
      if (c[d] == n) trivial = true;
      if (c[d] != 0) break;
    }
    if (trivial) continue;
    int64_t offset = 0;
    for (uint32_t d = 0; d <= kMask; ++d) {
      const int64_t k = c[d];
      c[d] = offset;
      offset += k;
    }
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t v = src[i];
      dst[c[(v >> shift) & kMask]++] = v;
    }
    std::swap(src, dst);
  }
  if (src != data) std::memcpy(data, src, static_cast<size_t>(n) * sizeof(uint32_t));
}

ClassCounts check_pixel_image(const float* scores, const uint8_t* labels, int64_t height, int64_t width, int64_t image) {
  const int64_t count = height * width;
  ClassCounts c;
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t l = labels[i];
    if (l == kLabelVoid) continue;
    if (l > kLabelOod)
      throw std::invalid_argument("image " + std::to_string(image) + ": label " + std::to_string(l) + " at " +
                                  pixel_text(i, width) +
                                  "; labels must be 0 (in-distribution), 1 (OoD) or 255 (void)");
    if (!std::isfinite(scores[i]))
      throw std::invalid_argument("image " + std::to_string(image) + ": score " + number_text(scores[i]) + " at " +
                                  pixel_text(i, width) + "; scores of non-void pixels must be finite");
    if (l == kLabelOod) ++c.positives;
  }
  // second pass only for the count: keeps the loop above branch-light
  int64_t non_void = 0;
  for (int64_t i = 0; i < count; ++i) non_void += labels[i] != kLabelVoid;
  c.negatives = non_void - c.positives;
  return c;
}

// ===================================================================================================
// Exact mode.
//
// Each class keeps its scores as descending keys in chunks of chunk_values; a chunk is radix-sorted
// when it fills (during add) or at finish. finish() merges all sorted chunks of both classes in one
// walk from the highest score down, one operating point per distinct score (ties across classes and
// chunks grouped, as scikit-learn's _binary_clf_curve does). The walk is split into key ranges that
// run in parallel: the counts above a range's first key are known from binary searches, so every range
// starts from the exact TP/FP of the global walk.

namespace {

class ExactPixelMetrics final : public PixelMetrics {
 public:
  explicit ExactPixelMetrics(int64_t chunk_values) : chunk_values_(std::max<int64_t>(chunk_values, 1024)) {}

  void add(const float* scores, const uint8_t* labels, int64_t height, int64_t width, int64_t image) override {
    const ClassCounts c = check_pixel_image(scores, labels, height, width, image);
    const int64_t need[2] = {c.negatives, c.positives};
    // Allocate first (a bad_alloc leaves the accumulator as it was), then write.
    std::vector<Chunk> fresh[2];
    bool fills = false;  // some chunk fills up and gets sorted during this add
    for (int cls = 0; cls < 2; ++cls) {
      int64_t room = chunks_[cls].empty() ? 0 : chunk_values_ - chunks_[cls].back().size;
      if (need[cls] > 0 && room > 0 && need[cls] >= room) fills = true;
      if (need[cls] - room >= chunk_values_) fills = true;
      while (room < need[cls]) {
        fresh[cls].emplace_back(chunk_values_);
        room += chunk_values_;
      }
    }
    std::unique_ptr<uint32_t[]> tmp;
    if (fills) tmp.reset(new uint32_t[static_cast<size_t>(chunk_values_)]);
    for (int cls = 0; cls < 2; ++cls)
      for (auto& ch : fresh[cls]) chunks_[cls].push_back(std::move(ch));

    // Current chunk of each class (the first one with room).
    size_t at[2];
    for (int cls = 0; cls < 2; ++cls) {
      at[cls] = chunks_[cls].size();
      for (size_t k = 0; k < chunks_[cls].size(); ++k)
        if (chunks_[cls][k].size < chunk_values_) {
          at[cls] = k;
          break;
        }
    }
    const int64_t count = height * width;
    for (int64_t i = 0; i < count; ++i) {
      const uint8_t l = labels[i];
      if (l == kLabelVoid) continue;
      const int cls = l == kLabelOod ? 1 : 0;
      Chunk& ch = chunks_[cls][at[cls]];
      ch.keys[ch.size++] = descending_key(scores[i]);
      if (ch.size == chunk_values_) {
        radix_sort_u32(ch.keys.get(), ch.size, tmp.get());
        ch.sorted = true;
        ++at[cls];
      }
    }
    counts_[0] += c.negatives;
    counts_[1] += c.positives;
    ++images_;
  }

  PixelMetricsResult finish(int threads) override {
    PixelMetricsResult r;
    r.images = images_;
    r.positives = counts_[1];
    r.negatives = counts_[0];
    r.official_best_f1_threshold = kNaN;
    r.official_fpr95_threshold = kNaN;
    if (r.positives == 0 || r.negatives == 0) {
      release();
      throw_degenerate(r.images, r.positives, r.negatives);
    }
    const int workers = threads <= 0 ? default_threads() : threads;

    // Sort the partly filled chunks.
    std::vector<Chunk*> unsorted;
    for (auto& list : chunks_)
      for (auto& ch : list)
        if (!ch.sorted && ch.size > 0) unsorted.push_back(&ch);
    parallel_for(static_cast<int64_t>(unsorted.size()), workers, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        Chunk& ch = *unsorted[static_cast<size_t>(k)];
        std::unique_ptr<uint32_t[]> tmp(new uint32_t[static_cast<size_t>(ch.size)]);
        radix_sort_u32(ch.keys.get(), ch.size, tmp.get());
        ch.sorted = true;
      }
    });

    std::vector<View> views;
    for (int cls = 0; cls < 2; ++cls)
      for (auto& ch : chunks_[cls])
        if (ch.size > 0) views.push_back({ch.keys.get(), ch.size, cls});

    const std::vector<uint64_t> bounds = split_keys(views, workers);
    const size_t ranges = bounds.size() - 1;
    std::vector<RangeResult> parts(ranges);
    parallel_for(static_cast<int64_t>(ranges), workers, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k)
        parts[static_cast<size_t>(k)] = walk(views, bounds[static_cast<size_t>(k)], bounds[static_cast<size_t>(k) + 1]);
    });

    // Combine the ranges in order (highest scores first).
    const double P = static_cast<double>(r.positives), N = static_cast<double>(r.negatives);
    WideSum auc = 0;
    Sum ap;
    bool has95 = false, has_f1 = false;
    push_point(r.curves, {kInf, 0.0, 0.0, 1.0});
    for (const RangeResult& part : parts) {
      auc += part.auc;
      ap.add(part.ap.value());
      r.points += part.points;
      if (!has95 && part.has95) {
        has95 = true;
        r.fpr95 = part.fpr95;
        r.fpr95_threshold = part.fpr95_threshold;
      }
      if (part.has_f1 && (!has_f1 || part.best_f1 > r.best_f1)) {
        has_f1 = true;
        r.best_f1 = part.best_f1;
        r.best_f1_threshold = part.best_f1_threshold;
      }
      for (const Point& p : part.curve) push_point(r.curves, p);
    }
    r.auroc = static_cast<double>(auc) / (2.0 * P * N);
    r.auprc = ap.value() / P;
    release();
    return r;
  }

  // The stored keys; each class's last chunk also reserves address space up to chunk_values, whose
  // untouched pages cost no memory.
  int64_t bytes() const override { return (counts_[0] + counts_[1]) * static_cast<int64_t>(sizeof(uint32_t)); }

  int64_t images() const override { return images_; }

 private:
  struct Chunk {
    explicit Chunk(int64_t capacity) : keys(new uint32_t[static_cast<size_t>(capacity)]) {}  // not zeroed: untouched pages stay free
    std::unique_ptr<uint32_t[]> keys;
    int64_t size = 0;
    bool sorted = false;
  };

  struct View {
    const uint32_t* data;
    int64_t size;
    int cls;
  };

  struct RangeResult {
    WideSum auc = 0;
    Sum ap;
    int64_t points = 0;
    bool has95 = false, has_f1 = false;
    double fpr95 = 0, fpr95_threshold = 0, best_f1 = 0, best_f1_threshold = 0;
    std::vector<Point> curve;
  };

  void release() {
    for (auto& list : chunks_) std::vector<Chunk>().swap(list);
  }

  int64_t total() const { return counts_[0] + counts_[1]; }

  // Key bounds [b_0 = 0, …, b_R = 2^32] of ranges holding about equal numbers of values.
  std::vector<uint64_t> split_keys(const std::vector<View>& views, int workers) const {
    const int64_t n = total();
    const int64_t want = n < (int64_t{1} << 20) || workers <= 1 ? 1 : std::min<int64_t>(8 * workers, n / 65536);
    std::vector<uint64_t> bounds{0};
    if (want > 1) {
      constexpr int64_t kSamples = 8192;
      std::vector<uint32_t> samples;
      for (const View& v : views) {
        const int64_t s = std::max<int64_t>(1, v.size * kSamples / n);
        for (int64_t i = 0; i < s; ++i) samples.push_back(v.data[(2 * i + 1) * v.size / (2 * s)]);
      }
      std::sort(samples.begin(), samples.end());
      for (int64_t j = 1; j < want; ++j) {
        const uint64_t key = samples[static_cast<size_t>(j * static_cast<int64_t>(samples.size()) / want)];
        if (key > bounds.back()) bounds.push_back(key);
      }
    }
    bounds.push_back(uint64_t{1} << 32);
    return bounds;
  }

  // The walk over keys in [lo, hi): a k-way merge of the views' sub-ranges with a binary min-heap,
  // consuming each run of one key at once.
  RangeResult walk(const std::vector<View>& views, uint64_t lo, uint64_t hi) const {
    struct Cursor {
      const uint32_t* p;
      const uint32_t* end;
      int cls;
    };
    struct Head {
      uint32_t key;
      int32_t cursor;
    };
    const int64_t P = counts_[1], N = counts_[0];
    auto bound = [](const View& v, uint64_t key) -> const uint32_t* {
      if (key > 0xffffffffu) return v.data + v.size;
      return std::lower_bound(v.data, v.data + v.size, static_cast<uint32_t>(key));
    };
    std::vector<Cursor> cursors;
    int64_t tp = 0, fp = 0;
    for (const View& v : views) {
      const uint32_t* b = bound(v, lo);
      const uint32_t* e = bound(v, hi);
      (v.cls ? tp : fp) += b - v.data;
      if (b < e) cursors.push_back({b, e, v.cls});
    }
    std::vector<Head> heap;
    for (size_t c = 0; c < cursors.size(); ++c) heap.push_back({*cursors[c].p, static_cast<int32_t>(c)});
    auto sift_down = [&heap](size_t n) {
      size_t i = 0;
      const Head top = heap[0];
      for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap[child + 1].key < heap[child].key) ++child;
        if (heap[child].key >= top.key) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = top;
    };
    size_t n = heap.size();
    std::make_heap(heap.begin(), heap.end(), [](const Head& a, const Head& b) { return a.key > b.key; });

    RangeResult out;
    const double Pd = static_cast<double>(P), Nd = static_cast<double>(N);
    while (n > 0) {
      const uint32_t key = heap[0].key;
      int64_t dtp = 0, dfp = 0;
      do {
        Cursor& c = cursors[static_cast<size_t>(heap[0].cursor)];
        const uint32_t* q = c.p + 1;
        while (q < c.end && *q == key) ++q;
        (c.cls ? dtp : dfp) += q - c.p;
        c.p = q;
        if (q < c.end) {
          heap[0].key = *q;
        } else {
          heap[0] = heap[--n];
        }
        if (n > 1) sift_down(n);
      } while (n > 0 && heap[0].key == key);

      const int64_t tp1 = tp + dtp, fp1 = fp + dfp;
      out.auc += static_cast<WideSum>(dfp) * static_cast<WideSum>(tp + tp1);
      const double precision = static_cast<double>(tp1) / static_cast<double>(tp1 + fp1);
      if (dtp > 0) out.ap.add(static_cast<double>(dtp) * precision);
      ++out.points;
      const double threshold = from_descending_key(key);
      if (!out.has95 && static_cast<double>(tp1) / Pd >= 0.95) {
        out.has95 = true;
        out.fpr95 = static_cast<double>(fp1) / Nd;
        out.fpr95_threshold = threshold;
      }
      const double f1 = 2.0 * static_cast<double>(tp1) / static_cast<double>(tp1 + fp1 + P);
      if (!out.has_f1 || f1 > out.best_f1) {
        out.has_f1 = true;
        out.best_f1 = f1;
        out.best_f1_threshold = threshold;
      }
      if (new_cell(tp, fp, tp1, fp1, P, N))
        out.curve.push_back({threshold, static_cast<double>(tp1) / Pd, static_cast<double>(fp1) / Nd, precision});
      tp = tp1;
      fp = fp1;
    }
    return out;
  }

  int64_t chunk_values_;
  std::vector<Chunk> chunks_[2];  // [0] in-distribution, [1] OoD
  int64_t counts_[2] = {0, 0};
  int64_t images_ = 0;
};

// ===================================================================================================
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

std::unique_ptr<PixelMetrics> make_exact_pixel_metrics(int64_t chunk_values) {
  return std::make_unique<ExactPixelMetrics>(chunk_values);
}

std::unique_ptr<PixelMetrics> make_binned_pixel_metrics(int bins, bool float16) {
  return std::make_unique<BinnedPixelMetrics>(bins, float16);
}

}  // namespace pgn
