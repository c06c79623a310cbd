#include "scores.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <stdexcept>

#include "cpu_isa.h"
#include "parallel.h"
#include "power_sums.h"
#include "tile_math.h"

namespace pgn {

namespace {

// Pixels processed together. Each tile's per-pixel accumulators stay in L1/L2 while the features
// stream through once; the inner loops run over contiguous pixels of one channel (NCHW), which is
// what lets the compiler vectorize them.
constexpr int64_t kTile = 1024;
// The kernels keep e^(z_c − m) of a tile: classes × tile floats per thread. With many classes the
// tile shrinks to keep that within 2^21 floats (8 MB; 2048 classes at the full tile), and below 16
// pixels (over 2^17 classes) the compiler-vectorized loops run instead, which keep nothing per class.
constexpr int64_t kExpFloats = int64_t{1} << 21;
constexpr int64_t kMinKernelTile = 16;
constexpr int64_t kPrefetchChannels = 2;

// Exponent sets and their sums come in families: the features', and one per label form (the
// exact one-hot form only adds a constant term to the authors' one, so the two share theirs).
enum Family : int { kFeatures, kOneHot, kUniformExact, kUniformCode, kFamilies };

int family_of(LabelForm form) {
  return is_one_hot(form) ? kOneHot : form == LabelForm::UniformExact ? kUniformExact : kUniformCode;
}

struct Plan {
  Plan(const ScoreInput& in, const std::vector<ScoreSpec>& specs, const ScoreOutput& out) : in(in), specs(specs), out(out) {}

