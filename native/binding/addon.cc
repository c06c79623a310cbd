// The module's entry point: each concern registers its own functions.
#include <napi.h>

namespace pgn::binding {
void init_typed_arrays(Napi::Env env);
void register_backends(Napi::Env env, Napi::Object exports);
void register_components(Napi::Env env, Napi::Object exports);
void register_metrics(Napi::Env env, Napi::Object exports);
void register_normalize(Napi::Env env, Napi::Object exports);
void register_release(Napi::Env env, Napi::Object exports);
void register_scores(Napi::Env env, Napi::Object exports);
void register_second_layer(Napi::Env env, Napi::Object exports);
void register_summary(Napi::Env env, Napi::Object exports);
void register_upsample(Napi::Env env, Napi::Object exports);
}  // namespace pgn::binding

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  pgn::binding::init_typed_arrays(env);
  pgn::binding::register_backends(env, exports);
  pgn::binding::register_components(env, exports);
  pgn::binding::register_metrics(env, exports);
  pgn::binding::register_normalize(env, exports);
  pgn::binding::register_release(env, exports);
  pgn::binding::register_scores(env, exports);
  pgn::binding::register_second_layer(env, exports);
  pgn::binding::register_summary(env, exports);
  pgn::binding::register_upsample(env, exports);
  return exports;
}

NODE_API_MODULE(pgn_ood, Init)
