// Base of every asynchronous native call: runs the core on the libuv pool, keeps the JavaScript
// arrays it reads or writes alive until it finishes, and settles a promise. Core exceptions become
// rejections: std::invalid_argument (bad values found while computing, e.g. NaN) → RangeError,
// std::bad_alloc → Error "out of memory", anything else → Error; so do failures while building the
// result. Nothing escapes to abort the process.
#pragma once

#include <napi.h>

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "args.h"

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
  size_t KeptCount() const { return kept_.size(); }

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

// A worker whose results are score maps of `plane` floats each and optionally the int32 class map,
// allocated on the JavaScript thread before the work is queued (the maps not zero-filled: the passes
// write every value) and returned as
// { maps: Float32Array[], prediction: Int32Array | null }.
class MapsWorker : public Worker {
 public:
  using Worker::Worker;

  // Allocates the outputs and queues the work. A failed allocation deletes the worker (it was never
  // queued, so nobody else would) and rethrows: a RangeError for the caller.
  static Napi::Promise Launch(MapsWorker* worker, Napi::Env env, size_t maps, size_t plane, bool prediction) {
    try {
      worker->first_output_ = worker->KeptCount();
      for (size_t i = 0; i < maps; ++i) {
        auto map = new_float32_unfilled(env, plane, "a score map");
        worker->map_data_.push_back(map.Data());
        worker->Keep(map);
      }
      if (prediction) {
        auto pred = new_int32(env, plane, "the prediction");
        worker->prediction_data_ = pred.Data();
        worker->Keep(pred);
      }
    } catch (...) {
      delete worker;
      throw;
    }
    return worker->Start();
  }

 protected:
  std::vector<float*> map_data_;
  int32_t* prediction_data_ = nullptr;

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    Napi::Array maps = Napi::Array::New(env, map_data_.size());
    for (size_t i = 0; i < map_data_.size(); ++i) maps.Set(static_cast<uint32_t>(i), Kept(first_output_ + i));
    result.Set("maps", maps);
    result.Set("prediction", prediction_data_ ? Kept(first_output_ + map_data_.size()) : env.Null());
    return result;
  }

 private:
  size_t first_output_ = 0;  // index in Kept() of the first output map
};

}  // namespace pgn::binding
