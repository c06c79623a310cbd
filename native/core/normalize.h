// The model input from decoded images: 8-bit interleaved RGB → normalized float planes (NCHW).
#pragma once

#include <cstdint>

namespace pgn {

// Each of `images` interleaved 8-bit RGB images of `plane` pixels becomes three float planes of the
// output [images, 3, plane]: out[n][c][p] = tables[c][pixels[n][3p + source[c]]], the per-channel
// tables holding (v / scale − mean) / std for the 256 byte values (so the model's channel c reads
// RGB byte source[c]). The tables are computed by the caller; this pass only gathers and transposes.
void normalize_planes(const uint8_t* const* pixels, int64_t images, int64_t plane, const float* tables,
                      const int source[3], float* out, int threads);

}  // namespace pgn
