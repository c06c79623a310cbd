#include "upsample.h"

#include <algorithm>
#include <utility>
#include <cmath>
#include <limits>
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

// The two most recently used source rows (keyed by plane · in_h + row), each prepared once by
// fill(key, row). Output rows visit source rows in increasing order, so upscaling by k prepares
// each source row once instead of 2k times.
template <typename Row, typename Fill>
class RowCache {
 public:
  explicit RowCache(Fill fill) : fill_(std::move(fill)) {}

  // The row of `key`, after which `then` is fetched without evicting it.
  std::pair<Row*, Row*> pair(int64_t key, int64_t then) {
    Row* first = &row(key);
    last_ = first == &rows_[0] ? 0 : 1;
    return {first, &row(then)};
  }

 private:
  Row& row(int64_t key) {
    for (int k = 0; k < 2; ++k)
      if (key_[k] == key) return rows_[k];
    const int k = last_ == 0 ? 1 : 0;  // replace the slot not used last
    fill_(key, rows_[k]);
    key_[k] = key, last_ = k;
    return rows_[k];
  }

  Fill fill_;
  Row rows_[2];
  int64_t key_[2] = {-1, -1};
  int last_ = 1;
};

template <typename Row, typename Fill>
RowCache<Row, Fill> row_cache(Fill fill) {
  return RowCache<Row, Fill>(std::move(fill));
}

// Why most output pixels need no interpolated logit at all (upsample_argmax).
//
// An output pixel's upsampled logits are v_c = Σ_i W_i·l_c,i over its four source pixels i, with
// weights W = (s·u, s·w, r·u, r·w) ≥ 0, u = 1 − wx, w = wx, s = 1 − wy, r = wy. If every source
// pixel has the same class k ahead of every other class by g_i = l_k,i − max_{c≠k} l_c,i > 0, then
// in exact arithmetic v_k − v_c = Σ_i W_i·(l_k,i − l_c,i) ≥ Σ_i W_i·g_i > 0 (the W_i sum to 1): k
// wins every convex combination, and the output pixel's argmax is k whatever the weights.
//
// The code rounds, though: v_c = fl(fl(s·h_t) + fl(r·h_b)), h_t = fl(fl(u·a) + fl(w·b)) (and h_b),
// u and s themselves rounded, all weights in [0, 1]. With ε = 2⁻²⁴, each rounding is x(1 + δ) + η,
// |δ| ≤ ε, |η| ≤ 2⁻¹⁵⁰ (subnormals), so |v_c − Σ_i W_i·l_c,i| ≤ 4.01·ε·Σ_i W_i·m_i + 2⁻¹⁴⁶, where
// m_i = max_c |l_c,i|. Hence v_k − v_c ≥ Σ_i W_i·(g_i − 8.02·ε·m_i) − 2⁻¹⁴⁵. If every source pixel
// has g_i > 2⁻¹⁶·m_i + 2⁻⁶⁴ (a "clear winner"; 2⁻¹⁶ > 8.02·ε), each term is at least W_i·2⁻⁶⁴, and
// Σ_i W_i ≥ (1 − ε)² (u = fl(1 − w) ≥ (1 − w)(1 − ε)), so v_k − v_c > 0: strictly, so even the
// tie-break (lowest class) is not involved. m_i < 2⁶⁴ keeps every intermediate far from overflow,
// and a NaN or infinite logit makes its pixel no clear winner. So where the four source pixels
// have the same clear winner, it is bit for bit the class the full computation returns; only the
// other output pixels (near class boundaries, in practice a few percent) interpolate all C logits.

// For `count` source pixels from `logits` on (class c's logit plane_stride further per class): each
// pixel's class if it is a clear winner (above), else -1.
void clear_winners(const float* logits, int64_t classes, int64_t plane_stride, int64_t count, int32_t* winner) {
  constexpr int64_t kBlock = 512;  // pixels per pass over the classes (stays in L1)
  // Plain float and int arrays and selects, so the class loop vectorizes. bad accumulates v − v:
  // 0 while every logit is finite, NaN from the first infinite or NaN one on.
  float best[kBlock], second[kBlock], mag[kBlock], bad[kBlock];
  int32_t arg[kBlock];
  for (int64_t p0 = 0; p0 < count; p0 += kBlock) {
    const int64_t n = std::min(kBlock, count - p0);
    for (int64_t p = 0; p < n; ++p)
      best[p] = second[p] = -std::numeric_limits<float>::infinity(), mag[p] = bad[p] = 0.0f, arg[p] = 0;
    for (int64_t c = 0; c < classes; ++c) {
      const float* l = logits + c * plane_stride + p0;
      const int32_t k = static_cast<int32_t>(c);
      for (int64_t p = 0; p < n; ++p) {
        const float v = l[p], a = std::fabs(v), b = best[p];
        const bool ahead = v > b;
        const float behind = ahead ? b : v;
        bad[p] += v - v;
        mag[p] = a > mag[p] ? a : mag[p];
        second[p] = behind > second[p] ? behind : second[p];
        arg[p] += (k - arg[p]) & -static_cast<int32_t>(ahead);  // a select GCC vectorizes beside the float ones
        best[p] = ahead ? v : b;
      }
    }
    constexpr float kRelative = 0x1p-16f, kAbsolute = 0x1p-64f, kLargest = 0x1p64f;
    for (int64_t p = 0; p < n; ++p) {
      // With one class there is nothing to lose to: second stays −∞.
      const bool clear = bad[p] == 0.0f && mag[p] < kLargest && best[p] - second[p] > kRelative * mag[p] + kAbsolute;
      winner[p0 + p] = clear ? arg[p] : -1;
    }
  }
}

