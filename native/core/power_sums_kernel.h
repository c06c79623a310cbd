// The kernels of power_sums.h, written once over a SIMD traits type S and compiled per instruction
// set: power_sums_avx512.cc and power_sums_avx2.cc switch the target, define S and include this.
// S gives the vector (V), lane-mask (M) and int-vector (I) types, kLanes, and the operations used
// below; everything stays in an anonymous namespace, so each file has its own copy.
#pragma once

#include <cstdint>

#include "power_sums.h"

namespace pgn {

namespace {

// How far ahead along a feature row the software prefetch reaches (floats). A tile reads
// `channels` rows far apart: more streams than the hardware prefetcher follows.
constexpr int64_t kPrefetchAhead = 1024;

// The vector forms of pixel_math.h's functions, over the traits' two ISA-specific steps: split
// (v = m·2^e, m in [1, 2), subnormals included) and scale (y·2^n for integer-valued n, 0 outside
// `keep` and below the float range).

template <typename S>
PGN_INLINE typename S::V round_nearest(typename S::V x) {  // the 1.5·2^23 trick: two adds
  return S::sub(S::add(x, S::set1(12582912.0f)), S::set1(12582912.0f));
}

template <typename S>
PGN_INLINE typename S::V exp2_reduced_vec(typename S::V f) {
  typename S::V y = S::set1(1.3390863314270973e-3f);
  y = S::fma(y, f, S::set1(9.676031768321991e-3f));
  y = S::fma(y, f, S::set1(5.5503569543361664e-2f));
  y = S::fma(y, f, S::set1(2.402210682630539e-1f));
  y = S::fma(y, f, S::set1(6.931471824645996e-1f));
  return S::fma(y, f, S::set1(1.0000001192092896f));
}

// fast_exp for x <= 0 in the lanes of `keep` (Cody–Waite reduction, Cephes polynomial).
template <typename S>
PGN_INLINE typename S::V exp_vec(typename S::V x, typename S::M keep) {
  using V = typename S::V;
  const V n = round_nearest<S>(S::mul(x, S::set1(1.44269504088896341f)));
  V t = S::fma(n, S::set1(-0.693359375f), x);
  t = S::fma(n, S::set1(2.12194440e-4f), t);
  V y = S::set1(1.9875691500e-4f);
  y = S::fma(y, t, S::set1(1.3981999507e-3f));
  y = S::fma(y, t, S::set1(8.3334519073e-3f));
  y = S::fma(y, t, S::set1(4.1665795894e-2f));
  y = S::fma(y, t, S::set1(1.6666665459e-1f));
  y = S::fma(y, t, S::set1(5.0000001201e-1f));
  y = S::fma(y, S::mul(t, t), S::add(t, S::set1(1.0f)));
  return S::scale(y, n, keep);
}

// pow_poly for v >= 0 in the lanes of `pos` (v > 0).
template <typename S>
PGN_INLINE typename S::V pow_poly_vec(typename S::V v, typename S::M pos, const PowPoly& P) {
  using V = typename S::V;
  V m, e;
  S::split(v, m, e);
  const V u = S::sub(m, S::set1(1.5f));
  V q = S::set1(P.c[PowPoly::kDegree]);
  for (int j = PowPoly::kDegree - 1; j >= 0; --j) q = S::fma(q, u, S::set1(P.c[j]));
  const V th = S::mul(S::set1(P.p_hi), e);  // exact: p_hi has 12 significant bits
  const V n = round_nearest<S>(th);
  const V f = S::fma(S::set1(P.p_lo), e, S::sub(th, n));
  return S::scale(S::mul(q, exp2_reduced_vec<S>(f)), n, pos);
}

// One exponent's PowTables in registers: 16 lanes, so only for traits with table lookups
// (S::kTables, AVX-512).
template <typename S>
struct PowTableRegs {
  typename S::V lo, hi[2], c0[2], c1[2], c2[2];

