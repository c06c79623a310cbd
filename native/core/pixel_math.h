// Per-element and per-pixel math shared by the CPU path and the CUDA kernels.
//
// Everything here is branch-free arithmetic on floats so that (a) GCC/Clang vectorize the CPU tile
// loops that call it, and (b) nvcc compiles the very same functions for the device. The fast log/exp
// are the Cephes single-precision polynomials (about 1-2 ulp), far inside the 1e-5 / 1e-4 relative
// bounds the scores must meet against a float64 reference.
#pragma once

#include <cstdint>
#include <cstring>
#include <cmath>

#if defined(__CUDACC__)
#define PGN_HD __host__ __device__ __forceinline__
#else
#define PGN_HD inline
#endif

namespace pgn {

PGN_HD float bits_to_float(int32_t i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
#endif
}

PGN_HD int32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(f);
#else
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
#endif
}

// Natural log for x > 0 (normal or subnormal). Callers mask x == 0 themselves.
PGN_HD float fast_log(float x) {
  const float kMinNormal = 1.17549435e-38f;
  const bool sub = x < kMinNormal;  // subnormals: rescale by 2^23 so the exponent field is valid
  x = sub ? x * 8388608.0f : x;
  const int32_t bits = float_to_bits(x);
  float e = static_cast<float>(((bits >> 23) & 0xff) - 126) - (sub ? 23.0f : 0.0f);
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);  // mantissa in [0.5, 1)
  const bool low = m < 0.707106781186547524f;
  e = low ? e - 1.0f : e;
  m = low ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  return m + y + 0.693359375f * e;
}

// log(1 + x) for x >= 0, accurate also when 1 + x rounds to 1 (Goldberg's correction): needed for
// the log of the softmax denominator S = 1 + Σ_{c≠ĉ} e^{z_c − m} when one class dominates.
PGN_HD float fast_log1p(float x) {
  const float u = 1.0f + x;
  const float d = u - 1.0f;
  return d == 0.0f ? x : fast_log(u) * (x / d);
}

// e^x; x below about -87.3 (including -inf) gives exactly 0, x above 88.7 saturates near FLT_MAX.
// NaN gives 0 too (callers reject non-finite inputs and discard the results): written !(x >= ·) so
// that NaN never reaches the float → int conversion below, which would be undefined behaviour.
PGN_HD float fast_exp(float x) {
  const bool tiny = !(x >= -87.3f);
  float t = x > 88.7f ? 88.7f : x;
  t = tiny ? -87.3f : t;
  // Round to nearest with the 1.5·2^23 trick instead of floorf: same range reduction, and it
  // vectorizes on baseline SSE2 where floorf is a library call.
  const float n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  t = t - n * 0.693359375f;
  t = t - n * -2.12194440e-4f;
  const float z = t * t;
  float y = 1.9875691500e-4f;
  y = y * t + 1.3981999507e-3f;
  y = y * t + 8.3334519073e-3f;
  y = y * t + 4.1665795894e-2f;
  y = y * t + 1.6666665459e-1f;
  y = y * t + 5.0000001201e-1f;
  y = y * z + t + 1.0f;
  const float scaled = y * bits_to_float((static_cast<int32_t>(n) + 127) << 23);
  return tiny ? 0.0f : scaled;
}

// 2^f for |f| <= 0.5: degree-5 polynomial interpolating 2^f at the Chebyshev nodes (2.3e-7 relative
// in float arithmetic).
PGN_HD float exp2_reduced(float f) {
  float y = 1.3390863314270973e-3f;
  y = y * f + 9.676031768321991e-3f;
  y = y * f + 5.5503569543361664e-2f;
  y = y * f + 2.402210682630539e-1f;
  y = y * f + 6.931471824645996e-1f;
  return y * f + 1.0000001192092896f;
}

