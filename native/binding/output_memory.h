// Memory for large outputs (a 2 MP map is 8 MiB): mappings of their own, 2 MiB-aligned and advised
// to use transparent huge pages, recycled once JavaScript has let go of them.
#pragma once

#include <napi.h>

#include <cstddef>
#include <memory>

namespace pgn::binding {

// An ArrayBuffer of count · element_bytes bytes in such a mapping, or an empty one below 2 MiB or
// where mappings are not available (then the caller allocates as usual). `zeroed` asks for zeros
// (a fresh mapping); otherwise the contents are unspecified, maybe a recycled output's (the caller
// overwrites every byte). A failure to map is a
// RangeError naming `what`.
Napi::ArrayBuffer output_buffer(Napi::Env env, size_t count, size_t element_bytes, bool zeroed, const char* what);

// Scratch memory of `bytes` for a pool thread, from the same idle mappings when it is that large
// (no fresh pages to fault in), else from new[]; contents unspecified. Freed by ScratchDeleter.
struct ScratchDeleter {
  size_t bytes = 0;  // 0: new[]
  void operator()(void* p) const;
};
std::unique_ptr<void, ScratchDeleter> scratch_memory(size_t bytes);

}  // namespace pgn::binding
