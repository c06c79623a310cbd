// CUDA kernels of the scores: one thread per pixel, the per-element math from core/pixel_math.h.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "../core/pixel_math.h"
#include "device_buffer.h"
#include "scores_cuda.h"

namespace pgn {

namespace {

// Distinct p values per call: per-thread accumulators live in registers/local memory.
constexpr int kMaxNorms = 16;

struct DeviceSpec {
  int kind;   // ScoreKind
  int form;   // LabelForm (PGN only)
  int norm;   // index of the feature p-norm (PGN only)
  float p;
};

struct Geometry {
  int64_t batch, classes, channels, plane;
};

__device__ SoftmaxStats pixel_stats(const float* z, int64_t plane, int64_t classes, int* bad) {
  SoftmaxStats st{z[0], 0, 0.0f, 0.0f, 0.0f};
  for (int64_t c = 0; c < classes; ++c) {
    const float v = z[c * plane];
    if (non_finite(v)) atomicOr(bad, 1);
    if (v > st.max_logit) {
      st.max_logit = v;
      st.argmax = static_cast<int32_t>(c);
    }
  }
  for (int64_t c = 0; c < classes; ++c) {
    const float d = z[c * plane] - st.max_logit;
    const float e = fast_exp(d);
    st.sum_other += c == st.argmax ? 0.0f : e;
    st.ez += e * d;
  }
  st.sum = 1.0f + st.sum_other;
  return st;
}

__device__ float pgn_label_norm(const float* z, int64_t plane, int64_t classes, const SoftmaxStats& st, LabelForm form,
                                float p) {
  const PowKind kind = pow_kind(p);
  const float inv_c = 1.0f / static_cast<float>(classes);
  float acc = 0.0f;
  for (int64_t c = 0; c < classes; ++c) {
    const float log_v = label_log(form, z[c * plane] - st.max_logit, st);
    acc += label_term(form, fast_exp(log_v), log_v, c == st.argmax, inv_c, kind, p);
  }
  return label_norm_finish(form, acc, st, classes, kind, p);
}

__global__ void scores_kernel(const float* logits, const float* features, Geometry g, const DeviceSpec* specs,
                              int spec_count, const float* norm_p, int norm_count, float* maps, int32_t* prediction,
                              int* bad) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t pixels = g.batch * g.plane;
  if (idx >= pixels) return;
  const int64_t n = idx / g.plane, px = idx % g.plane;
  const float* z = logits + n * g.classes * g.plane + px;
  const SoftmaxStats st = pixel_stats(z, g.plane, g.classes, bad);

  float acc[kMaxNorms];
  for (int k = 0; k < norm_count; ++k) acc[k] = 0.0f;
  if (norm_count > 0) {
    const float* phi = features + n * g.channels * g.plane + px;
    for (int64_t f = 0; f < g.channels; ++f) {
      const float v = phi[f * g.plane];
      if (non_finite(v)) atomicOr(bad, 1);
      for (int k = 0; k < norm_count; ++k) acc[k] += pow_term(fabsf(v), pow_kind(norm_p[k]), norm_p[k]);
    }
  }
  for (int s = 0; s < spec_count; ++s) {
    const DeviceSpec& spec = specs[s];
    float value;
    switch (static_cast<ScoreKind>(spec.kind)) {
      case ScoreKind::Entropy: value = entropy_score(st); break;
      case ScoreKind::Msp: value = msp_score(st); break;
      case ScoreKind::MaxLogit: value = maxlogit_score(st); break;
      case ScoreKind::Energy: value = energy_score(st); break;
      default:
        value = pgn_label_norm(z, g.plane, g.classes, st, static_cast<LabelForm>(spec.form), spec.p) *
                finish_norm(acc[spec.norm], pow_kind(spec.p), spec.p);
    }
    maps[s * pixels + idx] = value;
  }
  if (prediction) prediction[idx] = st.argmax;
}

}  // namespace

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

void compute_scores_cuda(const ScoreInput& in, const std::vector<ScoreSpec>& specs, const ScoreOutput& out) {
  std::vector<float> norm_p;
  std::vector<DeviceSpec> dspecs;
  for (const ScoreSpec& s : specs) {
    DeviceSpec d{static_cast<int>(s.kind), 0, -1, s.p};
    if (is_pgn(s.kind)) {
      d.form = static_cast<int>(label_form(s));
      auto it = std::find(norm_p.begin(), norm_p.end(), s.p);
      d.norm = static_cast<int>(it - norm_p.begin());
      if (it == norm_p.end()) norm_p.push_back(s.p);
    }
    dspecs.push_back(d);
  }
  if (norm_p.size() > static_cast<size_t>(kMaxNorms))
    throw std::invalid_argument("the CUDA backend takes at most 16 distinct p per call");

  const Geometry g{in.batch, in.classes, in.channels, in.height * in.width};
  const size_t pixels = static_cast<size_t>(g.batch * g.plane);
  DeviceBuffer<float> logits(in.logits, pixels * g.classes);
  DeviceBuffer<float> features(norm_p.empty() ? nullptr : in.features, norm_p.empty() ? 0 : pixels * g.channels);
  DeviceBuffer<DeviceSpec> dspec(dspecs.data(), dspecs.size());
  DeviceBuffer<float> dnorm(norm_p.data(), norm_p.size());
  DeviceBuffer<float> maps(pixels * specs.size());
  DeviceBuffer<int32_t> prediction(out.prediction ? pixels : 0);
  const int zero = 0;
  DeviceBuffer<int> bad(&zero, 1);

  const int block = 256;
  const unsigned grid = static_cast<unsigned>((pixels + block - 1) / block);
  scores_kernel<<<grid, block>>>(logits.get(), features.get(), g, dspec.get(), static_cast<int>(dspecs.size()),
                                 dnorm.get(), static_cast<int>(norm_p.size()), maps.get(), prediction.get(), bad.get());
  cuda_check(cudaGetLastError(), "scores kernel launch");
  cuda_check(cudaDeviceSynchronize(), "scores kernel");

  int flag = 0;
  bad.download(&flag);
  if (flag) throw_non_finite(in, !norm_p.empty());
  std::vector<float> host(pixels * specs.size());
  maps.download(host.data());
  for (size_t s = 0; s < specs.size(); ++s) std::copy_n(host.data() + s * pixels, pixels, out.maps[s]);
  if (out.prediction) prediction.download(out.prediction);
}

}  // namespace pgn
