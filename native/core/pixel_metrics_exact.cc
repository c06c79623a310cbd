// Exact mode.
//
// Each class keeps its scores as descending keys in chunks of chunk_values; a chunk is radix-sorted
// when it fills (during add) or at finish. finish() merges all sorted chunks of both classes in one
// walk from the highest score down, one operating point per distinct score (ties across classes and
// chunks grouped, as scikit-learn's _binary_clf_curve does). The walk is split into key ranges that
// run in parallel: the counts above a range's first key are known from binary searches, so every range
// starts from the exact TP/FP of the global walk.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "parallel.h"
#include "pixel_metrics.h"
#include "pixel_metrics_internal.h"

namespace pgn {

namespace {

// The trapezoid sum Σ ΔFP·(TP_prev + TP) is an integer; keep it exact.
#if defined(__SIZEOF_INT128__)
using WideSum = unsigned __int128;
#else
using WideSum = long double;
#endif

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

}  // namespace

std::unique_ptr<PixelMetrics> make_exact_pixel_metrics(int64_t chunk_values) {
  return std::make_unique<ExactPixelMetrics>(chunk_values);
}

}  // namespace pgn
