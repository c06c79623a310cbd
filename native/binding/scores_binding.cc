// scores(options) → Promise<{ maps: Float32Array[], prediction: Int32Array | null }>
#include <string>
#include <vector>

#include "../core/scores.h"
#include "args.h"
#include "backends.h"
#include "worker.h"

namespace pgn::binding {

namespace {

constexpr uint32_t kMaxScores = 64;

ScoreSpec score_spec(Napi::Env env, Napi::Value value, uint32_t index) {
  const std::string where = "scores[" + std::to_string(index) + "]";
  if (!value.IsObject()) throw_type(env, where + " must be an object { kind, p?, variant? }");
  Napi::Object obj = value.As<Napi::Object>();
  const std::string kind = string_arg(env, obj.Get("kind"), (where + ".kind").c_str());
  ScoreSpec spec{};
  if (kind == "pgn-oh") spec.kind = ScoreKind::PgnOneHot;
  else if (kind == "pgn-uni") spec.kind = ScoreKind::PgnUniform;
  else if (kind == "entropy") spec.kind = ScoreKind::Entropy;
  else if (kind == "msp") spec.kind = ScoreKind::Msp;
  else if (kind == "maxlogit") spec.kind = ScoreKind::MaxLogit;
  else if (kind == "energy") spec.kind = ScoreKind::Energy;
  else throw_range(env, where + ".kind must be one of pgn-oh, pgn-uni, entropy, msp, maxlogit, energy; got \"" + kind + "\"");
  if (!is_pgn(spec.kind)) return spec;
  const GradientOptions g = gradient_options(env, obj, where);
  spec.p = g.p;
  spec.code_variant = g.code_variant;
  return spec;
}

std::vector<ScoreSpec> score_specs(Napi::Env env, Napi::Value value) {
  if (!value.IsArray()) throw_type(env, "scores must be an array");
  Napi::Array arr = value.As<Napi::Array>();
  if (arr.Length() > kMaxScores) throw_range(env, "at most " + std::to_string(kMaxScores) + " scores per call");
  std::vector<ScoreSpec> specs;
  for (uint32_t i = 0; i < arr.Length(); ++i) specs.push_back(score_spec(env, arr.Get(i), i));
  return specs;
}

class ScoresWorker : public MapsWorker {
 public:
  ScoresWorker(Napi::Env env, ScoreInput in, std::vector<ScoreSpec> specs, Backend backend, int threads)
      : MapsWorker(env, "pgn.scores"), in_(in), specs_(std::move(specs)), backend_(backend), threads_(threads) {}

 protected:
  void Run() override { run_scores(backend_, in_, specs_, ScoreOutput{map_data_, prediction_data_}, threads_); }

 private:
  ScoreInput in_;
  std::vector<ScoreSpec> specs_;
  Backend backend_;
  int threads_;
};

Napi::Value Scores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = object_arg(info, 0, "scores options");
  const std::vector<int64_t> ld = dims_arg(env, required(opts, "logitsDims"), "logitsDims", 4);
  auto logits = float32_arg(env, required(opts, "logits"), "logits", element_count(env, ld, "logitsDims"));
  if (ld[1] < 2) throw_range(env, "logitsDims[1] (classes) must be >= 2, got " + std::to_string(ld[1]));
  std::vector<ScoreSpec> specs = score_specs(env, required(opts, "scores"));
  const bool prediction = bool_arg(env, opts.Get("prediction"), "prediction", true);
  if (specs.empty() && !prediction) throw_range(env, "nothing requested: give at least one score or prediction: true");
  const int threads = static_cast<int>(int_arg(env, opts.Get("threads"), "threads", 0, 1024, 0));
  const Backend backend = backend_arg(env, opts.Get("backend"));

  ScoreInput in{logits.Data(), nullptr, ld[0], ld[1], 0, ld[2], ld[3]};
  bool needs_features = false;
  for (const ScoreSpec& s : specs) needs_features = needs_features || is_pgn(s.kind);
  Napi::TypedArrayOf<float> features;
  if (needs_features) {
    const std::vector<int64_t> fd = dims_arg(env, required(opts, "featuresDims"), "featuresDims", 4);
    features = float32_arg(env, required(opts, "features"), "features", element_count(env, fd, "featuresDims"));
    if (fd[0] != ld[0] || fd[2] != ld[2] || fd[3] != ld[3])
      throw_range(env, "featuresDims " + dims_text(fd) + " must match logitsDims " + dims_text(ld) +
                           " in batch, height and width");
    in.features = features.Data();
    in.channels = fd[1];
  }

  const size_t count = specs.size();
  auto* worker = new ScoresWorker(env, in, std::move(specs), backend, threads);
  worker->Keep(logits);
  if (needs_features) worker->Keep(features);
  return MapsWorker::Launch(worker, env, count, static_cast<size_t>(ld[0] * ld[2] * ld[3]), prediction);
}

}  // namespace

void register_scores(Napi::Env env, Napi::Object exports) { exports.Set("scores", Napi::Function::New(env, Scores)); }

}  // namespace pgn::binding
