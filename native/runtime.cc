// The runtime around tensors: build facts for `doctor`, CUDA devices and memory, seeds and RNG
// state, CPU threads. CUDA-only parts compile only against a CUDA libtorch (STAGED_LM_CUDA).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_set>

#ifndef STAGED_LM_CUDA
#define STAGED_LM_CUDA 0
#endif

#if STAGED_LM_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "compat.h"
#include "cpu_allocator.h"
#include "tensor.h"

namespace slm {
namespace {

int deviceCount() {
  return at::hasCUDA() ? static_cast<int>(at::getNumGPUs()) : 0;
}

#if STAGED_LM_CUDA
// The caching allocator is set up lazily by the first CUDA allocation; before that its statistics
// calls throw "Invalid device argument" (and there is nothing to report or free).
bool cudaAllocatorReady() {
  auto* a = c10::cuda::CUDACachingAllocator::get();
  return a != nullptr && a->initialized();
}
#endif

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", TORCH_VERSION);
  o.Set("libtorchSource", STAGED_LM_LIBTORCH_SOURCE);
  o.Set("libtorchPrefix", STAGED_LM_LIBTORCH_PREFIX);
#ifdef STAGED_LM_BUILD_TYPE
  o.Set("buildType", STAGED_LM_BUILD_TYPE);
#else
  o.Set("buildType", "Release");
#endif
  o.Set("cudaBuild", Napi::Boolean::New(env, STAGED_LM_CUDA == 1));
  o.Set("cudaAvailable", Napi::Boolean::New(env, at::hasCUDA()));
  o.Set("cxx11Abi", Napi::Boolean::New(env, _GLIBCXX_USE_CXX11_ABI == 1));
  o.Set("numThreads", Napi::Number::New(env, at::get_num_threads()));
  o.Set("parallelInfo", at::get_parallel_info());
  Napi::Array devices = Napi::Array::New(env);
#if STAGED_LM_CUDA
  for (int i = 0; i < deviceCount(); i++) {
    const cudaDeviceProp* p = at::cuda::getDeviceProperties(i);
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", i);
    d.Set("name", p->name);
    d.Set("totalMemory", static_cast<double>(p->totalGlobalMem));
    d.Set("computeCapability", std::to_string(p->major) + "." + std::to_string(p->minor));
    d.Set("multiProcessors", p->multiProcessorCount);
    devices.Set(i, d);
  }
#endif
  o.Set("devices", devices);
  return o;
}

Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::hasCUDA());
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), deviceCount());
}

// disposeMany(handles): frees many tensors in one call (a tidy() scope's intermediates: one
// JS→native crossing instead of one per tensor). Already-disposed handles are skipped.
Napi::Value DisposeMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray())
    throw Napi::TypeError::New(env, "disposeMany: expected an array of tensors");
  Napi::Array arr = info[0].As<Napi::Array>();
  const uint32_t n = arr.Length();
  // (capped: a sparse array's length is no promise of elements)
  std::vector<TensorHandle*> handles;
  handles.reserve(std::min<uint32_t>(n, 1u << 16));
  for (uint32_t i = 0; i < n; i++) {
    TensorHandle* h = TensorHandle::FromValue(env, arr.Get(i));
    if (h == nullptr)
      throw Napi::TypeError::New(env,
                                 "disposeMany: element " + std::to_string(i) + " is not a tensor");
    handles.push_back(h);
  }
  for (TensorHandle* h : handles) h->release(env);
  return env.Undefined();
}

// Live handles and their bytes, per-device CUDA caching-allocator figures, and the CPU block
// cache's (null with STAGED_LM_DEFAULT_MALLOC).
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HandleStats s = handleStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("liveTensors", static_cast<double>(s.liveHandles));
  o.Set("liveBytes", static_cast<double>(s.liveBytes));
  o.Set("createdTotal", static_cast<double>(s.createdTotal));
  Napi::Array cuda = Napi::Array::New(env);
#if STAGED_LM_CUDA
  for (int i = 0; i < deviceCount() && cudaAllocatorReady(); i++) {
    auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(i);
    // index 0 of each stat array is the aggregate over pool types
    Napi::Object d = Napi::Object::New(env);
    d.Set("device", i);
    d.Set("allocated", static_cast<double>(st.allocated_bytes[0].current));
    d.Set("peakAllocated", static_cast<double>(st.allocated_bytes[0].peak));
    d.Set("reserved", static_cast<double>(st.reserved_bytes[0].current));
    size_t freeB = 0, totalB = 0;
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(i));
    if (cudaMemGetInfo(&freeB, &totalB) == cudaSuccess) {
      d.Set("free", static_cast<double>(freeB));
      d.Set("total", static_cast<double>(totalB));
    }
    cuda.Set(i, d);
  }
