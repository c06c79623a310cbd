#include "upsample.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "parallel.h"

namespace pgn {

namespace {

// Source position of each output coordinate along one axis: left index, right index, right weight.
struct Axis {
  std::vector<int64_t> lo, hi;
  std::vector<float> weight;
};

Axis axis_map(int64_t in, int64_t out, bool align_corners) {
  Axis a;
  a.lo.resize(out);
  a.hi.resize(out);
  a.weight.resize(out);
  // PyTorch computes the scale in the accumulation type (float for float tensors).
  const float scale = align_corners ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f)
                                    : static_cast<float>(in) / static_cast<float>(out);
  for (int64_t d = 0; d < out; ++d) {
    float src = align_corners ? scale * static_cast<float>(d) : scale * (static_cast<float>(d) + 0.5f) - 0.5f;
    src = std::max(src, 0.0f);
    const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
    a.lo[d] = i0;
    a.hi[d] = i0 + (i0 < in - 1 ? 1 : 0);
    a.weight[d] = src - static_cast<float>(i0);
  }
  return a;
}

// Horizontal interpolation of one source row to the output width (the gathers live here).
inline void horizontal(const float* src, const Axis& xs, int64_t out_w, float* dst) {
  for (int64_t x = 0; x < out_w; ++x) dst[x] = (1.0f - xs.weight[x]) * src[xs.lo[x]] + xs.weight[x] * src[xs.hi[x]];
}

// The two most recently used source rows of one plane, already interpolated horizontally. Output
// rows visit source rows in increasing order, so upscaling by k interpolates each source row once
// instead of 2k times, and what remains per output pixel is a vectorized vertical blend. The
// arithmetic (horizontal first, then vertical) is PyTorch's, so the results are bit for bit the same.
class RowCache {
 public:
  RowCache(const Axis& xs, int64_t out_w) : xs_(xs), out_w_(out_w) {
    rows_[0].resize(out_w);
    rows_[1].resize(out_w);
  }

  const float* row(const float* plane_data, int64_t in_w, int64_t r, const void* plane_id) {
    for (int k = 0; k < 2; ++k)
      if (key_[k] == r && plane_[k] == plane_id) return rows_[k].data();
    // Replace the slot not used last.
    const int k = last_ == 0 ? 1 : 0;
    horizontal(plane_data + r * in_w, xs_, out_w_, rows_[k].data());
    key_[k] = r, plane_[k] = plane_id, last_ = k;
    return rows_[k].data();
  }

  // Marks a slot as just used, so the next miss evicts the other one.
  void touch(const float* row) { last_ = row == rows_[0].data() ? 0 : 1; }

 private:
  const Axis& xs_;
  int64_t out_w_;
  std::vector<float> rows_[2];
  int64_t key_[2] = {-1, -1};
  const void* plane_[2] = {nullptr, nullptr};
  int last_ = 1;
};

// Output row y of a plane: the vertical blend of its two (cached) horizontally interpolated rows.
inline void output_row(const float* plane_data, int64_t in_w, const Axis& ys, int64_t y, RowCache& cache, int64_t out_w,
                       float* dst) {
  const float* top = cache.row(plane_data, in_w, ys.lo[y], plane_data);
  cache.touch(top);
  const float* bottom = cache.row(plane_data, in_w, ys.hi[y], plane_data);
  const float wy = ys.weight[y];
  for (int64_t x = 0; x < out_w; ++x) dst[x] = (1.0f - wy) * top[x] + wy * bottom[x];
}

}  // namespace

void upsample_bilinear(const float* in, int64_t planes, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                       int64_t out_w, bool align_corners, int threads) {
  if (planes < 1 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1)
    throw std::invalid_argument("upsampling needs non-empty input and output sizes");
  const Axis ys = axis_map(in_h, out_h, align_corners);
  const Axis xs = axis_map(in_w, out_w, align_corners);
  parallel_for(planes * out_h, threads, [&](int64_t begin, int64_t end) {
    RowCache cache(xs, out_w);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t plane = row / out_h, y = row % out_h;
      output_row(in + plane * in_h * in_w, in_w, ys, y, cache, out_w, out + row * out_w);
    }
  });
}

// Row caches of all classes take classes × 2 × out_w floats per thread; past this many, one cache
// serves every class (it then misses on each class: the rows are interpolated again, same values).
constexpr int64_t kCacheFloats = int64_t{1} << 22;

void upsample_argmax(const float* logits, int64_t batch, int64_t classes, int64_t in_h, int64_t in_w, int32_t* out,
                     int64_t out_h, int64_t out_w, bool align_corners, int threads) {
  if (batch < 1 || classes < 1 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1)
    throw std::invalid_argument("upsampling needs non-empty input and output sizes");
  const Axis ys = axis_map(in_h, out_h, align_corners);
  const Axis xs = axis_map(in_w, out_w, align_corners);
  parallel_for(batch * out_h, threads, [&](int64_t begin, int64_t end) {
    std::vector<float> value(out_w), best(out_w);
    const bool per_class = classes * 2 * out_w <= kCacheFloats;
    std::vector<RowCache> caches(per_class ? static_cast<size_t>(classes) : 1, RowCache(xs, out_w));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / out_h, y = row % out_h;
      int32_t* dst = out + row * out_w;
      for (int64_t c = 0; c < classes; ++c) {
        output_row(logits + (n * classes + c) * in_h * in_w, in_w, ys, y, caches[per_class ? c : 0], out_w, value.data());
        for (int64_t x = 0; x < out_w; ++x) {
          const bool more = c == 0 || value[x] > best[x];
          best[x] = more ? value[x] : best[x];
          dst[x] = more ? static_cast<int32_t>(c) : dst[x];
        }
      }
    }
  });
}

}  // namespace pgn
