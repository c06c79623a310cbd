// CUDA backend of the scores: same inputs, outputs and errors as pgn::compute_scores.
#pragma once

#include <vector>

#include "../core/scores.h"

namespace pgn {

// Number of usable CUDA devices; 0 when there is no driver or no device.
int cuda_device_count();

// Host pointers in, host pointers out: copies to the device, runs one thread per pixel, copies back.
void compute_scores_cuda(const ScoreInput& in, const std::vector<ScoreSpec>& specs, const ScoreOutput& out);

}  // namespace pgn