// v^p for one fixed p, without a log: v = m·2^e with m in [1, 2), so v^p = m^p · 2^(p·e), where m^p
// is a polynomial fitted to that p (degree 6 in m − 1.5, see tile_math.h's PowerSet) and 2^(p·e) is
// split exactly into 2^n · 2^f (p = p_hi + p_lo with p_hi·e exact in float). About twice as fast
// as exp(p·log v) and more accurate (about 3e-7 relative for p <= 4).
struct PowPoly {
  static constexpr int kDegree = 6;
  float c[kDegree + 1];
  float p_hi, p_lo;
};

PGN_HD float pow_poly(float v, const PowPoly& P) {
  const bool sub = v < 1.17549435e-38f;  // subnormals: rescale by 2^23 so the exponent field is valid
  const float vs = sub ? v * 8388608.0f : v;
  const int32_t bits = float_to_bits(vs);
  const float e = static_cast<float>(((bits >> 23) & 0xff) - 127) - (sub ? 23.0f : 0.0f);
  const float u = bits_to_float((bits & 0x007fffff) | 0x3f800000) - 1.5f;
  float q = P.c[PowPoly::kDegree];
  for (int j = PowPoly::kDegree - 1; j >= 0; --j) q = q * u + P.c[j];
  const float th = P.p_hi * e;
  const float n = (th + 12582912.0f) - 12582912.0f;  // round to nearest (see fast_exp)
  const float f = (th - n) + P.p_lo * e;
  const bool tiny = n < -126.0f;  // below the normal range: the term is negligible, 0
  const float nc = tiny ? -126.0f : (n > 127.0f ? 127.0f : n);
  const float r = q * exp2_reduced(f) * bits_to_float((static_cast<int32_t>(nc) + 127) << 23);
  return v > 0.0f && !tiny ? r : 0.0f;
}

// How a p-norm's terms |v|^p are formed: exact special cases for the common p, exp(p·log v) else.
enum class PowKind : int { One, Two, Half, General };

PGN_HD PowKind pow_kind(float p) {
  return p == 1.0f ? PowKind::One : p == 2.0f ? PowKind::Two : p == 0.5f ? PowKind::Half : PowKind::General;
}

// |v|^p for v >= 0, with 0^p = 0.
PGN_HD float pow_term(float v, PowKind kind, float p) {
  switch (kind) {
    case PowKind::One: return v;
    case PowKind::Two: return v * v;
    case PowKind::Half: return sqrtf(v);
    default: return v > 0.0f ? fast_exp(p * fast_log(v)) : 0.0f;
  }
}

// v^p when log(v) is already known (softmax probabilities come with exact logs from the logits).
PGN_HD float pow_term_from_log(float v, float log_v, PowKind kind, float p) {
  switch (kind) {
    case PowKind::One: return v;
    case PowKind::Two: return v * v;
    case PowKind::Half: return sqrtf(v);
    default: return fast_exp(p * log_v);
  }
}

// (Σ terms)^(1/p): the last step of a p-norm, once per pixel. Times 1/p rather than divided by p:
// in a loop over pixels 1/p is computed once, and a division per pixel would bound the loop.
PGN_HD float finish_norm(float sum, PowKind kind, float p) {
  switch (kind) {
    case PowKind::One: return sum;
    case PowKind::Two: return sqrtf(sum);
    case PowKind::Half: return sum * sum;
    default: return sum > 0.0f ? fast_exp(fast_log(sum) * (1.0f / p)) : 0.0f;
  }
}

// True when x is NaN or ±inf, written without a branch or a library call.
PGN_HD bool non_finite(float x) { return !(x * 0.0f == 0.0f); }

// Softmax statistics of one pixel, accumulated class by class:
//   max logit m, argmax, S = Σ e^{z_c − m}, S_other = S − 1 (the sum without the argmax class,
//   kept separately so that 1 − max softmax = S_other / S has no cancellation), and
//   ez = Σ e^{z_c − m}(z_c − m) for the entropy H = log S − ez / S.
struct SoftmaxStats {
  float max_logit;
  int32_t argmax;
  float sum;
  float sum_other;
  float ez;
};

// log S, accurate for S close to 1.
PGN_HD float log_sum(const SoftmaxStats& st) { return fast_log1p(st.sum_other); }

