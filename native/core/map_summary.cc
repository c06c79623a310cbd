#include "map_summary.h"

#include <limits>

#include "parallel.h"

namespace pgn {

MapSummary summarize_map(const float* data, int64_t count) {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double v = data[i];
    if (v < min) min = v;  // false for NaN: skipped
    if (v > max) max = v;
    sum += v;  // one accumulator, in order: no reassociation, so no drift from the reference order
  }
  return {min, max, count > 0 ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN()};
}

void summarize_maps(const std::vector<MapView>& maps, MapSummary* out, int threads) {
  parallel_for(static_cast<int64_t>(maps.size()), threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = summarize_map(maps[i].data, maps[i].count);
  });
}

}  // namespace pgn
