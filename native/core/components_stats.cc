// Second pass of the CPU labeling: final labels written run by run, and the statistics policies (as
// OpenCV's StatsOp) that gather per-component figures from those runs. The labeling never knows
// which statistics are gathered; every labeling (SAUF, blocks, the grid's root labels) ends here.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "components_internal.h"
#include "parallel.h"

namespace pgn {

namespace {

// ---- second pass: final labels and statistics ----------------------------------------------------
//
// The rows are processed in bands (the strips of the first pass, in parallel). Final ids follow the
// raster order of first pixels, so the components that start in band k have the ids [lo_k,
// lo_{k+1}): band k owns their records and writes them in place. A component from an earlier band
// that reaches into band k crosses band k's first row; those few ("foreign") are collected from that
// row and accumulated in a side table merged afterwards. No band ever copies the K records.

// Pixels of a run handled under a mask before any loop (see GeometryScoreStats::run).
constexpr int64_t kHead = 4;

// The statistics policies (as OpenCV's StatsOp): each sees the runs of one component on one row,
// [x0, x1) of row y all labelled f (horizontal neighbours are connected in both connectivities, so
// a run of foreground pixels is always one component). One instance per band.

// Geometry and score statistics, accumulated straight into the output's Segment records. The
// record of the current component is kept in a local copy while runs of that component follow
// each other (one component per map is common: large blobs), written back when another starts.
struct GeometryScoreStats {
  Segment* global;
  const Band* band;
  std::vector<Segment> side;
  uint32_t cur = 0;           // component of `local`, 0 = none
  Segment* target = nullptr;  // where `local` is written back
  Segment local;
  GeometryScoreStats(Segment* g, const Band& b) : global(g), band(&b), side(b.foreign.size()) {}

  PGN_INLINE void run(uint32_t f, int64_t y, int64_t x0, int64_t x1, int64_t w, const float* s, const int32_t*) {
    if (f != cur) {
      flush();
      const int64_t slot = band->slot(f);
      target = slot >= 0 ? &global[slot] : &side[static_cast<size_t>(-1 - slot)];
      local = *target;
      cur = f;
    }
    Segment& a = local;
    const int64_t len = x1 - x0;
    a.area += len;
    a.sum_x += (x0 + x1 - 1) * len / 2;
    a.sum_y += y * len;
    a.x0 = std::min(a.x0, static_cast<int32_t>(x0));
    a.x1 = std::max(a.x1, static_cast<int32_t>(x1 - 1));
    a.y0 = std::min(a.y0, static_cast<int32_t>(y));
    a.y1 = static_cast<int32_t>(y);  // rows come in increasing order within a band
    double sum = 0;
    float mx = a.max_score;
    int64_t x = x0;
    if (x0 + kHead <= w) {
      // Most runs of noisy maps are short: kHead pixels under a mask, without a loop exit to
      // mispredict (the masked-out values, possibly NaN, are never added).
      for (int64_t k = 0; k < kHead; ++k) {
        const bool in = k < len;
        const float v = s[x0 + k];
        sum += in ? static_cast<double>(v) : 0.0;
        mx = in && v > mx ? v : mx;
      }
      x = std::min(x1, x0 + kHead);
    }
    if (x1 - x >= 8) {
      // Long runs: four independent sums, so that the additions need not wait for each other.
      double part[4] = {0, 0, 0, 0};
      float pmax[4] = {mx, mx, mx, mx};
      for (; x + 4 <= x1; x += 4)
        for (int k = 0; k < 4; ++k) {
          part[k] += s[x + k];
          pmax[k] = std::max(pmax[k], s[x + k]);
        }
      sum += (part[0] + part[1]) + (part[2] + part[3]);
      mx = std::max(std::max(pmax[0], pmax[1]), std::max(pmax[2], pmax[3]));
    }
    for (; x < x1; ++x) {
      sum += s[x];
      mx = std::max(mx, s[x]);
    }
    a.sum_score += sum;
    a.max_score = mx;
  }

  void flush() {
    if (cur) *target = local;
    cur = 0;
  }