  explicit PowTableRegs(const PowTables& t)
      : lo(S::load_full(t.lo)),
        hi{S::load_full(t.hi), S::load_full(t.hi + 16)},
        c0{S::load_full(t.c0), S::load_full(t.c0 + 16)},
        c1{S::load_full(t.c1), S::load_full(t.c1 + 16)},
        c2{S::load_full(t.c2), S::load_full(t.c2 + 16)} {}
};

// v^p for v >= 0 from the tables: the mantissa's top five bits pick its quadratic; the exponent
// e + kBias is brought into the low bits of a float by the 1.5·2^23 trick and its two digits in
// base 16 pick the factors of 2^(p·e).
template <typename S>
PGN_INLINE typename S::V pow_table_vec(typename S::V v, const PowTableRegs<S>& t) {
  using V = typename S::V;
  V m, e;
  S::split(v, m, e);
  const V bucket = S::shift_right(m, 23 - 5);  // low five bits: the mantissa's top five
  const V q = S::fma(S::fma(S::lookup32(t.c2[0], t.c2[1], bucket), m, S::lookup32(t.c1[0], t.c1[1], bucket)), m,
                     S::lookup32(t.c0[0], t.c0[1], bucket));
  const V digits = S::add(e, S::set1(12582912.0f + PowTables::kBias));  // low bits: e + kBias
  return S::mul(q, S::mul(S::lookup16(t.lo, digits), S::lookup32(t.hi[0], t.hi[1], S::shift_right(digits, 4))));
}

// One vector of a row's values: v >= 0; `pos` the lanes whose power terms are non-zero (v > 0, or
// for values with a known log, every kept lane); log v where known.
template <typename S>
struct Value {
  typename S::V v;
  typename S::M pos;
  typename S::V log;
};

// Rows of feature values |x|, checked for NaN and ±inf (kCheck; see kernel_channel_sums).
template <typename S>
struct FeatureSource {
  static constexpr bool kLogs = false;
  const float* x;
  int64_t plane;
  typename S::V check = S::zero();

  template <bool kCheck>
  PGN_INLINE Value<S> load(int64_t f, int64_t j, typename S::M lanes) {
    const float* at = x + f * plane + j;
    S::prefetch(at + kPrefetchAhead);
    const typename S::V raw = S::load(lanes, at);
    if (kCheck) check = S::fma(raw, S::zero(), check);  // x·0 is NaN exactly for NaN and ±inf
    const typename S::V v = S::abs(raw);
    return {v, S::gt(lanes, v, S::zero()), v};
  }
};

// Rows of one label form's per-class values.
template <typename S, LabelForm kForm>
struct LabelSource {
  static constexpr bool kLogs = kForm != LabelForm::UniformExact;
  LabelRows rows;

