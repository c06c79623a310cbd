#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace pgn {

namespace {

// Chunks per worker: enough to even out a worker that starts late or is preempted, few enough that
// per-chunk setup (scratch buffers) stays negligible.
constexpr int64_t kChunksPerWorker = 4;

// One parallel_for call: the range goes out in chunks, in order, to whichever thread is free, so
// a thread that the OS (or a hypervisor) holds up takes fewer of them instead of holding up the call.
struct Job {
  Job(int64_t count, int64_t chunk, const std::function<void(int64_t, int64_t)>& body)
      : count(count), chunk(chunk), body(&body) {}

  const int64_t count, chunk;
  const std::function<void(int64_t, int64_t)>* body;  // the caller's: only used while it waits
  std::atomic<int64_t> next{0};
  std::atomic<int> inside{0};       // helpers running chunks
  std::atomic<bool> closed{false};  // set by the caller once it has no chunk left: latecomers stay out
  std::mutex failure_mutex;
  std::exception_ptr failure;

  void run() {
    try {
      for (int64_t begin; (begin = next.fetch_add(chunk)) < count;) (*body)(begin, std::min(count, begin + chunk));
    } catch (...) {
      next = count;  // no more chunks for anyone
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  }

  // A helper's part: nothing once the caller has closed the job (its body may be gone).
  void help() {
    inside.fetch_add(1);
    if (!closed.load()) run();
    inside.fetch_sub(1);
  }
};

// Helper threads kept between calls, so that a call pays neither thread creation nor, on a VM, the
// wake-up of a halted virtual CPU: between jobs each helper spins for a while (spin_wait) before it
// sleeps, which covers the gap between back-to-back calls. One job at a time; a call that finds
// the pool busy uses threads of its own.
class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool;  // never destroyed: helpers may still be waiting at exit
    return *pool;
  }

  // Runs job with `helpers` pool threads besides the caller; false when the pool is busy or has
  // fewer threads than that (one per core but the caller's).
  bool run(const std::shared_ptr<Job>& job, int helpers) {
    if (helpers > default_threads() - 1) return false;
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    grow(helpers);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      helpers_ = std::min(helpers, size_);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    job->run();
    job->closed.store(true);
    while (job->inside.load() != 0) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mutex_);
    job_.reset();
    return true;
  }

  std::atomic<int> spin_us{1000};

 private:
  // Up to n helpers; fewer if the OS refuses threads (the ones running take the chunks). A new
  // helper starts from the generation before the job about to be posted, so that it takes part.
  void grow(int n) {
    const uint64_t before = generation_.load();
    for (; size_ < n; ++size_) {
      try {
        std::thread([this, index = size_, before] { serve(index, before); }).detach();
      } catch (const std::system_error&) {
        return;
      }
    }
  }

  void serve(int index, uint64_t seen) {
    for (;;) {
      wait_for_generation(seen);
      seen = generation_.load();
      std::shared_ptr<Job> job;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (index < helpers_) job = job_;
      }
      if (job) job->help();
    }
  }

  // Spins by yielding: the core stays awake, but any other runnable thread on it (the next stage
  // of a pipeline, ONNX Runtime's workers) gets it first.
  void wait_for_generation(uint64_t seen) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us.load());
    while (generation_.load() == seen && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    if (generation_.load() != seen) return;
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [&] { return generation_.load() != seen; });
  }

  std::mutex busy_;   // held by the call the pool is serving
  std::mutex mutex_;  // guards job_ and helpers_ and the sleepers' wait
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::shared_ptr<Job> job_;
  int helpers_ = 0;  // how many of the helpers the current job takes
  int size_ = 0;     // helpers started (under busy_)
};

// The pool's fallback while it serves another call: threads created for this call only.
void run_with_own_threads(const std::shared_ptr<Job>& job, int helpers) {
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(helpers));
  for (int w = 0; w < helpers; ++w) {
    try {
      pool.emplace_back([&job] { job->run(); });
    } catch (const std::system_error&) {
      break;  // the OS refused a thread: the workers already running take its chunks
    }
  }
  job->run();
  for (auto& t : pool) t.join();
}

}  // namespace

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_spin_wait(int microseconds) { Pool::instance().spin_us.store(std::max(0, microseconds)); }

int spin_wait() { return Pool::instance().spin_us.load(); }

void parallel_for(int64_t count, int threads, const std::function<void(int64_t, int64_t)>& body) {
  if (count <= 0) return;
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads <= 0 ? default_threads() : threads, count));
  if (workers == 1) {
    body(0, count);
    return;
  }
  const int64_t chunk = std::max<int64_t>(1, (count + workers * kChunksPerWorker - 1) / (workers * kChunksPerWorker));
  auto job = std::make_shared<Job>(count, chunk, body);
  const int helpers = static_cast<int>(workers - 1);
  if (!Pool::instance().run(job, helpers)) run_with_own_threads(job, helpers);
  if (job->failure) std::rethrow_exception(job->failure);
}

}  // namespace pgn
