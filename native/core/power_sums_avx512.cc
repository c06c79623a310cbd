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

constexpr int kLanes = 16;
// How far ahead along a feature row the software prefetch reaches (floats). A tile reads
// `channels` rows far apart: more streams than the hardware prefetcher follows.
constexpr int64_t kPrefetchAhead = 1024;

PGN_INLINE __m512 splat(float v) { return _mm512_set1_ps(v); }

// Round to nearest integer with the 1.5·2^23 trick (two adds, on any port).
PGN_INLINE __m512 round_nearest(__m512 x) {
  return _mm512_sub_ps(_mm512_add_ps(x, splat(12582912.0f)), splat(12582912.0f));
}

// v^p for v >= 0 (pos: the lanes with v > 0), pixel_math.h's pow_poly with the AVX-512 exponent
// instructions: getmant/getexp split v = m·2^e (subnormals included) and scalef applies 2^n.
PGN_INLINE __m512 pow_poly16(__m512 v, __mmask16 pos, const PowPoly& P) {
  const __m512 u = _mm512_sub_ps(_mm512_getmant_ps(v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero), splat(1.5f));
  const __m512 e = _mm512_getexp_ps(v);
  __m512 q = splat(P.c[PowPoly::kDegree]);
  for (int j = PowPoly::kDegree - 1; j >= 0; --j) q = _mm512_fmadd_ps(q, u, splat(P.c[j]));
  const __m512 th = _mm512_mul_ps(splat(P.p_hi), e);  // exact: p_hi has 12 significant bits
  const __m512 n = round_nearest(th);
  const __m512 f = _mm512_fmadd_ps(splat(P.p_lo), e, _mm512_sub_ps(th, n));
  __m512 x = splat(1.3390863314270973e-3f);  // exp2_reduced's polynomial
  x = _mm512_fmadd_ps(x, f, splat(9.676031768321991e-3f));
  x = _mm512_fmadd_ps(x, f, splat(5.5503569543361664e-2f));
  x = _mm512_fmadd_ps(x, f, splat(2.402210682630539e-1f));
  x = _mm512_fmadd_ps(x, f, splat(6.931471824645996e-1f));
  x = _mm512_fmadd_ps(x, f, splat(1.0000001192092896f));
  return _mm512_maskz_scalef_ps(pos, _mm512_mul_ps(q, x), n);
}

