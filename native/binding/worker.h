// Base of every asynchronous native call: runs the core on the libuv pool, keeps the JavaScript
// arrays it reads or writes alive until it finishes, and settles a promise. Core exceptions become
// rejections: std::invalid_argument (bad values found while computing, e.g. NaN) → RangeError,
// std::bad_alloc → Error "out of memory", anything else → Error; so do failures while building the
// result. Nothing escapes to abort the process.
#pragma once

#include <napi.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgn::binding {

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Start() {
    Queue();
    return deferred_.Promise();
  }

  // Pins a typed array (or any object) for the duration of the call.
  void Keep(Napi::Object obj) { kept_.push_back(Napi::Persistent(obj)); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

  Napi::Object Kept(size_t index) { return kept_[index].Value(); }

 private:
  void Execute() final {
    try {
      Run();
    } catch (const std::invalid_argument& e) {
      range_error_ = true;
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      SetError("out of memory");
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }

  // Building the result allocates (typed arrays, objects): a failure there rejects the promise too.
  // Left to node-addon-api, it would become an uncaught exception and the promise would never settle.
  void OnOK() final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::bad_alloc&) {
      deferred_.Reject(Napi::Error::New(env, "out of memory while building the result").Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, e.what()).Value());
    }
  }

  void OnError(const Napi::Error& error) final {
    Napi::HandleScope scope(Env());
    const std::string message = error.Message();
    deferred_.Reject(range_error_ ? Napi::RangeError::New(Env(), message).Value()
                                  : Napi::Error::New(Env(), message).Value());
  }

  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> kept_;
  bool range_error_ = false;
};

}  // namespace pgn::binding