// One source row's logits as full_argmax reads them: class c of a pixel `cls` floats after class 0
// (a plane in place, 1 in the pixel-major copy, whose pixels are C floats apart).
struct Logits {
  const float* at;
  int64_t cls;
};

// One source row as upsample_argmax needs it: per output column, the clear winner both horizontal
// source pixels agree on (else -1); the row's logits where the model left them (class c a plane
// further per class); and, made on first demand, a pixel-major copy of them (C per pixel).
//
// Reading a pixel's C logits from C planes whose offsets differ by a power-of-two plane size puts
// them all in the same cache set: cheap for the few pixels near class boundaries (most rows cross
// a handful), but where a row has many such pixels (noisy logits), copying the row pixel-major once
// and reading it contiguously is twice as fast.
class ArgmaxRow {
 public:
  // The row's clear winners are found here, just before its pixels near boundaries read the same
  // logits again: then they are still in cache.
  void fill(const float* row_logits, int64_t classes, int64_t plane, int64_t in_w, const Axis& xs, int64_t out_w) {
    winners_.resize(in_w);
    clear_winners(row_logits, classes, plane, in_w, winners_.data());
    const int32_t* winners = winners_.data();
    agreed_.resize(out_w);
    for (int64_t x = 0; x < out_w; ++x)
      agreed_[x] = winners[xs.lo[x]] == winners[xs.hi[x]] ? winners[xs.lo[x]] : -1;
    planar_ = {row_logits, plane};
    classes_ = classes, in_w_ = in_w, copied_ = false;
  }

  const int32_t* agreed() const { return agreed_.data(); }
  Logits planar() const { return planar_; }

  Logits pixel_major() {
    if (!copied_) copy();
    return {copy_.data(), 1};
  }

 private:
  void copy() {
    copy_.resize(in_w_ * classes_);
    constexpr int64_t kBlock = 64;  // source pixels per transposed block (its C·64 floats stay in L1)
    for (int64_t x0 = 0; x0 < in_w_; x0 += kBlock)
      for (int64_t c = 0; c < classes_; ++c)
        for (int64_t x = x0; x < std::min(x0 + kBlock, in_w_); ++x)
          copy_[x * classes_ + c] = planar_.at[c * planar_.cls + x];
    copied_ = true;
  }

  std::vector<int32_t> winners_, agreed_;
  std::vector<float> copy_;
  Logits planar_{};
  int64_t classes_ = 0, in_w_ = 0;
  bool copied_ = false;
};

// The full computation for one output pixel: all C logits interpolated as upsample_bilinear does
// (same expressions, same order, so the same bits), argmax with ties to the lowest class. Pixel-major
// rows take a loop the compiler vectorizes over the classes (value: C floats of scratch).
template <bool kPixelMajor>
int32_t full_argmax(Logits top, Logits bottom, int64_t classes, const Axis& xs, int64_t x, float wy, float* value) {
  const int64_t tp = kPixelMajor ? classes : 1, tc = kPixelMajor ? 1 : top.cls, bc = kPixelMajor ? 1 : bottom.cls;
  const float* tl = top.at + xs.lo[x] * tp;
  const float* tr = top.at + xs.hi[x] * tp;
  const float* bl = bottom.at + xs.lo[x] * tp;
  const float* br = bottom.at + xs.hi[x] * tp;
  const float wx = xs.weight[x];
  float best = 0.0f;
  int32_t arg = 0;
  if constexpr (kPixelMajor) {
    for (int64_t c = 0; c < classes; ++c) {
      const float t = (1.0f - wx) * tl[c] + wx * tr[c];
      const float b = (1.0f - wx) * bl[c] + wx * br[c];
      value[c] = (1.0f - wy) * t + wy * b;
    }
    best = value[0];
    for (int64_t c = 1; c < classes; ++c) {
      const bool more = value[c] > best;
      best = more ? value[c] : best;
      arg = more ? static_cast<int32_t>(c) : arg;
    }
  } else {  // C cache misses anyway: no scratch round trip
    for (int64_t c = 0; c < classes; ++c) {
      const float t = (1.0f - wx) * tl[c * tc] + wx * tr[c * tc];
      const float b = (1.0f - wx) * bl[c * bc] + wx * br[c * bc];
      const float v = (1.0f - wy) * t + wy * b;
      const bool more = c == 0 || v > best;
      best = more ? v : best;
      arg = more ? static_cast<int32_t>(c) : arg;
    }
  }
  return arg;
}

}  // namespace

