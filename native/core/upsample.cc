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

// One output row of one plane: the two source rows blended vertically, then horizontally.
inline void interpolate_row(const float* top, const float* bottom, float wy, const Axis& xs, int64_t out_w, float* dst) {
  for (int64_t x = 0; x < out_w; ++x) {
    const float wx = xs.weight[x];
    const float t = (1.0f - wx) * top[xs.lo[x]] + wx * top[xs.hi[x]];
    const float b = (1.0f - wx) * bottom[xs.lo[x]] + wx * bottom[xs.hi[x]];
    dst[x] = (1.0f - wy) * t + wy * b;
  }
}

}  // namespace

void upsample_bilinear(const float* in, int64_t planes, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                       int64_t out_w, bool align_corners, int threads) {
  if (planes < 1 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1)
    throw std::invalid_argument("upsampling needs non-empty input and output sizes");
  const Axis ys = axis_map(in_h, out_h, align_corners);
  const Axis xs = axis_map(in_w, out_w, align_corners);
  parallel_for(planes * out_h, threads, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t plane = row / out_h, y = row % out_h;
      const float* top = in + (plane * in_h + ys.lo[y]) * in_w;
      const float* bottom = in + (plane * in_h + ys.hi[y]) * in_w;
      interpolate_row(top, bottom, ys.weight[y], xs, out_w, out + row * out_w);
    }
  });
}

void upsample_argmax(const float* logits, int64_t batch, int64_t classes, int64_t in_h, int64_t in_w, int32_t* out,
                     int64_t out_h, int64_t out_w, bool align_corners, int threads) {
  if (batch < 1 || classes < 1 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1)
    throw std::invalid_argument("upsampling needs non-empty input and output sizes");
  const Axis ys = axis_map(in_h, out_h, align_corners);
  const Axis xs = axis_map(in_w, out_w, align_corners);
  parallel_for(batch * out_h, threads, [&](int64_t begin, int64_t end) {
    std::vector<float> value(out_w), best(out_w);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / out_h, y = row % out_h;
      int32_t* dst = out + row * out_w;
      for (int64_t c = 0; c < classes; ++c) {
        const float* plane = logits + (n * classes + c) * in_h * in_w;
        interpolate_row(plane + ys.lo[y] * in_w, plane + ys.hi[y] * in_w, ys.weight[y], xs, out_w, value.data());
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
