// Building blocks of the CPU tile passes (scores.cc, second_layer.cc): softmax statistics over a
// tile of pixels and power sums Σ|v|^p for a set of exponents, written as loops over contiguous
// pixels so that they vectorize inside the AVX2 and baseline variants of each pass.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "pixel_math.h"

// Whether the passes are compiled twice on x86-64 (AVX2+FMA and baseline, chosen at run time).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PGN_X86_DISPATCH 1
#endif
// The loops are forced inline so that they are compiled inside each variant of the pass.
#if defined(__GNUC__) || defined(__clang__)
#define PGN_INLINE inline __attribute__((always_inline))
#else
#define PGN_INLINE inline
#endif

namespace pgn {

// A set of exponents p whose sums Σ|v|^p are accumulated together over a stream of values v.
// A general p is computed once per value, by its fitted polynomial (pow_poly, p <= 4) or as
// exp(p·log v), except where it is an integer multiple (2..4) of a smaller p of the set: then
// v^p = (v^base)^k by multiplication, so the paper's {0.1, 0.3, 0.5, 1, 2} costs one pow_poly per
// value.
struct PowerSet {
  std::vector<float> p;
  std::vector<PowKind> kind;
  std::vector<int> base;  // index of the p this one is a multiple of, or -1
  std::vector<int> mult;  // that multiple
  std::vector<PowPoly> poly;  // per exponent: its polynomial, when it is a general base with p <= 4
  std::vector<bool> has_poly;
  // Some general base has no polynomial (p > 4): values whose log is unknown need one computed.
  bool needs_log = false;

  int index_of(float value) const {
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i] == value) return static_cast<int>(i);
    return -1;
  }

  void add(float value) {
    if (index_of(value) < 0) p.push_back(value);
  }

  size_t size() const { return p.size(); }

  // Orders the exponents ascending and links multiples to their bases; call after the last add.
  void plan() {
    std::sort(p.begin(), p.end());
    kind.clear(), base.assign(p.size(), -1), mult.assign(p.size(), 1);
    poly.assign(p.size(), PowPoly{}), has_poly.assign(p.size(), false);
    needs_log = false;
    for (size_t j = 0; j < p.size(); ++j) {
      kind.push_back(pow_kind(p[j]));
      if (kind[j] != PowKind::General) continue;
      for (size_t i = 0; i < j && base[j] < 0; ++i) {
        const float k = std::nearbyint(p[j] / p[i]);
        if (kind[i] == PowKind::General && base[i] < 0 && k >= 2 && k <= 4 && std::fabs(p[j] - k * p[i]) <= 1e-6f * p[j])
          base[j] = static_cast<int>(i), mult[j] = static_cast<int>(k);
      }
      if (base[j] >= 0) continue;
      has_poly[j] = p[j] <= 4.0f;
      if (has_poly[j]) poly[j] = fit_pow_poly(p[j]);
      needs_log = needs_log || !has_poly[j];
    }
  }

  // m^p on [1, 2) interpolated at the 7 Chebyshev nodes (near-minimax: 2.5e-7 relative for p <= 4),
  // as a polynomial in u = m − 1.5, and p split so that p_hi·e is exact for every float exponent e.
  static PowPoly fit_pow_poly(float p) {
    constexpr int n = PowPoly::kDegree + 1;
    double a[n][n + 1];
    for (int k = 0; k < n; ++k) {
      const double m = 1.5 + 0.5 * std::cos((2 * k + 1) * 3.14159265358979323846 / (2 * n));
      double power = 1.0;
      for (int j = 0; j < n; ++j) a[k][j] = power, power *= m - 1.5;
      a[k][n] = std::pow(m, static_cast<double>(p));
    }
    for (int col = 0; col < n; ++col) {  // Gauss–Jordan with partial pivoting, in double
      int pivot = col;
      for (int r = col + 1; r < n; ++r)
        if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
      for (int j = 0; j <= n; ++j) std::swap(a[col][j], a[pivot][j]);
      for (int r = 0; r < n; ++r) {
        if (r == col) continue;
        const double f = a[r][col] / a[col][col];
        for (int j = col; j <= n; ++j) a[r][j] -= f * a[col][j];
      }
    }
    PowPoly poly{};
    for (int j = 0; j < n; ++j) poly.c[j] = static_cast<float>(a[j][n] / a[j][j]);
    poly.p_hi = bits_to_float(float_to_bits(p) & ~0xfff);  // 12 significant bits: p_hi·e exact
    poly.p_lo = p - poly.p_hi;
    return poly;
  }
};

