// Shape and layout: views, concatenation, splitting, indexing, device/dtype moves.
#include <ATen/Context.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/stack.h>

#include "tensor.h"

namespace slm {
namespace {

Napi::Value View(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").view(intListArg(info, 1, "shape")));
}

Napi::Value Reshape(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").reshape(intListArg(info, 1, "shape")));
}

Napi::Value Transpose(const Napi::CallbackInfo& info) {
  return wrap(
      info.Env(),
      tensorArg(info, 0, "tensor").transpose(intArg(info, 1, "dim0"), intArg(info, 2, "dim1")));
}

Napi::Value Permute(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").permute(intListArg(info, 1, "dims")));
}

Napi::Value Contiguous(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").contiguous());
}

Napi::Value Unsqueeze(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").unsqueeze(intArg(info, 1, "dim")));
}

// squeeze(t, dim?)
Napi::Value Squeeze(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  if (isMissing(info, 1)) return wrap(info.Env(), t.squeeze());
  return wrap(info.Env(), t.squeeze(intArg(info, 1, "dim")));
}

Napi::Value Expand(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").expand(intListArg(info, 1, "shape")));
}

Napi::Value Flatten(const Napi::CallbackInfo& info) {
  return wrap(
      info.Env(),
      tensorArg(info, 0, "tensor").flatten(intArg(info, 1, "startDim"), intArg(info, 2, "endDim")));
}

Napi::Value Cat(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::cat(tensorListArg(info, 0, "tensors"), intArg(info, 1, "dim")));
}

Napi::Value Stack(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::stack(tensorListArg(info, 0, "tensors"), intArg(info, 1, "dim")));
}

// split(t, sizeOrSizes, dim): equal chunks of `size` (the last may be smaller) or explicit sizes.
Napi::Value Split(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  int64_t dim = intArg(info, 2, "dim");
  if (info.Length() > 1 && info[1].IsArray()) {
    return wrapList(info.Env(), t.split_with_sizes(intListArg(info, 1, "sizes"), dim));
  }
  int64_t size = intArg(info, 1, "size");
  if (size <= 0) throw Napi::TypeError::New(info.Env(), "'size' must be positive");
  return wrapList(info.Env(), t.split(size, dim));
}

Napi::Value Chunk(const Napi::CallbackInfo& info) {
  return wrapList(
      info.Env(),
      tensorArg(info, 0, "tensor").chunk(intArg(info, 1, "chunks"), intArg(info, 2, "dim")));
}

// narrow(t, dim, start, length): a view of `length` elements from `start`.
Napi::Value Narrow(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor")
                              .narrow(intArg(info, 1, "dim"), intArg(info, 2, "start"),
                                      intArg(info, 3, "length")));
}

// slice(t, dim, start, end, step): Python's t[start:end:step] along dim (a view).
Napi::Value Slice(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor")
                              .slice(intArg(info, 1, "dim"), intArg(info, 2, "start"),
                                     intArg(info, 3, "end"), intArg(info, 4, "step")));
}

Napi::Value Select(const Napi::CallbackInfo& info) {
  return wrap(
      info.Env(),
      tensorArg(info, 0, "tensor").select(intArg(info, 1, "dim"), intArg(info, 2, "index")));
}

Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::index_select(tensorArg(info, 0, "tensor"), intArg(info, 1, "dim"),
                                           tensorArg(info, 2, "index")));
}

// to(t, device, dtype, nonBlocking): a copy only when something changes (like PyTorch).
Napi::Value To(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  c10::Device device = deviceArg(info, 1, "device");
  at::ScalarType dtype = dtypeArg(info, 2, "dtype");
  bool nonBlocking = !isMissing(info, 3) && boolArg(info, 3, "nonBlocking");
  return wrap(info.Env(), t.to(device, dtype, nonBlocking));
}

Napi::Value PinMemory(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  // (libtorch's own message names the CUDA backend's missing kernel, not the missing CUDA)
  if (!at::hasCUDA())
    throw Napi::Error::New(info.Env(),
                           "pinMemory: pinned (page-locked) memory serves copies to a CUDA device, "
                           "and this libtorch has no CUDA device to copy to");
  return wrap(info.Env(), t.pin_memory());
}

// memoryOverlaps(a, b) → whether the two share memory (see tensor.h)
Napi::Value MemoryOverlaps(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(),
                            memoryOverlaps(tensorArg(info, 0, "a"), tensorArg(info, 1, "b")));
}

Napi::Value Clone(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").clone());
}

// Another handle on the same tensor (same storage, same autograd identity).
Napi::Value Alias(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor"));
}

Napi::Value Stride(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  Napi::Array out = Napi::Array::New(info.Env(), t.dim());
  for (int64_t i = 0; i < t.dim(); i++) out.Set(i, Napi::Number::New(info.Env(), t.stride(i)));
  return out;
}

Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensorArg(info, 0, "tensor").is_contiguous());
}

}  // namespace

void initShapeOps(Napi::Env env, Napi::Object exports) {
  define(env, exports, "view", View);
  define(env, exports, "reshape", Reshape);
  define(env, exports, "transpose", Transpose);
  define(env, exports, "permute", Permute);
  define(env, exports, "contiguous", Contiguous);
  define(env, exports, "unsqueeze", Unsqueeze);
  define(env, exports, "squeeze", Squeeze);
  define(env, exports, "expand", Expand);
  define(env, exports, "flatten", Flatten);
  define(env, exports, "cat", Cat);
  define(env, exports, "stack", Stack);
  define(env, exports, "split", Split);
  define(env, exports, "chunk", Chunk);
  define(env, exports, "narrow", Narrow);
  define(env, exports, "slice", Slice);
  define(env, exports, "select", Select);
  define(env, exports, "indexSelect", IndexSelect);
  define(env, exports, "to", To);
  define(env, exports, "pinMemory", PinMemory);
  define(env, exports, "clone", Clone);
  define(env, exports, "memoryOverlaps", MemoryOverlaps);
  define(env, exports, "alias", Alias);
  define(env, exports, "stride", Stride);
  define(env, exports, "isContiguous", IsContiguous);
}

}  // namespace slm
