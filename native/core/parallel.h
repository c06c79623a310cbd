// A minimal fork-join loop: the calling (libuv worker) thread plus threads-1 helpers split a range.
#pragma once

#include <cstdint>
#include <functional>

namespace pgn {

// Number of threads to use when the caller asks for 0 (= all cores).
int default_threads();

// Calls body(begin, end) on contiguous chunks of [0, count), handed out in order to up to `threads`
// threads as they become free (a thread may run several chunks). After an exception no further
// chunks start; the first exception is rethrown once all threads joined.
void parallel_for(int64_t count, int threads, const std::function<void(int64_t, int64_t)>& body);

}  // namespace pgn
