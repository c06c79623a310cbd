#include "scores.h"

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "parallel.h"

namespace pgn {

namespace {

// Pixels processed together. Each tile's logits and per-pixel accumulators stay in L1 while the
// features stream through once; the inner loops run over contiguous pixels of one channel (NCHW),
// which is what lets the compiler vectorize them.
constexpr int64_t kTile = 128;

// AVX2 and baseline clones of the hot loops, picked at load time, so a build on one x86-64 machine
// runs on any other while still using 256-bit vectors where they exist.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__SANITIZE_ADDRESS__)
#define PGN_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PGN_VECTOR_CLONES
#endif

// The distinct p of all PGN requests: feature norms are shared by every label that uses the same p.
struct FeatureNorms {
  std::vector<float> p;
  std::vector<PowKind> kind;
  bool needs_log = false;

  int index_of(float value) {
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i] == value) return static_cast<int>(i);
    p.push_back(value);
    kind.push_back(pow_kind(value));
    needs_log = needs_log || kind.back() == PowKind::General;
    return static_cast<int>(p.size() - 1);
  }
};

struct Plan {
  const ScoreInput& in;
  const std::vector<ScoreSpec>& specs;
  const ScoreOutput& out;
  FeatureNorms norms;
  std::vector<int> norm_of_spec;  // index into norms for PGN specs, -1 otherwise
};

struct Tile {
  float max_logit[kTile], sum[kTile], sum_other[kTile], ez[kTile];
  int32_t argmax[kTile];
  float x[kTile], log_x[kTile];
  float label_acc[kTile];
  // classes × kTile: the per-class values of the two label families and their logs (q_c for the
  // one-hot forms, s_c for the uniform ones), computed once and shared by every p.
  std::vector<float> one_hot_v, one_hot_log, uniform_v, uniform_log;
  std::vector<float> norm_acc;        // norms × kTile
};

