// Strips: a large image is cut into horizontal strips labelled in parallel (components_labeling.cc)
// with disjoint label ranges, merged along the strip borders and flattened into final labels in
// raster order (OpenCV's parallel scheme); the strips are then the bands of the second pass
// (components_stats.cc).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "components_internal.h"
#include "parallel.h"

namespace pgn {

namespace {

// Strip bounds: `strips` bands of rows starting on even rows (at least 8 rows each).
std::vector<int64_t> strip_rows(int64_t h, int& strips) {
  strips = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(strips, h / 8)));
  std::vector<int64_t> rows(static_cast<size_t>(strips) + 1);
  for (int k = 0; k < strips; ++k) rows[static_cast<size_t>(k)] = (h * k / strips) & ~int64_t{1};
  rows[static_cast<size_t>(strips)] = h;
  return rows;
}

}  // namespace

void label_image8(const Image& img, int64_t min_area, uint32_t* out_labels, int strips,
                  SegmentList& segments) {
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
  const int64_t row_bytes = mask_row_bytes(w), words = mask_words(w);
  auto mbuf = raw_array<uint8_t>(3 * row_bytes * strips);
  auto fg = raw_array<uint64_t>(h * words);  // the foreground, packed by the first pass

  parallel_for(strips, strips, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      block_strip(img, g, rows[k], rows[k + 1], B.get(), zero_row.data(), P.get(), static_cast<uint32_t>(base[k]),
                  ends.data() + rows[k], mbuf.get() + 3 * row_bytes * k, fg.get());
  });

  // Strip borders: the first block row of each strip against the last one of the strip above.
  for (int k = 1; k < strips; ++k) {
    const int64_t y = rows[static_cast<size_t>(k)];
    const uint64_t* m0 = fg.get() + (y - 1) * words;
    const uint64_t* m1 = fg.get() + y * words;
    uint32_t* Bc = B.get() + (y / 2) * g.stride + 1;
    const uint32_t* Bp = Bc - g.stride;
    for (int64_t bx = 0; bx < g.bw; ++bx) {
      const int64_t x = 2 * bx;
      const bool a = bit_at(m1, x, w), b = bit_at(m1, x + 1, w);
      if (!(a | b)) continue;
      if (a && bit_at(m0, x - 1, w)) merge(P.get(), Bc[bx], Bp[bx - 1]);
      if (bit_at(m0, x, w) | bit_at(m0, x + 1, w)) merge(P.get(), Bc[bx], Bp[bx]);
      if (b && bit_at(m0, x + 2, w)) merge(P.get(), Bc[bx], Bp[bx + 1]);
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
  finish_image(img, BlockLabels{B.get(), g.stride, fg.get(), words}, min_area, out_labels, P.get(), K, bands, segments);
}

void label_image4(const Image& img, int64_t min_area, uint32_t* out_labels, int strips, SegmentList& segments) {
  const int64_t h = img.h, w = img.w;
  Buffer<uint32_t> scratch;
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
  auto mbuf = raw_array<uint8_t>(2 * mask_row_bytes(w) * strips);
  parallel_for(strips, strips, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      next[k] = sauf4_strip(img, rows[k], rows[k + 1], L, P.get(), base[k], mbuf.get() + 2 * mask_row_bytes(w) * k);
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
  finish_image(img, PixelLabels{L, w}, min_area, out_labels, P.get(), K, bands, segments);
}

}  // namespace pgn
