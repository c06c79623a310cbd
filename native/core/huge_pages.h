// Large buffers (2 MiB and more) in a mapping of their own, 2 MiB-aligned and advised to use
// transparent huge pages, and reused: a freed one is kept (up to 64 MiB in all) for the next
// allocation of about its size. A fresh malloc'd buffer of that size is faulted in 4 KiB page by
// page as it is first written (glibc maps it anew on most calls once it exceeds the mmap
// threshold), which on the shared VM costs ~10 µs a page: 20-80 ms for the 8 MiB copies and scratch
// arrays of one 2 MP map, several times the work that fills them. Huge pages take that to ~1 ms of
// faults, but the kernel still zeroes every fresh page (a third of a labeling call): reuse saves it.
// Without transparent huge pages, plain pages (as malloc's).
#pragma once

#include <cstddef>
#include <memory>

namespace pgn {

// Whether a buffer of `bytes` gets a mapping of its own: 2 MiB and more, on Linux.
bool maps_huge_pages(size_t bytes);

// `bytes` of memory, all 0 if `zeroed` (then never a kept mapping), else uninitialized: a mapping when
// maps_huge_pages(bytes), else malloc'd; throws std::bad_alloc when neither is possible. Freed by
// free_buffer with the same bytes (from any thread).
void* allocate_buffer(size_t bytes, bool zeroed = false);
void free_buffer(void* data, size_t bytes);

struct FreeBuffer {
  size_t bytes = 0;
  void operator()(void* data) const { free_buffer(data, bytes); }
};

// Uninitialized storage for `count` trivially copyable T (at least one).
template <typename T>
using Buffer = std::unique_ptr<T[], FreeBuffer>;

template <typename T>
Buffer<T> new_buffer(size_t count) {
  const size_t bytes = (count > 0 ? count : 1) * sizeof(T);
  return Buffer<T>(static_cast<T*>(allocate_buffer(bytes)), FreeBuffer{bytes});
}

// std::vector's allocator on the same memory.
template <typename T>
struct BufferAllocator {
  using value_type = T;
  BufferAllocator() = default;
  template <typename U>
  BufferAllocator(const BufferAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_buffer(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { free_buffer(p, n * sizeof(T)); }
  friend bool operator==(const BufferAllocator&, const BufferAllocator&) { return true; }
  friend bool operator!=(const BufferAllocator&, const BufferAllocator&) { return false; }
};

}  // namespace pgn
