#include "cpu_isa.h"

#include <algorithm>
#include <atomic>

#include "tile_math.h"

namespace pgn {

namespace {

std::atomic<int> limit{static_cast<int>(CpuIsa::Avx512)};

CpuIsa detect() {
#ifdef PGN_X86_DISPATCH
  // libgcc's and compiler-rt's checks include the OS's support for the wider register state.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return CpuIsa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::Avx2;
#endif
  return CpuIsa::Baseline;
}

}  // namespace

CpuIsa detected_cpu_isa() {
  static const CpuIsa isa = detect();
  return isa;
}

CpuIsa active_cpu_isa() {
  return static_cast<CpuIsa>(std::min(static_cast<int>(detected_cpu_isa()), limit.load(std::memory_order_relaxed)));
}

void limit_cpu_isa(CpuIsa max) { limit.store(static_cast<int>(max), std::memory_order_relaxed); }

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512: return "avx512";
    case CpuIsa::Avx2: return "avx2";
    default: return "baseline";
  }
}

}  // namespace pgn
