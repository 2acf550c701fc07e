// Module init: registers the tensor handle class and every op group.
#include <napi.h>

#include "cpu_allocator.h"
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

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // before any tensor exists, so that every CPU tensor comes from it (cpu_allocator.cc)
  slm::installCpuBlockAllocator();
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
