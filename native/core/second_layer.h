// Second-layer PGN scores: gradient norms of the loss w.r.t. the weights of the second-to-last
// convolution (the k×k conv before the activation that feeds the final 1x1 conv). CPU path.
// Derivation: second_layer_math.h and docs/second-layer.md.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "second_layer_math.h"

namespace pgn {

struct SecondLayerSpec {
  bool one_hot = true;  // label e_ĉ (pgn2-oh) or uniform 1/C (pgn2-uni)
  float p = 0.5f;
  // The authors' code (uncertainty-gradients-seg, deepv3.py): their label factor (s·(1−onehot),
  // (C−1)/C·s), the channel norm always at p = 0.5 (the patch norm at p), and code_scale (their
  // BatchNorm derivative γ alone) instead of scale.
  bool code_variant = false;
};

// Geometry of the k×k conv (ONNX Conv attributes; pads top, left, bottom, right).
struct ConvGeometry {
  int64_t kernel_h = 3, kernel_w = 3;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 1, pad_left = 1, pad_bottom = 1, pad_right = 1;
};

// act'(v) from φ, see act_derivative(): per-channel slopes (or one slope for all) below lo.
struct ActivationInfo {
  float lo = 0.0f;
  float hi = std::numeric_limits<float>::infinity();
  float slope = 0.0f;
  const float* slopes = nullptr;  // [F] (PRelu) or null: `slope` for every channel
};

struct SecondLayerInput {
  const float* logits;    // [N, C, h, w]
  const float* features;  // φ [N, F, h, w]
  const float* input;     // x [N, Cin, H', W'], the k×k conv's input
  const float* kernel;    // K [C, F], the final 1x1 conv's weight
  const float* scale;     // [F] or null (= 1): γ/√(var+ε) of an unfolded BatchNorm between conv and act
  const float* code_scale;  // [F] or null (= 1): what variant=code multiplies by (the authors: γ)
  int64_t batch, classes, channels, height, width;
  int64_t in_channels, in_height, in_width;
  ConvGeometry geometry;
  ActivationInfo activation;
};

struct SecondLayerOutput {
  std::vector<float*> maps;  // one [N, h, w] per spec
  int32_t* prediction = nullptr;
};

// Output size of a conv along one axis: (size + pads − dil·(k−1) − 1) / stride + 1, or <= 0 when the
// (padded) input is smaller than the dilated kernel.
int64_t conv_output_size(int64_t size, int64_t pad_begin, int64_t pad_end, int64_t dil, int64_t kernel, int64_t stride);

// Throws std::invalid_argument on inconsistent arguments or a non-finite value in logits, features
// or input (naming the tensor and the flat index of the first bad value).
void compute_second_layer(const SecondLayerInput& in, const std::vector<SecondLayerSpec>& specs,
                          const SecondLayerOutput& out, int threads);

// Shared with the CUDA backend.
void check_second_layer(const SecondLayerInput& in, const std::vector<SecondLayerSpec>& specs,
                        const SecondLayerOutput& out);
int second_layer_form(const SecondLayerSpec& spec);
// k̄_f = mean_c K[c,f] and K̃ = K − k̄ (computed in double), see second_layer_math.h.
void center_kernel(const float* kernel, int64_t classes, int64_t channels, std::vector<float>& mean,
                   std::vector<float>& centered);
[[noreturn]] void throw_second_layer_non_finite(const SecondLayerInput& in);

}  // namespace pgn
