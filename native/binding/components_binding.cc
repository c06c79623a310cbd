// components({ scores, dims: [N, h, w], threshold, roi?, prediction?, connectivity?, minArea?, labels?,
//              backend?, threads? })
//   → Promise<{ labels: Uint32Array | null, segments: SegmentColumns }>
// SegmentColumns = { counts: Uint32Array [N] (segments per image), and for all segments of all images
//   in order (image by image, ids 1..counts[n]): area: Uint32Array, bbox: Int32Array [x, y, w, h]×K,
//   centroid: Float64Array [x, y]×K, meanScore: Float64Array, maxScore: Float32Array,
//   majorityClass: Int32Array | null (null without prediction) }.
// Columns rather than one object per segment: noisy maps give 10^5 segments, and building objects
// through N-API cost ~3 µs each (a V8 TryCatch per property), 20× the labeling itself; src/segments.ts
// builds the objects in JavaScript instead.
// componentsGridEmulation({ ...the same but backend, blockDims?: [h, w], shuffleSeed? }): the CUDA
//   labeling's steps run sequentially on the CPU (for tests; slow).
//
// Foreground = score > threshold (compared exactly: the float32 score against the double threshold)
// and roi != 0. A NaN score is never foreground (NaN > t is false); a NaN threshold is a RangeError.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/components.h"
#include "args.h"
#include "backends.h"
#include "worker.h"

namespace pgn::binding {

namespace {

struct ComponentsCall {
  ComponentInput in;
  Napi::TypedArrayOf<float> scores;
  Napi::Object roi, prediction;  // empty when not given
  bool labels = true;
  int threads = 0;
};

ComponentsCall components_call(const Napi::CallbackInfo& info, const char* what) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, what);
  ComponentsCall call;
  const std::vector<int64_t> dims = dims_arg(env, required(opts, "dims"), "dims", 3);
  const int64_t total = element_count(env, dims, "dims");
  const int64_t plane = dims[1] * dims[2];
  call.scores = float32_arg(env, required(opts, "scores"), "scores", total);
  ComponentInput& in = call.in;
  in.scores = call.scores.Data();
  in.batch = dims[0];
  in.height = dims[1];
  in.width = dims[2];

  const double threshold = number_arg(env, required(opts, "threshold"), "threshold");
  if (std::isnan(threshold)) throw_range(env, "threshold must not be NaN");
  in.threshold = threshold_from_double(threshold);

  Napi::Value roi = opts.Get("roi");
  if (!roi.IsUndefined() && !roi.IsNull()) {
    auto arr = typed_array_arg(env, roi, napi_uint8_array, "a Uint8Array", "roi").As<Napi::Uint8Array>();
    const int64_t len = static_cast<int64_t>(arr.ElementLength());
    if (len != total && len != plane)
      throw_range(env, "roi has " + std::to_string(len) + " elements but must have N·h·w = " + std::to_string(total) +
                           " (one mask per map) or h·w = " + std::to_string(plane) + " (one mask for all)");
    in.roi = arr.Data();
    in.roi_shared = len == plane;
    call.roi = arr;
  }

  Napi::Value prediction = opts.Get("prediction");
  if (!prediction.IsUndefined() && !prediction.IsNull()) {
    auto arr = typed_array_arg(env, prediction, napi_int32_array, "an Int32Array", "prediction").As<Napi::Int32Array>();
    if (static_cast<int64_t>(arr.ElementLength()) != total)
      throw_range(env, "prediction has " + std::to_string(arr.ElementLength()) + " elements but dims call for " +
                           std::to_string(total));
    in.prediction = arr.Data();
    call.prediction = arr;
  }

  Napi::Value connectivity = opts.Get("connectivity");
  if (!connectivity.IsUndefined()) {
    if (!connectivity.IsNumber()) throw_type(env, "connectivity must be a number (4 or 8)");
    const double c = connectivity.As<Napi::Number>().DoubleValue();
    if (c != 4 && c != 8) throw_range(env, "connectivity must be 4 or 8, got " + connectivity.ToString().Utf8Value());
    in.connectivity = static_cast<int>(c);
  }
  in.min_area = int_arg(env, opts.Get("minArea"), "minArea", 0, kMaxElements, 0);
  call.labels = bool_arg(env, opts.Get("labels"), "labels", true);
  call.threads = static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0));
  return call;
}

class ComponentsWorker : public Worker {
 public:
  ComponentsWorker(Napi::Env env, ComponentInput in, Backend backend, int threads)
      : Worker(env, "pgn.components"), in_(in), backend_(backend), threads_(threads) {}

  ComponentInput in_;
  ComponentOutput out_;
  Backend backend_;
  int threads_;
  bool emulation_ = false;
  int block_w_ = 32, block_h_ = 8;
  uint64_t shuffle_seed_ = 0;
  Napi::ObjectReference labels_;

