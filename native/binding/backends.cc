#include "backends.h"

#include <string>

#include "../core/cpu_isa.h"
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
  exports.Set("cpuIsa", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                Napi::Object isa = Napi::Object::New(info.Env());
                isa.Set("active", cpu_isa_name(active_cpu_isa()));
                isa.Set("detected", cpu_isa_name(detected_cpu_isa()));
                return isa;
              }));
  exports.Set("spinWait", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), spin_wait());
              }));
  exports.Set("setSpinWait", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                if (!info[0].IsNumber()) throw_type(info.Env(), "microseconds must be a number");
                const double us = info[0].As<Napi::Number>().DoubleValue();
                if (!(us >= 0 && us <= 1e6) || us != static_cast<double>(static_cast<int>(us)))
                  throw_range(info.Env(), "microseconds must be a whole number in [0, 1000000], got " + info[0].ToString().Utf8Value());
                set_spin_wait(static_cast<int>(us));
              }));
  exports.Set("limitCpuIsa", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                const std::string name = string_arg(info.Env(), info[0], "isa");
                for (CpuIsa isa : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512})
                  if (name == cpu_isa_name(isa)) return limit_cpu_isa(isa);
                throw_range(info.Env(), "isa must be \"baseline\", \"avx2\" or \"avx512\", got \"" + name + "\"");
              }));
}

}  // namespace pgn::binding
