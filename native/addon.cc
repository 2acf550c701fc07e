// Module init: registers the tensor handle class and every op group.
#include <napi.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "tensor.h"

namespace slm {
void initCreation(Napi::Env env, Napi::Object exports);
void initData(Napi::Env env, Napi::Object exports);
void initShapeOps(Napi::Env env, Napi::Object exports);
void initMathOps(Napi::Env env, Napi::Object exports);
void initNnOps(Napi::Env env, Napi::Object exports);
void initLoss(Napi::Env env, Napi::Object exports);
void initNorm(Napi::Env env, Napi::Object exports);
void initAutograd(Napi::Env env, Napi::Object exports);
void initRuntime(Napi::Env env, Napi::Object exports);
void initOpCount(Napi::Env env, Napi::Object exports);
void initProfiler(Napi::Env env, Napi::Object exports);
void initOptim(Napi::Env env, Napi::Object exports);
void initIo(Napi::Env env, Napi::Object exports);
void initDistributed(Napi::Env env, Napi::Object exports);
void initCudaGraph(Napi::Env env, Napi::Object exports);
}  // namespace slm

// libtorch's CPU tensors come straight from malloc. glibc serves blocks above its mmap threshold
// with fresh mmap()s and unmaps them on free, so every training step page-faults its logits and
// gradients in anew (measured: 40% of a CPU step in the kernel). Keeping large blocks in the heap
// and not trimming it lets the next step reuse them. Returns whether glibc took the settings.
static bool tuneCpuAllocator() {
#if defined(__GLIBC__)
  if (getenv("STAGED_LM_DEFAULT_MALLOC") != nullptr) return false;
  bool ok = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && ok;
  ok = mallopt(M_TOP_PAD, 256 << 20) == 1 && ok;
  return ok;
#else
  return false;
#endif
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuAllocatorTuned", Napi::Boolean::New(env, tuneCpuAllocator()));
  slm::TensorHandle::Init(env, exports);
  slm::initCreation(env, exports);
  slm::initData(env, exports);
  slm::initShapeOps(env, exports);
  slm::initMathOps(env, exports);
  slm::initNnOps(env, exports);
  slm::initLoss(env, exports);
  slm::initNorm(env, exports);
  slm::initAutograd(env, exports);
  slm::initRuntime(env, exports);
  slm::initOpCount(env, exports);
  slm::initProfiler(env, exports);
  slm::initOptim(env, exports);
  slm::initIo(env, exports);
  slm::initCudaGraph(env, exports);
  slm::initDistributed(env, exports);
  return exports;
}

NODE_API_MODULE(staged_lm, Init)
