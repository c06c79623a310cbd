// The scores pass's hot loops hand-vectorized: power sums over the rows of a tile (the features:
// 33.5 M values per 1024×2048 image at F = 256; the label values: C per pixel) and the softmax
// statistics. One kernel (power_sums_kernel.h) compiled for AVX-512 and for AVX2+FMA; call the
// variant of active_cpu_isa() (power_sum_kernels below), never on a CPU without it.
#pragma once

#include <cstdint>

#include "cpu_isa.h"
#include "tile_math.h"

namespace pgn {

// acc[k·stride + i] = Σ_{f < channels} |x[f·plane + i]|^p_k for i < len ≤ stride (a multiple of
// 16), p_k the exponents of `set` (flattened with logs_known = false); acc is overwritten. Returns
// false when some x is NaN or ±inf (acc is then meaningless).
bool channel_power_sums_avx512(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set,
                               float* acc, int64_t stride);
bool channel_power_sums_avx2(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set,
                             float* acc, int64_t stride);

// The per-class values of a label form over a tile of pixels (pixel_math.h's label_log and label
// forms): v_c = e^(z_c − m − offset) = e^(z_c − m) / norm, 0 at the argmax for the one-hot forms,
// |v_c − 1/C| for the exact uniform label. Per-pixel arrays have the tile's length.
struct LabelRows {
  const float* z;  // the tile's first logit of class 0; class c at z + c·plane
  int64_t plane, classes;
  const float* exp_d;  // e^(z_c − m), class c at exp_d + c·exp_stride (softmax_stats_*)
  int64_t exp_stride;
  const float* max_logit;
  const float* log_offset;  // label_log_offset: log norm
  const float* inv_norm;    // 1 / norm: 1/S_other for the one-hot forms, 1/S for the uniform ones
  const int32_t* argmax;
  LabelForm form;
};

// acc[k·stride + i] = Σ_c v_c(i)^p_k, as channel_power_sums; `set` flattened with logs_known =
// true unless the form is UniformExact (whose values have no known log).
void label_power_sums_avx512(const LabelRows& rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride);
void label_power_sums_avx2(const LabelRows& rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride);

// tile_math.h's softmax_stats for `len` pixels of logits z [classes, plane], into the arrays of
// SoftmaxStats, keeping e^(z_c − m) for the label sums; false when some logit is NaN or ±inf.
struct SoftmaxArrays {
  float* max_logit;
  int32_t* argmax;
  float *sum, *sum_other, *ez;
  float* exp_d;  // class c at exp_d + c·exp_stride
  int64_t exp_stride;
};
bool softmax_stats_avx512(const float* z, int64_t plane, int64_t classes, int64_t len, const SoftmaxArrays& out);
bool softmax_stats_avx2(const float* z, int64_t plane, int64_t classes, int64_t len, const SoftmaxArrays& out);

// The kernels of one instruction-set level.
struct PowerSumKernels {
  bool (*channel_sums)(const float*, int64_t, int64_t, int64_t, const FlatPowerSet&, float*, int64_t);
  void (*label_sums)(const LabelRows&, int64_t, const FlatPowerSet&, float*, int64_t);
  bool (*softmax)(const float*, int64_t, int64_t, int64_t, const SoftmaxArrays&);
};

// The AVX-512 or AVX2 kernels; nullptr for Baseline, which runs the compiler-vectorized loops.
inline const PowerSumKernels* power_sum_kernels(CpuIsa isa) {
#ifdef PGN_X86_DISPATCH
  static const PowerSumKernels avx512{channel_power_sums_avx512, label_power_sums_avx512, softmax_stats_avx512};
  static const PowerSumKernels avx2{channel_power_sums_avx2, label_power_sums_avx2, softmax_stats_avx2};
  if (isa == CpuIsa::Avx512) return &avx512;
  if (isa == CpuIsa::Avx2) return &avx2;
#endif
  (void)isa;
  return nullptr;
}

}  // namespace pgn
