// Base of every asynchronous native call: runs the core on the libuv pool, keeps the JavaScript
// arrays it reads or writes alive until it finishes (their memory too: a buffer transferred away
// during the call, and collected with its new owner, is freed only when the call is done), and
// settles a promise. Core exceptions become
// rejections: std::invalid_argument (bad values found while computing, e.g. NaN) → RangeError,
// std::bad_alloc → Error "out of memory", anything else → Error; so do failures while building the
// result. Nothing escapes to abort the process.
#pragma once

#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/huge_pages.h"
#include "args.h"
#include "pinned_memory.h"

namespace pgn::binding {

// A private copy of an input, taken on the pool thread when the work starts. JavaScript can still
// write the caller's arrays while the call runs; passes that check values and then index by them
// (labels, classes, foreground pixels) must read values that cannot change in between, or a value
// changed after its check sends a write out of bounds.
// Large copies go to huge pages (core/huge_pages.h).
template <typename T>
Buffer<T> snapshot(const T* data, int64_t count) {
  if (!data) return nullptr;
  Buffer<T> copy = new_buffer<T>(static_cast<size_t>(count));
  std::copy(data, data + count, copy.get());
  return copy;
}

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  // Queues the work; or, when a kept array was detached by a getter that ran after the array was
  // validated (its memory may already be gone), rejects with a TypeError and deletes the worker.
  Napi::Promise Start() {
    Napi::Promise promise = deferred_.Promise();
    if (detached_) {
      deferred_.Reject(Napi::TypeError::New(Env(), "an input array was detached (transferred) while the call "
                                                   "read its options: nothing was computed").Value());
      delete this;  // never queued: nobody else will free it
      return promise;
    }
    Queue();
    return promise;
  }

  // Pins a typed array (or any object) and a typed array's memory for the duration of the call.
  void Keep(Napi::Object obj) {
    kept_.push_back(Napi::Persistent(obj));
    if (!obj.IsTypedArray()) return;
    Napi::TypedArray array = obj.As<Napi::TypedArray>();
    if (array.ElementLength() == 0) detached_ = true;  // every array kept was validated non-empty
    else memory_.push_back(pin_memory(array));
  }

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
  std::vector<std::shared_ptr<void>> memory_;
  bool detached_ = false;
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
