// Factories: filled tensors, ranges and seeded random tensors.
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/eye.h>
#include <ATen/ops/full.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/randperm.h>
#include <ATen/ops/zeros.h>

#include "tensor.h"

namespace slm {
namespace {

// (shape, dtype, device) are the trailing arguments of every factory.
at::TensorOptions optionsAt(const Napi::CallbackInfo& info, size_t i) {
  return at::TensorOptions()
      .dtype(dtypeArg(info, i, "dtype"))
      .device(deviceArg(info, i + 1, "device"));
}

Napi::Value Zeros(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::zeros(intListArg(info, 0, "shape"), optionsAt(info, 1)));
}

Napi::Value Ones(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::ones(intListArg(info, 0, "shape"), optionsAt(info, 1)));
}

Napi::Value Empty(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::empty(intListArg(info, 0, "shape"), optionsAt(info, 1)));
}

// full(shape, value, dtype, device)
Napi::Value Full(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::full(intListArg(info, 0, "shape"), numberArg(info, 1, "value"),
                                   optionsAt(info, 2)));
}

// arange(start, end, step, dtype, device)
Napi::Value Arange(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::arange(numberArg(info, 0, "start"), numberArg(info, 1, "end"),
                                     numberArg(info, 2, "step"), optionsAt(info, 3)));
}

// eye(n, dtype, device)
Napi::Value Eye(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::eye(intArg(info, 0, "n"), optionsAt(info, 1)));
}

// Random factories draw from the default generator of the target device, which manualSeed()
// seeds: the same seed gives the same tensors.
Napi::Value Randn(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::randn(intListArg(info, 0, "shape"), optionsAt(info, 1)));
}

Napi::Value Rand(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::rand(intListArg(info, 0, "shape"), optionsAt(info, 1)));
}

// randint(low, high, shape, dtype, device): integers in [low, high)
Napi::Value Randint(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::randint(intArg(info, 0, "low"), intArg(info, 1, "high"),
                                      intListArg(info, 2, "shape"), optionsAt(info, 3)));
}

// randperm(n, dtype, device)
Napi::Value Randperm(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::randperm(intArg(info, 0, "n"), optionsAt(info, 1)));
}

}  // namespace

void initCreation(Napi::Env env, Napi::Object exports) {
  define(env, exports, "zeros", Zeros);
  define(env, exports, "ones", Ones);
  define(env, exports, "empty", Empty);
  define(env, exports, "full", Full);
  define(env, exports, "arange", Arange);
  define(env, exports, "eye", Eye);
  define(env, exports, "randn", Randn);
  define(env, exports, "rand", Rand);
  define(env, exports, "randint", Randint);
  define(env, exports, "randperm", Randperm);
}

}  // namespace slm
