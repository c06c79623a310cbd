#include "second_layer.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cpu_isa.h"
#include "parallel.h"
#include "scores.h"
#include "tile_math.h"

namespace pgn {

namespace {

// Pixels per tile of the per-pixel pass; q (classes × kTile floats) stays in L1/L2.
constexpr int64_t kTile = 256;
// Pixels whose K̃ᵀq sums are kept in registers together (kTile is a multiple).
constexpr int64_t kBlock = 32;
static_assert(kTile % kBlock == 0, "tiles are whole blocks");
// Output columns per task of the vertical window pass.
constexpr int64_t kColumnBlock = 64;

struct Plan {
  Plan(const SecondLayerInput& i, const std::vector<SecondLayerSpec>& s, const SecondLayerOutput& o)
      : in(i), specs(s), out(o) {}
  const SecondLayerInput& in;
  const std::vector<SecondLayerSpec>& specs;
  const SecondLayerOutput& out;
  PowerSet patch;                    // p of every spec: the patch norms
  PowerSet channel[kSecondForms];    // per label form: the channel-norm exponents
  bool any_form[kSecondForms] = {false, false, false, false};
  std::vector<float> k_mean;          // k̄_f
  std::vector<float> k_centered;      // K̃ = K − k̄ [C, F]
  std::vector<float> k_transposed;    // K̃ᵀ [F, C]: a channel's column contiguous
  std::vector<float> patch_sums;      // [N, P, h, w]: Σ over the patch of Σ_i |x_i|^p
};

// ---- stage 1: per input row, Σ_i |x_i|^p, then the horizontal (dilated) window sums ----

struct RowScratch {
  std::vector<float> v, log_v, terms;
  std::vector<double> acc;  // [P, W']
};

PGN_INLINE void row_body(const Plan& plan, RowScratch& s, int64_t n, int64_t y, double* hsum, bool& bad) {
  const SecondLayerInput& in = plan.in;
  const ConvGeometry& g = in.geometry;
  const int64_t W = in.in_width, P = static_cast<int64_t>(plan.patch.size());
  std::fill(s.acc.begin(), s.acc.end(), 0.0);
  int flag = 0;
  for (int64_t i = 0; i < in.in_channels; ++i) {
    const float* row = in.input + ((n * in.in_channels + i) * in.in_height + y) * W;
    for (int64_t x = 0; x < W; ++x) {
      flag |= non_finite(row[x]);
      s.v[x] = fabsf(row[x]);
    }
    add_powers_of(plan.patch, s.v.data(), s.log_v.data(), W, s.acc.data(), W, s.terms.data());
  }
  bad = bad || flag;
  // strided prefix sums along the row, then one window sum per output column
  for (int64_t k = 0; k < P; ++k) {
    double* a = s.acc.data() + k * W;
    for (int64_t x = g.dilation_w; x < W; ++x) a[x] += a[x - g.dilation_w];
    double* dst = hsum + (k * in.in_height + y) * in.width;  // hsum points at image n
    for (int64_t b = 0; b < in.width; ++b) {
      int64_t lo, hi;
      window_range(b, g.stride_w, g.pad_left, g.dilation_w, g.kernel_w, W, &lo, &hi);
      dst[b] = window_sum(a, 1, lo, hi, g.dilation_w);
    }
  }
}

using RowFunction = void (*)(const Plan&, RowScratch&, int64_t, int64_t, double*, bool&);

void row_baseline(const Plan& plan, RowScratch& s, int64_t n, int64_t y, double* hsum, bool& bad) {
  row_body(plan, s, n, y, hsum, bad);
}
#ifdef PGN_X86_DISPATCH
__attribute__((target("avx2,fma"))) void row_avx2(const Plan& plan, RowScratch& s, int64_t n, int64_t y, double* hsum,
                                                   bool& bad) {
  row_body(plan, s, n, y, hsum, bad);
}
#endif

// ---- stage 3: per pixel tile, the channel factor ‖g‖ of every label form, and the scores ----

struct Tile {
  float max_logit[kTile], sum[kTile], sum_other[kTile], ez[kTile];
  int32_t argmax[kTile];
  float r[kTile], inv_s[kTile], q_sum[kTile], t[kTile], k_pred[kTile], mask[kTile], v[kTile], log_v[kTile];
  std::vector<float> q;              // [C, kTile]
  std::vector<float> terms;          // [exponents, kTile]
  std::vector<float> acc[kSecondForms];  // per form: [exponents, kTile]
};

// Softmax statistics (tile_math.h), then the one-hot label's per-class values q for the channel factor.
PGN_INLINE void tile_softmax(const float* z, int64_t plane, int64_t classes, int64_t len, Tile& t, bool& bad) {
  softmax_stats(z, plane, classes, len, t, bad);
  for (int64_t i = 0; i < len; ++i) {
    t.r[i] = t.sum_other[i] / t.sum[i];
    t.inv_s[i] = 1.0f / t.sum[i];
  }
  // q_c = e^{z_c − m} / S_other (0 for the predicted class), formed in log space like pixel_math.h's
  // one-hot label: every q_c <= 1 and nothing underflows because one class dominates.
  for (int64_t i = 0; i < len; ++i) t.q_sum[i] = 0.0f;
  for (int64_t c = 0; c < classes; ++c) {
    const float* zc = z + c * plane;
    float* qc = t.q.data() + c * kTile;
    for (int64_t i = 0; i < len; ++i) {
      const SoftmaxStats st{t.max_logit[i], t.argmax[i], t.sum[i], t.sum_other[i], t.ez[i]};
      const float log_q = label_log(LabelForm::OneHotExact, zc[i] - t.max_logit[i], st);
      qc[i] = t.argmax[i] == c ? 0.0f : fast_exp(log_q);
      t.q_sum[i] += qc[i];
    }
  }
}

// |(Kᵀ(s − y))_f · act' · scale| over the tile for one form; the form is a template argument so that
// the per-element switch folds away and the loop vectorizes.
template <int Form>
PGN_INLINE void form_values(const Tile& t, int64_t len, float k_mean, float scale, float code_uni, float* v) {
  for (int64_t i = 0; i < len; ++i)
    v[i] = fabsf(second_form_value(Form, t.t[i], t.k_pred[i], k_mean, t.r[i], t.inv_s[i], t.q_sum[i], code_uni) * t.mask[i] *
                 scale);
}

PGN_INLINE void tile_body(const Plan& plan, Tile& t, int64_t n, int64_t start, int64_t len, bool& bad) {
  const SecondLayerInput& in = plan.in;
  const int64_t plane = in.height * in.width, C = in.classes, F = in.channels;
  tile_softmax(in.logits + n * C * plane + start, plane, C, len, t, bad);
  for (int form = 0; form < kSecondForms; ++form) std::fill(t.acc[form].begin(), t.acc[form].end(), 0.0f);
  const float code_uni = static_cast<float>(C - 1) / static_cast<float>(C);
  const ActivationInfo& act = in.activation;
  int flag = 0;
  for (int64_t f = 0; f < (plan.specs.empty() ? 0 : F); ++f) {
    // t = (K̃ᵀq)_f over the tile, in blocks of pixels whose sums stay in registers across the classes
    // (q beyond len holds finite leftovers; those t are never read)
    const float* kf = plan.k_transposed.data() + f * C;
    for (int64_t i0 = 0; i0 < len; i0 += kBlock) {
      float acc[kBlock] = {};
      for (int64_t c = 0; c < C; ++c) {
        const float kcf = kf[c];
        const float* qc = t.q.data() + c * kTile + i0;
        for (int64_t j = 0; j < kBlock; ++j) acc[j] += kcf * qc[j];
      }
      for (int64_t j = 0; j < kBlock; ++j) t.t[i0 + j] = acc[j];
    }
    for (int64_t i = 0; i < len; ++i) t.k_pred[i] = kf[t.argmax[i]];
    const float* phi = in.features + (n * F + f) * plane + start;
    // one short run per channel, far apart: fetch the run two channels ahead (as scores.cc does)
    if (f + 2 < F)
      for (int64_t i = 0; i < len; i += 16) __builtin_prefetch(phi + 2 * plane + i);
    const float slope = act.slopes ? act.slopes[f] : act.slope;
    for (int64_t i = 0; i < len; ++i) {
      flag |= non_finite(phi[i]);
      t.mask[i] = act_derivative(phi[i], act.lo, act.hi, slope);
    }
    const float k_mean = plan.k_mean[f];
    for (int form = 0; form < kSecondForms; ++form) {
      if (!plan.any_form[form]) continue;
      const bool code = form == kOhCode || form == kUniCode;
      const float* scales = code ? in.code_scale : in.scale;
      const float scale = scales ? scales[f] : 1.0f;
      switch (form) {
        case kOhExact: form_values<kOhExact>(t, len, k_mean, scale, code_uni, t.v); break;
        case kOhCode: form_values<kOhCode>(t, len, k_mean, scale, code_uni, t.v); break;
        case kUniExact: form_values<kUniExact>(t, len, k_mean, scale, code_uni, t.v); break;
        default: form_values<kUniCode>(t, len, k_mean, scale, code_uni, t.v); break;
      }
      const PowerSet& e = plan.channel[form];
      add_powers_of(e, t.v, t.log_v, len, t.acc[form].data(), kTile, t.terms.data());
    }
  }
  bad = bad || flag;
  const int64_t base = n * plane + start;
  const int64_t P = static_cast<int64_t>(plan.patch.size());
  for (size_t s = 0; s < plan.specs.size(); ++s) {
    const SecondLayerSpec& spec = plan.specs[s];
    const int form = second_layer_form(spec);
    const float cp = spec.code_variant ? 0.5f : spec.p;
    const float* chan = t.acc[form].data() + plan.channel[form].index_of(cp) * kTile;
    const float* patch = plan.patch_sums.data() + (n * P + plan.patch.index_of(spec.p)) * plane + start;
    float* dst = plan.out.maps[s] + base;
    finish_norms(chan, 0.0f, len, cp, t.v);
    finish_norms(patch, 0.0f, len, spec.p, t.log_v);
    for (int64_t i = 0; i < len; ++i) {
      const SoftmaxStats st{t.max_logit[i], t.argmax[i], t.sum[i], t.sum_other[i], t.ez[i]};
      dst[i] = second_form_outer(form, st) * t.v[i] * t.log_v[i];
    }
  }
  if (plan.out.prediction) std::copy(t.argmax, t.argmax + len, plan.out.prediction + base);
}

using TileFunction = void (*)(const Plan&, Tile&, int64_t, int64_t, int64_t, bool&);

void tile_baseline(const Plan& plan, Tile& t, int64_t n, int64_t start, int64_t len, bool& bad) {
  tile_body(plan, t, n, start, len, bad);
}
#ifdef PGN_X86_DISPATCH
__attribute__((target("avx2,fma"))) void tile_avx2(const Plan& plan, Tile& t, int64_t n, int64_t start, int64_t len,
                                                    bool& bad) {
  tile_body(plan, t, n, start, len, bad);
}
#endif

// AVX-512 machines run the AVX2 variants: this pass has no AVX-512 kernel.
RowFunction select_row() {
#ifdef PGN_X86_DISPATCH
  if (active_cpu_isa() >= CpuIsa::Avx2) return row_avx2;
#endif
  return row_baseline;
}

TileFunction select_tile() {
#ifdef PGN_X86_DISPATCH
  if (active_cpu_isa() >= CpuIsa::Avx2) return tile_avx2;
#endif
  return tile_baseline;
}

// Vertical pass of image n, exponent k, columns [b0, b1): strided prefix sums down the columns of
// the horizontal window sums, then one window sum per output row.
void column_block(Plan& plan, double* hsum, int64_t n, int64_t k, int64_t b0, int64_t b1) {
  const SecondLayerInput& in = plan.in;
  const ConvGeometry& g = in.geometry;
  const int64_t w = in.width, H = in.in_height, P = static_cast<int64_t>(plan.patch.size());
  double* hs = hsum + k * H * w;
  for (int64_t y = g.dilation_h; y < H; ++y) {
    double* row = hs + y * w;
    const double* above = hs + (y - g.dilation_h) * w;
    for (int64_t b = b0; b < b1; ++b) row[b] += above[b];
  }
  float* dst = plan.patch_sums.data() + (n * P + k) * in.height * w;
  for (int64_t a = 0; a < in.height; ++a) {
    int64_t lo, hi;
    window_range(a, g.stride_h, g.pad_top, g.dilation_h, g.kernel_h, H, &lo, &hi);
    for (int64_t b = b0; b < b1; ++b) dst[a * w + b] = static_cast<float>(window_sum(hs + b, w, lo, hi, g.dilation_h));
  }
}

bool all_finite(const float* data, int64_t count) { return first_non_finite(data, count) < 0; }

}  // namespace

int64_t conv_output_size(int64_t size, int64_t pad_begin, int64_t pad_end, int64_t dil, int64_t kernel, int64_t stride) {
  const int64_t span = size + pad_begin + pad_end - dil * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

int second_layer_form(const SecondLayerSpec& spec) {
  if (spec.one_hot) return spec.code_variant ? kOhCode : kOhExact;
  return spec.code_variant ? kUniCode : kUniExact;
}

void center_kernel(const float* kernel, int64_t classes, int64_t channels, std::vector<float>& mean,
                   std::vector<float>& centered) {
  mean.assign(static_cast<size_t>(channels), 0.0f);
  centered.resize(static_cast<size_t>(classes * channels));
  for (int64_t f = 0; f < channels; ++f) {
    double m = 0.0;
    for (int64_t c = 0; c < classes; ++c) m += kernel[c * channels + f];
    m /= static_cast<double>(classes);
    mean[f] = static_cast<float>(m);
    for (int64_t c = 0; c < classes; ++c)
      centered[c * channels + f] = static_cast<float>(static_cast<double>(kernel[c * channels + f]) - m);
  }
}

void check_second_layer(const SecondLayerInput& in, const std::vector<SecondLayerSpec>& specs,
                        const SecondLayerOutput& out) {
  if (in.batch < 1 || in.classes < 2 || in.channels < 1 || in.height < 1 || in.width < 1 || in.in_channels < 1 ||
      in.in_height < 1 || in.in_width < 1)
    throw std::invalid_argument("second-layer scores need batch >= 1, classes >= 2 and non-empty tensors");
  if (out.maps.size() != specs.size()) throw std::invalid_argument("one output map per requested score");
  for (const SecondLayerSpec& s : specs)
    if (!(s.p > 0.0f && s.p < 1e30f)) throw std::invalid_argument("second-layer p must be finite and > 0");
  const ConvGeometry& g = in.geometry;
  if (g.kernel_h < 1 || g.kernel_w < 1 || g.stride_h < 1 || g.stride_w < 1 || g.dilation_h < 1 || g.dilation_w < 1 ||
      g.pad_top < 0 || g.pad_left < 0 || g.pad_bottom < 0 || g.pad_right < 0)
    throw std::invalid_argument("conv geometry: kernel, stride and dilation must be >= 1, pads >= 0");
  const int64_t oh = conv_output_size(in.in_height, g.pad_top, g.pad_bottom, g.dilation_h, g.kernel_h, g.stride_h);
  const int64_t ow = conv_output_size(in.in_width, g.pad_left, g.pad_right, g.dilation_w, g.kernel_w, g.stride_w);
  if (oh != in.height || ow != in.width)
    throw std::invalid_argument("the conv geometry maps the input's " + std::to_string(in.in_height) + "x" +
                                std::to_string(in.in_width) + " to " + std::to_string(oh) + "x" + std::to_string(ow) +
                                ", but the features are " + std::to_string(in.height) + "x" + std::to_string(in.width));
  const ActivationInfo& a = in.activation;
  if (std::isnan(a.lo) || std::isnan(a.hi) || !(a.lo < a.hi) || !(a.slope >= 0.0f && std::isfinite(a.slope)))
    throw std::invalid_argument("activation: need lo < hi and a finite slope >= 0");
  if (a.slopes)
    for (int64_t f = 0; f < in.channels; ++f)
      if (!(a.slopes[f] >= 0.0f && std::isfinite(a.slopes[f])))
        throw std::invalid_argument("activation: PRelu slope " + std::to_string(f) + " must be finite and >= 0");
  if (!all_finite(in.kernel, in.classes * in.channels)) throw std::invalid_argument("kernel contains a non-finite value");
  if (in.scale && !all_finite(in.scale, in.channels)) throw std::invalid_argument("bnScale contains a non-finite value");
  if (in.code_scale && !all_finite(in.code_scale, in.channels))
    throw std::invalid_argument("codeScale contains a non-finite value");
}

void throw_second_layer_non_finite(const SecondLayerInput& in) {
  const int64_t plane = in.height * in.width;
  const struct {
    const char* name;
    const float* data;
    int64_t count;
  } tensors[] = {{"logits", in.logits, in.batch * in.classes * plane},
                 {"features", in.features, in.batch * in.channels * plane},
                 {"input", in.input, in.batch * in.in_channels * in.in_height * in.in_width}};
  for (const auto& t : tensors) {
    const int64_t at = first_non_finite(t.data, t.count);
    if (at >= 0)
      throw std::invalid_argument(std::string(t.name) + " contain a non-finite value (NaN or Inf) at flat index " +
                                  std::to_string(at));
  }
  throw std::invalid_argument("a non-finite value (NaN or Inf) in the inputs");
}

void compute_second_layer(const SecondLayerInput& in, const std::vector<SecondLayerSpec>& specs,
                          const SecondLayerOutput& out, int threads) {
  check_second_layer(in, specs, out);
  Plan plan(in, specs, out);
  for (const SecondLayerSpec& s : specs) {
    const int form = second_layer_form(s);
    plan.patch.add(s.p);
    plan.channel[form].add(s.code_variant ? 0.5f : s.p);
    plan.any_form[form] = true;
  }
  plan.patch.plan();
  size_t most = 0;
  for (PowerSet& e : plan.channel) {
    e.plan();
    most = std::max(most, e.size());
  }
  const int64_t C = in.classes, F = in.channels, plane = in.height * in.width;
  center_kernel(in.kernel, C, F, plan.k_mean, plan.k_centered);
  plan.k_transposed.resize(plan.k_centered.size());
  for (int64_t c = 0; c < C; ++c)
    for (int64_t f = 0; f < F; ++f) plan.k_transposed[f * C + c] = plan.k_centered[c * F + f];
  const int64_t P = static_cast<int64_t>(plan.patch.size());
  std::mutex bad_mutex;
  bool any_bad = false;
  auto report = [&](bool bad) {
    if (!bad) return;
    std::lock_guard<std::mutex> lock(bad_mutex);
    any_bad = true;
  };

  if (P > 0) {
    // stage 1: horizontal window sums [N, P, H', w] in double; stage 2: vertical → patch sums [N, P, h, w]
    const int64_t H = in.in_height;
    std::vector<double> hsum(static_cast<size_t>(in.batch * P * H * in.width));
    const RowFunction row = select_row();
    parallel_for(in.batch * H, threads, [&](int64_t begin, int64_t end) {
      RowScratch s;
      s.v.resize(static_cast<size_t>(in.in_width));
      s.log_v.resize(static_cast<size_t>(in.in_width));
      s.acc.resize(static_cast<size_t>(P * in.in_width));
      s.terms.resize(static_cast<size_t>(P * in.in_width));
      bool bad = false;
      for (int64_t k = begin; k < end && !bad; ++k) {
        const int64_t n = k / H;
        row(plan, s, n, k % H, hsum.data() + n * P * H * in.width, bad);
      }
      report(bad);
    });
    if (any_bad) throw_second_layer_non_finite(in);
    plan.patch_sums.resize(static_cast<size_t>(in.batch * P * plane));
    const int64_t blocks = (in.width + kColumnBlock - 1) / kColumnBlock;
    parallel_for(in.batch * P * blocks, threads, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t n = k / (P * blocks), e = (k / blocks) % P, blk = k % blocks;
        column_block(plan, hsum.data() + n * P * H * in.width, n, e, blk * kColumnBlock,
                     std::min(in.width, (blk + 1) * kColumnBlock));
      }
    });
  }

  const int64_t tiles_per_image = (plane + kTile - 1) / kTile;
  const TileFunction tile = select_tile();
  parallel_for(in.batch * tiles_per_image, threads, [&](int64_t begin, int64_t end) {
    Tile t;
    t.q.resize(static_cast<size_t>(C * kTile));
    t.terms.resize(most * kTile);
    for (int form = 0; form < kSecondForms; ++form) t.acc[form].resize(plan.channel[form].size() * kTile);
    bool bad = false;
    for (int64_t k = begin; k < end && !bad; ++k) {
      const int64_t n = k / tiles_per_image, start = (k % tiles_per_image) * kTile;
      tile(plan, t, n, start, std::min(kTile, plane - start), bad);
    }
    report(bad);
  });
  if (any_bad) throw_second_layer_non_finite(in);
}

}  // namespace pgn
