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
                        const at::Tensor& step, const at::Tensor& lr, double beta1, double beta2,
                        double weightDecay, double eps) {
  std::vector<at::Tensor> steps(params.size(), step);
  at::_fused_adamw_(params, grads, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2,
                    weightDecay, eps, /*amsgrad=*/false, /*maximize=*/false);
  return true;
}

namespace {

struct CapturedGraph {
  at::cuda::CUDAGraph graph;
  int device = 0;
  bool ready = false;
};

CapturedGraph* graphArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal())
    throw Napi::TypeError::New(info.Env(), "expected a captured graph handle");
  return info[i].As<Napi::External<CapturedGraph>>().Data();
}

// cudaGraphCapture(device, fn) → handle. Calls fn() once with every CUDA launch on `device`
// recorded instead of run. An error inside fn (a host sync, a CPU round trip) ends the capture and
// is rethrown naming the capture; the handle is then never created.
Napi::Value CudaGraphCapture(const Napi::CallbackInfo& info) {
  int device = static_cast<int>(intArg(info, 0, "device"));
  if (info.Length() < 2 || !info[1].IsFunction())
    throw Napi::TypeError::New(info.Env(), "expected a function for argument 'fn'");
  Napi::Function fn = info[1].As<Napi::Function>();
  auto captured = std::make_unique<CapturedGraph>();
  captured->device = device;
  c10::cuda::CUDAGuard deviceGuard(static_cast<c10::DeviceIndex>(device));
  c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream();
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  at::cuda::CUDAEvent before;
  before.record(current);
  before.block(side);  // the captured work reads what the current stream wrote
  std::string failure;
  {
    c10::cuda::CUDAStreamGuard streamGuard(side);
    captured->graph.capture_begin();
    try {
      fn.Call({});
    } catch (const Napi::Error& e) {
      failure = e.Message();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    try {
      captured->graph.capture_end();
    } catch (const c10::Error& e) {
      if (failure.empty()) failure = e.what_without_backtrace();
    }
  }
  at::cuda::CUDAEvent after;
  after.record(side);
  after.block(current);
  if (!failure.empty()) {
    captured.reset();
    (void)cudaGetLastError();  // a failed capture leaves no error for the next launch to report
    throw Napi::Error::New(info.Env(), "the step could not be captured as a CUDA graph: " +
                                           failure.substr(0, failure.find('\n')));
  }
  captured->ready = true;
  return Napi::External<CapturedGraph>::New(info.Env(), captured.release(),
                                            [](Napi::Env, CapturedGraph* g) { delete g; });
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
                        const at::Tensor&, double, double, double, double) {
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
  define(env, exports, "cudaGraphCapture", CudaGraphCapture);
  define(env, exports, "cudaGraphReplay", CudaGraphReplay);
  define(env, exports, "cudaGraphReset", CudaGraphReset);
#else
  define(env, exports, "cudaGraphCapture", Unavailable);
  define(env, exports, "cudaGraphReplay", Unavailable);
  define(env, exports, "cudaGraphReset", Unavailable);
#endif
  exports.Set("hasCudaGraphs", Napi::Boolean::New(env, cudaGraphsAvailable()));
}

}  // namespace slm