  // Adds the side table into the global records (after all bands are done).
  void merge_side() {
    flush();
    for (size_t i = 0; i < side.size(); ++i) {
      Segment& a = global[band->foreign[i] - 1];
      const Segment& b = side[i];
      if (b.area == 0) continue;
      a.area += b.area;
      a.sum_x += b.sum_x;
      a.sum_y += b.sum_y;
      a.x0 = std::min(a.x0, b.x0);
      a.y0 = std::min(a.y0, b.y0);
      a.x1 = std::max(a.x1, b.x1);
      a.y1 = std::max(a.y1, b.y1);
      a.sum_score += b.sum_score;
      a.max_score = std::max(a.max_score, b.max_score);
    }
  }
};

// Histogram of the predicted classes c_min .. c_min + C − 1 per component (global: K × C counters).
struct ClassHistogram {
  uint32_t* global;
  int32_t c_min;
  int64_t classes;
  const Band* band;
  std::vector<uint32_t> side;
  ClassHistogram(uint32_t* g, int32_t c_min_, int64_t classes_, const Band& b)
      : global(g), c_min(c_min_), classes(classes_), band(&b), side(b.foreign.size() * static_cast<size_t>(classes_), 0u) {}

  PGN_INLINE void run(uint32_t f, int64_t, int64_t x0, int64_t x1, int64_t, const float*, const int32_t* pred) {
    const int64_t slot = band->slot(f);
    uint32_t* h = slot >= 0 ? global + slot * classes : side.data() + (-1 - slot) * classes;
    for (int64_t x = x0; x < x1; ++x) ++h[static_cast<int64_t>(pred[x]) - c_min];
  }

