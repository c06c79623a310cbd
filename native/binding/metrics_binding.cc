// Streaming evaluation accumulators (DESIGN.md §2), one JavaScript object each:
//
// new PixelMetricsAccumulator({ mode?: 'exact' | 'binned', bins?, float16?, chunkValues? })
//   .add(scores: Float32Array, labels: Uint8Array, dims: [h, w]) → Promise<void>
//   .finish({ threads?, curves? }) → Promise<{ mode, images, positives, negatives, points, auroc, auprc, fpr95,
//       fpr95Threshold, bestF1, bestF1Threshold, official?: { bestF1Threshold, fpr95Threshold },
//       curves?: { threshold, tpr, fpr, precision } (Float64Array) }>
//   .images, .pending, .bytes, .finished (getters)
// new InstanceMetricsAccumulator({ threshold, minPredictedSize?, minGtSize? })
//   .add(scores, labels, dims) → Promise<{ sIoU, gtArea, ppv, sIoUPred, predArea } (Float64Array)>
//   .finish() → Promise<{ images, gtComponents, predictedComponents, sIoU, ppv, sIoUPred, thresholds, tp, fn, fp,
//       f1, meanF1 }>
//
// add() runs on the libuv pool; the adds of one accumulator are serialized by its mutex, so concurrent
// calls are safe (their order only matters for error messages' image numbers and, binned, for ties).
// Each add is numbered in call order from 0: errors about an image's content name that number.
// finish() refuses while adds are running, then frees the accumulated data; the object refuses
// everything afterwards. The data is also freed when the object is garbage-collected.
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>

#include "../core/instance_metrics.h"
#include "../core/pixel_metrics.h"
#include "args.h"
#include "worker.h"

namespace pgn::binding {

namespace {

Napi::TypedArrayOf<uint8_t> uint8_arg(Napi::Env env, Napi::Value value, const char* name, int64_t expected) {
  auto arr = typed_array_arg(env, value, napi_uint8_array, "a Uint8Array", name).As<Napi::TypedArrayOf<uint8_t>>();
  if (static_cast<int64_t>(arr.ElementLength()) != expected)
    throw_range(env, std::string(name) + " has " + std::to_string(arr.ElementLength()) +
                         " elements but its dims call for " + std::to_string(expected));
  return arr;
}

Napi::Object optional_object(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || info[index].IsUndefined()) return Napi::Object::New(info.Env());
  return object_arg(info, index, name);
}

Napi::Float64Array f64(Napi::Env env, const std::vector<double>& v) {
  auto a = new_float64(env, v.size(), "a metrics result");
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

Napi::Float64Array f64(Napi::Env env, const std::vector<int64_t>& v) {
  auto a = new_float64(env, v.size(), "a metrics result");
  for (size_t i = 0; i < v.size(); ++i) a[i] = static_cast<double>(v[i]);
  return a;
}

Napi::Array number_array(Napi::Env env, const std::vector<double>& v) {
  auto a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, v[i]));
  return a;
}

Napi::Array number_array(Napi::Env env, const std::vector<int64_t>& v) {
  auto a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(v[i])));
  return a;
}

// One image handed to add(): validated views of the caller's arrays.
struct ImageArgs {
  Napi::TypedArrayOf<float> scores;
  Napi::TypedArrayOf<uint8_t> labels;
  int64_t height = 0, width = 0;
};

ImageArgs image_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ImageArgs a;
  if (info.Length() < 3) throw_type(env, "add(scores, labels, dims) takes 3 arguments, got " + std::to_string(info.Length()));
  const std::vector<int64_t> dims = dims_arg(env, info[2], "dims", 2);
  const int64_t count = element_count(env, dims, "dims");
  a.scores = float32_arg(env, info[0], "scores", count);
  a.labels = uint8_arg(env, info[1], "labels", count);
  a.height = dims[0];
  a.width = dims[1];
  return a;
}

// State shared by both accumulators: the core, its lock, and the main-thread bookkeeping.
template <typename Core>
struct Guarded {
  std::unique_ptr<Core> core;
  std::mutex mutex;
  std::atomic<int64_t> images{0};
  std::atomic<int64_t> bytes{0};
  int pending = 0;        // main thread only
  int64_t next_image = 0;  // main thread only
  bool finished = false;   // main thread only

