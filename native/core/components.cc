#include "components.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "parallel.h"

namespace pgn {

namespace {

#if defined(__GNUC__) || defined(__clang__)
#define PGN_INLINE inline __attribute__((always_inline))
#define PGN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define PGN_INLINE inline
#define PGN_UNLIKELY(x) (x)
#endif

// One image of the batch.
struct Image {
  const float* scores;
  const uint8_t* roi;
  const int32_t* prediction;
  int64_t h, w;
  float t;
};

Image image_of(const ComponentInput& in, int64_t n) {
  const int64_t plane = in.height * in.width;
  return Image{in.scores + n * plane, in.roi ? in.roi + (in.roi_shared ? 0 : n * plane) : nullptr,
               in.prediction ? in.prediction + n * plane : nullptr, in.height, in.width, in.threshold};
}

// Uninitialized storage: the passes write every element they later read.
template <typename T>
std::unique_ptr<T[]> raw_array(int64_t count) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(count, 1))]);
}

// ---- union-find over provisional labels (OpenCV's): P[l] <= l, roots have P[l] == l ------------

PGN_INLINE uint32_t find_root(const uint32_t* P, uint32_t i) {
  while (P[i] < i) i = P[i];
  return i;
}

PGN_INLINE void set_root(uint32_t* P, uint32_t i, uint32_t root) {
  while (P[i] < i) {
    const uint32_t j = P[i];
    P[i] = root;
    i = j;
  }
  P[i] = root;
}

// Joins the sets of i and j under the smaller root, compressing both paths; returns that root.
PGN_INLINE uint32_t merge(uint32_t* P, uint32_t i, uint32_t j) {
  uint32_t root = find_root(P, i);
  if (i != j) {
    const uint32_t rj = find_root(P, j);
    if (root > rj) root = rj;
    set_root(P, j, root);
  }
  set_root(P, i, root);
  return root;
}

// ---- first pass: SAUF ----------------------------------------------------------------------------

// m[1..w] = foreground of row y; m[0] and m[w + 1] stay 0 (the padding spares the border tests).
PGN_INLINE void threshold_row(const Image& img, int64_t y, uint8_t* m) {
  const float* s = img.scores + y * img.w;
  const float t = img.t;
  uint8_t* out = m + 1;
  if (img.roi) {
    const uint8_t* roi = img.roi + y * img.w;
    for (int64_t x = 0; x < img.w; ++x) out[x] = static_cast<uint8_t>((s[x] > t) & (roi[x] != 0));
  } else {
    for (int64_t x = 0; x < img.w; ++x) out[x] = static_cast<uint8_t>(s[x] > t);
  }
}

// Largest number of provisional labels SAUF can create on `rows` rows: a pixel opens a label only
// when none of its visited neighbours is foreground, so such pixels are pairwise non-adjacent.
int64_t label_bound(int64_t rows, int64_t w, int connectivity) {
  return connectivity == 8 ? ((rows + 1) / 2) * ((w + 1) / 2) : (rows * w + 1) / 2;
}

// Labels rows [r0, r1) as if the image started at r0, opening labels from `next`; returns the next
// unused label. mbuf holds 2 × (w + 2) bytes.
template <int Conn>
uint32_t sauf_strip(const Image& img, int64_t r0, int64_t r1, uint32_t* L, uint32_t* P, uint32_t next, uint8_t* mbuf) {
  const int64_t w = img.w;
  uint8_t* prev = mbuf;
  uint8_t* cur = mbuf + (w + 2);
  std::fill(prev, prev + 2 * (w + 2), uint8_t{0});  // no row above the strip's first row
  for (int64_t y = r0; y < r1; ++y) {
    threshold_row(img, y, cur);
    const uint8_t* mc = cur + 1;
    const uint8_t* mp = prev + 1;  // mp[-1] and mp[w] are padding zeros
    uint32_t* Lc = L + y * w;
    const uint32_t* Lp = y > r0 ? Lc - w : Lc;  // never read on the strip's first row: mp is all 0
    uint32_t left = 0;                          // label of (x − 1, y), 0 = background
    if (Conn == 8) {
      uint8_t p = 0, q = mp[0];
      for (int64_t x = 0; x < w; ++x) {
        const uint8_t r = mp[x + 1];
        uint32_t lab = 0;
        if (mc[x]) {
          // The decision tree of SAUF: q touches p, r and s, so when q is set nothing is merged;
          // p and s touch each other, r touches neither.
          if (q) {
            lab = Lp[x];
          } else if (r) {
            if (p) lab = merge(P, Lp[x - 1], Lp[x + 1]);
            else if (left) lab = merge(P, left, Lp[x + 1]);
            else lab = Lp[x + 1];
          } else if (p) {
            lab = Lp[x - 1];
          } else if (left) {
            lab = left;
          } else {
            lab = next;
            P[next] = next;
            ++next;
          }
        }
        Lc[x] = lab;
        left = lab;
        p = q;
        q = r;
      }
    } else {
      for (int64_t x = 0; x < w; ++x) {
        uint32_t lab = 0;
        if (mc[x]) {
          if (mp[x]) {
            lab = left ? merge(P, Lp[x], left) : Lp[x];
          } else if (left) {
            lab = left;
          } else {
            lab = next;
            P[next] = next;
            ++next;
          }
        }
        Lc[x] = lab;
        left = lab;
      }
    }
    std::swap(prev, cur);
  }
  return next;
}

