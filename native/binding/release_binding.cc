// release(arrays) → undefined: detaches the ArrayBuffer of each typed array, so that its memory goes
// back now (to core/huge_pages' reuse, or to the allocator) instead of at the garbage collection that
// finds it unreachable. A server scoring 2 MP images hands out ~40 MB of maps per request; left to
// the collector, that external memory forces a full collection every image or two, each a pause of
// the event loop (issue 15: 2-20 ms each on a busy 2-core machine). A native call still reading an
// array keeps its memory (worker.h pins the backing store), so releasing early is never unsafe.
#include "args.h"

namespace pgn::binding {

namespace {

Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw_type(env, "release expects an array of typed arrays");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<Napi::ArrayBuffer> buffers;
  for (uint32_t i = 0; i < list.Length(); i++) {
    const std::string name = "arrays[" + std::to_string(i) + "]";
    Napi::Value value = list.Get(i);
    if (!value.IsTypedArray()) throw_type(env, name + " must be a typed array");
    Napi::TypedArray array = value.As<Napi::TypedArray>();
    Napi::Value buffer = array.ArrayBuffer();
    if (!buffer.IsArrayBuffer()) throw_type(env, name + " is a view of a SharedArrayBuffer, which cannot be released");
    Napi::ArrayBuffer whole = buffer.As<Napi::ArrayBuffer>();
    // Detaching empties every view of the buffer: only an array that is its buffer's sole view qualifies.
    if (array.ByteOffset() != 0 || array.ByteLength() != whole.ByteLength())
      throw_range(env, name + " is a view of part of a larger buffer (" + std::to_string(array.ByteLength()) + " of " +
                           std::to_string(whole.ByteLength()) + " bytes): releasing it would empty the other views");
    buffers.push_back(whole);
  }
  for (Napi::ArrayBuffer& buffer : buffers)
    if (!buffer.IsDetached()) buffer.Detach();
  return env.Undefined();
}

}  // namespace

void register_release(Napi::Env env, Napi::Object exports) {
  exports.Set("release", Napi::Function::New(env, Release));
}

}  // namespace pgn::binding
