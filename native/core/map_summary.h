// The summary `pgn score` (NDJSON) and `pgn serve` (JSON) report per score map: min, max and mean.
// Run on the pool, not the main thread: a JavaScript loop over a 2 MP map boxes every value it
// reads until V8 optimizes it (24 MB of garbage per map, measured in issue 15), and the collections
// that follow pause the event loop.
#pragma once

#include <cstdint>
#include <vector>

namespace pgn {

struct MapSummary {
  double min, max, mean;
};

// One pass in index order, the sum in float64: the same mean, bit for bit, as a float64 loop over
// the values in order, whatever the thread count. NaN values are skipped by min and max and make
// the mean NaN; an empty map gives min +inf, max -inf and mean NaN.
MapSummary summarize_map(const float* data, int64_t count);

struct MapView {
  const float* data;
  int64_t count;
};

// Every map's summary into out[i]; up to `threads` maps at once (0 = all cores).
void summarize_maps(const std::vector<MapView>& maps, MapSummary* out, int threads);

}  // namespace pgn
