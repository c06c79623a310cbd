// What N-API cannot say about a typed array's memory, asked of V8 directly: whether its buffer can
// shrink under a running call (a resizable ArrayBuffer), and a reference that keeps the memory alive
// when the buffer is transferred (postMessage, structuredClone, ArrayBuffer.prototype.transfer) and
// its new owner is garbage-collected while the native call still reads it.
#pragma once

#include <napi.h>

#include <memory>

namespace pgn::binding {

// True for a view of a resizable (non-shared) ArrayBuffer. A growable SharedArrayBuffer is not
// counted: it can only grow, and its memory never moves.
bool resizable_buffer(Napi::TypedArray array);

// Shares ownership of the array's backing store until the returned pointer is released.
std::shared_ptr<void> pin_memory(Napi::TypedArray array);

}  // namespace pgn::binding