  const ScoreInput& in;
  const std::vector<ScoreSpec>& specs;
  const ScoreOutput& out;
  PowerSet sets[kFamilies];
  // The hand-vectorized kernels of the active CPU level (power_sums.h), or nullptr, and the sets'
  // flat forms for them, where they have one.
  const PowerSumKernels* kernels = nullptr;
  int64_t tile = kTile;  // pixels per tile, <= kTile: fewer with many classes (kExpFloats)
  FlatPowerSet flat[kFamilies];
  bool has_flat[kFamilies] = {};
};

// Where the float pass is trusted: every sum Σ v^p in [2^−60, 2^100] (no term overflowed or lost
// digits to underflow: a term dropped below 2^−126 is < 2^−66 of the sum) and every norm in
// [2^−126, 2^126] (fast_exp saturates near 2^128). Elsewhere (large or tiny p, huge or tiny values,
// a softmax that underflowed) the pixel is recomputed in double by exact_pgn_pixel.
constexpr float kSafeSumLow = 0x1p-60f, kSafeSumHigh = 0x1p100f;
constexpr float kSafeNormLow = 0x1p-126f, kSafeNormHigh = 0x1p126f;

PGN_INLINE bool unsafe_sum(float s) { return !(s >= kSafeSumLow && s <= kSafeSumHigh); }
PGN_INLINE bool unsafe_norm(float n) { return !(n >= kSafeNormLow && n <= kSafeNormHigh); }

// log ‖v‖_p = log M + log(Σ (v_j/M)^p)/p, M = max v_j (v_j >= 0): no overflow or underflow for any
// p; −inf when every v_j is 0.
template <typename Value>
double log_pnorm(int64_t n, double p, Value value) {
  double most = 0.0;
  for (int64_t j = 0; j < n; ++j) most = std::max(most, value(j));
  if (most == 0.0) return -INFINITY;
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += std::pow(value(j) / most, p);
  return std::log(most) + std::log(sum) / p;
}

// One pixel's PGN score in double, the slow path for the pixels the float pass cannot trust:
// softmax, label values and both norms as the definitions say (pixel_math.h's label forms), the
// product formed from the logs. z and phi point at the pixel's class 0 / channel 0, `plane` apart.
float exact_pgn_pixel(const float* z, const float* phi, int64_t plane, int64_t classes, int64_t channels, LabelForm form,
                      double p) {
  int64_t top = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (z[c * plane] > z[top * plane]) top = c;
  const double m = z[top * plane];
  double other = 0.0;  // Σ_{c≠ĉ} e^(z_c − m)
  for (int64_t c = 0; c < classes; ++c)
    if (c != top) other += std::exp(static_cast<double>(z[c * plane]) - m);
  const double total = 1.0 + other;
  const double inv_c = 1.0 / static_cast<double>(classes);
  const double code_scale = static_cast<double>(classes - 1) * inv_c;
  const auto label = [&](int64_t c) {
    const double s = c == top ? 1.0 / total : std::exp(static_cast<double>(z[c * plane]) - m) / total;
    switch (form) {
      case LabelForm::OneHotExact: return c == top ? other / total : s;  // |s_ĉ − 1| = Σ_{c≠ĉ} s_c
      case LabelForm::OneHotCode: return c == top ? 0.0 : s;
      case LabelForm::UniformExact: return std::fabs(s - inv_c);
      default: return code_scale * s;
    }
  };
  const double log_label = log_pnorm(classes, p, label);
  const double log_features = log_pnorm(channels, p, [&](int64_t f) { return std::fabs(static_cast<double>(phi[f * plane])); });
  if (log_label == -INFINITY || log_features == -INFINITY) return 0.0f;
  return static_cast<float>(std::exp(log_label + log_features));  // +inf beyond float's range
}

// Per-thread scratch for one tile of pixels.
struct Tile {
  float max_logit[kTile], sum[kTile], sum_other[kTile], ez[kTile];
  int32_t argmax[kTile];
  float x[kTile], log_x[kTile], log_offset[kTile], inv_norm[kTile];
  float one_hot_scale[kTile];  // label_scale of the one-hot forms, S_other / S: one division per pixel
  std::vector<float> exp_d;  // [classes, kTile]: e^(z_c − m), kept by the kernels' softmax pass
  std::vector<float> terms;  // one row per exponent: the current value's v^p, for derived exponents
  // By family, Σ v^p per exponent (rows of kTile); the features' rows then hold their norms.
  std::vector<float> acc[kFamilies];
  // Per feature exponent (rows of kTile): its sum left the safe range (unsafe_sum).
  std::vector<uint8_t> feature_unsafe;
  uint8_t redo[kTile];  // the pixels of the current score that need exact_pgn_pixel
};

// Σ_f |φ_f|^p for every feature exponent: one streaming pass over the features.
PGN_INLINE void feature_sums(const float* phi, int64_t plane, int64_t channels, int64_t len, const PowerSet& set,
                             Tile& t, bool& bad) {
  int flag = 0;
  for (int64_t f = 0; f < channels; ++f) {
    const float* pf = phi + f * plane;
    // The tile reads `channels` short runs far apart: more streams than the hardware prefetcher
    // follows, so fetch the run a few channels ahead explicitly.
    if (f + kPrefetchChannels < channels)
      for (int64_t i = 0; i < len; i += 16) __builtin_prefetch(pf + kPrefetchChannels * plane + i);
    for (int64_t i = 0; i < len; ++i) {
      flag |= non_finite(pf[i]);
      t.x[i] = fabsf(pf[i]);
    }
    add_powers_of(set, t.x, t.log_x, len, t.acc[kFeatures].data(), kTile, t.terms.data());
  }
  bad = bad || flag;
}

// t.log_offset: label_log_offset per pixel; with the kernels also the norm it is the log of,
// inverted (their label sums divide e^(z_c − m) by it).
PGN_INLINE void label_offsets(LabelForm form, int64_t len, bool kernels, Tile& t) {
  for (int64_t i = 0; i < len; ++i)
    t.log_offset[i] = label_log_offset(form, SoftmaxStats{t.max_logit[i], t.argmax[i], t.sum[i], t.sum_other[i], t.ez[i]});
  if (kernels)
    for (int64_t i = 0; i < len; ++i) t.inv_norm[i] = 1.0f / (is_one_hot(form) ? t.sum_other[i] : t.sum[i]);
}

// Σ_c v_c^p for one label family, v_c as pixel_math.h defines it: q_c (0 for the predicted class)
// for the one-hot forms, |s_c − 1/C| for the exact uniform label, s_c for the authors' uniform form.
PGN_INLINE void label_sums(const float* z, int64_t plane, int64_t classes, int64_t len, LabelForm form,
                           const PowerSet& set, Tile& t) {
  const float inv_c = 1.0f / static_cast<float>(classes);
  float* acc = t.acc[family_of(form)].data();
  for (int64_t c = 0; c < classes; ++c) {
    const float* zc = z + c * plane;
    for (int64_t i = 0; i < len; ++i) {
      const float log_v = zc[i] - t.max_logit[i] - t.log_offset[i];
      const float v = fast_exp(log_v);
      const bool excluded = is_one_hot(form) && t.argmax[i] == c;
      t.x[i] = form == LabelForm::UniformExact ? fabsf(v - inv_c) : (excluded ? 0.0f : v);
      t.log_x[i] = excluded ? -INFINITY : log_v;
    }
    // |s_c − 1/C| has no known log; the other forms' values come with exact ones.
    if (form == LabelForm::UniformExact) add_powers_of(set, t.x, t.log_x, len, acc, kTile, t.terms.data());
    else add_powers(set, t.x, t.log_x, len, acc, kTile, t.terms.data());
  }
}

// z, phi: the tile's first logit and feature (class and channel 0).
PGN_INLINE void pgn_score(const Plan& plan, const ScoreSpec& spec, const float* z, const float* phi, int64_t len, Tile& t,
                          float* dst) {
  const LabelForm form = label_form(spec);
  const int family = family_of(form);
  const float* label_acc = t.acc[family].data() + plan.sets[family].index_of(spec.p) * kTile;
  const int64_t feature_row = plan.sets[kFeatures].index_of(spec.p) * kTile;
  const float* feature_norm = t.acc[kFeatures].data() + feature_row;
  const int64_t classes = plan.in.classes;
  float* label_norm = t.x;
  const float extra = label_sum_extra(form);
  finish_norms(label_acc, extra, len, spec.p, label_norm);
  if (is_one_hot(form)) {
    for (int64_t i = 0; i < len; ++i) dst[i] = t.one_hot_scale[i] * label_norm[i] * feature_norm[i];
  } else {
    const float scale = label_scale(form, SoftmaxStats{}, classes);  // a constant for the uniform forms
    for (int64_t i = 0; i < len; ++i) dst[i] = scale * label_norm[i] * feature_norm[i];
  }
  // The check costs a few comparisons per pixel; the slow path runs only where it fires.
  const uint8_t* feature_unsafe = t.feature_unsafe.data() + feature_row;
  int any = 0;
  for (int64_t i = 0; i < len; ++i) {
    t.redo[i] = feature_unsafe[i] | unsafe_sum(label_acc[i] + extra) | unsafe_norm(label_norm[i]) | unsafe_norm(feature_norm[i]);
    any |= t.redo[i];
  }
  if (!any) return;
  const int64_t plane = plan.in.height * plan.in.width;
  for (int64_t i = 0; i < len; ++i)
    if (t.redo[i]) dst[i] = exact_pgn_pixel(z + i, phi + i, plane, classes, plan.in.channels, form, spec.p);
}

template <typename Score>
PGN_INLINE void baseline_loop(int64_t len, const Tile& t, float* dst, Score score) {
  for (int64_t i = 0; i < len; ++i) dst[i] = score(SoftmaxStats{t.max_logit[i], t.argmax[i], t.sum[i], t.sum_other[i], t.ez[i]});
}

PGN_INLINE void baseline_scores(ScoreKind kind, int64_t len, const Tile& t, float* dst) {
  switch (kind) {
    case ScoreKind::Entropy: return baseline_loop(len, t, dst, entropy_score);
    case ScoreKind::Msp: return baseline_loop(len, t, dst, msp_score);
    case ScoreKind::MaxLogit: return baseline_loop(len, t, dst, maxlogit_score);
    default: return baseline_loop(len, t, dst, energy_score);
  }
}

PGN_INLINE void zero(std::vector<float>& v) { std::fill(v.begin(), v.end(), 0.0f); }

PGN_INLINE void score_tile_body(Plan& plan, Tile& t, int64_t n, int64_t start, int64_t len, bool& bad) {
  const ScoreInput& in = plan.in;
  const int64_t plane = in.height * in.width;
  const float* z = in.logits + n * in.classes * plane + start;
  if (plan.kernels)
    bad = !plan.kernels->softmax(z, plane, in.classes, len,
                                 SoftmaxArrays{t.max_logit, t.argmax, t.sum, t.sum_other, t.ez, t.exp_d.data(), plan.tile}) ||
          bad;
  else
    softmax_stats(z, plane, in.classes, len, t, bad);
  if (!plan.sets[kOneHot].p.empty())
    for (int64_t i = 0; i < len; ++i)
      t.one_hot_scale[i] = label_scale(LabelForm::OneHotExact, SoftmaxStats{0.0f, 0, t.sum[i], t.sum_other[i], 0.0f}, in.classes);
  for (LabelForm form : {LabelForm::OneHotExact, LabelForm::UniformExact, LabelForm::UniformCode}) {
    const int family = family_of(form);
    const PowerSet& set = plan.sets[family];
    if (set.p.empty()) continue;
    const bool kernel = plan.kernels && plan.has_flat[family];
    label_offsets(form, len, kernel, t);
    if (kernel) {
      const LabelRows rows{z,           plane,       in.classes,  t.exp_d.data(), plan.tile,
                           t.max_logit, t.log_offset, t.inv_norm, t.argmax,      form};
      plan.kernels->label_sums(rows, len, plan.flat[family], t.acc[family].data(), kTile);
      continue;
    }
    zero(t.acc[family]);
    label_sums(z, plane, in.classes, len, form, set, t);
  }
  const PowerSet& features = plan.sets[kFeatures];
  const float* phi = features.p.empty() ? nullptr : in.features + n * in.channels * plane + start;
  if (!features.p.empty()) {
    float* acc = t.acc[kFeatures].data();
    if (plan.kernels && plan.has_flat[kFeatures]) {
      bad = !plan.kernels->channel_sums(phi, plane, in.channels, len, plan.flat[kFeatures], acc, kTile) || bad;
    } else {
      zero(t.acc[kFeatures]);
      feature_sums(phi, plane, in.channels, len, features, t, bad);
    }
    // The feature norms ‖φ‖_p in place of their sums: once per exponent, whichever labels use them.
    for (size_t k = 0; k < features.size(); ++k) {
      float* row = acc + static_cast<int64_t>(k) * kTile;
      uint8_t* unsafe = t.feature_unsafe.data() + static_cast<int64_t>(k) * kTile;
      for (int64_t i = 0; i < len; ++i) unsafe[i] = unsafe_sum(row[i]);
      finish_norms(row, 0.0f, len, features.p[k], row);
    }
  }
  if (bad) return;  // the call fails: no output, no slow path over non-finite values
  const int64_t base = n * plane + start;
  for (size_t s = 0; s < plan.specs.size(); ++s) {
    const ScoreSpec& spec = plan.specs[s];
    float* dst = plan.out.maps[s] + base;
    if (is_pgn(spec.kind)) pgn_score(plan, spec, z, phi, len, t, dst);
    else baseline_scores(spec.kind, len, t, dst);
  }
  if (plan.out.prediction) std::copy(t.argmax, t.argmax + len, plan.out.prediction + base);
}

using TileFunction = void (*)(Plan&, Tile&, int64_t, int64_t, int64_t, bool&);

void score_tile_baseline(Plan& plan, Tile& t, int64_t n, int64_t start, int64_t len, bool& bad) {
  score_tile_body(plan, t, n, start, len, bad);
}

#ifdef PGN_X86_DISPATCH
__attribute__((target("avx2,fma"))) void score_tile_avx2(Plan& plan, Tile& t, int64_t n, int64_t start, int64_t len,
                                                          bool& bad) {
  score_tile_body(plan, t, n, start, len, bad);
}

// The loops around the kernels (label offsets, norms, baselines) vectorized at the full 512-bit width.
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,prefer-vector-width=512"))) void score_tile_avx512(
    Plan& plan, Tile& t, int64_t n, int64_t start, int64_t len, bool& bad) {
  score_tile_body(plan, t, n, start, len, bad);
}
#endif

TileFunction tile_function(CpuIsa isa) {
#ifdef PGN_X86_DISPATCH
  if (isa == CpuIsa::Avx512) return score_tile_avx512;
  if (isa == CpuIsa::Avx2) return score_tile_avx2;
#endif
  (void)isa;
  return score_tile_baseline;
}

void check_arguments(const ScoreInput& in, const std::vector<ScoreSpec>& specs, const ScoreOutput& out) {
  if (in.batch < 1 || in.classes < 2 || in.height < 1 || in.width < 1)
    throw std::invalid_argument("scores need batch >= 1, classes >= 2 and a non-empty image");
  if (out.maps.size() != specs.size()) throw std::invalid_argument("one output map per requested score");
  for (const ScoreSpec& s : specs) {
    if (is_pgn(s.kind) && in.channels < 1) throw std::invalid_argument("PGN scores need features with >= 1 channel");
    if (is_pgn(s.kind) && !(s.p > 0.0f && s.p < 1e30f)) throw std::invalid_argument("PGN p must be finite and > 0");
  }
}

}  // namespace

