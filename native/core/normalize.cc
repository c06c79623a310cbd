#include "normalize.h"

#include <algorithm>
#include <stdexcept>

#include "parallel.h"

namespace pgn {

void normalize_planes(const uint8_t* const* pixels, int64_t images, int64_t plane, const float* tables,
                      const int source[3], float* out, int threads) {
  if (images < 1 || plane < 1) throw std::invalid_argument("normalizing needs at least one pixel");
  for (int c = 0; c < 3; ++c)
    if (source[c] < 0 || source[c] > 2) throw std::invalid_argument("channel sources must be 0, 1 or 2");
  constexpr int64_t kChunk = 1 << 14;  // pixels per task: enough work to be worth handing out
  const int64_t chunks = (plane + kChunk - 1) / kChunk;
  parallel_for(images * chunks, threads, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / chunks, p0 = (task % chunks) * kChunk, p1 = std::min(p0 + kChunk, plane);
      const uint8_t* px = pixels[n];
      for (int c = 0; c < 3; ++c) {
        const float* table = tables + 256 * c;
        const uint8_t* src = px + source[c];
        float* dst = out + (n * 3 + c) * plane;
        for (int64_t p = p0; p < p1; ++p) dst[p] = table[src[3 * p]];
      }
    }
  });
}

}  // namespace pgn