#endif
  o.Set("cuda", cuda);
  CpuBlockStats c = cpuBlockStats();
  if (c.enabled) {
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("allocated", static_cast<double>(c.allocated));
    cpu.Set("peakAllocated", static_cast<double>(c.peakAllocated));
    cpu.Set("reserved", static_cast<double>(c.reserved));
    cpu.Set("hits", static_cast<double>(c.hits));
    cpu.Set("misses", static_cast<double>(c.misses));
    o.Set("cpu", cpu);
  } else {
    o.Set("cpu", env.Null());
  }
  return o;
}

Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info) {
  resetCpuBlockPeak();
#if STAGED_LM_CUDA
  for (int i = 0; i < deviceCount() && cudaAllocatorReady(); i++) {
    c10::cuda::CUDACachingAllocator::resetPeakStats(i);
  }
#endif
  return info.Env().Undefined();
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  emptyCpuBlockCache();
#if STAGED_LM_CUDA
  if (deviceCount() > 0 && cudaAllocatorReady()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
#if STAGED_LM_CUDA
  if (deviceCount() > 0) c10::cuda::device_synchronize();
#endif
  return info.Env().Undefined();
}

// cudaSyncDebugMode(mode?) → the mode before the call: "off", "warn" or "error"; with a mode, sets
// it (process-wide). In "error", every call that makes the host wait for the device — a read-back,
// a blocking copy, a synchronize — throws instead: the check that a training step queues its work
// without waiting (PyTorch's torch.cuda.set_sync_debug_mode). A build without CUDA has no such
// waits: it reports "off" and refuses the other modes.
Napi::Value CudaSyncDebugMode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string next = isMissing(info, 0) ? "" : stringArg(info, 0, "mode");
  if (!next.empty() && next != "off" && next != "warn" && next != "error") {
    throw Napi::TypeError::New(
        env, "cudaSyncDebugMode: mode must be 'off', 'warn' or 'error', got '" + next + "'");
  }
#if STAGED_LM_CUDA
  using c10::cuda::SyncDebugMode;
  SyncDebugMode prev = c10::cuda::warning_state().get_sync_debug_mode();
  if (!next.empty()) {
    c10::cuda::warning_state().set_sync_debug_mode(next == "error"  ? SyncDebugMode::L_ERROR
                                                   : next == "warn" ? SyncDebugMode::L_WARN
                                                                    : SyncDebugMode::L_DISABLED);
  }
  const char* name = prev == SyncDebugMode::L_ERROR  ? "error"
                     : prev == SyncDebugMode::L_WARN ? "warn"
                                                     : "off";
  return Napi::String::New(env, name);
#else
  if (!next.empty() && next != "off") {
    throw Napi::Error::New(env, "cudaSyncDebugMode: this addon was built without CUDA (" +
                                    std::string(TORCH_VERSION) +
                                    "): there are no device waits to report");
  }
  return Napi::String::New(env, "off");
#endif
}

// manualSeed(seed): seeds the CPU generator and every CUDA device's.
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  uint64_t seed = static_cast<uint64_t>(intArg(info, 0, "seed"));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  for (int i = 0; i < deviceCount(); i++) {
    auto gen = at::globalContext().defaultGenerator(
        c10::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i)));
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  return info.Env().Undefined();
}

const at::Generator& generatorFor(const Napi::CallbackInfo& info, size_t i) {
  c10::Device d = deviceArg(info, i, "device");
  if (d.is_cuda() && !d.has_index()) d = c10::Device(at::kCUDA, 0);
  return d.is_cpu() ? at::detail::getDefaultCPUGenerator()
                    : at::globalContext().defaultGenerator(d);
}

// getRngState(device) → uint8 tensor; setRngState(device, state): exact resume of random streams.
Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  at::Generator gen = generatorFor(info, 0);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return wrap(info.Env(), gen.get_state());
}

Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  at::Generator gen = generatorFor(info, 0);
  at::Tensor& state = tensorArg(info, 1, "state");
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
  return info.Env().Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = intArg(info, 0, "threads");
  if (n < 1 || n > 65536)
    throw Napi::TypeError::New(info.Env(),
                               "expected a positive integer up to 65536 for argument 'threads'");
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

// watchStorage(t) → an opaque watcher; storageAlive(watcher) tells whether the storage behind t
// still exists. Tests use it to prove dispose() and scopes really free memory.
using WeakStorage = c10::weak_intrusive_ptr<c10::StorageImpl>;

// Tags the watchers, so that another external (a tensor handle) is refused, not misread.
constexpr napi_type_tag kWatcherTag = {0x73746f7261676557ULL, 0x6174636865723031ULL};

Napi::Value WatchStorage(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  auto* weak = new WeakStorage(t.storage().getWeakStorageImpl());
  auto watcher = Napi::External<WeakStorage>::New(info.Env(), weak,
                                                  [](Napi::Env, WeakStorage* w) { delete w; });
  watcher.TypeTag(&kWatcherTag);
  return watcher;
}

