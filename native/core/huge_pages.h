// Large buffers (2 MiB and more) in a mapping of their own, 2 MiB-aligned and advised to use
// transparent huge pages. A fresh malloc'd buffer of that size is faulted in 4 KiB page by page as
// it is first written (glibc maps it anew on most calls once it exceeds the mmap threshold), which
// on the shared VM costs ~10 µs a page: 20-80 ms for the 8 MiB copies and scratch arrays of one 2 MP
// map, several times the work that fills them; four huge-page faults cost under a millisecond.
// Without transparent huge pages, plain pages (as malloc's).
#pragma once

#include <cstddef>
#include <memory>

namespace pgn {

// Whether a buffer of `bytes` gets a mapping of its own: 2 MiB and more, on Linux.
bool maps_huge_pages(size_t bytes);

// `bytes` (> 0) of uninitialized memory: a zero-filled mapping when maps_huge_pages(bytes), else
// malloc'd; throws std::bad_alloc when neither is possible. Freed by free_buffer with the same bytes.
void* allocate_buffer(size_t bytes);
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