  void check_open(Napi::Env env, const char* what, const char* method) const {
    if (finished)
      throw Napi::Error::New(env, std::string("this ") + what + " accumulator is finished: " + method +
                                      "() is no longer possible; create a new one");
  }
  void check_idle(Napi::Env env) const {
    if (pending > 0)
      throw Napi::Error::New(env, "finish() called while " + std::to_string(pending) +
                                      " add() call(s) are still running: await them first");
  }
};

// ---------------------------------------------------------------------------------------------------

class PixelMetricsWrap : public Napi::ObjectWrap<PixelMetricsWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PixelMetricsAccumulator",
                       {InstanceMethod<&PixelMetricsWrap::Add>("add"),
                        InstanceMethod<&PixelMetricsWrap::Finish>("finish"),
                        InstanceAccessor<&PixelMetricsWrap::Images>("images"),
                        InstanceAccessor<&PixelMetricsWrap::Pending>("pending"),
                        InstanceAccessor<&PixelMetricsWrap::Bytes>("bytes"),
                        InstanceAccessor<&PixelMetricsWrap::Finished>("finished")});
  }

  explicit PixelMetricsWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PixelMetricsWrap>(info) {
    Napi::Env env = info.Env();
    Napi::Object opts = optional_object(info, 0, "pixel metrics options");
    Napi::Value mode_v = opts.Get("mode");
    Napi::Value bins_v = opts.Get("bins");
    std::string mode = mode_v.IsUndefined() ? (bins_v.IsUndefined() ? "exact" : "binned") : string_arg(env, mode_v, "mode");
    if (mode != "exact" && mode != "binned") throw_range(env, "mode must be \"exact\" or \"binned\", got \"" + mode + "\"");
    if (mode == "exact") {
      if (!bins_v.IsUndefined()) throw_range(env, "bins only applies to mode \"binned\"");
      if (!opts.Get("float16").IsUndefined()) throw_range(env, "float16 only applies to mode \"binned\"");
      const int64_t chunk = int_arg(env, opts.Get("chunkValues"), "chunkValues", 1024, int64_t{1} << 28, int64_t{1} << 24);
      state_.core = make_exact_pixel_metrics(chunk);
    } else {
      const int64_t bins = int_arg(env, bins_v, "bins", 2, int64_t{1} << 20, 768);
      const bool float16 = bool_arg(env, opts.Get("float16"), "float16", true);
      if (!opts.Get("chunkValues").IsUndefined()) throw_range(env, "chunkValues only applies to mode \"exact\"");
      state_.core = make_binned_pixel_metrics(static_cast<int>(bins), float16);
    }
  }

 private:
  class AddWorker : public Worker {
   public:
    AddWorker(Napi::Env env, PixelMetricsWrap* wrap, const ImageArgs& a, int64_t image)
        : Worker(env, "pgn.pixelMetrics.add"), wrap_(wrap), scores_(a.scores.Data()), labels_(a.labels.Data()),
          height_(a.height), width_(a.width), image_(image) {}
    ~AddWorker() override { --wrap_->state_.pending; }

   protected:
    void Run() override {
      const auto scores = snapshot(scores_, height_ * width_);
      const auto labels = snapshot(labels_, height_ * width_);
      auto& s = wrap_->state_;
      std::lock_guard<std::mutex> lock(s.mutex);
      s.core->add(scores.get(), labels.get(), height_, width_, image_);
      s.images = s.core->images();
      s.bytes = s.core->bytes();
    }
    Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

   private:
    PixelMetricsWrap* wrap_;
    const float* scores_;
    const uint8_t* labels_;
    int64_t height_, width_, image_;
  };

  class FinishWorker : public Worker {
   public:
    FinishWorker(Napi::Env env, PixelMetricsWrap* wrap, int threads, bool curves)
        : Worker(env, "pgn.pixelMetrics.finish"), wrap_(wrap), threads_(threads), curves_(curves) {}

   protected:
    void Run() override {
      auto& s = wrap_->state_;
      std::unique_ptr<PixelMetrics> core;
      {
        std::lock_guard<std::mutex> lock(s.mutex);
        core = std::move(s.core);
      }
      s.bytes = 0;
      result_ = core->finish(threads_);  // the data is freed with core, also when this throws
    }

    Napi::Value Result(Napi::Env env) override {
      const PixelMetricsResult& r = result_;
      Napi::Object o = Napi::Object::New(env);
      o.Set("mode", r.binned ? "binned" : "exact");
      o.Set("images", static_cast<double>(r.images));
      o.Set("positives", static_cast<double>(r.positives));
      o.Set("negatives", static_cast<double>(r.negatives));
      o.Set("points", static_cast<double>(r.points));
      o.Set("auroc", r.auroc);
      o.Set("auprc", r.auprc);
      o.Set("fpr95", r.fpr95);
      o.Set("fpr95Threshold", r.fpr95_threshold);
      o.Set("bestF1", r.best_f1);
      o.Set("bestF1Threshold", r.best_f1_threshold);
      if (r.binned) {
        Napi::Object off = Napi::Object::New(env);
        off.Set("bestF1Threshold", r.official_best_f1_threshold);
        off.Set("fpr95Threshold", r.official_fpr95_threshold);
        o.Set("official", off);
      }
      if (curves_) {
        Napi::Object c = Napi::Object::New(env);
        c.Set("threshold", f64(env, r.curves.threshold));
        c.Set("tpr", f64(env, r.curves.tpr));
        c.Set("fpr", f64(env, r.curves.fpr));
        c.Set("precision", f64(env, r.curves.precision));
        o.Set("curves", c);
      }
      return o;
    }

   private:
    PixelMetricsWrap* wrap_;
    int threads_;
    bool curves_;
    PixelMetricsResult result_;
  };

  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    state_.check_open(env, "PixelMetrics", "add");
    const ImageArgs a = image_args(info);
    auto* worker = new AddWorker(env, this, a, state_.next_image++);
    ++state_.pending;
    worker->Keep(Value());
    worker->Keep(a.scores);
    worker->Keep(a.labels);
    return worker->Start();
  }

  Napi::Value Finish(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    state_.check_open(env, "PixelMetrics", "finish");
    Napi::Object opts = optional_object(info, 0, "finish options");
    const int threads = static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0));
    const bool curves = bool_arg(env, opts.Get("curves"), "curves", true);
    state_.check_idle(env);
    state_.finished = true;
    auto* worker = new FinishWorker(env, this, threads, curves);
    worker->Keep(Value());
    return worker->Start();
  }

  Napi::Value Images(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(state_.images.load())); }
  Napi::Value Pending(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), state_.pending); }
  Napi::Value Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(state_.bytes.load())); }
  Napi::Value Finished(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), state_.finished); }

  Guarded<PixelMetrics> state_;
};

