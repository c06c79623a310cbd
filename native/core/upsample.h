// Bilinear resizing of score maps with PyTorch's F.interpolate(mode='bilinear') semantics.
#pragma once

#include <cstdint>

namespace pgn {

// in: [planes, in_h, in_w] → out: [planes, out_h, out_w]. align_corners as in PyTorch:
// false maps pixel centres (src = (dst + 0.5)·in/out − 0.5, clamped at 0), true maps corner pixels.
void upsample_bilinear(const float* in, int64_t planes, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                       int64_t out_w, bool align_corners, int threads);

}  // namespace pgn