void upsample_bilinear(const float* in, int64_t planes, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                       int64_t out_w, bool align_corners, int threads) {
  if (planes < 1 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1)
    throw std::invalid_argument("upsampling needs non-empty input and output sizes");
  const Axis ys = axis_map(in_h, out_h, align_corners);
  const Axis xs = axis_map(in_w, out_w, align_corners);
  parallel_for(planes * out_h, threads, [&](int64_t begin, int64_t end) {
    // Source rows interpolated horizontally; what remains per output pixel is a vectorized vertical
    // blend. The arithmetic (horizontal first, then vertical) is PyTorch's, bit for bit.
    auto cache = row_cache<std::vector<float>>([&](int64_t key, std::vector<float>& row) {
      row.resize(out_w);
      horizontal(in + key * in_w, xs, out_w, row.data());
    });
    for (int64_t row = begin; row < end; ++row) {
      const int64_t plane = row / out_h, y = row % out_h;
      const auto [top, bottom] = cache.pair(plane * in_h + ys.lo[y], plane * in_h + ys.hi[y]);
      const float wy = ys.weight[y];
      float* dst = out + row * out_w;
      for (int64_t x = 0; x < out_w; ++x) dst[x] = (1.0f - wy) * (*top)[x] + wy * (*bottom)[x];
    }
  });
}

void upsample_argmax(const float* logits, int64_t batch, int64_t classes, int64_t in_h, int64_t in_w, int32_t* out,
                     int64_t out_h, int64_t out_w, bool align_corners, int threads) {
  if (batch < 1 || classes < 1 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1)
    throw std::invalid_argument("upsampling needs non-empty input and output sizes");
  const Axis ys = axis_map(in_h, out_h, align_corners);
  const Axis xs = axis_map(in_w, out_w, align_corners);
  const int64_t plane = in_h * in_w;
  // An output row with more than 1/kDenseShare of its pixels near class boundaries reads pixel-major
  // copies of its source rows (ArgmaxRow). 1/8 is a choice, not a tuned value: it keeps ESPNetv2's
  // rows (a few boundary pixels each) in place and random logits (nearly all) pixel-major.
  constexpr int64_t kDenseShare = 8;
  parallel_for(batch * out_h, threads, [&](int64_t begin, int64_t end) {
    auto cache = row_cache<ArgmaxRow>([&](int64_t key, ArgmaxRow& row) {  // key = n · in_h + r
      const int64_t n = key / in_h, r = key % in_h;
      row.fill(logits + n * classes * plane + r * in_w, classes, plane, in_w, xs, out_w);
    });
    std::vector<float> value(static_cast<size_t>(classes));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / out_h, y = row % out_h;
      const auto [top, bottom] = cache.pair(n * in_h + ys.lo[y], n * in_h + ys.hi[y]);
      int32_t* dst = out + row * out_w;
      // Two passes: a vectorized one takes the class where both rows agree (-1 where they do not,
      // or where neither has a clear winner), then the -1 left get the full computation.
      const int32_t* t = top->agreed();
      const int32_t* b = bottom->agreed();
      int64_t full = 0;
      for (int64_t x = 0; x < out_w; ++x) {
        dst[x] = t[x] == b[x] ? t[x] : -1;
        full += dst[x] < 0;
      }
      if (full == 0) continue;
      const float wy = ys.weight[y];
      if (full * kDenseShare > out_w) {
        const Logits tl = top->pixel_major(), bl = bottom->pixel_major();
        for (int64_t x = 0; x < out_w; ++x)
          if (dst[x] < 0) dst[x] = full_argmax<true>(tl, bl, classes, xs, x, wy, value.data());
      } else {
        for (int64_t x = 0; x < out_w; ++x)
          if (dst[x] < 0) dst[x] = full_argmax<false>(top->planar(), bottom->planar(), classes, xs, x, wy, value.data());
      }
    }
  });
}

}  // namespace pgn
