// power_sums.h's kernels for AVX-512 (F, DQ, BW, VL): 16 lanes, mask registers, and the exponent
// instructions getmant/getexp/scalef.
#include "power_sums.h"

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

struct Avx512 {
  using V = __m512;
  using M = __mmask16;
  using I = __m512i;
  static constexpr int kLanes = 16;

  static PGN_INLINE V zero() { return _mm512_setzero_ps(); }
  static PGN_INLINE I zero_i32() { return _mm512_setzero_si512(); }
  static PGN_INLINE V set1(float v) { return _mm512_set1_ps(v); }
  static PGN_INLINE V add(V a, V b) { return _mm512_add_ps(a, b); }
  static PGN_INLINE V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static PGN_INLINE V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static PGN_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static PGN_INLINE V sqrt(V a) { return _mm512_sqrt_ps(a); }
  static PGN_INLINE V abs(V a) { return _mm512_and_ps(a, _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff))); }

  // The first `left` lanes (all when left >= 16).
  static PGN_INLINE M lanes(int64_t left) {
    return left >= kLanes ? static_cast<M>(0xffff) : static_cast<M>((1u << left) - 1);
  }
  static PGN_INLINE V load(M m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static PGN_INLINE V load_full(const float* p) { return _mm512_loadu_ps(p); }
  static PGN_INLINE I load_i32(M m, const int32_t* p) { return _mm512_maskz_loadu_epi32(m, p); }
  static PGN_INLINE void store(M m, float* p, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static PGN_INLINE void store_full(float* p, V v) { _mm512_storeu_ps(p, v); }
  static PGN_INLINE void store_i32(M m, int32_t* p, I v) { _mm512_mask_storeu_epi32(p, m, v); }
  static PGN_INLINE void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

  static PGN_INLINE M gt(M m, V a, V b) { return _mm512_mask_cmp_ps_mask(m, a, b, _CMP_GT_OQ); }
  static PGN_INLINE M neq_i32(M m, I a, int32_t c) { return _mm512_mask_cmpneq_epi32_mask(m, a, _mm512_set1_epi32(c)); }
  static PGN_INLINE V maskz(M m, V a) { return _mm512_maskz_mov_ps(m, a); }
  static PGN_INLINE V blend(V a, M m, V b) { return _mm512_mask_mov_ps(a, m, b); }
  static PGN_INLINE I blend_i32(I a, M m, int32_t c) { return _mm512_mask_mov_epi32(a, m, _mm512_set1_epi32(c)); }
  static PGN_INLINE bool any(M m) { return m != 0; }
  static PGN_INLINE bool finite(V check) { return _mm512_cmp_ps_mask(check, check, _CMP_ORD_Q) == 0xffff; }

  // Round to nearest integer with the 1.5·2^23 trick (two adds, on either vector port).
  static PGN_INLINE V round_nearest(V x) { return sub(add(x, set1(12582912.0f)), set1(12582912.0f)); }

  // e^x for x <= 0 in the lanes of `keep` (0 elsewhere): pixel_math.h's fast_exp (Cody–Waite
  // reduction, Cephes polynomial), with scalef for the 2^n.
  static PGN_INLINE V exp(V x, M keep) {
    const V n = round_nearest(mul(x, set1(1.44269504088896341f)));
    V t = _mm512_fnmadd_ps(n, set1(0.693359375f), x);
    t = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), t);
    V y = set1(1.9875691500e-4f);
    y = fma(y, t, set1(1.3981999507e-3f));
    y = fma(y, t, set1(8.3334519073e-3f));
    y = fma(y, t, set1(4.1665795894e-2f));
    y = fma(y, t, set1(1.6666665459e-1f));
    y = fma(y, t, set1(5.0000001201e-1f));
    y = fma(y, mul(t, t), add(t, set1(1.0f)));
    return _mm512_maskz_scalef_ps(keep, y, n);
  }

  // v^p for v >= 0 (pos: the lanes with v > 0), pixel_math.h's pow_poly: getmant/getexp split
  // v = m·2^e (subnormals included) and scalef applies 2^n.
  static PGN_INLINE V pow_poly(V v, M pos, const PowPoly& P) {
    const V u = sub(_mm512_getmant_ps(v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero), set1(1.5f));
    const V e = _mm512_getexp_ps(v);
    V q = set1(P.c[PowPoly::kDegree]);
    for (int j = PowPoly::kDegree - 1; j >= 0; --j) q = fma(q, u, set1(P.c[j]));
    const V th = mul(set1(P.p_hi), e);  // exact: p_hi has 12 significant bits
    const V n = round_nearest(th);
    const V f = fma(set1(P.p_lo), e, sub(th, n));
    return _mm512_maskz_scalef_ps(pos, mul(q, exp2_reduced(f)), n);
  }

  static PGN_INLINE V exp2_reduced(V f) {  // pixel_math.h's exp2_reduced
    V y = set1(1.3390863314270973e-3f);
    y = fma(y, f, set1(9.676031768321991e-3f));
    y = fma(y, f, set1(5.5503569543361664e-2f));
    y = fma(y, f, set1(2.402210682630539e-1f));
    y = fma(y, f, set1(6.931471824645996e-1f));
    return fma(y, f, set1(1.0000001192092896f));
  }
};

}  // namespace

}  // namespace pgn

#include "power_sums_kernel.h"

namespace pgn {

bool channel_power_sums_avx512(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set,
                               float* acc, int64_t stride) {
  return kernel_channel_sums<Avx512>(x, plane, channels, len, set, acc, stride);
}

void label_power_sums_avx512(const LabelRows& rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride) {
  kernel_label_sums<Avx512>(rows, len, set, acc, stride);
}

bool softmax_stats_avx512(const float* z, int64_t plane, int64_t classes, int64_t len, const SoftmaxArrays& out) {
  return kernel_softmax<Avx512>(z, plane, classes, len, out);
}

}  // namespace pgn

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

#endif  // PGN_X86_DISPATCH
