// CUDA graphs: capture the kernels that a JS callback launches (forward, backward, optimizer)
// once, then replay them with one launch per step. A launch-bound step (small models) spends most
// of its time issuing kernels; a replay issues none from the host.
//
// Capture runs on a side stream (CUDA refuses to capture the legacy default stream); the
// autograd engine runs each backward node on the stream its forward ran on, so the backward is
// captured too, and the caching allocator serves the captured allocations from the graph's own
// pool, which stays reserved until the graph is reset. Nothing executes during capture: the first
// replay is the first real step.
//
// Compiled with STAGED_LM_CUDA_GRAPHS only where CMake's configure-time probe compiled this file
// against the libtorch at hand; elsewhere the functions say why they are unavailable.
#include "cuda_graph.h"

#include <exception>
#include <map>
#include <memory>
#include <string>

#include "compat.h"
#include "tensor.h"

#ifndef STAGED_LM_CUDA_GRAPHS
#define STAGED_LM_CUDA_GRAPHS 0
#endif

#if STAGED_LM_CUDA_GRAPHS
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <ATen/ops/_fused_adamw.h>
#include <c10/core/GradMode.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace slm {

bool cudaGraphsAvailable() {
  return STAGED_LM_CUDA_GRAPHS == 1;
}

#if STAGED_LM_CUDA_GRAPHS

bool adamwFusedDeviceLr(std::vector<at::Tensor>& params, std::vector<at::Tensor>& grads,
                        std::vector<at::Tensor>& m, std::vector<at::Tensor>& v,
                        const at::Tensor& step, const at::Tensor& lr,
                        const c10::optional<at::Tensor>& gradScale,
                        const c10::optional<at::Tensor>& foundInf, double beta1, double beta2,
                        double weightDecay, double eps) {
  std::vector<at::Tensor> steps(params.size(), step);
  at::_fused_adamw_(params, grads, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2,
                    weightDecay, eps, /*amsgrad=*/false, /*maximize=*/false, gradScale, foundInf);
  return true;
}

namespace {

struct CapturedGraph {
  at::cuda::CUDAGraph graph;
  int device = 0;
  bool ready = false;
};

// Tags the handles cudaGraphCapture makes, so that another external (a tensor handle) is refused
// instead of being read as a graph.
constexpr napi_type_tag kGraphTag = {0x6375646147726170ULL, 0x6848616e646c6531ULL};

CapturedGraph* graphArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal() ||
      !info[i].As<Napi::External<CapturedGraph>>().CheckTypeTag(&kGraphTag))
    throw Napi::TypeError::New(info.Env(),
                               "expected a captured graph handle (from cudaGraphCapture)");
  return info[i].As<Napi::External<CapturedGraph>>().Data();
}

// One capture stream per device for the whole process, as torch.cuda.graph keeps one: cuBLAS
// keeps a workspace per (handle, stream), so warming up on this stream (cudaGraphWarmup) sets it
// up before any capture, and recaptures (after a growth) reuse it instead of leaking a new one.
c10::cuda::CUDAStream captureStream(int device) {
  static std::map<int, c10::cuda::CUDAStream> streams;
  auto it = streams.find(device);
  if (it == streams.end())
    it = streams
             .emplace(device,
                      c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device)))
             .first;
  return it->second;
}

// Runs `body` with the capture stream current: it first waits for what the current stream has
// queued, and the current stream waits for it afterwards (the rest of the program sees its work).
template <typename Body>
void onCaptureStream(int device, Body body) {
  c10::cuda::CUDAGuard deviceGuard(static_cast<c10::DeviceIndex>(device));
  c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream();
  c10::cuda::CUDAStream side = captureStream(device);
  at::cuda::CUDAEvent before;
  before.record(current);
  before.block(side);
  std::exception_ptr error;
  {
    c10::cuda::CUDAStreamGuard streamGuard(side);
    try {
      body();
    } catch (...) {
      error = std::current_exception();  // the streams are joined first, then it goes on
    }
  }
  at::cuda::CUDAEvent after;
  after.record(side);
  after.block(current);
  if (error) std::rethrow_exception(error);
}

// cudaGraphWarmup(device, fn): runs fn() normally (not captured) on the capture stream, so that
// libtorch's lazy per-stream set-up (cuBLAS workspaces) happens before the capture.
Napi::Value CudaGraphWarmup(const Napi::CallbackInfo& info) {
  int device = static_cast<int>(intArg(info, 0, "device"));
  if (info.Length() < 2 || !info[1].IsFunction())
    throw Napi::TypeError::New(info.Env(), "expected a function for argument 'fn'");
  Napi::Function fn = info[1].As<Napi::Function>();
  onCaptureStream(device, [&]() { fn.Call({}); });
  return info.Env().Undefined();
}