Napi::Value StorageAlive(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal() ||
      !info[0].As<Napi::External<WeakStorage>>().CheckTypeTag(&kWatcherTag)) {
    throw Napi::TypeError::New(info.Env(),
                               "expected a watcher from watchStorage() for argument 'watcher'");
  }
  WeakStorage* w = info[0].As<Napi::External<WeakStorage>>().Data();
  return Napi::Boolean::New(info.Env(), !w->expired());
}

// setAutocast(enabled, dtype): ops on CUDA run in dtype (bfloat16/float16) where autocast's
// policy allows (matmuls, attention), in float32 where precision needs it (softmax, norms, loss).
Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
  bool enabled = boolArg(info, 0, "enabled");
  at::ScalarType dtype = dtypeArg(info, 1, "dtype");
  if (dtype != at::kBFloat16 && dtype != at::kHalf) {
    throw Napi::TypeError::New(info.Env(), "autocast dtype must be bfloat16 or float16");
  }
  compat::setCudaAutocast(enabled, dtype);
  return info.Env().Undefined();
}

Napi::Value IsAutocastEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), compat::isCudaAutocastEnabled());
}

// Autocast caches casted weights within a forward; clear after each step so memory is returned.
Napi::Value ClearAutocastCache(const Napi::CallbackInfo& info) {
  at::autocast::clear_cache();
  return info.Env().Undefined();
}

// setTF32(enabled): lets cuBLAS run float32 matmuls on TF32 tensor cores (inputs rounded to a
// 10-bit mantissa, float32 accumulation; several times faster from Ampere on). PyTorch's
// torch.backends.cuda.matmul.allow_tf32, off by default there and here. It changes nothing under
// bf16/fp16 autocast (those matmuls are not float32) nor on the CPU.
Napi::Value SetTF32(const Napi::CallbackInfo& info) {
  at::globalContext().setAllowTF32CuBLAS(boolArg(info, 0, "enabled"));
  return info.Env().Undefined();
}

Napi::Value TF32Enabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::globalContext().allowTF32CuBLAS());
}

}  // namespace

namespace {

// libtorch's warnings (TORCH_WARN: reading .grad of a non-leaf tensor, a deprecated overload, …)
// go by default through glog, which prints "WARNING: Logging before InitGoogleLogging() is written
// to STDERR" and a C++ file and line before the message. This handler prints each distinct message
// once, as one line in the CLI's style; it may run on autograd's threads.
class WarningLines : public c10::WarningHandler {
 public:
#if STAGED_LM_TORCH_AT_LEAST(2, 0)
  void process(const c10::Warning& warning) override {
    print(warning.msg());
  }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    print(msg);
  }
#endif

 private:
  void print(const std::string& msg) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (seen_.size() >= 1000 || !seen_.insert(msg).second) return;  // (bounded: a flood is cut)
    std::fprintf(stderr, "staged-lm: libtorch warning: %s\n", msg.c_str());
  }
  std::mutex mutex_;
  std::unordered_set<std::string> seen_;
};

void installWarningLines() {
  static WarningLines handler;  // (lives as long as the process: libtorch keeps the pointer)
#if STAGED_LM_TORCH_AT_LEAST(2, 0)
  c10::WarningUtils::set_warning_handler(&handler);
#else
  c10::Warning::set_warning_handler(&handler);
#endif
}

}  // namespace

void initRuntime(Napi::Env env, Napi::Object exports) {
  installWarningLines();
  define(env, exports, "buildInfo", BuildInfo);
  define(env, exports, "cudaAvailable", CudaAvailable);
  define(env, exports, "cudaDeviceCount", CudaDeviceCount);
  define(env, exports, "memoryStats", MemoryStats);
  define(env, exports, "disposeMany", DisposeMany);
  define(env, exports, "resetPeakMemory", ResetPeakMemory);
  define(env, exports, "emptyCache", EmptyCache);
  define(env, exports, "synchronize", Synchronize);
  define(env, exports, "cudaSyncDebugMode", CudaSyncDebugMode);
  define(env, exports, "manualSeed", ManualSeed);
  define(env, exports, "getRngState", GetRngState);
  define(env, exports, "setRngState", SetRngState);
  define(env, exports, "setNumThreads", SetNumThreads);
  define(env, exports, "getNumThreads", GetNumThreads);
  define(env, exports, "watchStorage", WatchStorage);
  define(env, exports, "setAutocast", SetAutocast);
  define(env, exports, "isAutocastEnabled", IsAutocastEnabled);
  define(env, exports, "clearAutocastCache", ClearAutocastCache);
  define(env, exports, "storageAlive", StorageAlive);
  define(env, exports, "setTF32", SetTF32);
  define(env, exports, "tf32Enabled", TF32Enabled);
}

}  // namespace slm