  void flush() {}
  void merge_side() {
    for (size_t i = 0; i < band->foreign.size(); ++i) {
      uint32_t* h = global + static_cast<int64_t>(band->foreign[i] - 1) * classes;
      const uint32_t* o = side.data() + static_cast<int64_t>(i) * classes;
      for (int64_t c = 0; c < classes; ++c) h[c] += o[c];
    }
  }
};

// Most frequent class in a histogram row; ties to the smallest class id.
int32_t majority_of(const uint32_t* h, int32_t c_min, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (h[c] > h[best]) best = c;
  return static_cast<int32_t>(best + c_min);
}

template <class A, class B>
struct BothStats {
  A a;
  B b;
  PGN_INLINE void run(uint32_t f, int64_t y, int64_t x0, int64_t x1, int64_t w, const float* s, const int32_t* pred) {
    a.run(f, y, x0, x1, w, s, pred);
    b.run(f, y, x0, x1, w, s, pred);
  }
  void flush() {
    a.flush();
    b.flush();
  }
  void merge_side() {
    a.merge_side();
    b.merge_side();
  }
};

PGN_INLINE int count_trailing_zeros(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(v);
#else
  int n = 0;
  while (!(v & 1)) v >>= 1, ++n;
  return n;
#endif
}

// First x >= from with bit x == want, or w.
PGN_INLINE int64_t next_bit(const uint64_t* bits, int64_t from, int64_t w, bool want) {
  const uint64_t flip = want ? 0 : ~uint64_t{0};
  int64_t k = from >> 6;
  const int64_t words = (w + 63) >> 6;
  if (k >= words) return w;
  uint64_t v = (bits[k] ^ flip) & (~uint64_t{0} << (from & 63));
  while (v == 0) {
    if (++k == words) return w;
    v = bits[k] ^ flip;
  }
  return std::min<int64_t>(w, (k << 6) + count_trailing_zeros(v));
}

// f over [x, end) of a row of width w; the kHead first under a mask, as in the statistics.
PGN_INLINE void fill_run(uint32_t* row, int64_t x, int64_t end, int64_t w, uint32_t f) {
  if (x + kHead <= w) {
    for (int64_t k = 0; k < kHead; ++k) row[x + k] = x + k < end ? f : row[x + k];
    x += kHead;
  }
  for (; x < end; ++x) row[x] = f;
}

// v over [x, end) of a row of width w, for rows written left to right in full (run, gap, run, ...):
// the first 8 values are stored unconditionally, spilling into the next segment, which is written
// after and overwrites them; short runs and gaps then need no loop whose exit would mispredict.
PGN_INLINE void fill_span(uint32_t* row, int64_t x, int64_t end, int64_t w, uint32_t v) {
  if (x + 8 <= w) {
    for (int64_t k = 0; k < 8; ++k) row[x + k] = v;
    x += 8;
  }
  for (; x < end; ++x) row[x] = v;
}

// The foreground of one row of the second pass as bits: the source's packed row, or packed here.
struct RowBits {
  int64_t w, words;
  std::vector<uint8_t> nzbuf;
  std::vector<uint64_t> own;
  const uint64_t* bits = nullptr;
  explicit RowBits(int64_t w_)
      : w(w_), words(mask_words(w_)), nzbuf(static_cast<size_t>(mask_row_bytes(w_)), 0), own(static_cast<size_t>(words)) {}
  template <class Src>
  void load(const Src& src, int64_t y) {
    if constexpr (Src::kPacked) {
      bits = src.packed_row(y);
    } else {
      src.foreground(y, nzbuf.data());
      pack_bits(nzbuf.data(), words, own.data());
      bits = own.data();
    }
  }
  int64_t next(int64_t from, bool want) const { return next_bit(bits, from, w, want); }
};

// The ids below band.lo met on the band's first row.
template <class Src>
void collect_foreign(const Image& img, const Src& src, const uint32_t* map, Band& band) {
  band.foreign.clear();
  if (band.y0 >= band.y1 || band.lo <= 1) return;
  RowBits rb(img.w);
  rb.load(src, band.y0);
  for (int64_t x = rb.next(0, true); x < img.w; x = rb.next(rb.next(x, false), true)) {
    const uint32_t f = map[src.label(band.y0, x)];
    if (f < band.lo) band.foreign.push_back(f);
  }
  std::sort(band.foreign.begin(), band.foreign.end());
  band.foreign.erase(std::unique(band.foreign.begin(), band.foreign.end()), band.foreign.end());
}

// Rows of one band: the final label map[provisional] of every run, written to L (if given) and
// handed to the policy. Runs are found a 64-pixel word at a time on a bitmap of the row. Sources
// that do not rewrite their labels in place write whole rows, the background too (L is not
// zero-filled: a fresh output would cost the kernel's zeroing of every page, a reused one a clear).
template <class Src, class Op>
void relabel_band(const Image& img, const Src& src, uint32_t* L, const uint32_t* map, const Band& band, Op& op) {
  const int64_t w = img.w;
  RowBits rb(w);
  for (int64_t y = band.y0; y < band.y1; ++y) {
    const float* s = img.scores + y * w;
    const int32_t* pred = img.prediction ? img.prediction + y * w : nullptr;
    rb.load(src, y);
    uint32_t* row = L ? L + y * w : nullptr;
    int64_t x = rb.next(0, true);
    if (row && !Src::kInPlace) fill_span(row, 0, x, w, 0u);
    while (x < w) {
      const int64_t end = rb.next(x, false);
      const uint32_t f = map[src.label(y, x)];
      const int64_t next = rb.next(end, true);
      if (row) {
        if (Src::kInPlace) {
          fill_run(row, x, end, w, f);
        } else {
          fill_span(row, x, end, w, f);
          fill_span(row, end, next, w, 0u);  // the background up to the next run
        }
      }
      op.run(f, y, x, end, w, s, pred);
      x = next;
    }
  }
}

// All bands (in parallel when more than one), then the side tables into the global records.
template <class Src, class MakeOp>
void relabel(const Image& img, const Src& src, uint32_t* L, const uint32_t* map, std::vector<Band>& bands,
             const MakeOp& make_op) {
  const int64_t n = static_cast<int64_t>(bands.size());
  using Op = decltype(make_op(bands[0]));
  std::vector<Op> ops;
  ops.reserve(bands.size());
  if (n == 1) {
    ops.push_back(make_op(bands[0]));
    relabel_band(img, src, L, map, bands[0], ops[0]);
    ops[0].flush();
    return;
  }
  // Foreign ids first: they are read on each band's first row before any band rewrites it.
  parallel_for(n, static_cast<int>(n), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) collect_foreign(img, src, map, bands[static_cast<size_t>(k)]);
  });
  for (Band& band : bands) ops.push_back(make_op(band));
  parallel_for(n, static_cast<int>(n), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      relabel_band(img, src, L, map, bands[static_cast<size_t>(k)], ops[static_cast<size_t>(k)]);
  });
  for (Op& op : ops) op.flush();
  for (Op& op : ops) op.merge_side();
}

// Dense class histograms up to this many counters, else the sort fallback.
constexpr int64_t kDenseClassCounters = int64_t{1} << 24;