// e^x for x <= 0 in the lanes of `keep` (0 elsewhere): pixel_math.h's fast_exp (Cody–Waite
// reduction, Cephes polynomial), with scalef for the 2^n.
PGN_INLINE __m512 exp16(__m512 x, __mmask16 keep) {
  const __m512 n = round_nearest(_mm512_mul_ps(x, splat(1.44269504088896341f)));
  __m512 t = _mm512_fnmadd_ps(n, splat(0.693359375f), x);
  t = _mm512_fnmadd_ps(n, splat(-2.12194440e-4f), t);
  __m512 y = splat(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, t, splat(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, t, splat(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, t, splat(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, t, splat(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, t, splat(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(t, t), _mm512_add_ps(t, splat(1.0f)));
  return _mm512_maskz_scalef_ps(keep, y, n);
}

// sum + v^k for k in 2..4, the last multiplication fused with the addition.
PGN_INLINE __m512 add_int_power16(__m512 sum, __m512 v, int k) {
  if (k == 2) return _mm512_fmadd_ps(v, v, sum);
  const __m512 v2 = _mm512_mul_ps(v, v);
  return _mm512_fmadd_ps(v2, k == 3 ? v : v2, sum);
}

// One vector of a row's values: v >= 0; `pos` the lanes whose power terms are non-zero (v > 0, or
// for values with a known log, every kept lane); log v where known.
struct Value {
  __m512 v;
  __mmask16 pos;
  __m512 log;
};

// Rows of feature values |x|, checked for NaN and ±inf.
struct FeatureSource {
  static constexpr bool kLogs = false;
  const float* x;
  int64_t plane;
  __m512 check = _mm512_setzero_ps();

  PGN_INLINE Value load(int64_t f, int64_t j, __mmask16 lanes) {
    const float* at = x + f * plane + j;
    _mm_prefetch(reinterpret_cast<const char*>(at + kPrefetchAhead), _MM_HINT_T0);
    const __m512 raw = _mm512_maskz_loadu_ps(lanes, at);
    check = _mm512_fmadd_ps(raw, _mm512_setzero_ps(), check);  // x·0 is NaN exactly for NaN and ±inf
    const __m512 v = _mm512_and_ps(raw, _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff)));
    return {v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v};
  }
};

// Rows of one label form's per-class values.
template <LabelForm kForm>
struct LabelSource {
  static constexpr bool kLogs = kForm != LabelForm::UniformExact;
  LabelRows rows;

  PGN_INLINE Value load(int64_t c, int64_t j, __mmask16 lanes) const {
    __mmask16 keep = lanes;
    if (is_one_hot(kForm)) {
      const __m512i argmax = _mm512_maskz_loadu_epi32(lanes, rows.argmax + j);
      keep = _mm512_mask_cmpneq_epi32_mask(lanes, argmax, _mm512_set1_epi32(static_cast<int32_t>(c)));
    }
    const __m512 inv_norm = _mm512_maskz_loadu_ps(lanes, rows.inv_norm + j);
    __m512 v = _mm512_maskz_mul_ps(keep, _mm512_maskz_loadu_ps(lanes, rows.exp_d + c * rows.exp_stride + j), inv_norm);
    if (kForm == LabelForm::UniformExact) {
      v = _mm512_and_ps(_mm512_sub_ps(v, splat(1.0f / static_cast<float>(rows.classes))),
                        _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff)));
      return {v, _mm512_mask_cmp_ps_mask(lanes, v, _mm512_setzero_ps(), _CMP_GT_OQ), v};
    }
    const __m512 z = _mm512_maskz_loadu_ps(lanes, rows.z + c * rows.plane + j);
    const __m512 m = _mm512_maskz_loadu_ps(lanes, rows.max_logit + j);
    const __m512 log_v = _mm512_sub_ps(_mm512_sub_ps(z, m), _mm512_maskz_loadu_ps(lanes, rows.log_offset + j));
    // With the argmax ahead of every other class by more than ~41 nats (S_other < 2^-60, or 0),
    // e^(z_c − m) may have underflowed while q_c = e^(z_c − m)/S_other is not negligible: there,
    // q_c from its log.
    if (is_one_hot(kForm) && _mm512_mask_cmp_ps_mask(lanes, inv_norm, splat(0x1p60f), _CMP_GT_OQ) != 0)
      v = exp16(log_v, keep);
    return {v, keep, log_v};
  }
};

// How one exponent's term is formed from a value (see PowerSet): fixed at compile time for the
// common sets, or Any (read from the set at run time).
enum class Op : int { One, Two, Half, Pow, Multiple, Any };

PGN_INLINE Op op_of(const FlatPowerSet& set, int k) {
  switch (set.kind[k]) {
    case PowKind::One: return Op::One;
    case PowKind::Two: return Op::Two;
    case PowKind::Half: return Op::Half;
    default: return set.base[k] >= 0 ? Op::Multiple : Op::Pow;
  }
}

template <Op... kOps>
bool matches(const FlatPowerSet& set) {
  constexpr Op ops[] = {kOps...};
  if (set.count != static_cast<int>(sizeof...(kOps))) return false;
  for (int k = 0; k < set.count; ++k)
    if (op_of(set, k) != ops[k]) return false;
  return true;
}

// acc rows (k·stride) += every exponent's power of one value vector at j.
template <bool kLogs, Op... kOps>
PGN_INLINE void accumulate(const Value& x, const FlatPowerSet& set, float* acc, int64_t stride, int64_t j) {
  constexpr int K = sizeof...(kOps);
  constexpr Op ops[K] = {kOps...};
  __m512 term[K] = {};  // the general exponents' terms, for their multiples
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    float* a = acc + k * stride + j;
    __m512 sum = _mm512_loadu_ps(a);
    switch (ops[k] == Op::Any ? op_of(set, k) : ops[k]) {
      case Op::One: sum = _mm512_add_ps(sum, x.v); break;
      case Op::Two: sum = _mm512_fmadd_ps(x.v, x.v, sum); break;
      case Op::Half: sum = _mm512_add_ps(sum, _mm512_sqrt_ps(x.v)); break;
      case Op::Multiple: {
        __m512 base = term[0];
        for (int i = 1; i < k; ++i) base = i == set.base[k] ? term[i] : base;
        sum = add_int_power16(sum, base, set.mult[k]);
        break;
      }
      default:
        term[k] = kLogs ? exp16(_mm512_mul_ps(splat(set.p[k]), x.log), x.pos) : pow_poly16(x.v, x.pos, set.poly[k]);
        sum = _mm512_add_ps(sum, term[k]);
    }
    _mm512_storeu_ps(a, sum);
  }
}

// acc[k·stride + i] = Σ_r v_r(i)^p_k for i < len: row by row, each row's run of the tile read
// contiguously, the sums kept in acc (L1).
template <typename Source, Op... kOps>
void sums(Source& source, int64_t rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride) {
  Source local = source;  // a local copy stays in registers
  const int64_t padded = (len + kLanes - 1) / kLanes * kLanes;
  for (int k = 0; k < set.count; ++k)
    for (int64_t j = 0; j < padded; j += kLanes) _mm512_storeu_ps(acc + k * stride + j, _mm512_setzero_ps());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < len; j += kLanes) {
      const int64_t left = len - j;
      const __mmask16 lanes = left >= kLanes ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      accumulate<Source::kLogs, kOps...>(local.load(r, j, lanes), set, acc, stride, j);
    }
  }
  source = local;
}