 protected:
  void Run() override {
    const int64_t total = in_.batch * in_.height * in_.width;
    // The classes index the histograms: a private copy. The labelings threshold the scores and the
    // region of interest once and read the foreground from then on (the CUDA one on its device
    // copy); the scores read again only go into the sums and maxima. The emulation reads them
    // several times: a copy of those too.
    const auto prediction = snapshot(in_.prediction, total);
    const auto scores = emulation_ ? snapshot(in_.scores, total) : Buffer<float>();
    const auto roi = emulation_ ? snapshot(in_.roi, in_.roi_shared ? in_.height * in_.width : total) : Buffer<uint8_t>();
    ComponentInput in = in_;
    if (emulation_) {
      in.scores = scores.get();
      in.roi = roi.get();
    }
    in.prediction = prediction.get();
    if (emulation_) label_components_grid_emulation(in, out_, block_w_, block_h_, shuffle_seed_);
    else run_components(backend_, in, out_, threads_);
  }

  Napi::Value Result(Napi::Env env) override {
    size_t total = 0;
    for (const auto& segs : out_.segments) total += segs.size();
    const bool classes = in_.prediction != nullptr;
    // Not zero-filled: every value is written below.
    auto counts = new_uint32_unfilled(env, out_.segments.size(), "the segment counts");
    auto area = new_uint32_unfilled(env, total, "the segment areas");
    auto bbox = new_int32_unfilled(env, 4 * total, "the segment boxes");
    auto centroid = new_float64_unfilled(env, 2 * total, "the segment centroids");
    auto mean = new_float64_unfilled(env, total, "the segment mean scores");
    auto max = new_float32_unfilled(env, total, "the segment max scores");
    Napi::Int32Array majority = classes ? new_int32_unfilled(env, total, "the segment classes") : Napi::Int32Array();
    size_t j = 0;
    for (size_t n = 0; n < out_.segments.size(); ++n) {
      counts[n] = static_cast<uint32_t>(out_.segments[n].size());
      for (const Segment& s : out_.segments[n]) {
        area[j] = static_cast<uint32_t>(s.area);
        bbox[4 * j] = s.x0;
        bbox[4 * j + 1] = s.y0;
        bbox[4 * j + 2] = s.width();
        bbox[4 * j + 3] = s.height();
        centroid[2 * j] = s.cx();
        centroid[2 * j + 1] = s.cy();
        mean[j] = s.mean_score();
        max[j] = s.max_score;
        if (classes) majority[j] = s.majority_class;
        ++j;
      }
    }
    Napi::Object segments = Napi::Object::New(env);
    segments.Set("counts", counts);
    segments.Set("area", area);
    segments.Set("bbox", bbox);
    segments.Set("centroid", centroid);
    segments.Set("meanScore", mean);
    segments.Set("maxScore", max);
    segments.Set("majorityClass", classes ? Napi::Value(majority) : env.Null());
    Napi::Object result = Napi::Object::New(env);
    result.Set("labels", labels_.IsEmpty() ? env.Null() : labels_.Value());
    result.Set("segments", segments);
    return result;
  }
};

Napi::Value Start(const Napi::CallbackInfo& info, ComponentsCall call, Backend backend, bool emulation,
                  int block_w, int block_h, uint64_t seed) {
  Napi::Env env = info.Env();
  auto* worker = new ComponentsWorker(env, call.in, backend, call.threads);
  try {
    worker->emulation_ = emulation;
    worker->block_w_ = block_w;
    worker->block_h_ = block_h;
    worker->shuffle_seed_ = seed;
    worker->Keep(call.scores);
    if (!call.roi.IsEmpty()) worker->Keep(call.roi);
    if (!call.prediction.IsEmpty()) worker->Keep(call.prediction);
    if (call.labels) {
      // Not zero-filled (the labeling writes every pixel): a large one reuses a freed mapping.
      auto labels = new_uint32_unfilled(env, static_cast<size_t>(call.in.batch * call.in.height * call.in.width), "the label images");
      worker->out_.labels = labels.Data();
      worker->labels_ = Napi::Persistent(labels.As<Napi::Object>());
    }
  } catch (...) {
    delete worker;  // never queued: nobody else will free it
    throw;
  }
  return worker->Start();
}

Napi::Value Components(const Napi::CallbackInfo& info) {
  ComponentsCall call = components_call(info, "components options");
  const Backend backend = backend_arg(info.Env(), info[0].As<Napi::Object>().Get("backend"));
  return Start(info, call, backend, false, 0, 0, 0);
}

Napi::Value ComponentsGridEmulation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ComponentsCall call = components_call(info, "componentsGridEmulation options");
  Napi::Object opts = info[0].As<Napi::Object>();
  int block_w = 32, block_h = 8;
  Napi::Value block = opts.Get("blockDims");
  if (!block.IsUndefined()) {
    const std::vector<int64_t> bd = dims_arg(env, block, "blockDims", 2);
    if (bd[0] * bd[1] > 1024)
      throw_range(env, "blockDims " + dims_text(bd) + " must have at most 1024 threads per block");
    block_h = static_cast<int>(bd[0]);
    block_w = static_cast<int>(bd[1]);
  }
  const int64_t seed = int_arg(env, opts.Get("shuffleSeed"), "shuffleSeed", 0, (int64_t{1} << 53) - 1, 0);
  return Start(info, call, Backend::Cpu, true, block_w, block_h, static_cast<uint64_t>(seed));
}

}  // namespace

void register_components(Napi::Env env, Napi::Object exports) {
  exports.Set("components", Napi::Function::New(env, Components));
  exports.Set("componentsGridEmulation", Napi::Function::New(env, ComponentsGridEmulation));
}

}  // namespace pgn::binding
