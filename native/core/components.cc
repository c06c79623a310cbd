#include "components.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "parallel.h"

namespace pgn {

namespace {

#if defined(__GNUC__) || defined(__clang__)
#define PGN_INLINE inline __attribute__((always_inline))
#define PGN_RESTRICT __restrict__
#else
#define PGN_INLINE inline
#define PGN_RESTRICT
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

// Flattening: every root (the smallest label of its set) gets the next final label, in label order;
// the others take their root's. Called on the used label ranges in increasing order.
PGN_INLINE void flatten_range(uint32_t* P, uint32_t first, uint32_t end, uint32_t& K) {
  for (uint32_t l = first; l < end; ++l) P[l] = P[l] < l ? P[P[l]] : ++K;
}

// Mask rows are w + 4 bytes: m[1 + x] = foreground of pixel x, m[0] (x = −1) and m[w + 1 .. w + 3]
// stay 0, so the neighbourhood reads need no border tests.
constexpr int64_t kMaskPad = 4;

PGN_INLINE void threshold_row(const Image& img, int64_t y, uint8_t* m) {
  const int64_t w = img.w;  // a local: a store through uint8_t* could otherwise alias img.w
  const float* PGN_RESTRICT s = img.scores + y * w;
  const float t = img.t;
  uint8_t* PGN_RESTRICT out = m + 1;
  if (img.roi) {
    const uint8_t* PGN_RESTRICT roi = img.roi + y * w;
    for (int64_t x = 0; x < w; ++x) out[x] = static_cast<uint8_t>((s[x] > t) & (roi[x] != 0));
  } else {
    for (int64_t x = 0; x < w; ++x) out[x] = static_cast<uint8_t>(s[x] > t);
  }
}

PGN_INLINE void clear_row(uint8_t* m, int64_t w) { std::memset(m, 0, static_cast<size_t>(w + kMaskPad)); }

// ---- first pass, 4-connectivity: SAUF (Wu, Otoo & Suzuki) ---------------------------------------

// Labels rows [r0, r1) as if the image started at r0, opening labels from `next` into the pixel
// label image L; returns the next unused label. mbuf holds 2 mask rows.
uint32_t sauf4_strip(const Image& img, int64_t r0, int64_t r1, uint32_t* L, uint32_t* P, uint32_t next,
                     uint8_t* mbuf) {
  const int64_t w = img.w;
  uint8_t* prev = mbuf;
  uint8_t* cur = mbuf + (w + kMaskPad);
  clear_row(prev, w);  // no row above the strip's first row
  clear_row(cur, w);
  for (int64_t y = r0; y < r1; ++y) {
    threshold_row(img, y, cur);
    const uint8_t* mc = cur + 1;
    const uint8_t* mp = prev + 1;
    uint32_t* Lc = L + y * w;
    const uint32_t* Lp = y > r0 ? Lc - w : Lc;  // never read on the strip's first row: mp is all 0
    uint32_t left = 0;                          // label of (x − 1, y), 0 = background
    for (int64_t x = 0; x < w; ++x) {
      uint32_t lab = 0;
      if (mc[x]) {
        if (mp[x]) {
          lab = left ? merge(P, Lp[x], left) : Lp[x];
        } else if (left) {
          lab = left;
        } else {
          lab = next++;
          P[lab] = lab;
        }
      }
      Lc[x] = lab;
      left = lab;
    }
    std::swap(prev, cur);
  }
  return next;
}

// ---- first pass, 8-connectivity: 2 × 2 blocks (Grana, Borghesani & Cucchiara's BBDT scheme) ---
//
// All foreground pixels of a 2 × 2 block X are 8-connected, so one provisional label per block
// suffices, and X is connected to its already-labelled neighbour blocks P (up-left), Q (up),
// R (up-right) and S (left) through 10 pixels:
//
//        pd | qc qd | rc          row 2r − 1     bit 0..3
//        sb | a  b  |             row 2r         bit 4..6  (sb a b)
//        sd | c  d  |             row 2r + 1     bit 7..9  (sd c d)
//
// X–P: a & pd;  X–Q: (a | b) & (qc | qd);  X–R: b & rc;  X–S: (a | c) & (sb | sd).
// Some neighbour pairs are known to be joined already from the same pixels (S–Q: sb & qc, S–P:
// sb & pd, P–Q: pd & qc, Q–R: qd & rc): those need no union. Instead of BBDT's decision tree over
// the 16 pixels of the 4 × 4 window, the action for each of the 1024 patterns of these 10 pixels is
// computed once into a table: the neighbour label to copy and the ones to merge.
//
// Raster order. Final labels must follow the raster order of the components' first pixels, and
// flattening numbers roots in label order; but a block can hold pixels of both of its rows, so
// blocks are not in pixel raster order. Hence two label ranges per block row: blocks whose first
// pixel is on the upper row open labels in [base, base + cap), the others in [base + cap, base +
// 2·cap). And a block with an upper-row pixel that is joined only to S, whose label is from the
// lower range, opens an upper label too (and merges): its upper pixel may be the first of the
// component, since such an S holds pixels of the lower row only. Roots are then the labels of the
// components' first pixels.

enum BlockWho : uint8_t { kP = 0, kQ = 1, kR = 2, kS = 3 };

struct BlockAction {
  int8_t n;          // −1: X is background; 0: new label; 1..3: labels to join, who[0] first
  bool upper;        // X has a pixel on its upper row
  bool upper_from_s; // n == 1, who[0] == S, upper: open an upper label if S's is a lower one
  uint8_t who[3];
};

std::array<BlockAction, 1024> make_block_actions() {
  std::array<BlockAction, 1024> table{};
  for (int idx = 0; idx < 1024; ++idx) {
    auto bit = [idx](int k) { return (idx >> k) & 1; };
    const int pd = bit(0), qc = bit(1), qd = bit(2), rc = bit(3), sb = bit(4), a = bit(5), b = bit(6), sd = bit(7),
              c = bit(8), d = bit(9);
    BlockAction& act = table[static_cast<size_t>(idx)];
    act.upper = (a | b) != 0;
    if (!(a | b | c | d)) {
      act.n = -1;
      continue;
    }
    const bool joined[4] = {(a & pd) != 0, ((a | b) & (qc | qd)) != 0, (b & rc) != 0, ((a | c) & (sb | sd)) != 0};
    int group[4] = {0, 1, 2, 3};
    auto unite = [&group](int u, int v) {
      const int gu = group[u], gv = group[v];
      for (int& g : group)
        if (g == gv) g = gu;
    };
    if (sb & qc) unite(kS, kQ);
    if (sb & pd) unite(kS, kP);
    if (pd & qc) unite(kP, kQ);
    if (qd & rc) unite(kQ, kR);
    act.n = 0;
    bool taken[4] = {false, false, false, false};
    for (int who : {kQ, kS, kP, kR}) {  // Q first: it touches most of the others
      if (!joined[who] || taken[group[who]]) continue;
      taken[group[who]] = true;
      act.who[act.n++] = static_cast<uint8_t>(who);
    }
    act.upper_from_s = act.n == 1 && act.who[0] == kS && act.upper;
  }
  return table;
}

const std::array<BlockAction, 1024>& block_actions() {
  static const std::array<BlockAction, 1024> table = make_block_actions();
  return table;
}

// Block label rows have a stride of bw + 3: one 0 before and two after the bw blocks.
struct BlockGrid {
  int64_t bw, rows, stride;
  uint32_t cap;  // labels per range of one block row
};

BlockGrid block_grid(int64_t h, int64_t w) {
  const int64_t bw = (w + 1) / 2;
  return BlockGrid{bw, (h + 1) / 2, bw + 3, static_cast<uint32_t>(bw)};
}

// Labels the block rows of image rows [r0, r1) (r0 even) as if the image started at r0. Block row j
// of the strip opens labels in [base + 2j·cap, ...): ends[2j] and ends[2j + 1] receive the ends of
// its upper and lower ranges. mbuf holds 3 mask rows; zero_row is a block row of zeros.
void block_strip(const Image& img, const BlockGrid& g, int64_t r0, int64_t r1, uint32_t* B, const uint32_t* zero_row,
                 uint32_t* P, uint32_t base, uint32_t* ends, uint8_t* mbuf) {
  const int64_t w = img.w;
  const std::array<BlockAction, 1024>& actions = block_actions();
  uint8_t* m0 = mbuf;                     // row 2r − 1
  uint8_t* m1 = mbuf + (w + kMaskPad);    // row 2r
  uint8_t* m2 = mbuf + 2 * (w + kMaskPad);  // row 2r + 1
  clear_row(m0, w);
  clear_row(m1, w);
  clear_row(m2, w);
  for (int64_t y = r0, j = 0; y < r1; y += 2, ++j) {
    threshold_row(img, y, m1);
    if (y + 1 < r1) threshold_row(img, y + 1, m2);
    else clear_row(m2, w);
    uint32_t* Bc = B + (y / 2) * g.stride + 1;
    Bc[-1] = Bc[g.bw] = Bc[g.bw + 1] = 0;
    const uint32_t* Bp = (y > r0 ? Bc - g.stride : zero_row + 1);  // read only where m0 has pixels
    uint32_t upper_next = base + static_cast<uint32_t>(2 * j) * g.cap;
    const uint32_t lower_base = upper_next + g.cap;
    uint32_t lower_next = lower_base;
    uint32_t left = 0;  // label of S
    for (int64_t bx = 0; bx < g.bw; ++bx) {
      const int64_t x = 2 * bx;  // m[x] is pixel x − 1
      const int idx = m0[x] | m0[x + 1] << 1 | m0[x + 2] << 2 | m0[x + 3] << 3 | m1[x] << 4 | m1[x + 1] << 5 |
                      m1[x + 2] << 6 | m2[x] << 7 | m2[x + 1] << 8 | m2[x + 2] << 9;
      const BlockAction& act = actions[static_cast<size_t>(idx)];
      const uint32_t nb[4] = {Bp[bx - 1], Bp[bx], Bp[bx + 1], left};
      uint32_t lab;
      switch (act.n) {
        case -1:
          lab = 0;
          break;
        case 0:
          lab = act.upper ? upper_next++ : lower_next++;
          P[lab] = lab;
          break;
        case 1:
          lab = nb[act.who[0]];
          if (act.upper_from_s && lab >= lower_base) {
            const uint32_t fresh = upper_next++;
            P[fresh] = fresh;
            lab = merge(P, fresh, lab);
          }
          break;
        case 2:
          lab = merge(P, nb[act.who[0]], nb[act.who[1]]);
          break;
        default:
          lab = merge(P, merge(P, nb[act.who[0]], nb[act.who[1]]), nb[act.who[2]]);
          break;
      }
      Bc[bx] = lab;
      left = lab;
    }
    ends[2 * j] = upper_next;
    ends[2 * j + 1] = lower_next;
    std::swap(m0, m2);  // the lower row becomes the row above the next block row
  }
}

// ---- second pass: final labels and statistics ----------------------------------------------------
//
// The rows are processed in bands (the strips of the first pass, in parallel). Final ids follow the
// raster order of first pixels, so the components that start in band k have the ids [lo_k,
// lo_{k+1}): band k owns their records and writes them in place. A component from an earlier band
// that reaches into band k crosses band k's first row; those few ("foreign") are collected from that
// row and accumulated in a side table merged afterwards. No band ever copies the K records.

// Pixels of a run handled under a mask before any loop (see GeometryScoreStats::run).
constexpr int64_t kHead = 4;

struct Band {
  int64_t y0, y1;
  uint32_t lo;                   // ids >= lo start in this band
  std::vector<uint32_t> foreign; // sorted ids < lo that occur in this band