// Compiled for the paper's set {0.1, 0.3, 0.5, 1, 2} and single exponents; any other set runs the
// same loop with its operations read at run time.
template <typename Source>
void sums_of(Source& source, int64_t rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride) {
  constexpr Op A = Op::Any;
  if (matches<Op::Pow, Op::Multiple, Op::Half, Op::One, Op::Two>(set))
    return sums<Source, Op::Pow, Op::Multiple, Op::Half, Op::One, Op::Two>(source, rows, len, set, acc, stride);
  if (matches<Op::Pow>(set)) return sums<Source, Op::Pow>(source, rows, len, set, acc, stride);
  if (matches<Op::Half>(set)) return sums<Source, Op::Half>(source, rows, len, set, acc, stride);
  if (matches<Op::One>(set)) return sums<Source, Op::One>(source, rows, len, set, acc, stride);
  if (matches<Op::Two>(set)) return sums<Source, Op::Two>(source, rows, len, set, acc, stride);
  switch (set.count) {
    case 1: return sums<Source, A>(source, rows, len, set, acc, stride);
    case 2: return sums<Source, A, A>(source, rows, len, set, acc, stride);
    case 3: return sums<Source, A, A, A>(source, rows, len, set, acc, stride);
    case 4: return sums<Source, A, A, A, A>(source, rows, len, set, acc, stride);
    case 5: return sums<Source, A, A, A, A, A>(source, rows, len, set, acc, stride);
    case 6: return sums<Source, A, A, A, A, A, A>(source, rows, len, set, acc, stride);
    case 7: return sums<Source, A, A, A, A, A, A, A>(source, rows, len, set, acc, stride);
    default: return sums<Source, A, A, A, A, A, A, A, A>(source, rows, len, set, acc, stride);
  }
}

// Max, argmax (first on ties) and the finiteness check of one vector of pixels, over the classes.
PGN_INLINE void max_over_classes(const float* z, int64_t plane, int64_t classes, __mmask16 lanes, __m512& max,
                                 __m512i& argmax, __m512& check) {
  max = _mm512_maskz_loadu_ps(lanes, z);
  argmax = _mm512_setzero_si512();
  check = _mm512_fmadd_ps(max, _mm512_setzero_ps(), check);
  for (int64_t c = 1; c < classes; ++c) {
    const __m512 v = _mm512_maskz_loadu_ps(lanes, z + c * plane);
    check = _mm512_fmadd_ps(v, _mm512_setzero_ps(), check);
    const __mmask16 more = _mm512_cmp_ps_mask(v, max, _CMP_GT_OQ);
    max = _mm512_mask_mov_ps(max, more, v);
    argmax = _mm512_mask_mov_epi32(argmax, more, _mm512_set1_epi32(static_cast<int32_t>(c)));
  }
}

}  // namespace

bool softmax_stats_avx512(const float* z, int64_t plane, int64_t classes, int64_t len, const SoftmaxArrays& out) {
  __m512 check = _mm512_setzero_ps();
  for (int64_t j = 0; j < len; j += kLanes) {
    const int64_t left = len - j;
    const __mmask16 lanes = left >= kLanes ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    __m512 max;
    __m512i argmax;
    max_over_classes(z + j, plane, classes, lanes, max, argmax, check);
    __m512 sum_other = _mm512_setzero_ps(), ez = _mm512_setzero_ps();
    for (int64_t c = 0; c < classes; ++c) {
      const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, z + c * plane + j), max);
      const __mmask16 other = _mm512_mask_cmpneq_epi32_mask(lanes, argmax, _mm512_set1_epi32(static_cast<int32_t>(c)));
      const __m512 e = exp16(d, lanes);
      _mm512_storeu_ps(out.exp_d + c * out.exp_stride + j, e);
      sum_other = _mm512_mask_add_ps(sum_other, other, sum_other, e);
      ez = _mm512_fmadd_ps(e, d, ez);
    }
    _mm512_mask_storeu_ps(out.max_logit + j, lanes, max);
    _mm512_mask_storeu_epi32(out.argmax + j, lanes, argmax);
    _mm512_mask_storeu_ps(out.sum_other + j, lanes, sum_other);
    _mm512_mask_storeu_ps(out.sum + j, lanes, _mm512_add_ps(sum_other, splat(1.0f)));
    _mm512_mask_storeu_ps(out.ez + j, lanes, ez);
  }
  return _mm512_cmp_ps_mask(check, check, _CMP_ORD_Q) == 0xffff;
}

bool channel_power_sums_avx512(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set,
                               float* acc, int64_t stride) {
  FeatureSource source{x, plane};
  sums_of(source, channels, len, set, acc, stride);
  return _mm512_cmp_ps_mask(source.check, source.check, _CMP_ORD_Q) == 0xffff;
}

void label_power_sums_avx512(const LabelRows& rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride) {
  switch (rows.form) {
    case LabelForm::OneHotExact:
    case LabelForm::OneHotCode: {
      LabelSource<LabelForm::OneHotExact> source{rows};
      return sums_of(source, rows.classes, len, set, acc, stride);
    }
    case LabelForm::UniformExact: {
      LabelSource<LabelForm::UniformExact> source{rows};
      return sums_of(source, rows.classes, len, set, acc, stride);
    }
    default: {
      LabelSource<LabelForm::UniformCode> source{rows};
      return sums_of(source, rows.classes, len, set, acc, stride);
    }
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
