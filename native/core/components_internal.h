// Internals of the CPU connected components (components.h), shared by their files:
// - components_labeling.cc  first pass: provisional labels of one strip of rows (SAUF, 2 × 2 blocks);
// - components_merge.cc     strips labelled in parallel, joined along their borders, flattened;
// - components_stats.cc     second pass: final labels, and the statistics policies fed run by run;
// - components.cc           the entry points (components.h).
// Here: what more than one of them reads — the image, the union-find over provisional labels, the
// thresholded mask rows, the label sources of the second pass, and the functions they call across.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "components.h"
#include "huge_pages.h"

#if defined(__GNUC__) || defined(__clang__)
#define PGN_INLINE inline __attribute__((always_inline))
#define PGN_RESTRICT __restrict__
#else
#define PGN_INLINE inline
#define PGN_RESTRICT
#endif

namespace pgn {

// One image of the batch.
struct Image {
  const float* scores;
  const uint8_t* roi;
  const int32_t* prediction;
  int64_t h, w;
  float t;
};

// Uninitialized storage (the passes write every element they later read); large arrays in huge pages.
template <typename T>
Buffer<T> raw_array(int64_t count) {
  return new_buffer<T>(static_cast<size_t>(std::max<int64_t>(count, 1)));
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

// Mask rows are mask_row_bytes(w) bytes: m[1 + x] = foreground of pixel x, m[0] (x = −1) and the
// bytes after pixel w − 1 stay 0, so the neighbourhood reads need no border tests and a row packs
// into whole 64-bit words (pack_bits).
constexpr int64_t kMaskPad = 4;
PGN_INLINE int64_t mask_words(int64_t w) { return (w + 63) / 64; }
PGN_INLINE int64_t mask_row_bytes(int64_t w) { return 64 * mask_words(w) + kMaskPad; }

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

PGN_INLINE void clear_row(uint8_t* m, int64_t w) { std::memset(m, 0, static_cast<size_t>(mask_row_bytes(w))); }

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

// Bit x of a packed row of width w; 0 outside [0, w).
PGN_INLINE bool bit_at(const uint64_t* row, int64_t x, int64_t w) {
  return x >= 0 && x < w && ((row[x >> 6] >> (x & 63)) & 1);
}

// ---- first pass (components_labeling.cc) ---------------------------------------------------------

// Labels rows [r0, r1) as if the image started at r0, opening labels from `next` into the pixel
// label image L; returns the next unused label. mbuf holds 2 mask rows.
uint32_t sauf4_strip(const Image& img, int64_t r0, int64_t r1, uint32_t* L, uint32_t* P, uint32_t next,
                     uint8_t* mbuf);

// Block label rows have a stride of bw + 3: one 0 before and two after the bw blocks.
struct BlockGrid {
  int64_t bw, rows, stride;
  uint32_t cap;  // labels per range of one block row
};

inline BlockGrid block_grid(int64_t h, int64_t w) {
  const int64_t bw = (w + 1) / 2;
  return BlockGrid{bw, (h + 1) / 2, bw + 3, static_cast<uint32_t>(bw)};
}

// Labels the block rows of image rows [r0, r1) (r0 even) as if the image started at r0. Block row j
// of the strip opens labels in [base + 2j·cap, ...): ends[2j] and ends[2j + 1] receive the ends of
// its upper and lower ranges. mbuf holds 3 mask rows; zero_row is a block row of zeros. The
// foreground of each row y, thresholded once here, goes packed to fg + y · mask_words(w): the later
// passes read it there, never the scores again (the scores are not a private copy: JavaScript may
// change them during the call, and the passes must agree on which pixels are foreground).
void block_strip(const Image& img, const BlockGrid& g, int64_t r0, int64_t r1, uint32_t* B, const uint32_t* zero_row,
                 uint32_t* P, uint32_t base, uint32_t* ends, uint8_t* mbuf, uint64_t* fg);

// ---- second pass (components_stats.cc) -----------------------------------------------------------

// A band of rows of the second pass, and the ids from earlier bands it meets.
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

// Where the second pass finds the foreground and each run's provisional label.
// PixelLabels: a label per pixel (SAUF, and the grid labeling's root labels), rewritten in place;
// the foreground is where the labels are not 0.
struct PixelLabels {
  uint32_t* L;
  int64_t w;
  static constexpr bool kInPlace = true;
  static constexpr bool kPacked = false;
  PGN_INLINE void foreground(int64_t y, uint8_t* nz) const {
    const uint32_t* PGN_RESTRICT row = L + y * w;
    for (int64_t x = 0; x < w; ++x) nz[x] = static_cast<uint8_t>(row[x] != 0);
  }
  PGN_INLINE uint32_t label(int64_t y, int64_t x) const { return L[y * w + x]; }
  void copy_to(uint32_t* dst, int64_t n) const { std::memcpy(dst, L, static_cast<size_t>(n) * sizeof(uint32_t)); }
};

// BlockLabels: a label per 2 × 2 block; the foreground is the first pass's packed rows.
struct BlockLabels {
  const uint32_t* B;
  int64_t stride;
  const uint64_t* fg;
  int64_t words;
  static constexpr bool kInPlace = false;
  static constexpr bool kPacked = true;
  PGN_INLINE const uint64_t* packed_row(int64_t y) const { return fg + y * words; }
  PGN_INLINE uint32_t label(int64_t y, int64_t x) const { return B[(y >> 1) * stride + 1 + (x >> 1)]; }
  void copy_to(uint32_t*, int64_t) const {}  // every row is written whole
};

// Second pass and filtering for one image: src gives provisional labels, map turns them into 1..K
// in raster order of the components' first pixels; L (or nullptr) receives the final labels. bands
// split the rows (y0, y1 and lo set).
template <class Src>
void finish_image(const Image& img, const Src& src, int64_t min_area, uint32_t* L, const uint32_t* map, uint32_t K,
                  std::vector<Band>& bands, SegmentList& segments);

// ---- strips (components_merge.cc) ----------------------------------------------------------------

// One image, 8-connectivity: block labeling in strips, merged along the strip borders.
void label_image8(const Image& img, int64_t min_area, uint32_t* out_labels, int strips,
                  SegmentList& segments);

// One image, 4-connectivity: SAUF on the pixel label image, in strips.
void label_image4(const Image& img, int64_t min_area, uint32_t* out_labels, int strips, SegmentList& segments);

}  // namespace pgn