// v^p = m^p · 2^(p·e) (v = m·2^e, m in [1, 2)) by table lookups, for kernels that look up 16 and
// 32 entries per instruction (AVX-512), instead of pow_poly's degree-6 polynomial, reduction and
// exp2 polynomial:
// - m^p by a quadratic in m fitted on each of 32 equal buckets of [1, 2) (Chebyshev nodes; 1.2e-7
//   relative with float coefficients), its coefficients c0..c2 looked up by the bucket;
// - 2^(p·e) for every integer e a float's exponent can take (−149..127, subnormals included) as
//   the product of two entries: with e + kBias = 16a + b, hi[a] = 2^(p·(16a − kBias)) and
//   lo[b] = 2^(p·b). The bias keeps a >= 1 for every finite float, and hi[0] = 0 is where 0
//   (exponent −inf) lands: its power is 0 without a mask.
// Built for small p only, where every entry and product is a normal float.
struct PowTables {
  static constexpr float kMaxP = 0.4f;  // 2^(0.4·±165) stays normal
  static constexpr int kBias = 149 + 16;
  static constexpr int kBuckets = 32;
  float lo[16], hi[32], c0[kBuckets], c1[kBuckets], c2[kBuckets];

  static PowTables of(float p) {
    PowTables t{};
    for (int b = 0; b < 16; ++b) t.lo[b] = static_cast<float>(std::exp2(static_cast<double>(p) * b));
    for (int a = 1; a < 32; ++a) t.hi[a] = static_cast<float>(std::exp2(static_cast<double>(p) * (16 * a - kBias)));
    for (int i = 0; i < kBuckets; ++i) t.fit_bucket(i, p);
    return t;
  }

  // The quadratic through m^p at the three Chebyshev nodes of bucket i (Lagrange form, expanded).
  void fit_bucket(int i, float p) {
    const double width = 1.0 / kBuckets, mid = 1.0 + (i + 0.5) * width;
    double x[3], y[3];
    for (int k = 0; k < 3; ++k) {
      x[k] = mid + 0.5 * width * std::cos((2 * k + 1) * 3.14159265358979323846 / 6);
      y[k] = std::pow(x[k], static_cast<double>(p));
    }
    double a0 = 0, a1 = 0, a2 = 0;
    for (int k = 0; k < 3; ++k) {
      const double u = x[(k + 1) % 3], v = x[(k + 2) % 3];
      const double w = y[k] / ((x[k] - u) * (x[k] - v));  // w·(m − u)(m − v)
      a2 += w, a1 -= w * (u + v), a0 += w * u * v;
    }
    c0[i] = static_cast<float>(a0), c1[i] = static_cast<float>(a1), c2[i] = static_cast<float>(a2);
  }
};

// A planned PowerSet as plain data, for the hand-vectorized kernels (power_sums.h), which
// take no std containers: they are compiled for another target than the code around them.
struct FlatPowerSet {
  static constexpr int kMax = 8;
  int count = 0;
  float p[kMax];
  PowKind kind[kMax];
  int base[kMax];  // for a multiple: the index of its base, always lower than its own
  int mult[kMax];
  PowPoly poly[kMax];
  bool has_tables[kMax];  // a general base with p <= PowTables::kMaxP
  PowTables tables[kMax];
};

