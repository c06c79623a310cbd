// secondLayerScores(options) → Promise<{ maps: Float32Array[], prediction: Int32Array | null }>
//
// options: logits/logitsDims [N,C,h,w], features/featuresDims [N,F,h,w] (φ, the activation's output),
// input/inputDims [N,Cin,H',W'] (x, the k×k conv's input), kernel (K [C,F] of the final 1x1 conv),
// kernelShape [kh,kw], strides [sh,sw], dilations [dh,dw], pads [top,left,bottom,right],
// activation { kind: relu | leakyrelu | clip | prelu, alpha?, min?, max?, slopes? },
// bnScale? [F], codeScale? [F], scores [{ kind: pgn2-oh | pgn2-uni, p, variant? }], prediction?,
// threads?, backend?.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../core/second_layer.h"
#include "args.h"
#include "backends.h"
#include "worker.h"
#ifdef PGN_WITH_CUDA
#include "../cuda/second_layer_cuda.h"
#endif

namespace pgn::binding {

namespace {

constexpr uint32_t kMaxScores = 64;
constexpr float kMinP = 0.1f, kMaxP = 8.0f;

SecondLayerSpec second_spec(Napi::Env env, Napi::Value value, uint32_t index) {
  const std::string where = "scores[" + std::to_string(index) + "]";
  if (!value.IsObject()) throw_type(env, where + " must be an object { kind, p, variant? }");
  Napi::Object obj = value.As<Napi::Object>();
  const std::string kind = string_arg(env, obj.Get("kind"), (where + ".kind").c_str());
  SecondLayerSpec spec{};
  if (kind == "pgn2-oh") spec.one_hot = true;
  else if (kind == "pgn2-uni") spec.one_hot = false;
  else throw_range(env, where + ".kind must be pgn2-oh or pgn2-uni; got \"" + kind + "\"");
  const GradientOptions g = gradient_options(env, obj, where);
  // The second-layer pass has no double fallback (the last layer's pass has, scores.cc): beyond
  // this range its float sums under- or overflow (p = 50 gave 0, p = 0.01 NaN).
  if (!(g.p >= kMinP && g.p <= kMaxP))
    throw_range(env, where + ".p must be in [0.1, 8] for the second-layer scores (their float sums lose the "
                             "result outside it), got " + obj.Get("p").ToString().Utf8Value());
  spec.p = g.p;
  spec.code_variant = g.code_variant;
  return spec;
}

std::vector<SecondLayerSpec> second_specs(Napi::Env env, Napi::Value value) {
  if (!value.IsArray()) throw_type(env, "scores must be an array");
  Napi::Array arr = value.As<Napi::Array>();
  if (arr.Length() == 0) throw_range(env, "scores must name at least one pgn2-oh or pgn2-uni score");
  if (arr.Length() > kMaxScores) throw_range(env, "at most " + std::to_string(kMaxScores) + " scores per call");
  std::vector<SecondLayerSpec> specs;
  for (uint32_t i = 0; i < arr.Length(); ++i) specs.push_back(second_spec(env, arr.Get(i), i));
  return specs;
}

// An array of `count` integers in [lo, hi], or the fallback (every entry) when undefined.
std::vector<int64_t> int_list(Napi::Env env, Napi::Value value, const char* name, uint32_t count, int64_t lo, int64_t hi,
                              int64_t fallback) {
  if (value.IsUndefined()) return std::vector<int64_t>(count, fallback);
  if (!value.IsArray()) throw_type(env, std::string(name) + " must be an array of " + std::to_string(count) + " integers");
  Napi::Array arr = value.As<Napi::Array>();
  if (arr.Length() != count)
    throw_range(env, std::string(name) + " must have " + std::to_string(count) + " entries, got " + std::to_string(arr.Length()));
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < count; ++i) {
    const std::string item = std::string(name) + "[" + std::to_string(i) + "]";
    Napi::Value v = arr.Get(i);
    if (v.IsUndefined()) throw_type(env, item + " must be a number");
    out.push_back(int_arg(env, v, item.c_str(), lo, hi, fallback));
  }
  return out;
}

// An optional Float32Array of `expected` finite values (null when undefined or null).
const float* optional_floats(Napi::Env env, Napi::Value v, const char* key, int64_t expected,
                             std::vector<Napi::Object>& keep, bool non_negative = false) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  auto arr = float32_arg(env, v, key, expected);
  for (int64_t i = 0; i < expected; ++i) {
    const float x = arr[static_cast<size_t>(i)];
    if (!std::isfinite(x)) throw_range(env, std::string(key) + "[" + std::to_string(i) + "] is not finite");
    if (non_negative && x < 0.0f)
      throw_range(env, std::string(key) + "[" + std::to_string(i) + "] is " + std::to_string(x) +
                           ": slopes must be >= 0 (the derivative is read from the activation's output)");
  }
  keep.push_back(arr);
  return arr.Data();
}

