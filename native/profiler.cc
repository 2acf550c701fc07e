// A timeline of what a stretch of code runs, as a Chrome trace (Perfetto, chrome://tracing): CPU
// operators and, on CUDA, every kernel, copy and memset with its device time. libtorch's Kineto
// profiler, the one behind torch.profiler, so a trace of ours reads like one of PyTorch's and
// bench/trace-summary.ts splits either by kernel kind.
#include <dlfcn.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <memory>
#include <set>
#include <string>

#include "tensor.h"

namespace slm {
namespace {

namespace kineto = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

bool profiling = false;

// Whether this libtorch was built with Kineto (pip's wheels are; Debian's libtorch is not, and
// records but cannot write a trace). USE_KINETO is libtorch's build flag, not visible in its
// headers, so look for Kineto's entry point in the library that holds the profiler.
bool kinetoAvailable() {
  static const bool available = [] {
    Dl_info lib;
    if (dladdr(reinterpret_cast<void*>(&kineto::disableProfiler), &lib) == 0 ||
        lib.dli_fname == nullptr)
      return false;
    void* handle = dlopen(lib.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (handle == nullptr) return false;
    bool found = dlsym(handle, "_ZN9libkineto3apiEv") != nullptr;  // libkineto::api()
    dlclose(handle);
    return found;
  }();
  return available;
}

Napi::Value ProfilerAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), kinetoAvailable());
}

// startProfile(cuda): records from now on, CPU operators and (cuda) the device's activity.
Napi::Value StartProfile(const Napi::CallbackInfo& info) {
  bool cuda = boolArg(info, 0, "cuda");
  if (profiling)
    throw Napi::Error::New(info.Env(), "a profile is already being recorded (one at a time)");
  if (!kinetoAvailable())
    throw Napi::Error::New(info.Env(),
                           "this libtorch was built without Kineto, libtorch's profiler (pip's "
                           "PyTorch has it: LIBTORCH_USE_PYTORCH=1)");
  std::set<ActivityType> activities{ActivityType::CPU};
  if (cuda) activities.insert(ActivityType::CUDA);
  ProfilerConfig config(ProfilerState::KINETO);
  kineto::prepareProfiler(config, activities);
  kineto::enableProfiler(config, activities);
  profiling = true;
  return info.Env().Undefined();
}

// stopProfile(path): stops recording and writes the trace to path (Chrome trace JSON).
Napi::Value StopProfile(const Napi::CallbackInfo& info) {
  if (!profiling)
    throw Napi::Error::New(info.Env(), "no profile is being recorded (call startProfile first)");
  profiling = false;
  // stopped first, whatever the argument: a bad path must not leave the profiler recording
  std::unique_ptr<kineto::ProfilerResult> result = kineto::disableProfiler();
  result->save(stringArg(info, 0, "path"));
  return info.Env().Undefined();
}

}  // namespace

void initProfiler(Napi::Env env, Napi::Object exports) {
  define(env, exports, "profilerAvailable", ProfilerAvailable);
  define(env, exports, "startProfile", StartProfile);
  define(env, exports, "stopProfile", StopProfile);
}

}  // namespace slm