// ---- second pass: final labels and statistics ----------------------------------------------------

// The statistics policies. Each sees the runs of one component on one row: [x0, x1) of row y, all
// labelled f (horizontal neighbours are connected in both connectivities, so a run of foreground
// pixels is always one component). merge() adds another instance's counts (parallel strips).
// Geometry and score statistics, accumulated straight into the output's Segment records (indexed by
// final label − 1).
struct GeometryScoreStats {
  std::vector<Segment> acc;
  explicit GeometryScoreStats(uint32_t K) : acc(K) {}

  PGN_INLINE void run(uint32_t f, int64_t y, int64_t x0, int64_t x1, const float* s, const int32_t*) {
    Segment& a = acc[f - 1];
    const int64_t len = x1 - x0;
    a.area += len;
    a.sum_x += (x0 + x1 - 1) * len / 2;
    a.sum_y += y * len;
    a.x0 = std::min(a.x0, static_cast<int32_t>(x0));
    a.x1 = std::max(a.x1, static_cast<int32_t>(x1 - 1));
    a.y0 = std::min(a.y0, static_cast<int32_t>(y));
    a.y1 = static_cast<int32_t>(y);  // rows come in increasing order within one instance
    double sum = 0;
    float mx = a.max_score;
    for (int64_t x = x0; x < x1; ++x) {
      sum += s[x];
      mx = std::max(mx, s[x]);
    }
    a.sum_score += sum;
    a.max_score = mx;
  }

