// summarizeMaps({ maps: Float32Array[], threads? }) → Promise<{ min, max, mean }[]>: one entry per map.
#include "../core/map_summary.h"
#include "args.h"
#include "worker.h"

namespace pgn::binding {

namespace {

class SummaryWorker : public Worker {
 public:
  SummaryWorker(Napi::Env env, std::vector<MapView> maps, int threads)
      : Worker(env, "pgn.summarizeMaps"), maps_(std::move(maps)), summaries_(maps_.size()), threads_(threads) {}

 protected:
  void Run() override { summarize_maps(maps_, summaries_.data(), threads_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array result = Napi::Array::New(env, summaries_.size());
    for (size_t i = 0; i < summaries_.size(); ++i) {
      Napi::Object s = Napi::Object::New(env);
      s.Set("min", summaries_[i].min);
      s.Set("max", summaries_[i].max);
      s.Set("mean", summaries_[i].mean);
      result.Set(static_cast<uint32_t>(i), s);
    }
    return result;
  }

 private:
  std::vector<MapView> maps_;
  std::vector<MapSummary> summaries_;
  int threads_;
};

Napi::Value SummarizeMaps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, "summarizeMaps options");
  Napi::Value list = required(opts, "maps");
  if (!list.IsArray()) throw_type(env, "maps must be an array of Float32Arrays");
  const int threads = static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0));
  Napi::Array array = list.As<Napi::Array>();
  std::vector<Napi::TypedArrayOf<float>> maps;
  std::vector<MapView> views;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    auto map = typed_array_arg(env, array.Get(i), napi_float32_array, "a Float32Array", "maps[" + std::to_string(i) + "]")
                   .As<Napi::TypedArrayOf<float>>();
    maps.push_back(map);
    views.push_back({map.Data(), static_cast<int64_t>(map.ElementLength())});
  }
  auto* worker = new SummaryWorker(env, std::move(views), threads);
  for (auto& map : maps) worker->Keep(map);
  return worker->Start();
}

}  // namespace

void register_summary(Napi::Env env, Napi::Object exports) {
  exports.Set("summarizeMaps", Napi::Function::New(env, SummarizeMaps));
}

}  // namespace pgn::binding
