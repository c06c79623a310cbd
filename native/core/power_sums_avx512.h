// Power sums over the channels of a feature stack, hand-vectorized for AVX-512 (the scores' hot
// loop: 33.5 M values per 1024×2048 image at F = 256). Only call when active_cpu_isa() is Avx512.
#pragma once

#include <cstdint>

#include "tile_math.h"

namespace pgn {

// acc[k·stride + i] = Σ_{f < channels} |x[f·plane + i]|^p_k for i < len, overwriting acc; p_k the
// exponents of `set`. Returns false when some x is NaN or ±inf (acc is then meaningless).
bool channel_power_sums_avx512(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set,
                               float* acc, int64_t stride);

}  // namespace pgn
