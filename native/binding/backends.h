// Which compute backends this build has, and dispatch of the core calls to them.
#pragma once

#include <napi.h>

#include <vector>

#include "../core/components.h"
#include "../core/scores.h"

namespace pgn::binding {

enum class Backend { Cpu, Cuda };

// "cpu" (default) or "cuda"; "cuda" in a build without it, or with no device, is an Error saying so.
Backend backend_arg(Napi::Env env, Napi::Value value);

void run_scores(Backend backend, const ScoreInput& in, const std::vector<ScoreSpec>& specs, const ScoreOutput& out,
                int threads);

void run_components(Backend backend, const ComponentInput& in, ComponentOutput& out, int threads);

void register_backends(Napi::Env env, Napi::Object exports);

}  // namespace pgn::binding
