#include "huge_pages.h"

#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace pgn {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t mapped_length(size_t bytes) { return (bytes + 4095) & ~size_t{4095}; }

}  // namespace

bool maps_huge_pages(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return bytes >= kHugePage;
#else
  (void)bytes;
  return false;
#endif
}

void* allocate_buffer(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (maps_huge_pages(bytes)) {
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
  void* data = std::malloc(bytes > 0 ? bytes : 1);
  if (!data) throw std::bad_alloc();
  return data;
}

void free_buffer(void* data, size_t bytes) {
  if (!data) return;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (maps_huge_pages(bytes)) {
    munmap(data, mapped_length(bytes));
    return;
  }
#endif
  std::free(data);
}

}  // namespace pgn
