// upsample({ input, dims: [planes, h, w], size: [H, W], alignCorners?, threads? }) → Promise<Float32Array>
#include "../core/upsample.h"
#include "args.h"
#include "worker.h"

namespace pgn::binding {

namespace {

class UpsampleWorker : public Worker {
 public:
  UpsampleWorker(Napi::Env env, const float* in, std::vector<int64_t> dims, float* out, int64_t out_h, int64_t out_w,
                 bool align_corners, int threads)
      : Worker(env, "pgn.upsample"), in_(in), dims_(std::move(dims)), out_(out), out_h_(out_h), out_w_(out_w),
        align_corners_(align_corners), threads_(threads) {}

 protected:
  void Run() override {
    upsample_bilinear(in_, dims_[0], dims_[1], dims_[2], out_, out_h_, out_w_, align_corners_, threads_);
  }
  Napi::Value Result(Napi::Env) override { return Kept(1); }

 private:
  const float* in_;
  std::vector<int64_t> dims_;
  float* out_;
  int64_t out_h_, out_w_;
  bool align_corners_;
  int threads_;
};

Napi::Value Upsample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, "upsample options");
  const std::vector<int64_t> dims = dims_arg(env, required(opts, "dims"), "dims", 3);
  auto input = float32_arg(env, required(opts, "input"), "input", element_count(env, dims, "dims"));
  const std::vector<int64_t> size = dims_arg(env, required(opts, "size"), "size", 2);
  const int64_t out_count = element_count(env, {dims[0], size[0], size[1]}, "output [planes, H, W]");
  const bool align = bool_arg(env, opts.Get("alignCorners"), "alignCorners", false);
  const int threads = static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0));
  auto output = new_float32(env, static_cast<size_t>(out_count), "the upsampled maps");
  auto* worker = new UpsampleWorker(env, input.Data(), dims, output.Data(), size[0], size[1], align, threads);
  worker->Keep(input);
  worker->Keep(output);
  return worker->Start();
}

class ArgmaxWorker : public Worker {
 public:
  ArgmaxWorker(Napi::Env env, const float* logits, std::vector<int64_t> dims, int32_t* out, int64_t out_h,
               int64_t out_w, bool align_corners, int threads)
      : Worker(env, "pgn.upsampleArgmax"), logits_(logits), dims_(std::move(dims)), out_(out), out_h_(out_h),
        out_w_(out_w), align_corners_(align_corners), threads_(threads) {}

 protected:
  void Run() override {
    upsample_argmax(logits_, dims_[0], dims_[1], dims_[2], dims_[3], out_, out_h_, out_w_, align_corners_, threads_);
  }
  Napi::Value Result(Napi::Env) override { return Kept(1); }

 private:
  const float* logits_;
  std::vector<int64_t> dims_;
  int32_t* out_;
  int64_t out_h_, out_w_;
  bool align_corners_;
  int threads_;
};

// upsampleArgmax({ logits, dims: [N, C, h, w], size: [H, W], alignCorners?, threads? }) → Promise<Int32Array>
Napi::Value UpsampleArgmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, "upsampleArgmax options");
  const std::vector<int64_t> dims = dims_arg(env, required(opts, "dims"), "dims", 4);
  auto logits = float32_arg(env, required(opts, "logits"), "logits", element_count(env, dims, "dims"));
  const std::vector<int64_t> size = dims_arg(env, required(opts, "size"), "size", 2);
  const int64_t out_count = element_count(env, {dims[0], size[0], size[1]}, "output [N, H, W]");
  const bool align = bool_arg(env, opts.Get("alignCorners"), "alignCorners", false);
  const int threads = static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0));
  auto output = new_int32(env, static_cast<size_t>(out_count), "the upsampled prediction");
  auto* worker = new ArgmaxWorker(env, logits.Data(), dims, output.Data(), size[0], size[1], align, threads);
  worker->Keep(logits);
  worker->Keep(output);
  return worker->Start();
}

}  // namespace

void register_upsample(Napi::Env env, Napi::Object exports) {
  exports.Set("upsample", Napi::Function::New(env, Upsample));
  exports.Set("upsampleArgmax", Napi::Function::New(env, UpsampleArgmax));
}

}  // namespace pgn::binding
