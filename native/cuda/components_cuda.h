// CUDA backend of the connected components: same inputs, outputs and errors as pgn::label_components.
#pragma once

#include "../core/components.h"

namespace pgn {

// Labels on the device (components_uf.h, one thread per pixel), statistics on the host.
void label_components_cuda(const ComponentInput& in, ComponentOutput& out);

}  // namespace pgn