PGN_VECTOR_CLONES
void softmax_stats(const float* z, int64_t plane, int64_t classes, int64_t len, Tile& t, bool& bad) {
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

PGN_VECTOR_CLONES
void label_values(const float* z, int64_t plane, int64_t classes, int64_t len, LabelForm form, float* v, float* log_v,
                  const Tile& t) {
  for (int64_t c = 0; c < classes; ++c) {
    const float* zc = z + c * plane;
    for (int64_t i = 0; i < len; ++i) {
      const SoftmaxStats st{t.max_logit[i], t.argmax[i], t.sum[i], t.sum_other[i], t.ez[i]};
      log_v[c * kTile + i] = label_log(form, zc[i] - t.max_logit[i], st);
      v[c * kTile + i] = fast_exp(log_v[c * kTile + i]);
    }
  }
}

PGN_VECTOR_CLONES
void label_norm(int64_t classes, int64_t len, LabelForm form, float p, Tile& t) {
  const PowKind kind = pow_kind(p);
  const float inv_c = 1.0f / static_cast<float>(classes);
  const bool one_hot = is_one_hot(form);
  for (int64_t i = 0; i < len; ++i) t.label_acc[i] = 0.0f;
  for (int32_t c = 0; c < classes; ++c) {
    const float* v = (one_hot ? t.one_hot_v : t.uniform_v).data() + c * kTile;
    const float* lv = (one_hot ? t.one_hot_log : t.uniform_log).data() + c * kTile;
    for (int64_t i = 0; i < len; ++i) t.label_acc[i] += label_term(form, v[i], lv[i], t.argmax[i] == c, inv_c, kind, p);
  }
  for (int64_t i = 0; i < len; ++i) {
    const SoftmaxStats st{t.max_logit[i], t.argmax[i], t.sum[i], t.sum_other[i], t.ez[i]};
    t.label_acc[i] = label_norm_finish(form, t.label_acc[i], st, classes, p);
  }
}

// Σ_f |φ_f|^p for every distinct p, one streaming pass over the features.
PGN_VECTOR_CLONES
void feature_sums(const float* phi, int64_t plane, int64_t channels, int64_t len, const FeatureNorms& norms, Tile& t,
                  bool& bad) {
  const size_t count = norms.p.size();
  std::fill(t.norm_acc.begin(), t.norm_acc.end(), 0.0f);
  int flag = 0;
  for (int64_t f = 0; f < channels; ++f) {
    const float* pf = phi + f * plane;
    for (int64_t i = 0; i < len; ++i) {
      flag |= non_finite(pf[i]);
      t.x[i] = fabsf(pf[i]);
    }
    if (norms.needs_log)
      for (int64_t i = 0; i < len; ++i) t.log_x[i] = fast_log(t.x[i]);
    for (size_t k = 0; k < count; ++k) {
      float* acc = t.norm_acc.data() + k * kTile;
      const float p = norms.p[k];
      switch (norms.kind[k]) {
        case PowKind::One:
          for (int64_t i = 0; i < len; ++i) acc[i] += t.x[i];
          break;
        case PowKind::Two:
          for (int64_t i = 0; i < len; ++i) acc[i] += t.x[i] * t.x[i];
          break;
        case PowKind::Half:
          for (int64_t i = 0; i < len; ++i) acc[i] += sqrtf(t.x[i]);
          break;
        case PowKind::General:
          for (int64_t i = 0; i < len; ++i) acc[i] += t.x[i] > 0.0f ? fast_exp(p * t.log_x[i]) : 0.0f;
          break;
      }
    }
  }
  bad = bad || flag;
}

void score_tile(Plan& plan, Tile& t, int64_t n, int64_t start, int64_t len, bool& bad) {
  const ScoreInput& in = plan.in;
  const int64_t plane = in.height * in.width;
  const float* z = in.logits + n * in.classes * plane + start;
  softmax_stats(z, plane, in.classes, len, t, bad);
  if (!t.one_hot_v.empty())
    label_values(z, plane, in.classes, len, LabelForm::OneHotExact, t.one_hot_v.data(), t.one_hot_log.data(), t);
  if (!t.uniform_v.empty())
    label_values(z, plane, in.classes, len, LabelForm::UniformExact, t.uniform_v.data(), t.uniform_log.data(), t);
  if (!plan.norms.p.empty()) {
    feature_sums(in.features + n * in.channels * plane + start, plane, in.channels, len, plan.norms, t, bad);
  }
  const int64_t base = n * plane + start;
  for (size_t s = 0; s < plan.specs.size(); ++s) {
    const ScoreSpec& spec = plan.specs[s];
    float* dst = plan.out.maps[s] + base;
    if (is_pgn(spec.kind)) {
      label_norm(in.classes, len, label_form(spec), spec.p, t);
      const int k = plan.norm_of_spec[s];
      const float* acc = t.norm_acc.data() + static_cast<int64_t>(k) * kTile;
      for (int64_t i = 0; i < len; ++i) dst[i] = t.label_acc[i] * finish_norm(acc[i], spec.p);
      continue;
    }
    for (int64_t i = 0; i < len; ++i) {
      const SoftmaxStats st{t.max_logit[i], t.argmax[i], t.sum[i], t.sum_other[i], t.ez[i]};
      switch (spec.kind) {
        case ScoreKind::Entropy: dst[i] = entropy_score(st); break;
        case ScoreKind::Msp: dst[i] = msp_score(st); break;
        case ScoreKind::MaxLogit: dst[i] = maxlogit_score(st); break;
        default: dst[i] = energy_score(st); break;
      }
    }
  }
  if (plan.out.prediction) std::copy(t.argmax, t.argmax + len, plan.out.prediction + base);
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
  Plan plan{in, specs, out, {}, {}};
  for (const ScoreSpec& s : specs) plan.norm_of_spec.push_back(is_pgn(s.kind) ? plan.norms.index_of(s.p) : -1);

  const int64_t plane = in.height * in.width;
  const int64_t tiles_per_image = (plane + kTile - 1) / kTile;
  bool any_bad = false;
  std::mutex bad_mutex;
  parallel_for(in.batch * tiles_per_image, threads, [&](int64_t begin, int64_t end) {
    Tile t;
    t.norm_acc.resize(plan.norms.p.size() * kTile);
    const size_t per_class = static_cast<size_t>(in.classes * kTile);
    for (const ScoreSpec& s : specs) {
      const bool one_hot = s.kind == ScoreKind::PgnOneHot, uniform = s.kind == ScoreKind::PgnUniform;
      if (one_hot && t.one_hot_v.empty()) t.one_hot_v.resize(per_class), t.one_hot_log.resize(per_class);
      if (uniform && t.uniform_v.empty()) t.uniform_v.resize(per_class), t.uniform_log.resize(per_class);
    }
    bool bad = false;
    for (int64_t k = begin; k < end && !bad; ++k) {
      const int64_t n = k / tiles_per_image, start = (k % tiles_per_image) * kTile;
      score_tile(plan, t, n, start, std::min(kTile, plane - start), bad);
    }
    if (bad) {
      std::lock_guard<std::mutex> lock(bad_mutex);
      any_bad = true;
    }
  });
  if (any_bad) throw_non_finite(in, !plan.norms.p.empty());
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
