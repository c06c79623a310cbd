// Connected-component labeling on a grid of thread blocks: "union-find with atomics" (Playne &
// Hawick 2018; Allegretti, Bolelli & Grana 2019), written once as PGN_HD steps that the CUDA kernels
// (native/cuda/components.cu) and a sequential CPU emulation (components_grid.cc) both call with
// explicit (block, thread) coordinates.
//
// One thread per pixel, blocks of block_w × block_h pixels (a tile of the image):
//   1. local_init     each thread: its tile-local label (local index + 1) if foreground, else 0;
//   -- barrier --
//   2. local_merge    each foreground thread unions itself with its foreground neighbours inside the
//                     tile (left, up, and for 8-connectivity up-left and up-right), in shared memory;
//   -- barrier --
//   3. local_write    each thread writes 1 + the global raster index of its tile-local root, or 0;
//   -- grid-wide barrier (kernel boundary) --
//   4. border_merge   threads on a tile border union with their neighbours in other tiles, in the
//                     global label array;
//   -- kernel boundary --
//   5. compress       each foreground pixel's label becomes its root.
// Afterwards every foreground pixel holds 1 + the raster index of its component's first pixel.
//
// Invariant of both label arrays: a label l (> 0) points to element l − 1, and L[i] <= i + 1 (parents
// come earlier in raster order; a root has L[i] == i + 1). Local indices are row-major inside a tile,
// so the order inside a tile is the global raster order and local roots are global minima of their
// tile's part of a component. Union keeps the smaller root: an atomic min on the larger root's slot,
// retried when another thread re-parented that root first (the old value returned is then not the
// root itself). Background slots are 0 and never change, so `L[n] != 0` tests a neighbour's
// foreground safely while other threads merge.
//
// The Atomics parameter provides `load(p)` and `min(p, v)` (returns the old value): atomicMin and
// volatile loads on the device, plain memory in the emulation.
#pragma once

#include <cstdint>

#include "pixel_math.h"  // PGN_HD