// cudaGraphCapture(device, fn) → handle. Calls fn() once with every CUDA launch on `device`
// recorded instead of run. An error thrown by fn ends the capture and is rethrown naming the
// capture; the handle is then never created. A capture that CUDA invalidated (a host sync inside
// fn, an unsafe call from another thread) cannot be undone cleanly: libtorch's allocator keeps the
// capture's pool open, so the error says "capture broke" and callers must not go on with CUDA.
Napi::Value CudaGraphCapture(const Napi::CallbackInfo& info) {
  int device = static_cast<int>(intArg(info, 0, "device"));
  if (info.Length() < 2 || !info[1].IsFunction())
    throw Napi::TypeError::New(info.Env(), "expected a function for argument 'fn'");
  Napi::Function fn = info[1].As<Napi::Function>();
  auto captured = std::make_unique<CapturedGraph>();
  captured->device = device;
  std::string failure;
  // threw: a JS throw of a non-Error, or of an Error without a message, leaves failure empty
  bool threw = false, broke = false;
  onCaptureStream(device, [&]() {
    captured->graph.capture_begin();
    try {
      fn.Call({});
    } catch (const Napi::Error& e) {
      threw = true;
      failure = e.Message();
    } catch (const std::exception& e) {
      threw = true;
      failure = e.what();
    }
    try {
      captured->graph.capture_end();
    } catch (const c10::Error& e) {
      broke = true;
      if (failure.empty()) failure = e.what_without_backtrace();
    }
  });
  if (threw || broke) {
    if (failure.empty()) failure = "the captured function threw a value without a message";
    if (!broke)
      captured.reset();  // a complete capture: reset() returns its pool
    else
      (void)captured.release();  // its pool cannot be released: keep it, do not touch it
    (void)cudaGetLastError();    // a failed capture leaves no error for the next launch
    std::string reason = failure.substr(0, failure.find('\n'));
    throw Napi::Error::New(
        info.Env(),
        broke ? "cudaGraphCapture: the CUDA graph capture broke (" + reason +
                    "); the CUDA allocator cannot be trusted in this process any "
                    "more: restart it without CUDA graphs"
              : "cudaGraphCapture: the step could not be captured as a CUDA graph: " + reason);
  }
  captured->ready = true;
  auto handle = Napi::External<CapturedGraph>::New(info.Env(), captured.release(),
                                                   [](Napi::Env, CapturedGraph* g) { delete g; });
  handle.TypeTag(&kGraphTag);
  return handle;
}

// cudaGraphReplay(handle): launches the captured kernels on the current stream.
Napi::Value CudaGraphReplay(const Napi::CallbackInfo& info) {
  CapturedGraph* g = graphArg(info, 0);
  if (!g->ready) throw Napi::Error::New(info.Env(), "this CUDA graph was reset");
  c10::cuda::CUDAGuard deviceGuard(static_cast<c10::DeviceIndex>(g->device));
  g->graph.replay();
  return info.Env().Undefined();
}

// cudaGraphReset(handle): frees the graph and returns its memory pool to the allocator.
Napi::Value CudaGraphReset(const Napi::CallbackInfo& info) {
  CapturedGraph* g = graphArg(info, 0);
  if (g->ready) {
    c10::cuda::CUDAGuard deviceGuard(static_cast<c10::DeviceIndex>(g->device));
    g->graph.reset();
    g->ready = false;
  }
  return info.Env().Undefined();
}

}  // namespace

#else  // no CUDA graphs in this build

bool adamwFusedDeviceLr(std::vector<at::Tensor>&, std::vector<at::Tensor>&,
                        std::vector<at::Tensor>&, std::vector<at::Tensor>&, const at::Tensor&,
                        const at::Tensor&, const c10::optional<at::Tensor>&,
                        const c10::optional<at::Tensor>&, double, double, double, double) {
  return false;
}

namespace {
Napi::Value Unavailable(const Napi::CallbackInfo& info) {
  throw Napi::Error::New(info.Env(),
                         "CUDA graphs need a CUDA build of libtorch 2.4 or newer; this addon was "
                         "built without them (see `staged-lm doctor`)");
}
}  // namespace

#endif

void initCudaGraph(Napi::Env env, Napi::Object exports) {
#if STAGED_LM_CUDA_GRAPHS
  define(env, exports, "cudaGraphWarmup", CudaGraphWarmup);
  define(env, exports, "cudaGraphCapture", CudaGraphCapture);
  define(env, exports, "cudaGraphReplay", CudaGraphReplay);
  define(env, exports, "cudaGraphReset", CudaGraphReset);
#else
  define(env, exports, "cudaGraphWarmup", Unavailable);
  define(env, exports, "cudaGraphCapture", Unavailable);
  define(env, exports, "cudaGraphReplay", Unavailable);
  define(env, exports, "cudaGraphReset", Unavailable);
#endif
  exports.Set("hasCudaGraphs", Napi::Boolean::New(env, cudaGraphsAvailable()));
}

}  // namespace slm
