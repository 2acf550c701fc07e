// Counting the ATen operators a stretch of code dispatches, by name (libtorch's RecordFunction
// hooks, the ones PyTorch's profiler reads). On a GPU nearly every non-view operator is a kernel
// launch, so the count per training step is what a launch-bound step pays for; counted on the CPU
// it compares our step with PyTorch's op for op without a GPU (bench/host-vs-torch.sh, OPS=1).
#include <ATen/record_function.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "tensor.h"

namespace slm {
namespace {

// One count at a time, process-wide: the hook sees every thread (autograd's device threads run
// backward on CUDA), hence the lock. Names are libtorch's static strings ("aten::addmm").
struct OpCount {
  std::mutex lock;
  std::map<std::string, int64_t> byName;
  at::CallbackHandle handle = 0;
  bool active = false;
};

OpCount& opCount() {
  static OpCount* count = new OpCount();  // never destroyed: a hook may outlive static teardown
  return *count;
}

std::unique_ptr<at::ObserverContext> countCall(const at::RecordFunction& fn) {
  OpCount& c = opCount();
  std::lock_guard<std::mutex> guard(c.lock);
  c.byName[fn.name()] += 1;
  return nullptr;
}

// startOpCount(): from now on every dispatched ATen operator is counted (scope FUNCTION: the
// dispatcher's ops, not autograd's node names nor user scopes).
Napi::Value StartOpCount(const Napi::CallbackInfo& info) {
  OpCount& c = opCount();
  std::lock_guard<std::mutex> guard(c.lock);
  if (c.active)
    throw Napi::Error::New(info.Env(), "operators are already being counted (one count at a time)");
  c.byName.clear();
  c.handle = at::addGlobalCallback(
      at::RecordFunctionCallback(countCall).needsInputs(false).scopes({at::RecordScope::FUNCTION}));
  c.active = true;
  return info.Env().Undefined();
}

// stopOpCount() → { name: count } since startOpCount(), and counting stops.
Napi::Value StopOpCount(const Napi::CallbackInfo& info) {
  OpCount& c = opCount();
  if (!c.active)
    throw Napi::Error::New(info.Env(), "no operator count is running (call startOpCount first)");
  at::removeCallback(c.handle);
  std::lock_guard<std::mutex> guard(c.lock);
  c.active = false;
  Napi::Object out = Napi::Object::New(info.Env());
  for (const auto& [name, n] : c.byName)
    out.Set(name, Napi::Number::New(info.Env(), static_cast<double>(n)));
  c.byName.clear();
  return out;
}

}  // namespace

void initOpCount(Napi::Env env, Napi::Object exports) {
  define(env, exports, "startOpCount", StartOpCount);
  define(env, exports, "stopOpCount", StopOpCount);
}

}  // namespace slm
