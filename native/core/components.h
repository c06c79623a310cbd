// OoD segments (DESIGN.md §1): threshold a score map, label its connected components, gather
// per-component statistics, drop the small ones.
//
// Labeling (CPU), two scans with union-find (path compression) over provisional labels, as OpenCV:
// - 8-connectivity: 2 × 2 blocks (the scheme of Grana et al.'s BBDT): one provisional label per
//   block, chosen from the already-labelled neighbour blocks by an action table over the 10 pixels
//   that connect them (instead of BBDT's generated decision tree);
// - 4-connectivity: SAUF (Wu, Otoo & Suzuki 2009), per pixel, with its decision tree over the
//   upper and left neighbours (2 × 2 blocks are not 4-connected inside).
// Then the union-find array is flattened into consecutive final labels. Large images are cut into
// horizontal strips labelled in parallel with disjoint label ranges and merged along the strip
// borders (OpenCV's parallel scheme).
//
// Statistics are a separate policy (as OpenCV's StatsOp) applied in the second pass, the one that
// writes final labels, run by run: the labeling never knows which statistics are gathered. The
// CUDA backend and its CPU emulation (components_uf.h) produce provisional labels of another form
// (the raster index of the component's first pixel, plus one) and share the same second pass.
//
// Conventions: foreground = score > threshold (NaN scores are never foreground) and, with a region
// of interest, roi != 0. Label 0 = background; components 1..K numbered in raster order of their
// first pixel, after removing those with fewer than min_area pixels. Pixel (x, y) has its centre at
// integer coordinates (x, y), as OpenCV's centroids. Majority class ties go to the smallest class id.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "huge_pages.h"

namespace pgn {

struct ComponentInput {
  const float* scores = nullptr;       // [batch, height, width]
  int64_t batch = 0, height = 0, width = 0;
  float threshold = 0.0f;              // foreground: score > threshold (see threshold_from_double)
  const uint8_t* roi = nullptr;        // nullptr, [height, width] (roi_shared) or [batch, height, width]
  bool roi_shared = false;
  const int32_t* prediction = nullptr; // nullptr or [batch, height, width]: gives majority_class
  int connectivity = 8;                // 4 or 8
  int64_t min_area = 0;                // components with area < min_area are dropped
};

// One component. Its id is its index in the image's list + 1. The fields are the sums the second
// pass accumulates; the accessors give the reported statistics.
struct Segment {
  int64_t area = 0;
  int64_t sum_x = 0, sum_y = 0;  // exact sums of the pixel coordinates
  int32_t x0 = INT32_MAX, y0 = INT32_MAX, x1 = -1, y1 = -1;  // bounding box, inclusive
  double sum_score = 0;
  float max_score = -HUGE_VALF;
  int32_t majority_class = 0;    // meaningful only when prediction was given

  int32_t width() const { return x1 - x0 + 1; }
  int32_t height() const { return y1 - y0 + 1; }
  double cx() const { return static_cast<double>(sum_x) / static_cast<double>(area); }
  double cy() const { return static_cast<double>(sum_y) / static_cast<double>(area); }
  double mean_score() const { return sum_score / static_cast<double>(area); }
};

// One image's segments, 56 bytes each; in huge pages when large (huge_pages.h): a noisy 2 MP map has 10^5.
using SegmentList = std::vector<Segment, BufferAllocator<Segment>>;

struct ComponentOutput {
  uint32_t* labels = nullptr;         // [batch, height, width], or nullptr (not wanted); not zero-filled
  std::vector<SegmentList> segments;  // one list per image, in id order
};

// The float t' with (float s > t') ⟺ ((double) s > t) for every float s: the largest float <= t.
// Thresholds given as doubles are compared exactly this way against float32 scores.
float threshold_from_double(double t);

// Throws std::invalid_argument on inconsistent arguments (bad connectivity, sizes).
void label_components(const ComponentInput& in, ComponentOutput& out, int threads);

// CPU emulation of the CUDA labeling (components_uf.h): the kernels' steps run block by block,
// thread by thread, with plain memory standing in for shared memory and the atomics. block_w ×
// block_h pixels per block (one thread each); shuffle_seed != 0 runs blocks and threads of every
// step in a seeded random order instead of the natural one. Same results as label_components.
void label_components_grid_emulation(const ComponentInput& in, ComponentOutput& out, int block_w, int block_h,
                                     uint64_t shuffle_seed);

// ---- shared with the CUDA backend -------------------------------------------------------------

void check_component_input(const ComponentInput& in);

// Second pass for provisional labels of the "root index" form: every foreground pixel of image n
// holds 1 + the raster index of its component's first pixel, background 0. Rewrites `labels` (one
// image, [height, width]) to final labels and fills the image's segments.
void finish_root_labels(const ComponentInput& in, int64_t n, uint32_t* labels, SegmentList& segments);

}  // namespace pgn
