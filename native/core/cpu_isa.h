// Which x86 instruction-set level the CPU passes run with: the best this CPU supports, capped
// process-wide by limit_cpu_isa (for tests of the lower paths and for benchmarks comparing them).
#pragma once

namespace pgn {

// Ordered: each level needs the ones below it.
//   Baseline: what the compiler targets by default (SSE2 on x86-64, NEON on arm64).
//   Avx2:     AVX2 + FMA.
//   Avx512:   AVX-512 F/DQ/BW/VL (Skylake-X and later, Zen 4).
enum class CpuIsa : int { Baseline = 0, Avx2 = 1, Avx512 = 2 };

// The best level this CPU and build support (Baseline off x86-64 or without GCC/Clang).
CpuIsa detected_cpu_isa();

// The level the passes use now: the detected one, capped by the limit.
CpuIsa active_cpu_isa();

// Caps the level for every later call, in every thread (thread-safe). Limiting to a level above
// the detected one leaves the detected one.
void limit_cpu_isa(CpuIsa max);

const char* cpu_isa_name(CpuIsa isa);

}  // namespace pgn