// Entropy, 1 − max softmax, negative max logit and energy from the statistics. Higher = more OoD.
// H = log S − ez/S: ez ≤ 0 (every z_c − m ≤ 0), so both terms are ≥ 0 and nothing cancels.
PGN_HD float entropy_score(const SoftmaxStats& st) { return log_sum(st) - st.ez / st.sum; }
PGN_HD float msp_score(const SoftmaxStats& st) { return st.sum_other / st.sum; }
PGN_HD float maxlogit_score(const SoftmaxStats& st) { return -st.max_logit; }
PGN_HD float energy_score(const SoftmaxStats& st) { return -(st.max_logit + log_sum(st)); }

// The label factor ‖s − y‖_p for the four label forms:
//   OneHotExact:  y = e_ĉ   → |s − y| is s_c for c ≠ ĉ and 1 − s_ĉ = Σ_{c≠ĉ} s_c for ĉ
//   OneHotCode:   authors' s·(1 − onehot) → s_c for c ≠ ĉ, 0 for ĉ
//   UniformExact: y = 1/C   → |s_c − 1/C|
//   UniformCode:  authors' (C−1)/C · s
// The one-hot forms are computed relative to r = 1 − s_ĉ = S_other/S: with q_c = e^{z_c−m}/S_other,
// ‖s − e_ĉ‖_p = r·(Σ_{c≠ĉ} q_c^p + 1)^{1/p}. Every q_c ≤ 1 and the largest term is 1, so nothing
// underflows when one class dominates (s_c^p for s_c ~ 1e-17 and p = 3 would be 0 in float).
enum class LabelForm : int { OneHotExact, OneHotCode, UniformExact, UniformCode };

PGN_HD bool is_one_hot(LabelForm form) { return form == LabelForm::OneHotExact || form == LabelForm::OneHotCode; }

// log S_other, or 0 when every other class underflowed (then r = 0 and the factor is 0).
PGN_HD float log_sum_other(const SoftmaxStats& st) { return st.sum_other > 0.0f ? fast_log(st.sum_other) : 0.0f; }

// The per-pixel offset of label_log: log S_other (one-hot forms) or log S. One log per pixel, so
// passes over the classes compute it once.
PGN_HD float label_log_offset(LabelForm form, const SoftmaxStats& st) {
  return is_one_hot(form) ? log_sum_other(st) : log_sum(st);
}

// log of the per-class value a form raises to p, from d = z_c − m: log q_c (one-hot) or log s_c.
PGN_HD float label_log(LabelForm form, float d, const SoftmaxStats& st) { return d - label_log_offset(form, st); }

// Σ-term of class c, given v = e^{label_log} and its log.
PGN_HD float label_term(LabelForm form, float v, float log_v, bool is_argmax, float inv_c, PowKind kind, float p) {
  switch (form) {
    case LabelForm::OneHotExact:
    case LabelForm::OneHotCode:
      return is_argmax ? 0.0f : pow_term_from_log(v, log_v, kind, p);
    case LabelForm::UniformExact:
      return pow_term(fabsf(v - inv_c), kind, p);
    default:
      return pow_term_from_log(v, log_v, kind, p);
  }
}

// What a form adds to the summed class terms before the root: the ĉ term (q-relative: 1) of the
// exact one-hot label.
PGN_HD float label_sum_extra(LabelForm form) { return form == LabelForm::OneHotExact ? 1.0f : 0.0f; }

// The factor a form's root is scaled by: r = 1 − s_ĉ for the q-relative one-hot forms, (C−1)/C for
// the authors' uniform form.
PGN_HD float label_scale(LabelForm form, const SoftmaxStats& st, int64_t classes) {
  return is_one_hot(form) ? st.sum_other / st.sum
         : form == LabelForm::UniformExact ? 1.0f
                                           : static_cast<float>(classes - 1) / static_cast<float>(classes);
}

// The label factor from the summed terms.
PGN_HD float label_norm_finish(LabelForm form, float sum, const SoftmaxStats& st, int64_t classes, PowKind kind,
                               float p) {
  return label_scale(form, st, classes) * finish_norm(sum + label_sum_extra(form), kind, p);
}

}  // namespace pgn