// ---------------------------------------------------------------------------------------------------

class InstanceMetricsWrap : public Napi::ObjectWrap<InstanceMetricsWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "InstanceMetricsAccumulator",
                       {InstanceMethod<&InstanceMetricsWrap::Add>("add"),
                        InstanceMethod<&InstanceMetricsWrap::Finish>("finish"),
                        InstanceAccessor<&InstanceMetricsWrap::Images>("images"),
                        InstanceAccessor<&InstanceMetricsWrap::Pending>("pending"),
                        InstanceAccessor<&InstanceMetricsWrap::Finished>("finished")});
  }

  explicit InstanceMetricsWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<InstanceMetricsWrap>(info) {
    Napi::Env env = info.Env();
    Napi::Object opts = object_arg(info, 0, "instance metrics options");
    InstanceOptions o;
    o.threshold = number_arg(env, required(opts, "threshold"), "threshold");
    if (!std::isfinite(o.threshold)) throw_range(env, "threshold must be a finite number, got " + opts.Get("threshold").ToString().Utf8Value());
    constexpr int64_t kMaxArea = int64_t{1} << 31;
    o.min_predicted = int_arg(env, opts.Get("minPredictedSize"), "minPredictedSize", 0, kMaxArea, 500);
    o.min_gt = int_arg(env, opts.Get("minGtSize"), "minGtSize", 0, kMaxArea, 100);
    state_.core = std::make_unique<InstanceMetrics>(o);
  }

 private:
  class AddWorker : public Worker {
   public:
    AddWorker(Napi::Env env, InstanceMetricsWrap* wrap, const ImageArgs& a, int64_t image)
        : Worker(env, "pgn.instanceMetrics.add"), wrap_(wrap), scores_(a.scores.Data()), labels_(a.labels.Data()),
          height_(a.height), width_(a.width), image_(image) {}
    ~AddWorker() override { --wrap_->state_.pending; }

   protected:
    void Run() override {
      const auto scores = snapshot(scores_, height_ * width_);
      const auto labels = snapshot(labels_, height_ * width_);
      auto& s = wrap_->state_;
      std::lock_guard<std::mutex> lock(s.mutex);
      out_ = s.core->add(scores.get(), labels.get(), height_, width_, image_);
      s.images = s.core->images();
    }
    Napi::Value Result(Napi::Env env) override {
      Napi::Object o = Napi::Object::New(env);
      o.Set("sIoU", f64(env, out_.siou));
      o.Set("gtArea", f64(env, out_.gt_area));
      o.Set("ppv", f64(env, out_.ppv));
      o.Set("sIoUPred", f64(env, out_.siou_pred));
      o.Set("predArea", f64(env, out_.pred_area));
      return o;
    }

   private:
    InstanceMetricsWrap* wrap_;
    const float* scores_;
    const uint8_t* labels_;
    int64_t height_, width_, image_;
    ImageInstances out_;
  };

  class FinishWorker : public Worker {
   public:
    FinishWorker(Napi::Env env, InstanceMetricsWrap* wrap) : Worker(env, "pgn.instanceMetrics.finish"), wrap_(wrap) {}

   protected:
    void Run() override {
      std::unique_ptr<InstanceMetrics> core;
      {
        std::lock_guard<std::mutex> lock(wrap_->state_.mutex);
        core = std::move(wrap_->state_.core);
      }
      result_ = core->result();
    }
    Napi::Value Result(Napi::Env env) override {
      const InstanceResult& r = result_;
      Napi::Object o = Napi::Object::New(env);
      o.Set("images", static_cast<double>(r.images));
      o.Set("gtComponents", static_cast<double>(r.gt_components));
      o.Set("predictedComponents", static_cast<double>(r.predicted_components));
      o.Set("sIoU", r.mean_siou);
      o.Set("ppv", r.mean_ppv);
      o.Set("sIoUPred", r.mean_siou_pred);
      o.Set("thresholds", number_array(env, r.thresholds));
      o.Set("tp", number_array(env, r.tp));
      o.Set("fn", number_array(env, r.fn));
      o.Set("fp", number_array(env, r.fp));
      o.Set("f1", number_array(env, r.f1));
      o.Set("meanF1", r.mean_f1);
      return o;
    }

   private:
    InstanceMetricsWrap* wrap_;
    InstanceResult result_;
  };

  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    state_.check_open(env, "InstanceMetrics", "add");
    const ImageArgs a = image_args(info);
    auto* worker = new AddWorker(env, this, a, state_.next_image++);
    ++state_.pending;
    worker->Keep(Value());
    worker->Keep(a.scores);
    worker->Keep(a.labels);
    return worker->Start();
  }

  Napi::Value Finish(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    state_.check_open(env, "InstanceMetrics", "finish");
    state_.check_idle(env);
    state_.finished = true;
    auto* worker = new FinishWorker(env, this);
    worker->Keep(Value());
    return worker->Start();
  }

  Napi::Value Images(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(state_.images.load())); }
  Napi::Value Pending(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), state_.pending); }
  Napi::Value Finished(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), state_.finished); }

  Guarded<InstanceMetrics> state_;
};

}  // namespace

void register_metrics(Napi::Env env, Napi::Object exports) {
  exports.Set("PixelMetricsAccumulator", PixelMetricsWrap::Define(env));
  exports.Set("InstanceMetricsAccumulator", InstanceMetricsWrap::Define(env));
}

}  // namespace pgn::binding