// The flat form of a planned set, or false when it does not fit one: more than kMax exponents, or
// (for values whose logs are not known) a general exponent with no polynomial (p > 4).
inline bool flatten(const PowerSet& set, bool logs_known, FlatPowerSet& out) {
  if ((set.needs_log && !logs_known) || set.size() > static_cast<size_t>(FlatPowerSet::kMax)) return false;
  out.count = static_cast<int>(set.size());
  for (int k = 0; k < out.count; ++k) {
    out.p[k] = set.p[k], out.kind[k] = set.kind[k], out.base[k] = set.base[k], out.mult[k] = set.mult[k];
    out.poly[k] = set.poly[k];
    out.has_tables[k] = set.has_poly[k] && set.p[k] <= PowTables::kMaxP;
    if (out.has_tables[k]) out.tables[k] = PowTables::of(set.p[k]);
  }
  // 0.5 as the fifth power of a general base 0.1, with tables: four multiplications, which the
  // kernels share with the third power, instead of a square root.
  for (int k = 0; k < out.count; ++k)
    for (int i = 0; i < k && out.kind[k] == PowKind::Half && out.base[k] < 0; ++i)
      if (out.has_tables[i] && out.base[i] < 0 && out.p[i] * 5.0f == 0.5f) out.base[k] = i, out.mult[k] = 5;
  return true;
}

PGN_INLINE float int_power(float v, int k) {
  const float v2 = v * v;
  return k == 2 ? v2 : k == 3 ? v2 * v : v2 * v2;
}

// acc[k·stride + i] += v_i^p_k for i < len, v already >= 0. log_v: the values' logs (−inf for 0)
// when they are known exactly (general exponents then cost one exp), or nullptr (their polynomials are used; the
// set must not need a log then: see add_powers_of). terms (rows of `stride`) keeps each general
// exponent's values for the multiples formed from them.
template <typename Acc>
PGN_INLINE void add_powers(const PowerSet& e, const float* v, const float* log_v, int64_t len, Acc* acc, int64_t stride,
                           float* terms) {
  for (size_t k = 0; k < e.size(); ++k) {
    Acc* a = acc + static_cast<int64_t>(k) * stride;
    float* term = terms + static_cast<int64_t>(k) * stride;
    const float p = e.p[k];
    switch (e.kind[k]) {
      case PowKind::One:
        for (int64_t i = 0; i < len; ++i) a[i] += v[i];
        break;
      case PowKind::Two:
        for (int64_t i = 0; i < len; ++i) a[i] += v[i] * v[i];
        break;
      case PowKind::Half:
        for (int64_t i = 0; i < len; ++i) a[i] += sqrtf(v[i]);
        break;
      case PowKind::General:
        if (e.base[k] < 0 && log_v == nullptr) {
          const PowPoly poly = e.poly[k];  // a copy: stores to term/a cannot alias it, so it stays in registers
          for (int64_t i = 0; i < len; ++i) {
            term[i] = pow_poly(v[i], poly);
            a[i] += term[i];
          }
        } else if (e.base[k] < 0) {
          // From the log even where v itself underflowed to 0: e^(p·log v) need not have.
          for (int64_t i = 0; i < len; ++i) {
            term[i] = fast_exp(p * log_v[i]);
            a[i] += term[i];
          }
        } else {
          const float* b = terms + static_cast<int64_t>(e.base[k]) * stride;
          const int m = e.mult[k];
          for (int64_t i = 0; i < len; ++i) {
            term[i] = int_power(b[i], m);
            a[i] += term[i];
          }
        }
        break;
    }
  }
}

