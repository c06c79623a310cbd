#include "output_memory.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace pgn::binding {

#if defined(__linux__) && defined(MADV_HUGEPAGE)
namespace {

// Why mappings of their own: a fresh malloc'd buffer is faulted in 4 KiB page by page as the core
// first writes it, which on the shared VM costs 10-40 ms per 8 MiB (more under load), several times
// the work that fills it; four huge-page faults cost under a millisecond.
//
// Why recycled: even huge pages are zeroed by the kernel at their first touch (clear_page, 15 % of
// an upsampled prediction's time) and unmapped at the end. A pipeline asks for the same few sizes
// image after image, so a mapping whose ArrayBuffer was collected waits here for the next output
// of its size instead (idle mappings are bounded by kIdleBytes).
//
// V8 is told about the outputs in fresh mappings (AdjustExternalMemory), so that garbage collection
// runs when new memory piles up, and not about recycled ones: those cost no new memory, and
// counting them made V8 collect its whole heap once per image for "external memory pressure"
// while the pipeline only reused what it had. If collection falls behind, the idle mappings run
// out, fresh ones are counted, and the pressure brings collection back.
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kIdleBytes = size_t{96} << 20;

struct Mapping {
  void* data;
  size_t bytes;      // page-rounded
  size_t accounted;  // what V8 was told of for the output in it (AdjustExternalMemory)
};

// Finalizers run on the JavaScript thread of the environment that made the buffer; environments
// (worker threads) share this cache, hence the lock.
class IdleMappings {
 public:
  static IdleMappings& instance() {
    static IdleMappings* cache = new IdleMappings;  // never destroyed: finalizers may run at exit
    return *cache;
  }

  size_t idle_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return total_;
  }

  // An idle mapping of exactly `bytes`, or {nullptr, 0}.
  Mapping take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = idle_.size(); i-- > 0;) {
      if (idle_[i].bytes != bytes) continue;
      const Mapping m = idle_[i];
      idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
      total_ -= bytes;
      return m;
    }
    return {nullptr, 0, 0};
  }

  // Keeps `m` for reuse, evicting the oldest idle mappings beyond kIdleBytes.
  void give(Mapping m) {
    std::vector<Mapping> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_.push_back(m);
      total_ += m.bytes;
      while (total_ > kIdleBytes) {
        evicted.push_back(idle_.front());
        total_ -= idle_.front().bytes;
        idle_.erase(idle_.begin());
      }
    }
    for (const Mapping& e : evicted) munmap(e.data, e.bytes);
  }

 private:
  std::mutex mutex_;
  std::vector<Mapping> idle_;  // oldest first
  size_t total_ = 0;
};

// A new 2 MiB-aligned mapping of `bytes` (page-rounded), advised for huge pages; nullptr on failure.
void* map_aligned(size_t bytes) {
  const size_t span = bytes + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  // Keep the 2 MiB-aligned part; the slack before and after goes back at once.
  const uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) & ~(kHugePage - 1);
  const size_t head = start - reinterpret_cast<uintptr_t>(raw);
  if (head > 0) munmap(raw, head);
  if (span - head > bytes) munmap(reinterpret_cast<void*>(start + bytes), span - head - bytes);
  void* data = reinterpret_cast<void*>(start);
  madvise(data, bytes, MADV_HUGEPAGE);  // a hint: without transparent huge pages, plain pages
  return data;
}

}  // namespace

Napi::ArrayBuffer output_buffer(Napi::Env env, size_t count, size_t element_bytes, bool zeroed, const char* what) {
  const size_t bytes = count * element_bytes;
  if (bytes < kHugePage) return Napi::ArrayBuffer();
  const size_t mapped = (bytes + 4095) & ~size_t{4095};
  // Zeros come from a fresh mapping, cleared by the kernel as the pool thread first touches it,
  // rather than from a memset of an idle one here on the JavaScript thread.
  Mapping m = zeroed ? Mapping{nullptr, 0, 0} : IdleMappings::instance().take(mapped);
  if (!m.data) {
    m = {map_aligned(mapped), mapped, mapped};
    if (!m.data)
      throw Napi::RangeError::New(env, std::string("cannot allocate ") + what + ": " + std::to_string(count) +
                                           " values (" + std::to_string(bytes) + " bytes): " + std::strerror(errno));
  } else {
    m.accounted = 0;
  }
  auto* mapping = new Mapping(m);
  try {
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
        env, m.data, bytes,
        [](Napi::Env env, void*, Mapping* done) {
          if (done->accounted) Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(done->accounted));
          IdleMappings::instance().give(*done);
          delete done;
        },
        mapping);
    if (m.accounted) Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(m.accounted));
    return buffer;
  } catch (const Napi::Error& e) {
    IdleMappings::instance().give(m);
    delete mapping;
    throw Napi::RangeError::New(env, std::string("cannot allocate ") + what + ": " + std::to_string(count) + " values (" +
                                         std::to_string(bytes) + " bytes): " + e.Message());
  }
}

size_t idle_output_bytes() { return IdleMappings::instance().idle_bytes(); }

std::unique_ptr<void, ScratchDeleter> scratch_memory(size_t bytes) {
  if (bytes >= kHugePage) {
    const size_t mapped = (bytes + 4095) & ~size_t{4095};
    Mapping m = IdleMappings::instance().take(mapped);
    if (!m.data) m.data = map_aligned(mapped);
    if (!m.data) throw std::bad_alloc();
    return std::unique_ptr<void, ScratchDeleter>(m.data, ScratchDeleter{mapped});
  }
  return std::unique_ptr<void, ScratchDeleter>(new unsigned char[bytes], ScratchDeleter{0});
}

void ScratchDeleter::operator()(void* p) const {
  if (bytes) IdleMappings::instance().give({p, bytes, 0});
  else delete[] static_cast<unsigned char*>(p);
}

#else

Napi::ArrayBuffer output_buffer(Napi::Env, size_t, size_t, bool, const char*) { return Napi::ArrayBuffer(); }
size_t idle_output_bytes() { return 0; }

std::unique_ptr<void, ScratchDeleter> scratch_memory(size_t bytes) {
  return std::unique_ptr<void, ScratchDeleter>(new unsigned char[bytes], ScratchDeleter{0});
}

void ScratchDeleter::operator()(void* p) const { delete[] static_cast<unsigned char*>(p); }

#endif

void register_output_memory(Napi::Env env, Napi::Object exports) {
  // idleOutputBytes() → the bytes of output mappings waiting for reuse (tests see the recycling).
  exports.Set("idleOutputBytes", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(idle_output_bytes()));
  }));
}

}  // namespace pgn::binding