// Majority class by sorting (component, class) pairs: any class ids, any number of components.
std::vector<int32_t> majority_by_sort(const Image& img, const uint32_t* L, uint32_t K) {
  std::vector<uint64_t> keys;
  const int64_t n = img.h * img.w;
  for (int64_t i = 0; i < n; ++i)
    if (L[i]) keys.push_back((static_cast<uint64_t>(L[i]) << 32) | (static_cast<uint32_t>(img.prediction[i]) ^ 0x80000000u));
  std::sort(keys.begin(), keys.end());
  std::vector<int32_t> best(K, 0);
  size_t i = 0;
  while (i < keys.size()) {
    const uint32_t f = static_cast<uint32_t>(keys[i] >> 32);
    size_t best_count = 0;
    while (i < keys.size() && static_cast<uint32_t>(keys[i] >> 32) == f) {
      size_t j = i;
      while (j < keys.size() && keys[j] == keys[i]) ++j;
      if (j - i > best_count) {  // classes ascend: strict > keeps the smallest id on ties
        best_count = j - i;
        best[f - 1] = static_cast<int32_t>(static_cast<uint32_t>(keys[i]) ^ 0x80000000u);
      }
      i = j;
    }
  }
  return best;
}

}  // namespace

template <class Src>
void finish_image(const Image& img, const Src& src, int64_t min_area, uint32_t* L, const uint32_t* map, uint32_t K,
                  std::vector<Band>& bands, SegmentList& segments) {
  segments.assign(K, Segment{});
  if (K == 0) {
    if (L && !Src::kInPlace) std::memset(L, 0, static_cast<size_t>(img.h * img.w) * sizeof(uint32_t));
    return;
  }
  bool dense = false;
  int32_t c_min = 0;
  int64_t classes = 0;
  if (img.prediction) {
    const int64_t n = img.h * img.w;
    int32_t lo = img.prediction[0], hi = img.prediction[0];
    for (int64_t i = 1; i < n; ++i) {
      lo = std::min(lo, img.prediction[i]);
      hi = std::max(hi, img.prediction[i]);
    }
    c_min = lo;
    classes = static_cast<int64_t>(hi) - lo + 1;
    dense = classes <= kDenseClassCounters / K;
  }
  Segment* records = segments.data();
  if (dense) {
    std::vector<uint32_t> hist(static_cast<size_t>(K) * static_cast<size_t>(classes), 0u);
    relabel(img, src, L, map, bands, [&](const Band& b) {
      return BothStats<GeometryScoreStats, ClassHistogram>{GeometryScoreStats(records, b),
                                                           ClassHistogram(hist.data(), c_min, classes, b)};
    });
    for (uint32_t f = 1; f <= K; ++f)
      segments[f - 1].majority_class = majority_of(hist.data() + static_cast<int64_t>(f - 1) * classes, c_min, classes);
  } else if (img.prediction) {
    // The sorting fallback reads final labels: into a scratch image when none was asked for.
    Buffer<uint32_t> scratch;
    uint32_t* final_labels = L;
    if (!final_labels) {
      scratch = raw_array<uint32_t>(img.h * img.w);
      final_labels = scratch.get();
      src.copy_to(final_labels, img.h * img.w);  // in-place sources start from their provisional labels
    }
    relabel(img, src, final_labels, map, bands, [&](const Band& b) { return GeometryScoreStats(records, b); });
    const std::vector<int32_t> majority = majority_by_sort(img, final_labels, K);
    for (uint32_t f = 1; f <= K; ++f) segments[f - 1].majority_class = majority[f - 1];
  } else {
    relabel(img, src, L, map, bands, [&](const Band& b) { return GeometryScoreStats(records, b); });
  }
  if (min_area <= 1) return;  // every component has at least one pixel: nothing to drop

  // Drop the small components and renumber the rest consecutively (the order is kept).
  std::vector<uint32_t> remap(static_cast<size_t>(K) + 1, 0u);
  uint32_t kept = 0;
  for (uint32_t f = 1; f <= K; ++f) {
    if (segments[f - 1].area < min_area) continue;
    segments[kept] = segments[f - 1];
    remap[f] = ++kept;
  }
  segments.resize(kept);
  if (kept < K && L) {
    const int64_t n = img.h * img.w;
    parallel_for(n, static_cast<int>(bands.size()), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) L[i] = remap[L[i]];
    });
  }
}

// The two label sources: pixel labels (SAUF, the grid's root labels) and block labels.
template void finish_image<PixelLabels>(const Image&, const PixelLabels&, int64_t, uint32_t*, const uint32_t*,
                                        uint32_t, std::vector<Band>&, SegmentList&);
template void finish_image<BlockLabels>(const Image&, const BlockLabels&, int64_t, uint32_t*, const uint32_t*,
                                        uint32_t, std::vector<Band>&, SegmentList&);

}  // namespace pgn
