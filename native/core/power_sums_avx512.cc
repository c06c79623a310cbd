#include "power_sums_avx512.h"

#ifdef PGN_X86_DISPATCH
#include <immintrin.h>

// Everything below is compiled for AVX-512 and only reached after the run-time check. It uses no
// std templates: their instantiations here would carry AVX-512 code into the rest of the addon.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
// GCC 12 flags the deliberately undefined pass-through operand inside its own intrinsics.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace pgn {

namespace {

// Pixels of one register block: kBlock vectors of 16 whose accumulators for every exponent stay
// in registers while the block's channels stream through (32 zmm registers: up to 5 exponents × 4).
constexpr int kLanes = 16;
// Blocks ahead that the software prefetch fetches: `channels` rows far apart are more streams than
// the hardware prefetcher follows.
constexpr int kPrefetchBlocks = 4;

PGN_INLINE __m512 splat(float v) { return _mm512_set1_ps(v); }

// v^p for v >= 0 (pos: v > 0), pixel_math.h's pow_poly with the AVX-512 exponent instructions:
// getmant/getexp split v = m·2^e (subnormals included) and scalef applies 2^n without clamping.
PGN_INLINE __m512 pow_poly16(__m512 v, __mmask16 pos, const PowPoly& P) {
  const __m512 u = _mm512_sub_ps(_mm512_getmant_ps(v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero), splat(1.5f));
  const __m512 e = _mm512_getexp_ps(v);
  __m512 q = splat(P.c[8]);
  for (int j = 7; j >= 0; --j) q = _mm512_fmadd_ps(q, u, splat(P.c[j]));
  const __m512 th = _mm512_mul_ps(splat(P.p_hi), e);  // exact: p_hi has 12 significant bits
  const __m512 n = _mm512_roundscale_ps(th, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_fmadd_ps(splat(P.p_lo), e, _mm512_sub_ps(th, n));
  __m512 x = splat(1.535336188319500e-4f);  // exp2_reduced's polynomial
  x = _mm512_fmadd_ps(x, f, splat(1.339887440266574e-3f));
  x = _mm512_fmadd_ps(x, f, splat(9.618437357674640e-3f));
  x = _mm512_fmadd_ps(x, f, splat(5.550332471162809e-2f));
  x = _mm512_fmadd_ps(x, f, splat(2.402264791363012e-1f));
  x = _mm512_fmadd_ps(x, f, splat(6.931472028550421e-1f));
  x = _mm512_fmadd_ps(f, x, splat(1.0f));
  return _mm512_maskz_scalef_ps(pos, _mm512_mul_ps(q, x), n);
}

PGN_INLINE __m512 int_power16(__m512 v, int k) {
  const __m512 v2 = _mm512_mul_ps(v, v);
  return k == 2 ? v2 : k == 3 ? _mm512_mul_ps(v2, v) : _mm512_mul_ps(v2, v2);
}

// One block of up to B·16 pixels (`count` of them) starting at x, all channels, all K exponents.
template <int K, int B>
PGN_INLINE void block_sums(const float* x, int64_t plane, int64_t channels, int count, const FlatPowerSet& set, float* acc,
                           int64_t stride, __m512& check) {
  __mmask16 load[B];
  for (int b = 0; b < B; ++b) {
    const int left = count - b * kLanes;
    load[b] = left >= kLanes ? static_cast<__mmask16>(0xffff) : left <= 0 ? 0 : static_cast<__mmask16>((1u << left) - 1);
  }
  __m512 sum[K][B];
  for (int k = 0; k < K; ++k)
    for (int b = 0; b < B; ++b) sum[k][b] = _mm512_setzero_ps();
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t f = 0; f < channels; ++f) {
    const float* row = x + f * plane;
    for (int b = 0; b < B; ++b) _mm_prefetch(reinterpret_cast<const char*>(row + (kPrefetchBlocks * B + b) * kLanes), _MM_HINT_T0);
#pragma GCC unroll 4
    for (int b = 0; b < B; ++b) {
      const __m512 raw = _mm512_maskz_loadu_ps(load[b], row + b * kLanes);
      check = _mm512_fmadd_ps(raw, _mm512_setzero_ps(), check);  // x·0 is NaN exactly for NaN and ±inf
      const __m512 v = _mm512_and_ps(raw, abs_mask);
      const __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
      __m512 term[K] = {};
#pragma GCC unroll 8
      for (int k = 0; k < K; ++k) {
        switch (set.kind[k]) {
          case PowKind::One: term[k] = v; break;
          case PowKind::Two: term[k] = _mm512_mul_ps(v, v); break;
          case PowKind::Half: term[k] = _mm512_sqrt_ps(v); break;
          default:
            if (set.base[k] < 0) {
              term[k] = pow_poly16(v, pos, set.poly[k]);
            } else {
              __m512 base = term[0];
              for (int j = 1; j < k; ++j) base = j == set.base[k] ? term[j] : base;
              term[k] = int_power16(base, set.mult[k]);
            }
        }
        sum[k][b] = _mm512_add_ps(sum[k][b], term[k]);
      }
    }
  }
  for (int k = 0; k < K; ++k)
    for (int b = 0; b < B; ++b) _mm512_mask_storeu_ps(acc + k * stride + b * kLanes, load[b], sum[k][b]);
}

template <int K>
bool sums(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set, float* acc,
          int64_t stride) {
  constexpr int B = K <= 5 ? 4 : 2;  // K·B accumulators, leaving registers for the terms
  __m512 check = _mm512_setzero_ps();
  for (int64_t i = 0; i < len; i += B * kLanes) {
    const int count = static_cast<int>(len - i < B * kLanes ? len - i : B * kLanes);
    block_sums<K, B>(x + i, plane, channels, count, set, acc + i, stride, check);
  }
  return _mm512_cmp_ps_mask(check, check, _CMP_ORD_Q) == 0xffff;
}

}  // namespace

bool channel_power_sums_avx512(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set,
                               float* acc, int64_t stride) {
  switch (set.count) {
    case 1: return sums<1>(x, plane, channels, len, set, acc, stride);
    case 2: return sums<2>(x, plane, channels, len, set, acc, stride);
    case 3: return sums<3>(x, plane, channels, len, set, acc, stride);
    case 4: return sums<4>(x, plane, channels, len, set, acc, stride);
    case 5: return sums<5>(x, plane, channels, len, set, acc, stride);
    case 6: return sums<6>(x, plane, channels, len, set, acc, stride);
    case 7: return sums<7>(x, plane, channels, len, set, acc, stride);
    default: return sums<8>(x, plane, channels, len, set, acc, stride);
  }
}

}  // namespace pgn

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

#endif  // PGN_X86_DISPATCH
