// Argument validation for the binding: every value JavaScript hands over is checked here, and a bad
// one becomes a TypeError or RangeError naming the argument, before any native work starts.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pgn::binding {

// Largest element count of one tensor or map we accept (V8's typed arrays stop at 2^32 − 1 bytes
// worth of float32 on some builds; 2^31 elements keeps every int64 product far from overflow).
constexpr int64_t kMaxElements = int64_t{1} << 31;

[[noreturn]] void throw_type(Napi::Env env, const std::string& message);
[[noreturn]] void throw_range(Napi::Env env, const std::string& message);

Napi::Object object_arg(const Napi::CallbackInfo& info, size_t index, const char* name);

// A property that must exist and be of the given kind.
Napi::Value required(Napi::Object obj, const char* key);

// A list of positive integer dimensions of the given rank; the product must fit kMaxElements.
std::vector<int64_t> dims_arg(Napi::Env env, Napi::Value value, const char* name, size_t rank);
int64_t element_count(Napi::Env env, const std::vector<int64_t>& dims, const char* name);

// A typed array of the given type (type_name with its article: "a Float32Array") that is attached, not empty, and not a view of a resizable
// ArrayBuffer (shrinking it would pull the memory from under the running call: refused, TypeError).
Napi::TypedArray typed_array_arg(Napi::Env env, Napi::Value value, napi_typedarray_type type, const char* type_name,
                                 const std::string& name);

// A Float32Array as typed_array_arg checks it, holding exactly product(dims) elements.
Napi::TypedArrayOf<float> float32_arg(Napi::Env env, Napi::Value value, const char* name, int64_t expected);

// A caller's array for a call to write into, as typed_array_arg checks it, holding exactly `expected`
// elements and sharing no byte with `input` (the call reads that while it writes: RangeError).
Napi::TypedArray output_arg(Napi::Env env, Napi::Value value, napi_typedarray_type type, const char* type_name,
                            int64_t expected, Napi::TypedArray input);

// A Uint8Array (a Buffer is one) that is attached and holds exactly `expected` bytes.
Napi::Uint8Array uint8_arg(Napi::Env env, Napi::Value value, const char* name, int64_t expected);

// An integer in [lo, hi] (or the fallback when undefined).
int64_t int_arg(Napi::Env env, Napi::Value value, const char* name, int64_t lo, int64_t hi, int64_t fallback);
bool bool_arg(Napi::Env env, Napi::Value value, const char* name, bool fallback);
std::string string_arg(Napi::Env env, Napi::Value value, const char* name);
double number_arg(Napi::Env env, Napi::Value value, const char* name);

std::string dims_text(const std::vector<int64_t>& dims);

// The options of a gradient score object: p in (0, 1e6] and variant "exact" (default) or "code".
struct GradientOptions {
  float p;
  bool code_variant;
};
GradientOptions gradient_options(Napi::Env env, Napi::Object obj, const std::string& where);

// Typed arrays handed back to JavaScript, created through the Float32Array/... constructors captured
// when the module loads (init_typed_arrays). napi_create_arraybuffer treats a failed allocation as
// fatal (V8's ArrayBuffer::New aborts the process); the constructors throw instead, which becomes a
// RangeError "cannot allocate <what>: N values (B bytes)".
void init_typed_arrays(Napi::Env env);
Napi::Float32Array new_float32(Napi::Env env, size_t count, const char* what);
// Not zero-filled: for outputs the core writes in full.
Napi::Float32Array new_float32_unfilled(Napi::Env env, size_t count, const char* what);
Napi::Int32Array new_int32_unfilled(Napi::Env env, size_t count, const char* what);
Napi::Uint32Array new_uint32_unfilled(Napi::Env env, size_t count, const char* what);
Napi::Float64Array new_float64_unfilled(Napi::Env env, size_t count, const char* what);
Napi::Float64Array new_float64(Napi::Env env, size_t count, const char* what);
Napi::Int32Array new_int32(Napi::Env env, size_t count, const char* what);
Napi::Uint32Array new_uint32(Napi::Env env, size_t count, const char* what);

}  // namespace pgn::binding