bool is_pgn(ScoreKind kind) { return kind == ScoreKind::PgnOneHot || kind == ScoreKind::PgnUniform; }

LabelForm label_form(const ScoreSpec& spec) {
  if (spec.kind == ScoreKind::PgnOneHot) return spec.code_variant ? LabelForm::OneHotCode : LabelForm::OneHotExact;
  return spec.code_variant ? LabelForm::UniformCode : LabelForm::UniformExact;
}

void compute_scores(const ScoreInput& in, const std::vector<ScoreSpec>& specs, const ScoreOutput& out, int threads) {
  check_arguments(in, specs, out);
  Plan plan(in, specs, out);
  for (const ScoreSpec& s : specs) {
    if (!is_pgn(s.kind)) continue;
    plan.sets[kFeatures].add(s.p);
    plan.sets[family_of(label_form(s))].add(s.p);
  }
  size_t most = 0;
  for (int family = 0; family < kFamilies; ++family) {
    plan.sets[family].plan();
    most = std::max(most, plan.sets[family].p.size());
    // Logs are known for the label values but those of the exact uniform form (|s_c − 1/C|).
    const bool logs_known = family != kFeatures && family != kUniformExact;
    plan.has_flat[family] = flatten(plan.sets[family], logs_known, plan.flat[family]);
  }

  const int64_t plane = in.height * in.width;
  const CpuIsa isa = active_cpu_isa();
  const TileFunction score_tile = tile_function(isa);
  plan.kernels = power_sum_kernels(isa);
  if (plan.kernels && in.classes * kTile > kExpFloats) plan.tile = kExpFloats / in.classes / kMinKernelTile * kMinKernelTile;
  if (plan.tile < kMinKernelTile) plan.kernels = nullptr, plan.tile = kTile;
  const int64_t tile = plan.tile;
  const int64_t tiles_per_image = (plane + tile - 1) / tile;
  bool any_bad = false;
  std::mutex bad_mutex;
  parallel_for(in.batch * tiles_per_image, threads, [&](int64_t begin, int64_t end) {
    Tile t;
    t.terms.resize(most * kTile);
    if (plan.kernels) t.exp_d.resize(static_cast<size_t>(in.classes * tile));
    for (int family = 0; family < kFamilies; ++family) t.acc[family].resize(plan.sets[family].p.size() * kTile);
    t.feature_unsafe.resize(plan.sets[kFeatures].p.size() * kTile);
    bool bad = false;
    for (int64_t k = begin; k < end && !bad; ++k) {
      const int64_t n = k / tiles_per_image, start = (k % tiles_per_image) * tile;
      score_tile(plan, t, n, start, std::min(tile, plane - start), bad);
    }
    if (bad) {
      std::lock_guard<std::mutex> lock(bad_mutex);
      any_bad = true;
    }
  });
  if (any_bad) throw_non_finite(in, !plan.sets[kFeatures].p.empty());
}

int64_t first_non_finite(const float* data, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    if (non_finite(data[i])) return i;
  return -1;
}

void throw_non_finite(const ScoreInput& in, bool uses_features) {
  const int64_t plane = in.height * in.width;
  const int64_t at = first_non_finite(in.logits, in.batch * in.classes * plane);
  if (at >= 0) throw std::invalid_argument("logits contain a non-finite value (NaN or Inf) at flat index " + std::to_string(at));
  const int64_t fat = uses_features ? first_non_finite(in.features, in.batch * in.channels * plane) : -1;
  throw std::invalid_argument("features contain a non-finite value (NaN or Inf) at flat index " + std::to_string(fat));
}

}  // namespace pgn
