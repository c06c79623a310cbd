// A minimal fork-join loop: the calling (libuv worker) thread plus threads-1 helpers split a range.
#pragma once

#include <cstdint>
#include <functional>

namespace pgn {

// Number of threads to use when the caller asks for 0 (= all cores).
int default_threads();

// Calls body(begin, end) on contiguous chunks of [0, count), handed out in order to up to `threads`
// threads as they become free (a thread may run several chunks): the caller and helpers kept
// between calls (one per further core), or threads of the call's own when those are busy with
// another call or more are asked for. After an exception no further chunks start; the first
// exception is rethrown once all threads are done with the call.
void parallel_for(int64_t count, int threads, const std::function<void(int64_t, int64_t)>& body);

// How long the kept helpers spin, waiting for the next call, before they sleep (microseconds,
// default 1000): back-to-back calls then find them awake. 0: they sleep at once.
void set_spin_wait(int microseconds);
int spin_wait();

}  // namespace pgn