  // Slot of id f: its own record f − 1, or −1 − (index in foreign).
  PGN_INLINE int64_t slot(uint32_t f) const {
    if (f >= lo) return static_cast<int64_t>(f) - 1;
    return -1 - (std::lower_bound(foreign.begin(), foreign.end(), f) - foreign.begin());
  }
};

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

// Packs 0/1 bytes nz[0 .. 64·words) into bits, 64 per word (bit i of word k = nz[64k + i]).
PGN_INLINE void pack_bits(const uint8_t* nz, int64_t words, uint64_t* bits) {
  for (int64_t k = 0; k < words; ++k) {
    uint64_t word = 0;
    for (int j = 0; j < 8; ++j) {
      uint64_t v;  // eight 0/1 bytes: the multiply gathers byte i's low bit into bit 56 + i (little-endian)
      std::memcpy(&v, nz + 64 * k + 8 * j, 8);
      word |= ((v * 0x0102040810204080ull) >> 56) << (8 * j);
    }
    bits[k] = word;
  }
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

// Where the second pass finds the foreground and each run's provisional label.
// PixelLabels: a label per pixel (SAUF, and the grid labeling's root labels), rewritten in place.
struct PixelLabels {
  uint32_t* L;
  int64_t w;
  static constexpr bool kInPlace = true;
  PGN_INLINE void foreground(const Image&, int64_t y, uint8_t* nz) const {
    const uint32_t* PGN_RESTRICT row = L + y * w;
    for (int64_t x = 0; x < w; ++x) nz[x] = static_cast<uint8_t>(row[x] != 0);
  }
  PGN_INLINE uint32_t label(int64_t y, int64_t x) const { return L[y * w + x]; }
  void copy_to(uint32_t* dst, int64_t n) const { std::memcpy(dst, L, static_cast<size_t>(n) * sizeof(uint32_t)); }
};

// BlockLabels: a label per 2 × 2 block; the foreground is thresholded again.
struct BlockLabels {
  const uint32_t* B;
  int64_t stride;
  static constexpr bool kInPlace = false;
  PGN_INLINE void foreground(const Image& img, int64_t y, uint8_t* nz) const { threshold_row(img, y, nz - 1); }
  PGN_INLINE uint32_t label(int64_t y, int64_t x) const { return B[(y >> 1) * stride + 1 + (x >> 1)]; }
  void copy_to(uint32_t*, int64_t) const {}  // every row is written whole
};

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

// Per-row scratch of the second pass: the foreground bytes and bits of one row.
struct RowBits {
  int64_t w, words;
  std::vector<uint8_t> nzbuf;
  std::vector<uint64_t> bits;
  explicit RowBits(int64_t w_)
      : w(w_), words((w_ + 63) / 64), nzbuf(static_cast<size_t>(64 * words + kMaskPad), 0), bits(static_cast<size_t>(words)) {}
  template <class Src>
  void load(const Image& img, const Src& src, int64_t y) {
    src.foreground(img, y, nzbuf.data() + 1);  // nz[−1] is padding: threshold_row writes from m + 1
    pack_bits(nzbuf.data() + 1, words, bits.data());
  }
  int64_t next(int64_t from, bool want) const { return next_bit(bits.data(), from, w, want); }
};

// The ids below band.lo met on the band's first row.
template <class Src>
void collect_foreign(const Image& img, const Src& src, const uint32_t* map, Band& band) {
  band.foreign.clear();
  if (band.y0 >= band.y1 || band.lo <= 1) return;
  RowBits rb(img.w);
  rb.load(img, src, band.y0);
  for (int64_t x = rb.next(0, true); x < img.w; x = rb.next(rb.next(x, false), true)) {
    const uint32_t f = map[src.label(band.y0, x)];
    if (f < band.lo) band.foreign.push_back(f);
  }
  std::sort(band.foreign.begin(), band.foreign.end());
  band.foreign.erase(std::unique(band.foreign.begin(), band.foreign.end()), band.foreign.end());
}

// Rows of one band: the final label map[provisional] of every run, written to L (if given) and
// handed to the policy. Runs are found a 64-pixel word at a time on a bitmap of the row.
template <class Src, class Op>
void relabel_band(const Image& img, const Src& src, uint32_t* L, bool clear, const uint32_t* map, const Band& band,
                  Op& op) {
  const int64_t w = img.w;
  RowBits rb(w);
  for (int64_t y = band.y0; y < band.y1; ++y) {
    const float* s = img.scores + y * w;
    const int32_t* pred = img.prediction ? img.prediction + y * w : nullptr;
    rb.load(img, src, y);
    uint32_t* row = L ? L + y * w : nullptr;
    int64_t x = rb.next(0, true);
    if (row && clear) fill_span(row, 0, x, w, 0u);
    while (x < w) {
      const int64_t end = rb.next(x, false);
      const uint32_t f = map[src.label(y, x)];
      const int64_t next = rb.next(end, true);
      if (row) {
        if (Src::kInPlace) {
          fill_run(row, x, end, w, f);
        } else {
          fill_span(row, x, end, w, f);
          // The background up to the next run; on a zeroed row only what the run spilled over.
          fill_span(row, end, clear ? next : std::min(next, end + 8), w, 0u);
        }
      }
      op.run(f, y, x, end, w, s, pred);
      x = next;
    }
  }
}

// All bands (in parallel when more than one), then the side tables into the global records.
template <class Src, class MakeOp>
void relabel(const Image& img, const Src& src, uint32_t* L, bool clear, const uint32_t* map, std::vector<Band>& bands,
             const MakeOp& make_op) {
  const int64_t n = static_cast<int64_t>(bands.size());
  using Op = decltype(make_op(bands[0]));
  std::vector<Op> ops;
  ops.reserve(bands.size());
  if (n == 1) {
    ops.push_back(make_op(bands[0]));
    relabel_band(img, src, L, clear, map, bands[0], ops[0]);
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
      relabel_band(img, src, L, clear, map, bands[static_cast<size_t>(k)], ops[static_cast<size_t>(k)]);
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

// Second pass and filtering for one image: src gives provisional labels, map turns them into 1..K
// in raster order of the components' first pixels; L (or nullptr) receives the final labels. bands
// split the rows (y0, y1 and lo set).
template <class Src>
void finish_image(const Image& img, const Src& src, int64_t min_area, uint32_t* L, bool L_zeroed, const uint32_t* map,
                  uint32_t K, std::vector<Band>& bands, std::vector<Segment>& segments) {
  // Sources that do not rewrite their labels in place write whole rows: the background must be
  // cleared first, unless the caller's image is known to be zero already.
  const bool clear = !Src::kInPlace && !L_zeroed;
  segments.assign(K, Segment{});
  if (K == 0) {
    if (L && clear) std::memset(L, 0, static_cast<size_t>(img.h * img.w) * sizeof(uint32_t));
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
    relabel(img, src, L, clear, map, bands, [&](const Band& b) {
      return BothStats<GeometryScoreStats, ClassHistogram>{GeometryScoreStats(records, b),
                                                           ClassHistogram(hist.data(), c_min, classes, b)};
    });
    for (uint32_t f = 1; f <= K; ++f)
      segments[f - 1].majority_class = majority_of(hist.data() + static_cast<int64_t>(f - 1) * classes, c_min, classes);
  } else if (img.prediction) {
    // The sorting fallback reads final labels: into a scratch image when none was asked for.
    std::unique_ptr<uint32_t[]> scratch;
    uint32_t* final_labels = L;
    if (!final_labels) {
      scratch = raw_array<uint32_t>(img.h * img.w);
      final_labels = scratch.get();
      src.copy_to(final_labels, img.h * img.w);  // in-place sources start from their provisional labels
    }
    relabel(img, src, final_labels, clear || (!Src::kInPlace && final_labels != L), map, bands,
            [&](const Band& b) { return GeometryScoreStats(records, b); });
    const std::vector<int32_t> majority = majority_by_sort(img, final_labels, K);
    for (uint32_t f = 1; f <= K; ++f) segments[f - 1].majority_class = majority[f - 1];
  } else {
    relabel(img, src, L, clear, map, bands, [&](const Band& b) { return GeometryScoreStats(records, b); });
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

// Strip bounds: `strips` bands of rows starting on even rows (at least 8 rows each).
std::vector<int64_t> strip_rows(int64_t h, int& strips) {
  strips = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(strips, h / 8)));
  std::vector<int64_t> rows(static_cast<size_t>(strips) + 1);
  for (int k = 0; k < strips; ++k) rows[static_cast<size_t>(k)] = (h * k / strips) & ~int64_t{1};
  rows[static_cast<size_t>(strips)] = h;
  return rows;
}

// One image, 8-connectivity: block labeling in strips, merged along the strip borders.
void label_image8(const Image& img, int64_t min_area, uint32_t* out_labels, bool zeroed, int strips,
                  std::vector<Segment>& segments) {
  const int64_t h = img.h, w = img.w;
  const BlockGrid g = block_grid(h, w);
  const std::vector<int64_t> rows = strip_rows(h, strips);
  // Label ranges: 2·cap per block row, strip after strip.
  std::vector<uint64_t> base(static_cast<size_t>(strips) + 1);
  base[0] = 1;
  for (int k = 0; k < strips; ++k)
    base[k + 1] = base[k] + static_cast<uint64_t>((rows[k + 1] - rows[k] + 1) / 2) * 2 * g.cap;
  if (base[static_cast<size_t>(strips)] > std::numeric_limits<uint32_t>::max())
    throw std::invalid_argument("components: too many pixels for 32-bit labels");
  auto P = raw_array<uint32_t>(static_cast<int64_t>(base[static_cast<size_t>(strips)]));
  P[0] = 0;
  auto B = raw_array<uint32_t>(g.rows * g.stride);
  const std::vector<uint32_t> zero_row(static_cast<size_t>(g.stride), 0u);
  std::vector<uint32_t> ends(static_cast<size_t>(2 * g.rows));  // strip k's block rows from rows[k] / 2
  auto mbuf = raw_array<uint8_t>(3 * (w + kMaskPad) * strips);

  parallel_for(strips, strips, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      block_strip(img, g, rows[k], rows[k + 1], B.get(), zero_row.data(), P.get(), static_cast<uint32_t>(base[k]),
                  ends.data() + rows[k], mbuf.get() + 3 * (w + kMaskPad) * k);
  });

  // Strip borders: the first block row of each strip against the last one of the strip above.
  if (strips > 1) {
    std::vector<uint8_t> up(static_cast<size_t>(w + kMaskPad)), cur(static_cast<size_t>(w + kMaskPad));
    clear_row(up.data(), w);
    clear_row(cur.data(), w);
    for (int k = 1; k < strips; ++k) {
      const int64_t y = rows[static_cast<size_t>(k)];
      threshold_row(img, y - 1, up.data());
      threshold_row(img, y, cur.data());
      const uint8_t* m0 = up.data() + 1;
      const uint8_t* m1 = cur.data() + 1;
      uint32_t* Bc = B.get() + (y / 2) * g.stride + 1;
      const uint32_t* Bp = Bc - g.stride;
      for (int64_t bx = 0; bx < g.bw; ++bx) {
        const int64_t x = 2 * bx;
        const bool a = m1[x], b = m1[x + 1];
        if (!(a | b)) continue;
        if (a && m0[x - 1]) merge(P.get(), Bc[bx], Bp[bx - 1]);
        if (m0[x] | m0[x + 1]) merge(P.get(), Bc[bx], Bp[bx]);
        if (b && m0[x + 2]) merge(P.get(), Bc[bx], Bp[bx + 1]);
      }
    }
  }

  uint32_t K = 0;
  std::vector<Band> bands(static_cast<size_t>(strips));
  for (int k = 0; k < strips; ++k) {
    bands[k] = Band{rows[k], rows[k + 1], K + 1, {}};
    const uint32_t* e = ends.data() + rows[k];  // 2 · (rows[k] / 2), rows[k] even
    for (int64_t j = 0; j < (rows[k + 1] - rows[k] + 1) / 2; ++j) {
      const uint32_t first = static_cast<uint32_t>(base[k]) + static_cast<uint32_t>(2 * j) * g.cap;
      flatten_range(P.get(), first, e[2 * j], K);
      flatten_range(P.get(), first + g.cap, e[2 * j + 1], K);
    }
  }
  finish_image(img, BlockLabels{B.get(), g.stride}, min_area, out_labels, zeroed, P.get(), K, bands, segments);
}

// One image, 4-connectivity: SAUF on the pixel label image, in strips.
void label_image4(const Image& img, int64_t min_area, uint32_t* out_labels, int strips, std::vector<Segment>& segments) {
  const int64_t h = img.h, w = img.w;
  std::unique_ptr<uint32_t[]> scratch;
  uint32_t* L = out_labels;
  if (!L) {
    scratch = raw_array<uint32_t>(h * w);
    L = scratch.get();
  }
  const std::vector<int64_t> rows = strip_rows(h, strips);
  // A pixel opens a label only when its left and upper neighbours are background: at most half of them.
  std::vector<uint32_t> base(static_cast<size_t>(strips) + 1), next(static_cast<size_t>(strips));
  base[0] = 1;
  for (int k = 0; k < strips; ++k) base[k + 1] = base[k] + static_cast<uint32_t>(((rows[k + 1] - rows[k]) * w + 1) / 2);
  auto P = raw_array<uint32_t>(base[static_cast<size_t>(strips)]);
  P[0] = 0;
  auto mbuf = raw_array<uint8_t>(2 * (w + kMaskPad) * strips);
  parallel_for(strips, strips, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      next[k] = sauf4_strip(img, rows[k], rows[k + 1], L, P.get(), base[k], mbuf.get() + 2 * (w + kMaskPad) * k);
  });
  for (int k = 1; k < strips; ++k) {
    const int64_t y = rows[static_cast<size_t>(k)];
    const uint32_t* up = L + (y - 1) * w;
    const uint32_t* row = L + y * w;
    for (int64_t x = 0; x < w; ++x)
      if (row[x] && up[x]) merge(P.get(), row[x], up[x]);
  }
  uint32_t K = 0;
  std::vector<Band> bands(static_cast<size_t>(strips));
  for (int k = 0; k < strips; ++k) {
    bands[k] = Band{rows[k], rows[k + 1], K + 1, {}};
    flatten_range(P.get(), base[k], next[k], K);
  }
  finish_image(img, PixelLabels{L, w}, min_area, out_labels, false, P.get(), K, bands, segments);
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
  auto one = [&](int64_t n, int strips) {
    uint32_t* labels = out.labels ? out.labels + n * plane : nullptr;
    std::vector<Segment>& segments = out.segments[static_cast<size_t>(n)];
    if (in.connectivity == 8) label_image8(image_of(in, n), in.min_area, labels, out.labels_zeroed, strips, segments);
    else label_image4(image_of(in, n), in.min_area, labels, strips, segments);
  };
  // Many or small images: one image per thread. Few large ones: each split into strips.
  constexpr int64_t kStripMinPixels = int64_t{1} << 17;
  if (in.batch >= T || plane < kStripMinPixels || T == 1) {
    parallel_for(in.batch, T, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) one(n, 1);
    });
  } else {
    for (int64_t n = 0; n < in.batch; ++n) one(n, T);
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
  std::vector<Band> bands{Band{0, img.h, 1, {}}};
  finish_image(img, PixelLabels{labels, img.w}, in.min_area, labels, false, map.get(), K, bands, segments);
}

}  // namespace pgn