  void merge(const GeometryScoreStats& o) {
    for (size_t i = 0; i < acc.size(); ++i) {
      Segment& a = acc[i];
      const Segment& b = o.acc[i];
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

// Dense K × C histogram of the predicted classes c_min .. c_min + C − 1.
struct ClassHistogram {
  int32_t c_min;
  int64_t classes;
  std::vector<uint32_t> hist;
  ClassHistogram(uint32_t K, int32_t c_min_, int64_t classes_)
      : c_min(c_min_), classes(classes_), hist(static_cast<size_t>(K) * static_cast<size_t>(classes_), 0u) {}

  PGN_INLINE void run(uint32_t f, int64_t, int64_t x0, int64_t x1, const float*, const int32_t* pred) {
    uint32_t* h = hist.data() + static_cast<size_t>(f - 1) * static_cast<size_t>(classes);
    for (int64_t x = x0; x < x1; ++x) ++h[static_cast<int64_t>(pred[x]) - c_min];
  }

  void merge(const ClassHistogram& o) {
    for (size_t i = 0; i < hist.size(); ++i) hist[i] += o.hist[i];
  }

  // Most frequent class of component f (1-based); ties to the smallest class id.
  int32_t majority(uint32_t f) const {
    const uint32_t* h = hist.data() + static_cast<size_t>(f - 1) * static_cast<size_t>(classes);
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (h[c] > h[best]) best = c;
    return static_cast<int32_t>(best + c_min);
  }
};

template <class A, class B>
struct BothStats {
  A a;
  B b;
  BothStats(A a_, B b_) : a(std::move(a_)), b(std::move(b_)) {}
  PGN_INLINE void run(uint32_t f, int64_t y, int64_t x0, int64_t x1, const float* s, const int32_t* pred) {
    a.run(f, y, x0, x1, s, pred);
    b.run(f, y, x0, x1, s, pred);
  }
  void merge(const BothStats& o) {
    a.merge(o.a);
    b.merge(o.b);
  }
};

// Rows [y0, y1): provisional label l → map[l] (0 stays 0), and every run handed to the policy.
template <class Op>
void relabel_rows(const Image& img, uint32_t* L, const uint32_t* map, int64_t y0, int64_t y1, Op& op) {
  const int64_t w = img.w;
  for (int64_t y = y0; y < y1; ++y) {
    uint32_t* row = L + y * w;
    const float* s = img.scores + y * w;
    const int32_t* pred = img.prediction ? img.prediction + y * w : nullptr;
    int64_t x = 0;
    while (x < w) {
      while (x < w && row[x] == 0) ++x;
      if (x == w) break;
      const uint32_t f = map[row[x]];
      const int64_t start = x;
      do row[x++] = f;
      while (x < w && row[x] != 0);
      op.run(f, y, start, x, s, pred);
    }
  }
}

// Runs the policy over all rows, in `strips` parallel row bands with one policy instance each.
template <class Op>
Op relabel(const Image& img, uint32_t* L, const uint32_t* map, int strips, Op fresh) {
  if (strips <= 1) {
    relabel_rows(img, L, map, 0, img.h, fresh);
    return fresh;
  }
  std::vector<Op> ops(static_cast<size_t>(strips), fresh);
  parallel_for(strips, strips, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      relabel_rows(img, L, map, img.h * k / strips, img.h * (k + 1) / strips, ops[static_cast<size_t>(k)]);
  });
  for (size_t k = 1; k < ops.size(); ++k) ops[0].merge(ops[k]);
  return std::move(ops[0]);
}

// Dense class histograms up to this many counters (all strips together), else the sort fallback.
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

// Second pass and filtering for one image: L holds provisional labels, map turns them into
// 1..K in raster order of the components' first pixels.
void finish_image(const Image& img, int64_t min_area, uint32_t* L, const uint32_t* map, uint32_t K, bool keep_labels,
                  int strips, std::vector<Segment>& segments) {
  bool dense = false;
  int32_t c_min = 0;
  int64_t classes = 0;
  if (img.prediction && K > 0) {
    const int64_t n = img.h * img.w;
    int32_t lo = img.prediction[0], hi = img.prediction[0];
    for (int64_t i = 1; i < n; ++i) {
      lo = std::min(lo, img.prediction[i]);
      hi = std::max(hi, img.prediction[i]);
    }
    c_min = lo;
    classes = static_cast<int64_t>(hi) - lo + 1;
    dense = classes <= kDenseClassCounters / K / std::max(strips, 1);
  }
  if (dense) {
    using Op = BothStats<GeometryScoreStats, ClassHistogram>;
    Op op = relabel(img, L, map, strips, Op(GeometryScoreStats(K), ClassHistogram(K, c_min, classes)));
    segments = std::move(op.a.acc);
    for (uint32_t f = 1; f <= K; ++f) segments[f - 1].majority_class = op.b.majority(f);
  } else {
    segments = std::move(relabel(img, L, map, strips, GeometryScoreStats(K)).acc);
    if (img.prediction && K > 0) {
      const std::vector<int32_t> majority = majority_by_sort(img, L, K);
      for (uint32_t f = 1; f <= K; ++f) segments[f - 1].majority_class = majority[f - 1];
    }
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
  if (kept < K && keep_labels) {
    const int64_t n = img.h * img.w;
    parallel_for(n, strips, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) L[i] = remap[L[i]];
    });
  }
}

// One image on the CPU, its rows split into `strips` bands labelled in parallel.
void label_image(const Image& img, int connectivity, int64_t min_area, uint32_t* out_labels, int strips,
                 std::vector<Segment>& segments) {
  const int64_t h = img.h, w = img.w;
  std::unique_ptr<uint32_t[]> scratch;
  uint32_t* L = out_labels;
  if (!L) {
    scratch = raw_array<uint32_t>(h * w);
    L = scratch.get();
  }
  strips = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(strips, h / 8)));
  // Strips start on even rows so that each one's label bound is the plain formula.
  std::vector<int64_t> rows(static_cast<size_t>(strips) + 1);
  for (int k = 0; k < strips; ++k) rows[static_cast<size_t>(k)] = (h * k / strips) & ~int64_t{1};
  rows[static_cast<size_t>(strips)] = h;
  std::vector<uint32_t> base(static_cast<size_t>(strips) + 1), next(static_cast<size_t>(strips));
  base[0] = 1;
  for (int k = 0; k < strips; ++k)
    base[k + 1] = base[k] + static_cast<uint32_t>(label_bound(rows[k + 1] - rows[k], w, connectivity));
  auto P = raw_array<uint32_t>(base[static_cast<size_t>(strips)]);
  P[0] = 0;
  auto mbuf = raw_array<uint8_t>(2 * (w + 2) * strips);

  parallel_for(strips, strips, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      uint8_t* m = mbuf.get() + 2 * (w + 2) * k;
      next[k] = connectivity == 8 ? sauf_strip<8>(img, rows[k], rows[k + 1], L, P.get(), base[k], m)
                                  : sauf_strip<4>(img, rows[k], rows[k + 1], L, P.get(), base[k], m);
    }
  });

  // Strip borders: the first row of each strip against the last row of the one above.
  for (int k = 1; k < strips; ++k) {
    const int64_t y = rows[static_cast<size_t>(k)];
    if (y == 0 || y >= h) continue;
    const uint32_t* up = L + (y - 1) * w;
    const uint32_t* row = L + y * w;
    for (int64_t x = 0; x < w; ++x) {
      if (!row[x]) continue;
      if (connectivity == 8 && x > 0 && up[x - 1]) merge(P.get(), row[x], up[x - 1]);
      if (up[x]) merge(P.get(), row[x], up[x]);
      if (connectivity == 8 && x + 1 < w && up[x + 1]) merge(P.get(), row[x], up[x + 1]);
    }
  }

  // Flatten: roots (the smallest label of each set, i.e. the first in raster order) get 1..K.
  uint32_t K = 0;
  for (int k = 0; k < strips; ++k)
    for (uint32_t l = base[k]; l < next[k]; ++l) P[l] = P[l] < l ? P[P[l]] : ++K;

  finish_image(img, min_area, L, P.get(), K, out_labels != nullptr, strips, segments);
}

}  // namespace

