// Per-pixel OoD scores from a segmentation network's logits and penultimate features (CPU path).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pixel_math.h"

namespace pgn {

enum class ScoreKind : int { PgnOneHot, PgnUniform, Entropy, Msp, MaxLogit, Energy };

// One requested score. p and code_variant only matter for the PGN kinds.
struct ScoreSpec {
  ScoreKind kind;
  float p = 1.0f;
  bool code_variant = false;  // the authors'-code label factor instead of the exact gradient
};

// NCHW float32 tensors: logits [N, C, h, w] and features [N, F, h, w].
struct ScoreInput {
  const float* logits;
  const float* features;
  int64_t batch, classes, channels, height, width;
};

// One map per requested score, each [N, h, w]; prediction (argmax class) [N, h, w] when non-null.
struct ScoreOutput {
  std::vector<float*> maps;
  int32_t* prediction = nullptr;
};

// Throws std::invalid_argument on a non-finite input value or inconsistent arguments; the
// message names the tensor and the flat index of the first bad value.
void compute_scores(const ScoreInput& in, const std::vector<ScoreSpec>& specs, const ScoreOutput& out, int threads);

LabelForm label_form(const ScoreSpec& spec);
bool is_pgn(ScoreKind kind);

// Flat index of the first NaN or ±inf in data, or -1: for error messages on the failure path.
int64_t first_non_finite(const float* data, int64_t count);

// The exception compute_scores throws for non-finite inputs (shared with the CUDA backend).
[[noreturn]] void throw_non_finite(const ScoreInput& in, bool uses_features);

}  // namespace pgn