ActivationInfo activation_arg(Napi::Env env, Napi::Value value, int64_t channels, std::vector<Napi::Object>& keep) {
  ActivationInfo act{};
  if (value.IsUndefined()) return act;  // relu
  if (!value.IsObject() || value.IsArray()) throw_type(env, "activation must be an object { kind, alpha?, min?, max?, slopes? }");
  Napi::Object obj = value.As<Napi::Object>();
  const std::string kind = string_arg(env, obj.Get("kind"), "activation.kind");
  if (kind == "relu") return act;
  if (kind == "leakyrelu") {
    const double alpha = number_arg(env, obj.Get("alpha"), "activation.alpha");
    if (!(alpha >= 0 && std::isfinite(alpha)))
      throw_range(env, "activation.alpha must be finite and >= 0 (a negative slope hides the sign of the "
                       "pre-activation), got " + obj.Get("alpha").ToString().Utf8Value());
    act.slope = static_cast<float>(alpha);
    return act;
  }
  if (kind == "clip") {
    const double lo = number_arg(env, obj.Get("min"), "activation.min");
    const double hi = number_arg(env, obj.Get("max"), "activation.max");
    if (std::isnan(lo) || std::isnan(hi) || !(lo < hi))
      throw_range(env, "activation.min must be below activation.max, got " + obj.Get("min").ToString().Utf8Value() +
                           " and " + obj.Get("max").ToString().Utf8Value());
    act.lo = static_cast<float>(lo);
    act.hi = static_cast<float>(hi);
    return act;
  }
  if (kind == "prelu") {
    Napi::Value s = obj.Get("slopes");
    if (!s.IsTypedArray() || s.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw_type(env, "activation.slopes must be a Float32Array of 1 or F values");
    const size_t n = s.As<Napi::TypedArray>().ElementLength();
    if (n != 1 && static_cast<int64_t>(n) != channels)
      throw_range(env, "activation.slopes has " + std::to_string(n) + " values; 1 or " + std::to_string(channels) +
                           " (the feature channels) are needed");
    const float* data = optional_floats(env, s, "activation.slopes", static_cast<int64_t>(n), keep, true);
    if (n == 1) act.slope = data[0];
    else act.slopes = data;
    return act;
  }
  throw_range(env, "activation.kind must be relu, leakyrelu, clip or prelu; got \"" + kind + "\"");
}

class SecondLayerWorker : public MapsWorker {
 public:
  SecondLayerWorker(Napi::Env env, SecondLayerInput in, std::vector<SecondLayerSpec> specs, Backend backend, int threads)
      : MapsWorker(env, "pgn.secondLayerScores"), in_(in), specs_(std::move(specs)), backend_(backend), threads_(threads) {}

 protected:
  void Run() override {
    const SecondLayerOutput out{map_data_, prediction_data_};
#ifdef PGN_WITH_CUDA
    if (backend_ == Backend::Cuda) return compute_second_layer_cuda(in_, specs_, out);
#endif
    compute_second_layer(in_, specs_, out, threads_);
  }

 private:
  SecondLayerInput in_;
  std::vector<SecondLayerSpec> specs_;
  Backend backend_;
  int threads_;
};

std::string geometry_text(const ConvGeometry& g) {
  return "kernelShape [" + std::to_string(g.kernel_h) + ", " + std::to_string(g.kernel_w) + "], strides [" +
         std::to_string(g.stride_h) + ", " + std::to_string(g.stride_w) + "], dilations [" + std::to_string(g.dilation_h) +
         ", " + std::to_string(g.dilation_w) + "], pads [" + std::to_string(g.pad_top) + ", " + std::to_string(g.pad_left) +
         ", " + std::to_string(g.pad_bottom) + ", " + std::to_string(g.pad_right) + "]";
}

Napi::Value SecondLayerScores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, "secondLayerScores options");
  std::vector<Napi::Object> keep;
  const std::vector<int64_t> ld = dims_arg(env, required(opts, "logitsDims"), "logitsDims", 4);
  auto logits = float32_arg(env, required(opts, "logits"), "logits", element_count(env, ld, "logitsDims"));
  if (ld[1] < 2) throw_range(env, "logitsDims[1] (classes) must be >= 2, got " + std::to_string(ld[1]));
  const std::vector<int64_t> fd = dims_arg(env, required(opts, "featuresDims"), "featuresDims", 4);
  auto features = float32_arg(env, required(opts, "features"), "features", element_count(env, fd, "featuresDims"));
  if (fd[0] != ld[0] || fd[2] != ld[2] || fd[3] != ld[3])
    throw_range(env, "featuresDims " + dims_text(fd) + " must match logitsDims " + dims_text(ld) + " in batch, height and width");
  const std::vector<int64_t> xd = dims_arg(env, required(opts, "inputDims"), "inputDims", 4);
  auto input = float32_arg(env, required(opts, "input"), "input", element_count(env, xd, "inputDims"));
  if (xd[0] != ld[0]) throw_range(env, "inputDims " + dims_text(xd) + " must match logitsDims " + dims_text(ld) + " in batch");
  const int64_t classes = ld[1], channels = fd[1];
  if (classes > kMaxElements / channels) throw_range(env, "classes × features is too large");
  Napi::Value kv = required(opts, "kernel");
  if (!kv.IsTypedArray() || kv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(env, "kernel must be a Float32Array (the final 1x1 conv's weight K [C, F])");
  if (static_cast<int64_t>(kv.As<Napi::TypedArray>().ElementLength()) != classes * channels)
    throw_range(env, "kernel has " + std::to_string(kv.As<Napi::TypedArray>().ElementLength()) +
                         " values but K [C, F] needs " + std::to_string(classes) + " × " + std::to_string(channels));
  const float* kernel = optional_floats(env, kv, "kernel", classes * channels, keep);

  ConvGeometry g;
  const auto ks = int_list(env, required(opts, "kernelShape"), "kernelShape", 2, 1, 1024, 1);
  const auto st = int_list(env, opts.Get("strides"), "strides", 2, 1, 1024, 1);
  const auto di = int_list(env, opts.Get("dilations"), "dilations", 2, 1, 1024, 1);
  const auto pa = int_list(env, opts.Get("pads"), "pads", 4, 0, 1 << 20, 0);
  g.kernel_h = ks[0], g.kernel_w = ks[1], g.stride_h = st[0], g.stride_w = st[1], g.dilation_h = di[0], g.dilation_w = di[1];
  g.pad_top = pa[0], g.pad_left = pa[1], g.pad_bottom = pa[2], g.pad_right = pa[3];
  const int64_t oh = conv_output_size(xd[2], g.pad_top, g.pad_bottom, g.dilation_h, g.kernel_h, g.stride_h);
  const int64_t ow = conv_output_size(xd[3], g.pad_left, g.pad_right, g.dilation_w, g.kernel_w, g.stride_w);
  if (oh != ld[2] || ow != ld[3])
    throw_range(env, "a conv with " + geometry_text(g) + " maps the input's " + std::to_string(xd[2]) + "x" +
                         std::to_string(xd[3]) + " to " + std::to_string(oh) + "x" + std::to_string(ow) +
                         ", but the logits and features are " + std::to_string(ld[2]) + "x" + std::to_string(ld[3]));

  const ActivationInfo act = activation_arg(env, opts.Get("activation"), channels, keep);
  const float* scale = optional_floats(env, opts.Get("bnScale"), "bnScale", channels, keep);
  const float* code_scale = optional_floats(env, opts.Get("codeScale"), "codeScale", channels, keep);
  std::vector<SecondLayerSpec> specs = second_specs(env, required(opts, "scores"));
  const bool prediction = bool_arg(env, opts.Get("prediction"), "prediction", true);
  const int threads = static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0));
  const Backend backend = backend_arg(env, opts.Get("backend"));

  SecondLayerInput in{logits.Data(), features.Data(), input.Data(), kernel, scale, code_scale,
                      ld[0], classes, channels, ld[2], ld[3], xd[1], xd[2], xd[3], g, act};
  const size_t count = specs.size();
  auto* worker = new SecondLayerWorker(env, in, std::move(specs), backend, threads);
  worker->Keep(logits);
  worker->Keep(features);
  worker->Keep(input);
  for (Napi::Object& o : keep) worker->Keep(o);
  return MapsWorker::Launch(worker, env, count, static_cast<size_t>(ld[0] * ld[2] * ld[3]), prediction);
}

}  // namespace

void register_second_layer(Napi::Env env, Napi::Object exports) {
  exports.Set("secondLayerScores", Napi::Function::New(env, SecondLayerScores));
}

}  // namespace pgn::binding
