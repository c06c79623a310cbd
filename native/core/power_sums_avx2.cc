// power_sums.h's kernels for AVX2 + FMA: 8 lanes, masks as all-ones lanes, split and scale by
// integer arithmetic on the float bits (as pixel_math.h's scalar functions do).
#include "power_sums.h"

#ifdef PGN_X86_DISPATCH
#include <immintrin.h>

// Everything below is compiled for AVX2 + FMA and only reached after the run-time check. It uses
// no std templates: their instantiations here would carry AVX2 code into the rest of the addon.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

namespace pgn {

namespace {

struct Avx2 {
  using V = __m256;
  using M = __m256;  // all-ones lanes
  using I = __m256i;
  static constexpr int kLanes = 8;
  static constexpr bool kTables = false;  // no 32-entry lookup: pow_poly_vec's reduction instead

  static PGN_INLINE V zero() { return _mm256_setzero_ps(); }
  static PGN_INLINE I zero_i32() { return _mm256_setzero_si256(); }
  static PGN_INLINE V set1(float v) { return _mm256_set1_ps(v); }
  static PGN_INLINE I set1_i32(int32_t v) { return _mm256_set1_epi32(v); }
  static PGN_INLINE V add(V a, V b) { return _mm256_add_ps(a, b); }
  static PGN_INLINE V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static PGN_INLINE V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static PGN_INLINE V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static PGN_INLINE V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static PGN_INLINE V abs(V a) { return _mm256_and_ps(a, _mm256_castsi256_ps(set1_i32(0x7fffffff))); }

  // The first `left` lanes (all when left >= 8).
  static PGN_INLINE M lanes(int64_t left) {
    const int32_t n = left >= kLanes ? kLanes : static_cast<int32_t>(left);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(set1_i32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  }
  static PGN_INLINE V load(M m, const float* p) { return _mm256_maskload_ps(p, _mm256_castps_si256(m)); }
  static PGN_INLINE V load_full(const float* p) { return _mm256_loadu_ps(p); }
  static PGN_INLINE I load_i32(M m, const int32_t* p) {
    return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), _mm256_castps_si256(m));
  }
  static PGN_INLINE void store(M m, float* p, V v) { _mm256_maskstore_ps(p, _mm256_castps_si256(m), v); }
  static PGN_INLINE void store_full(float* p, V v) { _mm256_storeu_ps(p, v); }
  static PGN_INLINE void store_i32(M m, int32_t* p, I v) {
    _mm256_maskstore_epi32(reinterpret_cast<int*>(p), _mm256_castps_si256(m), v);
  }
  static PGN_INLINE void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

  static PGN_INLINE M gt(M m, V a, V b) { return _mm256_and_ps(m, _mm256_cmp_ps(a, b, _CMP_GT_OQ)); }
  static PGN_INLINE M neq_i32(M m, I a, int32_t c) {
    return _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a, set1_i32(c))), m);
  }
  static PGN_INLINE V maskz(M m, V a) { return _mm256_and_ps(m, a); }
  static PGN_INLINE V blend(V a, M m, V b) { return _mm256_blendv_ps(a, b, m); }
  static PGN_INLINE I blend_i32(I a, M m, int32_t c) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(set1_i32(c)), m));
  }
  static PGN_INLINE bool any(M m) { return _mm256_movemask_ps(m) != 0; }
  static PGN_INLINE bool finite(V check) { return _mm256_movemask_ps(_mm256_cmp_ps(check, check, _CMP_UNORD_Q)) == 0; }

  // v = m·2^e with m in [1, 2), from the float bits; subnormals are scaled by 2^23 first.
  static PGN_INLINE void split(V v, V& m, V& e) {
    const M sub_normal = _mm256_cmp_ps(v, set1(1.17549435e-38f), _CMP_LT_OQ);
    const I bits = _mm256_castps_si256(_mm256_blendv_ps(v, mul(v, set1(8388608.0f)), sub_normal));
    e = sub(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), set1_i32(127))),
            _mm256_and_ps(sub_normal, set1(23.0f)));
    m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, set1_i32(0x007fffff)), set1_i32(0x3f800000)));
  }
  // y·2^n in the lanes of `keep`, 2^n built in the exponent bits: 0 below 2^-126 (as pixel_math.h's
  // functions), n capped at 127.
  static PGN_INLINE V scale(V y, V n, M keep) {
    const M tiny = _mm256_cmp_ps(n, set1(-126.0f), _CMP_NGE_UQ);  // also NaN
    const V nc = _mm256_min_ps(_mm256_max_ps(n, set1(-126.0f)), set1(127.0f));
    const V pow2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nc), set1_i32(127)), 23));
    return _mm256_and_ps(_mm256_andnot_ps(tiny, keep), mul(y, pow2));
  }
};

}  // namespace

}  // namespace pgn

#include "power_sums_kernel.h"

namespace pgn {

bool channel_power_sums_avx2(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set,
                             float* acc, int64_t stride) {
  return kernel_channel_sums<Avx2>(x, plane, channels, len, set, acc, stride);
}

void label_power_sums_avx2(const LabelRows& rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride) {
  kernel_label_sums<Avx2>(rows, len, set, acc, stride);
}

bool softmax_stats_avx2(const float* z, int64_t plane, int64_t classes, int64_t len, const SoftmaxArrays& out) {
  return kernel_softmax<Avx2>(z, plane, classes, len, out);
}

}  // namespace pgn

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif  // PGN_X86_DISPATCH
