// CUDA kernels of the second-layer scores; the per-pixel math is core/second_layer_math.h (shared
// with the CPU path), the patch sums use the same strided prefix sums in double.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "../core/second_layer.h"
#include "device_buffer.h"
#include "second_layer_cuda.h"

namespace pgn {

namespace {

constexpr int kMaxNorms = 16;      // distinct p per call (patch), and per label form (channel)
constexpr int kMaxClasses = 256;   // q lives in per-thread local memory

struct DeviceSpec {
  int form;
  int channel_norm;  // index into the form's channel exponents
  int patch_norm;    // index into the patch exponents
  float p;           // patch p
  float cp;          // channel p (0.5 for variant=code)
};

struct Norms {
  int patch_count;
  float patch[kMaxNorms];
  int channel_count[kSecondForms];
  float channel[kSecondForms][kMaxNorms];
};

struct Shape {
  int64_t batch, classes, channels, height, width, in_channels, in_height, in_width;
  ConvGeometry g;
  float act_lo, act_hi, act_slope;
};

// A[n][k][y][x] = Σ_i |x_i(y, x)|^p_k
__global__ void channel_powers(const float* input, Shape s, Norms norms, double* a, int* bad) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t plane = s.in_height * s.in_width;
  if (idx >= s.batch * plane) return;
  const int64_t n = idx / plane, px = idx % plane;
  double acc[kMaxNorms];
  for (int k = 0; k < norms.patch_count; ++k) acc[k] = 0.0;
  for (int64_t i = 0; i < s.in_channels; ++i) {
    const float v = input[(n * s.in_channels + i) * plane + px];
    if (non_finite(v)) atomicOr(bad, 1);
    for (int k = 0; k < norms.patch_count; ++k) acc[k] += pow_term(fabsf(v), pow_kind(norms.patch[k]), norms.patch[k]);
  }
  for (int k = 0; k < norms.patch_count; ++k) a[(n * norms.patch_count + k) * plane + px] = acc[k];
}

// One thread per input row: strided prefix sums in place, then the horizontal window sums.
__global__ void row_windows(double* a, Shape s, int patch_count, double* hsum) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t rows = s.batch * patch_count * s.in_height;
  if (idx >= rows) return;
  double* row = a + idx * s.in_width;
  for (int64_t x = s.g.dilation_w; x < s.in_width; ++x) row[x] += row[x - s.g.dilation_w];
  double* dst = hsum + idx * s.width;
  for (int64_t b = 0; b < s.width; ++b) {
    int64_t lo, hi;
    window_range(b, s.g.stride_w, s.g.pad_left, s.g.dilation_w, s.g.kernel_w, s.in_width, &lo, &hi);
    dst[b] = window_sum(row, 1, lo, hi, s.g.dilation_w);
  }
}

// One thread per output column of one (image, exponent): vertical prefix sums, window sums.
__global__ void column_windows(double* hsum, Shape s, int patch_count, float* patch) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= s.batch * patch_count * s.width) return;
  const int64_t slab = idx / s.width, b = idx % s.width;
  double* col = hsum + slab * s.in_height * s.width + b;
  for (int64_t y = s.g.dilation_h; y < s.in_height; ++y) col[y * s.width] += col[(y - s.g.dilation_h) * s.width];
  float* dst = patch + slab * s.height * s.width + b;
  for (int64_t a = 0; a < s.height; ++a) {
    int64_t lo, hi;
    window_range(a, s.g.stride_h, s.g.pad_top, s.g.dilation_h, s.g.kernel_h, s.in_height, &lo, &hi);
    dst[a * s.width] = static_cast<float>(window_sum(col, s.width, lo, hi, s.g.dilation_h));
  }
}

