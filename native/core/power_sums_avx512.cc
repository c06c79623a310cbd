// power_sums.h's kernels for AVX-512 (F, DQ, BW, VL): 16 lanes, mask registers, and the exponent
// instructions getmant/getexp/scalef for split and scale.
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

  // v = m·2^e with m in [1, 2) (subnormals included); any m and e for v = 0.
  static PGN_INLINE void split(V v, V& m, V& e) {
    m = _mm512_getmant_ps(v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    e = _mm512_getexp_ps(v);
  }
  // Table lookups (pow_table_vec): by the low 4, or 5, bits of each lane's float bits.
  static constexpr bool kTables = true;
  static PGN_INLINE V lookup16(V table, V index) { return _mm512_permutexvar_ps(_mm512_castps_si512(index), table); }
  static PGN_INLINE V lookup32(V table_lo, V table_hi, V index) {
    return _mm512_permutex2var_ps(table_lo, _mm512_castps_si512(index), table_hi);
  }
  static PGN_INLINE V shift_right(V bits, int n) {
    return _mm512_castsi512_ps(_mm512_srli_epi32(_mm512_castps_si512(bits), static_cast<unsigned>(n)));
  }
  static PGN_INLINE V maskz_mul(M m, V a, V b) { return _mm512_maskz_mul_ps(m, a, b); }
  // y·2^n in the lanes of `keep` (n integer-valued; scalef saturates and goes subnormal as needed),
  // 0 where n < −150: there the reduction of a huge argument (e^−2e19) leaves y infinite or NaN, and
  // scalef(inf, −huge) would be NaN.
  static PGN_INLINE V scale(V y, V n, M keep) {
    return _mm512_maskz_scalef_ps(_mm512_mask_cmp_ps_mask(keep, n, set1(-150.0f), _CMP_GE_OQ), y, n);
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