namespace pgn {

struct GridShape {
  int32_t height, width;      // image
  int32_t block_w, block_h;   // threads (pixels) per block along x and y
  int32_t blocks_x, blocks_y; // grid size: ceil(width / block_w) × ceil(height / block_h)
  int32_t connectivity;       // 4 or 8
};

struct PixelSource {
  const float* scores;   // one image
  const uint8_t* roi;    // one image or nullptr
  float threshold;
};

PGN_HD bool grid_foreground(const PixelSource& src, int64_t i) {
  return src.scores[i] > src.threshold && (src.roi == nullptr || src.roi[i] != 0);
}

template <class Atomics>
PGN_HD uint32_t uf_find(Atomics& at, uint32_t* L, uint32_t l) {
  uint32_t parent = at.load(&L[l - 1]);
  while (parent != l) {
    l = parent;
    parent = at.load(&L[l - 1]);
  }
  return l;
}

template <class Atomics>
PGN_HD void uf_union(Atomics& at, uint32_t* L, uint32_t a, uint32_t b) {
  for (;;) {
    a = uf_find(at, L, a);
    b = uf_find(at, L, b);
    if (a == b) return;
    if (a < b) {
      const uint32_t old = at.min(&L[b - 1], a);
      if (old == b) return;  // b was still a root: now it points to a
      b = old;               // b was re-parented meanwhile: retry from its new parent
    } else {
      const uint32_t old = at.min(&L[a - 1], b);
      if (old == a) return;
      a = old;
    }
  }
}

// Step 1. `shared` holds block_w × block_h labels.
template <class Atomics>
PGN_HD void local_init(Atomics& at, const GridShape& g, int32_t bx, int32_t by, int32_t tx, int32_t ty,
                       const PixelSource& src, uint32_t* shared) {
  (void)at;
  const int32_t x = bx * g.block_w + tx, y = by * g.block_h + ty;
  const int32_t local = ty * g.block_w + tx;
  const bool inside = x < g.width && y < g.height;
  shared[local] = inside && grid_foreground(src, static_cast<int64_t>(y) * g.width + x) ? static_cast<uint32_t>(local + 1) : 0u;
}

// Step 2.
template <class Atomics>
PGN_HD void local_merge(Atomics& at, const GridShape& g, int32_t bx, int32_t by, int32_t tx, int32_t ty,
                        uint32_t* shared) {
  (void)bx;
  (void)by;
  const int32_t local = ty * g.block_w + tx;
  if (shared[local] == 0) return;  // background (or outside the image) stays 0: nobody writes it
  const uint32_t me = static_cast<uint32_t>(local + 1);
  const int32_t w = g.block_w;
  if (tx > 0 && at.load(&shared[local - 1]) != 0) uf_union(at, shared, me, static_cast<uint32_t>(local));
  if (ty > 0) {
    const int32_t up = local - w;
    if (at.load(&shared[up]) != 0) uf_union(at, shared, me, static_cast<uint32_t>(up + 1));
    if (g.connectivity == 8) {
      if (tx > 0 && at.load(&shared[up - 1]) != 0) uf_union(at, shared, me, static_cast<uint32_t>(up));
      if (tx + 1 < w && at.load(&shared[up + 1]) != 0) uf_union(at, shared, me, static_cast<uint32_t>(up + 2));
    }
  }
}

// Step 3. `labels` is the image's global label array [height, width].
template <class Atomics>
PGN_HD void local_write(Atomics& at, const GridShape& g, int32_t bx, int32_t by, int32_t tx, int32_t ty,
                        uint32_t* shared, uint32_t* labels) {
  const int32_t x = bx * g.block_w + tx, y = by * g.block_h + ty;
  if (x >= g.width || y >= g.height) return;
  const int32_t local = ty * g.block_w + tx;
  uint32_t out = 0;
  if (at.load(&shared[local]) != 0) {
    const int32_t root = static_cast<int32_t>(uf_find(at, shared, static_cast<uint32_t>(local + 1))) - 1;
    const int32_t rx = bx * g.block_w + root % g.block_w, ry = by * g.block_h + root / g.block_w;
    out = static_cast<uint32_t>(static_cast<int64_t>(ry) * g.width + rx + 1);
  }
  labels[static_cast<int64_t>(y) * g.width + x] = out;
}

// Step 4: unions across tile borders only (the tile's inside was merged in step 2).
template <class Atomics>
PGN_HD void border_merge(Atomics& at, const GridShape& g, int32_t bx, int32_t by, int32_t tx, int32_t ty,
                         uint32_t* labels) {
  const int32_t x = bx * g.block_w + tx, y = by * g.block_h + ty;
  if (x >= g.width || y >= g.height) return;
  const int64_t i = static_cast<int64_t>(y) * g.width + x;
  if (at.load(&labels[i]) == 0) return;
  const uint32_t me = static_cast<uint32_t>(i + 1);
  const bool left_edge = tx == 0, top_edge = ty == 0, right_edge = tx == g.block_w - 1;
  if (left_edge && x > 0 && at.load(&labels[i - 1]) != 0) uf_union(at, labels, me, static_cast<uint32_t>(i));
  if (y == 0) return;
  const int64_t up = i - g.width;
  if (top_edge && at.load(&labels[up]) != 0) uf_union(at, labels, me, static_cast<uint32_t>(up + 1));
  if (g.connectivity != 8) return;
  if ((left_edge || top_edge) && x > 0 && at.load(&labels[up - 1]) != 0)
    uf_union(at, labels, me, static_cast<uint32_t>(up));
  if ((right_edge || top_edge) && x + 1 < g.width && at.load(&labels[up + 1]) != 0)
    uf_union(at, labels, me, static_cast<uint32_t>(up + 2));
}

// Step 5.
template <class Atomics>
PGN_HD void compress(Atomics& at, const GridShape& g, int32_t bx, int32_t by, int32_t tx, int32_t ty,
                     uint32_t* labels) {
  const int32_t x = bx * g.block_w + tx, y = by * g.block_h + ty;
  if (x >= g.width || y >= g.height) return;
  const int64_t i = static_cast<int64_t>(y) * g.width + x;
  const uint32_t l = at.load(&labels[i]);
  if (l != 0) labels[i] = uf_find(at, labels, l);
}

}  // namespace pgn
