// Large buffers in huge-page mappings (huge_pages.h), and the few kept for reuse.
#include "huge_pages.h"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace pgn {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t mapped_length(size_t bytes) { return (bytes + 4095) & ~size_t{4095}; }

#if defined(__linux__) && defined(MADV_HUGEPAGE)

// Freed mappings kept for the next calls: mapping and faulting in fresh memory (the kernel zeroes
// every page) was a third of a labeling call on a 2 MP map. At most kKeptBytes are kept; a mapping
// is reused for a request of at least half its length, so that little of it lies idle.
constexpr size_t kKeptBytes = size_t{64} << 20;

struct Kept {
  void* data;
  size_t length;
};

struct Recycler {
  std::mutex mutex;
  std::vector<Kept> kept;
  size_t bytes = 0;

  // The smallest kept mapping of `length` to 2·`length` bytes, or nullptr.
  void* take(size_t length) {
    std::lock_guard<std::mutex> lock(mutex);
    size_t best = kept.size();
    for (size_t i = 0; i < kept.size(); ++i)
      if (kept[i].length >= length && kept[i].length / 2 <= length && (best == kept.size() || kept[i].length < kept[best].length))
        best = i;
    if (best == kept.size()) return nullptr;
    void* data = kept[best].data;
    bytes -= kept[best].length;
    // Its length is no longer known to the caller: the unused tail goes back now.
    if (kept[best].length > length) munmap(static_cast<char*>(data) + length, kept[best].length - length);
    kept[best] = kept.back();
    kept.pop_back();
    return data;
  }

  // Keeps the mapping if there is room, else unmaps it.
  void give(void* data, size_t length) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (bytes + length <= kKeptBytes) {
        kept.push_back(Kept{data, length});
        bytes += length;
        return;
      }
    }
    munmap(data, length);
  }
};

// Never destroyed: buffers may be freed by finalizers that run while the process exits.
Recycler& recycler() {
  static Recycler* r = new Recycler;
  return *r;
}

void* map_new(size_t bytes) {
  if (bytes > SIZE_MAX - 2 * kHugePage) throw std::bad_alloc();
  const size_t span = bytes + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  // Keep the 2 MiB-aligned part; the slack before and after goes back at once.
  const uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) & ~(kHugePage - 1);
  const size_t head = start - reinterpret_cast<uintptr_t>(raw);
  if (head > 0) munmap(raw, head);
  const size_t mapped = mapped_length(bytes);
  if (span - head > mapped) munmap(reinterpret_cast<void*>(start + mapped), span - head - mapped);
  void* data = reinterpret_cast<void*>(start);
  madvise(data, mapped, MADV_HUGEPAGE);  // a hint: without transparent huge pages, plain pages
  return data;
}

#endif

}  // namespace

bool maps_huge_pages(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return bytes >= kHugePage;
#else
  (void)bytes;
  return false;
#endif
}

void* allocate_buffer(size_t bytes, bool zeroed) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (maps_huge_pages(bytes)) {
    // Zeroes: a new mapping, whose pages the kernel zeroes as they are first touched (on the
    // thread that writes them, not on the caller's, e.g. JavaScript's).
    if (!zeroed)
      if (void* data = recycler().take(mapped_length(bytes))) return data;
    return map_new(bytes);
  }
#endif
  void* data = zeroed ? std::calloc(bytes > 0 ? bytes : 1, 1) : std::malloc(bytes > 0 ? bytes : 1);
  if (!data) throw std::bad_alloc();
  return data;
}

void free_buffer(void* data, size_t bytes) {
  if (!data) return;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (maps_huge_pages(bytes)) {
    recycler().give(data, mapped_length(bytes));
    return;
  }
#endif
  std::free(data);
}

}  // namespace pgn
