#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include <new>

#include "../core/huge_pages.h"
#include "pinned_memory.h"

namespace pgn::binding {

void throw_type(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }
void throw_range(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

Napi::Object object_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsObject() || info[index].IsArray())
    throw_type(info.Env(), std::string(name) + " must be an options object");
  return info[index].As<Napi::Object>();
}

Napi::Value required(Napi::Object obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() || v.IsNull()) throw_type(obj.Env(), std::string(key) + " is required");
  return v;
}

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::vector<int64_t> dims_arg(Napi::Env env, Napi::Value value, const char* name, size_t rank) {
  if (!value.IsArray()) throw_type(env, std::string(name) + " must be an array of " + std::to_string(rank) + " integers");
  Napi::Array arr = value.As<Napi::Array>();
  if (arr.Length() != rank)
    throw_range(env, std::string(name) + " must have " + std::to_string(rank) + " dimensions, got " +
                         std::to_string(arr.Length()));
  std::vector<int64_t> dims(rank);
  for (uint32_t i = 0; i < rank; ++i) {
    Napi::Value d = arr.Get(i);
    if (!d.IsNumber()) throw_type(env, std::string(name) + "[" + std::to_string(i) + "] must be a number");
    const double v = d.As<Napi::Number>().DoubleValue();
    if (!(v >= 1 && v <= static_cast<double>(kMaxElements) && std::floor(v) == v))
      throw_range(env, std::string(name) + "[" + std::to_string(i) + "] must be a positive integer, got " +
                           d.ToString().Utf8Value());
    dims[i] = static_cast<int64_t>(v);
  }
  element_count(env, dims, name);
  return dims;
}

int64_t element_count(Napi::Env env, const std::vector<int64_t>& dims, const char* name) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d > kMaxElements / n)
      throw_range(env, std::string(name) + " " + dims_text(dims) + " has more than 2^31 elements");
    n *= d;
  }
  return n;
}

Napi::TypedArray typed_array_arg(Napi::Env env, Napi::Value value, napi_typedarray_type type, const char* type_name,
                                 const std::string& name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_type(env, name + " must be " + type_name);
  auto arr = value.As<Napi::TypedArray>();
  if (arr.ElementLength() == 0) throw_type(env, name + " is empty or its buffer was detached");
  if (resizable_buffer(arr))
    throw_type(env, name + " is a view of a resizable ArrayBuffer, which could shrink under the running call: "
                           "copy it into a fixed-length typed array first");
  return arr;
}

Napi::TypedArrayOf<float> float32_arg(Napi::Env env, Napi::Value value, const char* name, int64_t expected) {
  auto arr = typed_array_arg(env, value, napi_float32_array, "a Float32Array", name).As<Napi::TypedArrayOf<float>>();
  if (static_cast<int64_t>(arr.ElementLength()) != expected)
    throw_range(env, std::string(name) + " has " + std::to_string(arr.ElementLength()) +
                         " elements but its dims call for " + std::to_string(expected));
  return arr;
}

Napi::TypedArray output_arg(Napi::Env env, Napi::Value value, napi_typedarray_type type, const char* type_name,
                            int64_t expected, Napi::TypedArray input) {
  Napi::TypedArray out = typed_array_arg(env, value, type, type_name, "output");
  if (static_cast<int64_t>(out.ElementLength()) != expected)
    throw_range(env, "output has " + std::to_string(out.ElementLength()) + " elements but the result has " +
                         std::to_string(expected));
  const auto* o = static_cast<const uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset();
  const auto* i = static_cast<const uint8_t*>(input.ArrayBuffer().Data()) + input.ByteOffset();
  if (o < i + input.ByteLength() && i < o + out.ByteLength())
    throw_range(env, "output shares memory with the input, which the call reads while it writes the output");
  return out;
}

