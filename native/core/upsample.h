// Bilinear resizing of score maps with PyTorch's F.interpolate(mode='bilinear') semantics.
#pragma once

#include <cstdint>

namespace pgn {

// in: [planes, in_h, in_w] → out: [planes, out_h, out_w]. align_corners as in PyTorch:
// false maps pixel centres (src = (dst + 0.5)·in/out − 0.5, clamped at 0), true maps corner pixels.
void upsample_bilinear(const float* in, int64_t planes, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                       int64_t out_w, bool align_corners, int threads);

// The predicted class at output resolution: argmax over classes of the bilinearly upsampled logits
// [batch, classes, in_h, in_w] → int32 [batch, out_h, out_w], without storing the upsampled logits.
// Ties go to the lowest class index, like argmax.
void upsample_argmax(const float* logits, int64_t batch, int64_t classes, int64_t in_h, int64_t in_w, int32_t* out,
                     int64_t out_h, int64_t out_w, bool align_corners, int threads);

}  // namespace pgn