  template <bool>
  PGN_INLINE Value<S> load(int64_t c, int64_t j, typename S::M lanes) const {
    using V = typename S::V;
    typename S::M keep = lanes;
    if (is_one_hot(kForm)) keep = S::neq_i32(lanes, S::load_i32(lanes, rows.argmax + j), static_cast<int32_t>(c));
    const V inv_norm = S::load(lanes, rows.inv_norm + j);
    V v = S::maskz(keep, S::mul(S::load(lanes, rows.exp_d + c * rows.exp_stride + j), inv_norm));
    if (kForm == LabelForm::UniformExact) {
      v = S::abs(S::sub(v, S::set1(1.0f / static_cast<float>(rows.classes))));
      return {v, S::gt(lanes, v, S::zero()), v};
    }
    const V z = S::load(lanes, rows.z + c * rows.plane + j);
    const V log_v = S::sub(S::sub(z, S::load(lanes, rows.max_logit + j)), S::load(lanes, rows.log_offset + j));
    // With the argmax ahead of every other class by more than ~41 nats (S_other < 2^-60, or 0),
    // e^(z_c − m) may have underflowed while q_c = e^(z_c − m)/S_other is not negligible: there,
    // q_c from its log.
    if (is_one_hot(kForm) && S::any(S::gt(lanes, inv_norm, S::set1(0x1p60f)))) v = exp_vec<S>(log_v, keep);
    return {v, keep, log_v};
  }
};

// How one exponent's term is formed from a value (see PowerSet): fixed at compile time for the
// common sets, or Any (read from the set at run time). Times2..Times5: a multiple of a general base.
enum class Op : int { One, Two, Half, Pow, PowTable, Times2, Times3, Times4, Times5, Any };

// Whether an exponent of this op may be the base of a multiple.
constexpr bool may_be_base(Op op) { return op == Op::Pow || op == Op::PowTable || op == Op::Any; }

PGN_INLINE Op op_of(const FlatPowerSet& set, int k) {
  if (set.base[k] >= 0) return static_cast<Op>(static_cast<int>(Op::Times2) + set.mult[k] - 2);
  switch (set.kind[k]) {
    case PowKind::One: return Op::One;
    case PowKind::Two: return Op::Two;
    case PowKind::Half: return Op::Half;
    default: return set.has_tables[k] ? Op::PowTable : Op::Pow;
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

// sum + v^k for k in 2..5, the last multiplication fused with the addition.
template <typename S, int k>
PGN_INLINE typename S::V add_int_power(typename S::V sum, typename S::V v) {
  if (k == 2) return S::fma(v, v, sum);
  const typename S::V v2 = S::mul(v, v);
  if (k == 3) return S::fma(v2, v, sum);
  return k == 4 ? S::fma(v2, v2, sum) : S::fma(S::mul(v2, v2), v, sum);
}

// The term of exponent k's base, among those that may be one.
template <typename S, Op... kOps>
PGN_INLINE typename S::V base_term(const typename S::V* term, const FlatPowerSet& set, int k) {
  constexpr Op ops[] = {kOps...};
  typename S::V base = term[0];
  for (int i = 1; i < k; ++i)
    if (may_be_base(ops[i])) base = i == set.base[k] ? term[i] : base;
  return base;
}

// sum[k] += the power p_k of one value vector, for every exponent of the set.
template <typename S, bool kLogs, Op... kOps>
PGN_INLINE void add_terms(const Value<S>& x, const FlatPowerSet& set, typename S::V* sum) {
  using V = typename S::V;
  constexpr int K = sizeof...(kOps);
  constexpr Op ops[K] = {kOps...};
  V term[K] = {};  // the general exponents' terms, for their multiples
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    switch (ops[k] == Op::Any ? op_of(set, k) : ops[k]) {
      case Op::One: sum[k] = S::add(sum[k], x.v); break;
      case Op::Two: sum[k] = S::fma(x.v, x.v, sum[k]); break;
      case Op::Half: sum[k] = S::add(sum[k], S::sqrt(x.v)); break;
      case Op::Times2: sum[k] = add_int_power<S, 2>(sum[k], base_term<S, kOps...>(term, set, k)); break;
      case Op::Times3: sum[k] = add_int_power<S, 3>(sum[k], base_term<S, kOps...>(term, set, k)); break;
      case Op::Times4: sum[k] = add_int_power<S, 4>(sum[k], base_term<S, kOps...>(term, set, k)); break;
      case Op::Times5: sum[k] = add_int_power<S, 5>(sum[k], base_term<S, kOps...>(term, set, k)); break;
      case Op::PowTable:
        if constexpr (!kLogs && S::kTables) {
          term[k] = pow_table_vec<S>(x.v, PowTableRegs<S>(set.tables[k]));
          sum[k] = S::add(sum[k], term[k]);
          break;
        }
        [[fallthrough]];
      default:
        term[k] = kLogs ? exp_vec<S>(S::mul(S::set1(set.p[k]), x.log), x.pos) : pow_poly_vec<S>(x.v, x.pos, set.poly[k]);
        sum[k] = S::add(sum[k], term[k]);
    }
  }
}

// acc rows (k·stride) += every exponent's power of the value vectors at j of kRows rows: one
// load and store of the sums for all of them.
template <typename S, typename Source, int kRows, Op... kOps>
PGN_INLINE void accumulate(Source& source, int64_t r, int64_t j, int64_t len, const FlatPowerSet& set, float* acc,
                           int64_t stride) {
  constexpr int K = sizeof...(kOps);
  // A set with p = 1 sums |x| itself, which carries any NaN or ±inf to the end: the feature
  // values need no check of their own then (kernel_channel_sums).
  constexpr bool kCheck = !((kOps == Op::One) || ...);
  typename S::V sum[K];
  for (int k = 0; k < K; ++k) sum[k] = S::load_full(acc + k * stride + j);
  for (int n = 0; n < kRows; ++n)
    add_terms<S, Source::kLogs, kOps...>(source.template load<kCheck>(r + n, j, S::lanes(len - j)), set, sum);
  for (int k = 0; k < K; ++k) S::store_full(acc + k * stride + j, sum[k]);
}

// accumulate over a tile's run of kRows rows from r.
template <typename S, typename Source, int kRows, Op... kOps>
PGN_INLINE void add_rows(Source& source, int64_t r, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride) {
  for (int64_t j = 0; j < len; j += S::kLanes) accumulate<S, Source, kRows, kOps...>(source, r, j, len, set, acc, stride);
}

// acc[k·stride + i] = Σ_r v_r(i)^p_k for i < len: four rows at a time (the sums in acc, in L1,
// loaded and stored once for the four), each row's run of the tile read contiguously.
template <typename S, typename Source, Op... kOps>
void sums(Source& source, int64_t rows, int64_t len, const FlatPowerSet& set_in, float* acc, int64_t stride) {
  Source local = source;  // a local copy stays in registers
  const FlatPowerSet set = set_in;  // a copy: stores to acc cannot alias it, so it stays in registers
  const int64_t padded = (len + S::kLanes - 1) / S::kLanes * S::kLanes;
  for (int k = 0; k < set.count; ++k)
    for (int64_t j = 0; j < padded; j += S::kLanes) S::store_full(acc + k * stride + j, S::zero());
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) add_rows<S, Source, 4, kOps...>(local, r, len, set, acc, stride);
  if (rows - r >= 2) add_rows<S, Source, 2, kOps...>(local, r, len, set, acc, stride), r += 2;
  if (r < rows) add_rows<S, Source, 1, kOps...>(local, r, len, set, acc, stride);
  source = local;
}

// Compiled for the paper's set {0.1, 0.3, 0.5, 1, 2} and single exponents; any other set runs the
// same loop with its operations read at run time.
template <typename S, typename Source>
void sums_of(Source& source, int64_t rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride) {
  constexpr Op A = Op::Any;
  if (matches<Op::PowTable, Op::Times3, Op::Times5, Op::One, Op::Two>(set))
    return sums<S, Source, Op::PowTable, Op::Times3, Op::Times5, Op::One, Op::Two>(source, rows, len, set, acc, stride);
  if (matches<Op::PowTable>(set)) return sums<S, Source, Op::PowTable>(source, rows, len, set, acc, stride);
  if (matches<Op::Pow>(set)) return sums<S, Source, Op::Pow>(source, rows, len, set, acc, stride);
  if (matches<Op::Half>(set)) return sums<S, Source, Op::Half>(source, rows, len, set, acc, stride);
  if (matches<Op::One>(set)) return sums<S, Source, Op::One>(source, rows, len, set, acc, stride);
  if (matches<Op::Two>(set)) return sums<S, Source, Op::Two>(source, rows, len, set, acc, stride);
  switch (set.count) {
    case 1: return sums<S, Source, A>(source, rows, len, set, acc, stride);
    case 2: return sums<S, Source, A, A>(source, rows, len, set, acc, stride);
    case 3: return sums<S, Source, A, A, A>(source, rows, len, set, acc, stride);
    case 4: return sums<S, Source, A, A, A, A>(source, rows, len, set, acc, stride);
    case 5: return sums<S, Source, A, A, A, A, A>(source, rows, len, set, acc, stride);
    case 6: return sums<S, Source, A, A, A, A, A, A>(source, rows, len, set, acc, stride);
    case 7: return sums<S, Source, A, A, A, A, A, A, A>(source, rows, len, set, acc, stride);
    default: return sums<S, Source, A, A, A, A, A, A, A, A>(source, rows, len, set, acc, stride);
  }
}

// Whether rows [0, rows) of len values (row r at x + r·stride) are all finite.
template <typename S>
bool all_finite(const float* x, int64_t rows, int64_t stride, int64_t len) {
  typename S::V check = S::zero();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < len; j += S::kLanes) check = S::fma(S::load(S::lanes(len - j), x + r * stride + j), S::zero(), check);
  return S::finite(check);
}

template <typename S>
bool kernel_channel_sums(const float* x, int64_t plane, int64_t channels, int64_t len, const FlatPowerSet& set,
                         float* acc, int64_t stride) {
  FeatureSource<S> source{x, plane};
  sums_of<S>(source, channels, len, set, acc, stride);
  if (!S::finite(source.check)) return false;
  // Σ|x| is NaN or inf for a NaN or ±inf among the values, and for finite values whose sum
  // overflows: a scan of the tile's values tells the two apart.
  for (int k = 0; k < set.count; ++k)
    if (set.kind[k] == PowKind::One && !all_finite<S>(acc + k * stride, 1, stride, len))
      return all_finite<S>(x, channels, plane, len);
  return true;
}

template <typename S>
void kernel_label_sums(const LabelRows& rows, int64_t len, const FlatPowerSet& set, float* acc, int64_t stride) {
  switch (rows.form) {
    case LabelForm::OneHotExact:
    case LabelForm::OneHotCode: {
      LabelSource<S, LabelForm::OneHotExact> source{rows};
      return sums_of<S>(source, rows.classes, len, set, acc, stride);
    }
    case LabelForm::UniformExact: {
      LabelSource<S, LabelForm::UniformExact> source{rows};
      return sums_of<S>(source, rows.classes, len, set, acc, stride);
    }
    default: {
      LabelSource<S, LabelForm::UniformCode> source{rows};
      return sums_of<S>(source, rows.classes, len, set, acc, stride);
    }
  }
}

template <typename S>
bool kernel_softmax(const float* z, int64_t plane, int64_t classes, int64_t len, const SoftmaxArrays& out) {
  using V = typename S::V;
  V check = S::zero();
  for (int64_t j = 0; j < len; j += S::kLanes) {
    const typename S::M lanes = S::lanes(len - j);
    // Max, argmax (first on ties) and the finiteness check over the classes.
    V max = S::load(lanes, z + j);
    typename S::I argmax = S::zero_i32();
    check = S::fma(max, S::zero(), check);
    for (int64_t c = 1; c < classes; ++c) {
      const V v = S::load(lanes, z + c * plane + j);
      check = S::fma(v, S::zero(), check);
      const typename S::M more = S::gt(lanes, v, max);
      max = S::blend(max, more, v);
      argmax = S::blend_i32(argmax, more, static_cast<int32_t>(c));
    }
    V sum_other = S::zero(), ez = S::zero();
    for (int64_t c = 0; c < classes; ++c) {
      const V d = S::sub(S::load(lanes, z + c * plane + j), max);
      const V e = exp_vec<S>(d, lanes);
      S::store_full(out.exp_d + c * out.exp_stride + j, e);
      sum_other = S::add(sum_other, S::maskz(S::neq_i32(lanes, argmax, static_cast<int32_t>(c)), e));
      ez = S::fma(e, d, ez);
    }
    S::store(lanes, out.max_logit + j, max);
    S::store_i32(lanes, out.argmax + j, argmax);
    S::store(lanes, out.sum_other + j, sum_other);
    S::store(lanes, out.sum + j, S::add(sum_other, S::set1(1.0f)));
    S::store(lanes, out.ez + j, ez);
  }
  return S::finite(check);
}

}  // namespace

}  // namespace pgn
