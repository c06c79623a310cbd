#include "pinned_memory.h"

#include <v8.h>

#include <cstring>

namespace pgn::binding {

namespace {

// A napi_value is a V8 handle under another name (node's own v8impl::V8LocalValueFromJsValue reads it
// the same way); the addon is compiled against the running Node's headers, so the layouts match.
v8::Local<v8::ArrayBuffer> buffer_of(Napi::TypedArray array) {
  static_assert(sizeof(v8::Local<v8::Value>) == sizeof(napi_value), "napi_value is not a V8 handle");
  napi_value value = array;
  v8::Local<v8::Value> local;
  std::memcpy(static_cast<void*>(&local), &value, sizeof(value));
  return local.As<v8::ArrayBufferView>()->Buffer();
}

}  // namespace

bool resizable_buffer(Napi::TypedArray array) {
  const std::shared_ptr<v8::BackingStore> memory = buffer_of(array)->GetBackingStore();
  return !memory->IsShared() && memory->IsResizableByUserJavaScript();
}

std::shared_ptr<void> pin_memory(Napi::TypedArray array) { return buffer_of(array)->GetBackingStore(); }

}  // namespace pgn::binding
