#include "backends.h"

#include <string>

#include "../core/parallel.h"
#include "args.h"
#ifdef PGN_WITH_CUDA
#include "../cuda/scores_cuda.h"
#include "../cuda/components_cuda.h"
#endif

namespace pgn::binding {

namespace {

int cuda_devices() {
#ifdef PGN_WITH_CUDA
  return cuda_device_count();
#else
  return 0;
#endif
}

constexpr bool kCudaCompiled =
#ifdef PGN_WITH_CUDA
    true;
#else
    false;
#endif

}  // namespace

Backend backend_arg(Napi::Env env, Napi::Value value) {
  if (value.IsUndefined()) return Backend::Cpu;
  const std::string name = string_arg(env, value, "backend");
  if (name == "cpu") return Backend::Cpu;
  if (name != "cuda") throw_range(env, "backend must be \"cpu\" or \"cuda\", got \"" + name + "\"");
  if (!kCudaCompiled) throw Napi::Error::New(env, "backend \"cuda\" is not compiled into this build of pgn-ood");
  if (cuda_devices() == 0) throw Napi::Error::New(env, "backend \"cuda\" is compiled in but no CUDA device is available");
  return Backend::Cuda;
}

void run_scores(Backend backend, const ScoreInput& in, const std::vector<ScoreSpec>& specs, const ScoreOutput& out,
                int threads) {
#ifdef PGN_WITH_CUDA
  if (backend == Backend::Cuda) return compute_scores_cuda(in, specs, out);
#endif
  (void)backend;
  compute_scores(in, specs, out, threads);
}

void run_components(Backend backend, const ComponentInput& in, ComponentOutput& out, int threads) {
#ifdef PGN_WITH_CUDA
  if (backend == Backend::Cuda) return label_components_cuda(in, out);
#endif
  (void)backend;
  label_components(in, out, threads);
}

void register_backends(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaCompiled", Napi::Boolean::New(env, kCudaCompiled));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), cuda_devices());
              }));
  exports.Set("defaultThreads", Napi::Number::New(env, default_threads()));
}

}  // namespace pgn::binding
