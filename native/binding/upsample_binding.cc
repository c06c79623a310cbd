// upsample({ input, dims: [planes, h, w], size: [H, W], alignCorners?, threads?, output? }) → Promise<Float32Array>
// upsampleArgmax({ logits, dims: [N, C, h, w], size: [H, W], alignCorners?, threads?, output? }) → Promise<Int32Array>
// With `output` (an array of the result's type and size, e.g. one of an earlier result) the result is
// written into it and it is what the promise gives; else a new array.
#include <functional>

#include "../core/upsample.h"
#include "args.h"
#include "worker.h"

namespace pgn::binding {

namespace {

// Runs one core call whose output array, pinned second after its input, is the result.
class OutputWorker : public Worker {
 public:
  OutputWorker(Napi::Env env, const char* name, std::function<void()> run) : Worker(env, name), run_(std::move(run)) {}

 protected:
  void Run() override { run_(); }
  Napi::Value Result(Napi::Env) override { return Kept(1); }

 private:
  std::function<void()> run_;
};

// The arguments both calls share: the output size and the interpolation options.
struct Resize {
  int64_t height, width;
  bool align_corners;
  int threads;
};

Resize resize_args(Napi::Env env, Napi::Object opts) {
  const std::vector<int64_t> size = dims_arg(env, required(opts, "size"), "size", 2);
  return {size[0], size[1], bool_arg(env, opts.Get("alignCorners"), "alignCorners", false),
          static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0))};
}

Napi::Promise start(OutputWorker* worker, Napi::Object input, Napi::Object output) {
  worker->Keep(input);
  worker->Keep(output);
  return worker->Start();
}

Napi::Value Upsample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, "upsample options");
  const std::vector<int64_t> dims = dims_arg(env, required(opts, "dims"), "dims", 3);
  auto input = float32_arg(env, required(opts, "input"), "input", element_count(env, dims, "dims"));
  const Resize r = resize_args(env, opts);
  const int64_t count = element_count(env, {dims[0], r.height, r.width}, "output [planes, H, W]");
  Napi::Value given = opts.Get("output");
  auto output = given.IsUndefined()
                    ? new_float32_unfilled(env, static_cast<size_t>(count), "the upsampled maps")
                    : output_arg(env, given, napi_float32_array, "a Float32Array", count, input).As<Napi::Float32Array>();
  const float* in = input.Data();
  float* out = output.Data();
  return start(new OutputWorker(env, "pgn.upsample", [=] {
                 upsample_bilinear(in, dims[0], dims[1], dims[2], out, r.height, r.width, r.align_corners, r.threads);
               }),
               input, output);
}

Napi::Value UpsampleArgmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, "upsampleArgmax options");
  const std::vector<int64_t> dims = dims_arg(env, required(opts, "dims"), "dims", 4);
  auto logits = float32_arg(env, required(opts, "logits"), "logits", element_count(env, dims, "dims"));
  const Resize r = resize_args(env, opts);
  const int64_t count = element_count(env, {dims[0], r.height, r.width}, "output [N, H, W]");
  Napi::Value given = opts.Get("output");
  auto output = given.IsUndefined()
                    ? new_int32_unfilled(env, static_cast<size_t>(count), "the upsampled prediction")
                    : output_arg(env, given, napi_int32_array, "an Int32Array", count, logits).As<Napi::Int32Array>();
  const float* in = logits.Data();
  int32_t* out = output.Data();
  return start(new OutputWorker(env, "pgn.upsampleArgmax", [=] {
                 upsample_argmax(in, dims[0], dims[1], dims[2], dims[3], out, r.height, r.width, r.align_corners, r.threads);
               }),
               logits, output);
}

}  // namespace

void register_upsample(Napi::Env env, Napi::Object exports) {
  exports.Set("upsample", Napi::Function::New(env, Upsample));
  exports.Set("upsampleArgmax", Napi::Function::New(env, UpsampleArgmax));
}

}  // namespace pgn::binding