float threshold_from_double(double t) {
  if (std::isnan(t)) return std::numeric_limits<float>::quiet_NaN();
  float f = static_cast<float>(t);
  if (static_cast<double>(f) > t) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

void check_component_input(const ComponentInput& in) {
  if (!in.scores) throw std::invalid_argument("components: no score maps");
  if (in.batch < 1 || in.height < 1 || in.width < 1)
    throw std::invalid_argument("components: the maps must be non-empty");
  if (in.height * in.width >= (int64_t{1} << 31) - 1)
    throw std::invalid_argument("components: a map must have fewer than 2^31 - 1 pixels");
  if (in.connectivity != 4 && in.connectivity != 8)
    throw std::invalid_argument("connectivity must be 4 or 8, got " + std::to_string(in.connectivity));
  if (in.min_area < 0) throw std::invalid_argument("minArea must be >= 0");
  if (std::isnan(in.threshold)) throw std::invalid_argument("threshold must not be NaN");
}

void label_components(const ComponentInput& in, ComponentOutput& out, int threads) {
  check_component_input(in);
  const int T = threads <= 0 ? default_threads() : threads;
  const int64_t plane = in.height * in.width;
  out.segments.assign(static_cast<size_t>(in.batch), {});
  // Many or small images: one image per thread. Few large ones: each split into strips.
  constexpr int64_t kStripMinPixels = int64_t{1} << 17;
  if (in.batch >= T || plane < kStripMinPixels || T == 1) {
    parallel_for(in.batch, T, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n)
        label_image(image_of(in, n), in.connectivity, in.min_area, out.labels ? out.labels + n * plane : nullptr, 1,
                    out.segments[static_cast<size_t>(n)]);
    });
  } else {
    for (int64_t n = 0; n < in.batch; ++n)
      label_image(image_of(in, n), in.connectivity, in.min_area, out.labels ? out.labels + n * plane : nullptr, T,
                  out.segments[static_cast<size_t>(n)]);
  }
}

void finish_root_labels(const ComponentInput& in, int64_t n, uint32_t* labels, std::vector<Segment>& segments) {
  const Image img = image_of(in, n);
  const int64_t plane = img.h * img.w;
  // Roots are the components' first pixels: numbering them in raster order gives the CPU labels.
  auto map = raw_array<uint32_t>(plane + 1);
  map[0] = 0;
  uint32_t K = 0;
  for (int64_t i = 0; i < plane; ++i)
    if (labels[i] == static_cast<uint32_t>(i + 1)) map[i + 1] = ++K;
  finish_image(img, in.min_area, labels, map.get(), K, true, 1, segments);
}

}  // namespace pgn