// add_powers for values whose logs are unknown: by the polynomials, or with logs computed into
// log_scratch when some exponent has none.
template <typename Acc>
PGN_INLINE void add_powers_of(const PowerSet& e, const float* v, float* log_scratch, int64_t len, Acc* acc,
                              int64_t stride, float* terms) {
  if (!e.needs_log) return add_powers(e, v, static_cast<const float*>(nullptr), len, acc, stride, terms);
  for (int64_t i = 0; i < len; ++i) log_scratch[i] = v[i] > 0.0f ? fast_log(v[i]) : -INFINITY;
  add_powers(e, v, log_scratch, len, acc, stride, terms);
}

// out[i] = (sum[i] + extra)^(1/p) for i < len: finish_norm with the exponent's kind fixed outside
// the loop, so that the loop vectorizes.
template <PowKind kKind>
PGN_INLINE void finish_norms_of(const float* sum, float extra, int64_t len, float p, float* out) {
  for (int64_t i = 0; i < len; ++i) out[i] = finish_norm(sum[i] + extra, kKind, p);
}

// s^k for a whole k < 32 by repeated squaring, written without branches so that loops over s
// vectorize: a handful of multiplications instead of a log and an exp, and closer to exact.
PGN_INLINE float pow_int(float s, int k) {
  const float s2 = s * s, s4 = s2 * s2, s8 = s4 * s4, s16 = s8 * s8;
  const float low = ((k & 1) ? s : 1.0f) * ((k & 2) ? s2 : 1.0f);
  const float high = ((k & 4) ? s4 : 1.0f) * ((k & 8) ? s8 : 1.0f);
  return low * high * ((k & 16) ? s16 : 1.0f);
}

PGN_INLINE void finish_norms(const float* sum, float extra, int64_t len, float p, float* out) {
  switch (pow_kind(p)) {
    case PowKind::One: return finish_norms_of<PowKind::One>(sum, extra, len, p, out);
    case PowKind::Two: return finish_norms_of<PowKind::Two>(sum, extra, len, p, out);
    case PowKind::Half: return finish_norms_of<PowKind::Half>(sum, extra, len, p, out);
    default: break;
  }
  const float root = 1.0f / p;  // the paper's p = 0.1: 10
  if (root == std::nearbyint(root) && root < 32.0f) {
    const int k = static_cast<int>(root);
    for (int64_t i = 0; i < len; ++i) out[i] = pow_int(sum[i] + extra, k);
    return;
  }
  finish_norms_of<PowKind::General>(sum, extra, len, p, out);
}

// Softmax statistics (pixel_math.h's SoftmaxStats, as arrays) of a tile of `len` pixels of logits z
// [classes, plane]; sets `bad` on a non-finite logit. Tile: any struct with the arrays max_logit,
// argmax, sum, sum_other and ez.
template <typename Tile>
PGN_INLINE void softmax_stats(const float* z, int64_t plane, int64_t classes, int64_t len, Tile& t, bool& bad) {
  for (int64_t i = 0; i < len; ++i) {
    t.max_logit[i] = z[i];
    t.argmax[i] = 0;
  }
  int flag = 0;
  for (int64_t c = 0; c < classes; ++c) {
    const float* zc = z + c * plane;
    for (int64_t i = 0; i < len; ++i) {
      flag |= non_finite(zc[i]);
      const bool more = zc[i] > t.max_logit[i];
      t.max_logit[i] = more ? zc[i] : t.max_logit[i];
      t.argmax[i] = more ? static_cast<int32_t>(c) : t.argmax[i];
    }
  }
  bad = bad || flag;
  for (int64_t i = 0; i < len; ++i) t.sum_other[i] = t.ez[i] = 0.0f;
  for (int64_t c = 0; c < classes; ++c) {
    const float* zc = z + c * plane;
    for (int64_t i = 0; i < len; ++i) {
      const float d = zc[i] - t.max_logit[i];
      const float e = fast_exp(d);
      t.sum_other[i] += t.argmax[i] == c ? 0.0f : e;
      t.ez[i] += e * d;
    }
  }
  for (int64_t i = 0; i < len; ++i) t.sum[i] = 1.0f + t.sum_other[i];
}

}  // namespace pgn
