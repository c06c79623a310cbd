#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace pgn {

namespace {

// Chunks per worker: enough to even out a worker that starts late or is preempted, few enough that
// per-chunk setup (scratch buffers) stays negligible.
constexpr int64_t kChunksPerWorker = 4;

}  // namespace

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void parallel_for(int64_t count, int threads, const std::function<void(int64_t, int64_t)>& body) {
  if (count <= 0) return;
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads <= 0 ? default_threads() : threads, count));
  if (workers == 1) {
    body(0, count);
    return;
  }
  // The range goes out in chunks, in order, to whichever worker is free: a worker that the OS (or
  // a hypervisor) holds up takes fewer of them instead of holding up the whole call.
  const int64_t chunk = std::max<int64_t>(1, (count + workers * kChunksPerWorker - 1) / (workers * kChunksPerWorker));
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto run = [&]() {
    try {
      for (int64_t begin; (begin = next.fetch_add(chunk)) < count;) body(begin, std::min(count, begin + chunk));
    } catch (...) {
      next = count;  // no more chunks for anyone
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers - 1));
  for (int64_t w = 1; w < workers; ++w) {
    try {
      pool.emplace_back(run);
    } catch (const std::system_error&) {
      break;  // the OS refused a thread: the workers already running take its chunks
    }
  }
  run();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace pgn
