// CUDA backend of the second-layer scores: same inputs, outputs and errors as pgn::compute_second_layer.
#pragma once

#include <vector>

#include "../core/second_layer.h"

namespace pgn {

// Host pointers in, host pointers out: copies to the device, runs the patch sums (one thread per
// input row, then per output column) and one thread per pixel for the rest, copies back.
void compute_second_layer_cuda(const SecondLayerInput& in, const std::vector<SecondLayerSpec>& specs,
                               const SecondLayerOutput& out);

}  // namespace pgn