Napi::Uint8Array uint8_arg(Napi::Env env, Napi::Value value, const char* name, int64_t expected) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw_type(env, std::string(name) + " must be a Uint8Array (or Buffer)");
  auto arr = value.As<Napi::Uint8Array>();
  if (arr.ElementLength() == 0) throw_type(env, std::string(name) + " is empty or its buffer was detached");
  if (static_cast<int64_t>(arr.ElementLength()) != expected)
    throw_range(env, std::string(name) + " has " + std::to_string(arr.ElementLength()) + " bytes but should have " +
                         std::to_string(expected));
  return arr;
}

int64_t int_arg(Napi::Env env, Napi::Value value, const char* name, int64_t lo, int64_t hi, int64_t fallback) {
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw_type(env, std::string(name) + " must be a number");
  const double v = value.As<Napi::Number>().DoubleValue();
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi) && std::floor(v) == v))
    throw_range(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "], got " + value.ToString().Utf8Value());
  return static_cast<int64_t>(v);
}

bool bool_arg(Napi::Env env, Napi::Value value, const char* name, bool fallback) {
  if (value.IsUndefined()) return fallback;
  if (!value.IsBoolean()) throw_type(env, std::string(name) + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string string_arg(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsString()) throw_type(env, std::string(name) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

double number_arg(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsNumber()) throw_type(env, std::string(name) + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

namespace {

// The module's instance data (one per environment, freed with it).
struct TypedArrayConstructors {
  Napi::FunctionReference float32, float64, int32, uint32;
};

// A failed output allocation as the RangeError the callers document.
[[noreturn]] void throw_allocation(Napi::Env env, const char* what, size_t count, size_t element_bytes,
                                   const Napi::Error& e) {
  throw_range(env, std::string("cannot allocate ") + what + ": " + std::to_string(count) + " values (" +
                       std::to_string(count * element_bytes) + " bytes): " + e.Message());
}

// Outputs of 2 MiB and more (a 2 MP map is 8 MiB) get a mapping of their own advised for
// transparent huge pages, new or reused (core/huge_pages.h: fresh 4 KiB pages cost 10-40 ms per
// 8 MiB on the shared VM). V8 counts the memory of every ArrayBuffer, external ones included, as
// external memory (its ArrayBufferSweeper), so garbage collection keeps up with it without a word
// from us (telling it again, as this did, counted every output twice and doubled the full
// collections under load); the finalizer frees the mapping for reuse.
struct Mapping {
  void* data;
  size_t bytes;
};

// A mapped ArrayBuffer of `bytes`, or an empty one where that is not available (then the caller
// allocates as usual); a failure to map is a RangeError naming `what`.
Napi::ArrayBuffer mapped_buffer(Napi::Env env, size_t count, size_t element_bytes, const char* what, bool zeroed) {
  const size_t bytes = count * element_bytes;
  if (!maps_huge_pages(bytes)) return Napi::ArrayBuffer();
  void* data = nullptr;
  try {
    data = allocate_buffer(bytes, zeroed);
  } catch (const std::bad_alloc&) {
    throw_range(env, std::string("cannot allocate ") + what + ": " + std::to_string(count) + " values (" +
                         std::to_string(bytes) + " bytes): " + std::strerror(errno));
  }
  auto* mapping = new Mapping{data, bytes};
  try {
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
        env, data, bytes,
        [](Napi::Env, void*, Mapping* m) {
          free_buffer(m->data, m->bytes);
          delete m;
        },
        mapping);
    return buffer;
  } catch (const Napi::Error& e) {
    free_buffer(data, bytes);
    delete mapping;
    throw_allocation(env, what, count, element_bytes, e);
  }
}

Napi::Object allocate(Napi::Env env, Napi::FunctionReference TypedArrayConstructors::*type, size_t count,
                      size_t element_bytes, const char* what) {
  auto* constructors = env.GetInstanceData<TypedArrayConstructors>();
  Napi::ArrayBuffer mapped = mapped_buffer(env, count, element_bytes, what, true);
  try {
    if (!mapped.IsEmpty())
      return (constructors->*type).New({mapped, Napi::Number::New(env, 0), Napi::Number::New(env, static_cast<double>(count))});
    return (constructors->*type).New({Napi::Number::New(env, static_cast<double>(count))});
  } catch (const Napi::Error& e) {
    throw_allocation(env, what, count, element_bytes, e);
  }
}

}  // namespace

void init_typed_arrays(Napi::Env env) {
  Napi::Object global = env.Global();
  auto* c = new TypedArrayConstructors;
  c->float32 = Napi::Persistent(global.Get("Float32Array").As<Napi::Function>());
  c->float64 = Napi::Persistent(global.Get("Float64Array").As<Napi::Function>());
  c->int32 = Napi::Persistent(global.Get("Int32Array").As<Napi::Function>());
  c->uint32 = Napi::Persistent(global.Get("Uint32Array").As<Napi::Function>());
  env.SetInstanceData(c);
}

Napi::Float32Array new_float32(Napi::Env env, size_t count, const char* what) {
  return allocate(env, &TypedArrayConstructors::float32, count, 4, what).As<Napi::Float32Array>();
}
Napi::Float64Array new_float64(Napi::Env env, size_t count, const char* what) {
  return allocate(env, &TypedArrayConstructors::float64, count, 8, what).As<Napi::Float64Array>();
}
// node::Buffer's allocation skips the zero fill of `new Float32Array(n)`.
template <typename T>
Napi::TypedArrayOf<T> unfilled(Napi::Env env, size_t count, const char* what) {
  Napi::ArrayBuffer mapped = mapped_buffer(env, count, sizeof(T), what, false);
  if (!mapped.IsEmpty()) return Napi::TypedArrayOf<T>::New(env, count, mapped, 0);
  try {
    Napi::Buffer<uint8_t> bytes = Napi::Buffer<uint8_t>::New(env, count * sizeof(T));
    return Napi::TypedArrayOf<T>::New(env, count, bytes.ArrayBuffer(), bytes.ByteOffset());
  } catch (const Napi::Error& e) {
    throw_allocation(env, what, count, sizeof(T), e);
  }
}
Napi::Float32Array new_float32_unfilled(Napi::Env env, size_t count, const char* what) {
  return unfilled<float>(env, count, what);
}
Napi::Int32Array new_int32_unfilled(Napi::Env env, size_t count, const char* what) {
  return unfilled<int32_t>(env, count, what);
}
Napi::Uint32Array new_uint32_unfilled(Napi::Env env, size_t count, const char* what) {
  return unfilled<uint32_t>(env, count, what);
}
Napi::Float64Array new_float64_unfilled(Napi::Env env, size_t count, const char* what) {
  return unfilled<double>(env, count, what);
}
Napi::Int32Array new_int32(Napi::Env env, size_t count, const char* what) {
  return allocate(env, &TypedArrayConstructors::int32, count, 4, what).As<Napi::Int32Array>();
}
Napi::Uint32Array new_uint32(Napi::Env env, size_t count, const char* what) {
  return allocate(env, &TypedArrayConstructors::uint32, count, 4, what).As<Napi::Uint32Array>();
}

GradientOptions gradient_options(Napi::Env env, Napi::Object obj, const std::string& where) {
  const double p = number_arg(env, obj.Get("p"), (where + ".p").c_str());
  if (!(p > 0 && p <= 1e6)) throw_range(env, where + ".p must be a number in (0, 1e6], got " + obj.Get("p").ToString().Utf8Value());
  Napi::Value variant = obj.Get("variant");
  if (variant.IsUndefined()) return {static_cast<float>(p), false};
  const std::string v = string_arg(env, variant, (where + ".variant").c_str());
  if (v != "exact" && v != "code") throw_range(env, where + ".variant must be \"exact\" or \"code\", got \"" + v + "\"");
  return {static_cast<float>(p), v == "code"};
}

}  // namespace pgn::binding
