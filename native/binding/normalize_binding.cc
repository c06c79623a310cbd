// normalizeImages({ images: Uint8Array[], plane, tables: Float32Array(768), source: [r, g, b], threads? })
//   → Promise<Float32Array> [N, 3, plane]: the model input from 8-bit interleaved RGB images.
#include <string>
#include <vector>

#include "../core/normalize.h"
#include "args.h"
#include "worker.h"

namespace pgn::binding {

namespace {

class NormalizeWorker : public Worker {
 public:
  NormalizeWorker(Napi::Env env, std::vector<const uint8_t*> pixels, int64_t plane, const float* tables,
                  std::vector<int> source, float* out, int threads)
      : Worker(env, "pgn.normalizeImages"),
        pixels_(std::move(pixels)),
        plane_(plane),
        tables_(tables),
        source_(std::move(source)),
        out_(out),
        threads_(threads) {}

 protected:
  void Run() override {
    normalize_planes(pixels_.data(), static_cast<int64_t>(pixels_.size()), plane_, tables_, source_.data(), out_,
                     threads_);
  }
  Napi::Value Result(Napi::Env) override { return Kept(KeptCount() - 1); }

 private:
  std::vector<const uint8_t*> pixels_;
  int64_t plane_;
  const float* tables_;
  std::vector<int> source_;
  float* out_;
  int threads_;
};

std::vector<int> source_arg(Napi::Env env, Napi::Value value) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() != 3)
    throw_type(env, "source must be an array of 3 channel indices");
  std::vector<int> source(3);
  for (uint32_t c = 0; c < 3; ++c) {
    const std::string name = "source[" + std::to_string(c) + "]";
    source[c] = static_cast<int>(int_arg(env, value.As<Napi::Array>().Get(c), name.c_str(), 0, 2, -1));
    if (source[c] < 0) throw_type(env, name + " is required");
  }
  return source;
}

Napi::Value NormalizeImages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, "normalizeImages options");
  Napi::Value list = required(opts, "images");
  if (!list.IsArray()) throw_type(env, "images must be an array of Uint8Array");
  Napi::Array images = list.As<Napi::Array>();
  if (images.Length() == 0) throw_range(env, "images must not be empty");
  const int64_t plane = int_arg(env, required(opts, "plane"), "plane", 1, kMaxElements / 3, 0);
  const int64_t count = element_count(env, {static_cast<int64_t>(images.Length()), 3, plane}, "output [N, 3, plane]");
  auto tables = float32_arg(env, required(opts, "tables"), "tables", 3 * 256);
  std::vector<int> source = source_arg(env, required(opts, "source"));
  const int threads = static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0));
  std::vector<Napi::Uint8Array> arrays;
  std::vector<const uint8_t*> pixels;
  for (uint32_t n = 0; n < images.Length(); ++n) {
    const std::string name = "images[" + std::to_string(n) + "]";
    arrays.push_back(uint8_arg(env, images.Get(n), name.c_str(), 3 * plane));
    pixels.push_back(arrays.back().Data());
  }
  auto output = new_float32_unfilled(env, static_cast<size_t>(count), "the model input");
  auto* worker = new NormalizeWorker(env, std::move(pixels), plane, tables.Data(), std::move(source), output.Data(), threads);
  for (auto& a : arrays) worker->Keep(a);
  worker->Keep(tables);
  worker->Keep(output);
  return worker->Start();
}

}  // namespace

void register_normalize(Napi::Env env, Napi::Object exports) {
  exports.Set("normalizeImages", Napi::Function::New(env, NormalizeImages));
}

}  // namespace pgn::binding