__global__ void pixel_scores(const float* logits, const float* features, const float* kernel /* K̃ */, const float* k_mean,
                             const float* scale, const float* code_scale, const float* slopes, const float* patch,
                             Shape s, Norms norms, const DeviceSpec* specs, int spec_count, float* maps,
                             int32_t* prediction, int* bad) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t plane = s.height * s.width, pixels = s.batch * plane;
  if (idx >= pixels) return;
  const int64_t n = idx / plane, px = idx % plane;
  const float* z = logits + n * s.classes * plane + px;

  SoftmaxStats st{z[0], 0, 0.0f, 0.0f, 0.0f};
  for (int64_t c = 0; c < s.classes; ++c) {
    const float v = z[c * plane];
    if (non_finite(v)) atomicOr(bad, 1);
    if (v > st.max_logit) {
      st.max_logit = v;
      st.argmax = static_cast<int32_t>(c);
    }
  }
  for (int64_t c = 0; c < s.classes; ++c) {
    const float d = z[c * plane] - st.max_logit;
    const float e = fast_exp(d);
    st.sum_other += c == st.argmax ? 0.0f : e;
    st.ez += e * d;
  }
  st.sum = 1.0f + st.sum_other;
  const float r = st.sum_other / st.sum, inv_s = 1.0f / st.sum;
  const float code_uni = static_cast<float>(s.classes - 1) / static_cast<float>(s.classes);
  float q[kMaxClasses];
  float q_sum = 0.0f;
  for (int64_t c = 0; c < s.classes; ++c) {
    q[c] = c == st.argmax ? 0.0f : fast_exp(label_log(LabelForm::OneHotExact, z[c * plane] - st.max_logit, st));
    q_sum += q[c];
  }

  float acc[kSecondForms][kMaxNorms];
  for (int form = 0; form < kSecondForms; ++form)
    for (int k = 0; k < norms.channel_count[form]; ++k) acc[form][k] = 0.0f;
  const float* phi = features + n * s.channels * plane + px;
  for (int64_t f = 0; f < s.channels; ++f) {
    float t = 0.0f;
    for (int64_t c = 0; c < s.classes; ++c) t += kernel[c * s.channels + f] * q[c];
    const float k_pred = kernel[static_cast<int64_t>(st.argmax) * s.channels + f];
    const float v = phi[f * plane];
    if (non_finite(v)) atomicOr(bad, 1);
    const float mask = act_derivative(v, s.act_lo, s.act_hi, slopes ? slopes[f] : s.act_slope);
    for (int form = 0; form < kSecondForms; ++form) {
      if (norms.channel_count[form] == 0) continue;
      const bool code = form == kOhCode || form == kUniCode;
      const float* sc = code ? code_scale : scale;
      const float g = fabsf(second_form_value(form, t, k_pred, k_mean[f], r, inv_s, q_sum, code_uni) * mask * (sc ? sc[f] : 1.0f));
      for (int k = 0; k < norms.channel_count[form]; ++k)
        acc[form][k] += pow_term(g, pow_kind(norms.channel[form][k]), norms.channel[form][k]);
    }
  }
  for (int i = 0; i < spec_count; ++i) {
    const DeviceSpec& d = specs[i];
    const float ps = patch[(n * norms.patch_count + d.patch_norm) * plane + px];
    maps[i * pixels + idx] = second_form_outer(d.form, st) * finish_norm(acc[d.form][d.channel_norm], pow_kind(d.cp), d.cp) *
                             finish_norm(ps, pow_kind(d.p), d.p);
  }
  if (prediction) prediction[idx] = st.argmax;
}

int add_norm(float* list, int& count, float p) {
  for (int k = 0; k < count; ++k)
    if (list[k] == p) return k;
  if (count == kMaxNorms) throw std::invalid_argument("the CUDA backend takes at most 16 distinct p per call");
  list[count] = p;
  return count++;
}

unsigned grid_for(int64_t threads, int block) { return static_cast<unsigned>((threads + block - 1) / block); }

}  // namespace

void compute_second_layer_cuda(const SecondLayerInput& in, const std::vector<SecondLayerSpec>& specs,
                               const SecondLayerOutput& out) {
  check_second_layer(in, specs, out);
  if (in.classes > kMaxClasses) throw std::invalid_argument("the CUDA backend takes at most 256 classes for pgn2 scores");
  Norms norms{};
  std::vector<DeviceSpec> dspecs;
  for (const SecondLayerSpec& s : specs) {
    DeviceSpec d{};
    d.form = second_layer_form(s);
    d.p = s.p;
    d.cp = s.code_variant ? 0.5f : s.p;
    d.patch_norm = add_norm(norms.patch, norms.patch_count, d.p);
    d.channel_norm = add_norm(norms.channel[d.form], norms.channel_count[d.form], d.cp);
    dspecs.push_back(d);
  }
  const int64_t C = in.classes, F = in.channels, plane = in.height * in.width, P = norms.patch_count;
  std::vector<float> k_mean, k_centered;
  center_kernel(in.kernel, C, F, k_mean, k_centered);
  Shape s{in.batch, C, F, in.height, in.width, in.in_channels, in.in_height, in.in_width, in.geometry,
          in.activation.lo, in.activation.hi, in.activation.slope};
  const size_t pixels = static_cast<size_t>(in.batch * plane);
  const size_t in_plane = static_cast<size_t>(in.in_height * in.in_width);

  DeviceBuffer<float> logits(in.logits, pixels * C);
  DeviceBuffer<float> features(in.features, pixels * F);
  DeviceBuffer<float> input(in.input, static_cast<size_t>(in.batch * in.in_channels) * in_plane);
  DeviceBuffer<float> kernel(k_centered.data(), k_centered.size());
  DeviceBuffer<float> dk_mean(k_mean.data(), k_mean.size());
  DeviceBuffer<float> scale(in.scale, in.scale ? static_cast<size_t>(F) : 0);
  DeviceBuffer<float> code_scale(in.code_scale, in.code_scale ? static_cast<size_t>(F) : 0);
  DeviceBuffer<float> slopes(in.activation.slopes, in.activation.slopes ? static_cast<size_t>(F) : 0);
  DeviceBuffer<DeviceSpec> dspec(dspecs.data(), dspecs.size());
  DeviceBuffer<double> powers(static_cast<size_t>(in.batch * P) * in_plane);
  DeviceBuffer<double> hsum(static_cast<size_t>(in.batch * P * in.in_height * in.width));
  DeviceBuffer<float> patch(static_cast<size_t>(in.batch * P) * plane);
  DeviceBuffer<float> maps(pixels * specs.size());
  DeviceBuffer<int32_t> prediction(out.prediction ? pixels : 0);
  const int zero = 0;
  DeviceBuffer<int> bad(&zero, 1);

  const int block = 256;
  channel_powers<<<grid_for(in.batch * static_cast<int64_t>(in_plane), block), block>>>(input.get(), s, norms, powers.get(), bad.get());
  cuda_check(cudaGetLastError(), "second-layer channel powers launch");
  row_windows<<<grid_for(in.batch * P * in.in_height, block), block>>>(powers.get(), s, norms.patch_count, hsum.get());
  cuda_check(cudaGetLastError(), "second-layer row windows launch");
  column_windows<<<grid_for(in.batch * P * in.width, block), block>>>(hsum.get(), s, norms.patch_count, patch.get());
  cuda_check(cudaGetLastError(), "second-layer column windows launch");
  pixel_scores<<<grid_for(static_cast<int64_t>(pixels), block), block>>>(
      logits.get(), features.get(), kernel.get(), dk_mean.get(), scale.get(), code_scale.get(), slopes.get(), patch.get(), s,
      norms, dspec.get(), static_cast<int>(dspecs.size()), maps.get(), prediction.get(), bad.get());
  cuda_check(cudaGetLastError(), "second-layer pixel kernel launch");
  cuda_check(cudaDeviceSynchronize(), "second-layer kernels");

  int flag = 0;
  bad.download(&flag);
  if (flag) throw_second_layer_non_finite(in);
  std::vector<float> host(pixels * specs.size());
  maps.download(host.data());
  for (size_t i = 0; i < specs.size(); ++i) std::copy_n(host.data() + i * pixels, pixels, out.maps[i]);
  if (out.prediction) prediction.download(out.prediction);
}

}  // namespace pgn
