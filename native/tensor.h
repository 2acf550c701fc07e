// The JS handle of one at::Tensor, and the helpers every op file uses to read its arguments and
// to turn libtorch's exceptions into JS errors.
#pragma once
#include <ATen/core/Tensor.h>
#include <napi.h>

#include <string>
#include <vector>

namespace slm {

// The JS handle of one at::Tensor: a napi_external pointing at a TensorHandle. dispose() frees the
// tensor at once; the external's finalizer frees it when the JS value is collected (a safety net:
// scopes are the everyday discipline). The bytes it holds are reported to V8 so that the GC feels
// the pressure of native memory.
// An external, not an ObjectWrap: creating a wrapped object ran a JS constructor and napi_wrap,
// and every argument check unwrapped it again: a third of the ~23k instructions a small op cost the
// host (callgrind, one add plus its disposal). Handles are plain values; their methods are module
// functions (tensorShape, tensorDispose, ...).
class TensorHandle {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  // A new JS handle owning `t`.
  static Napi::Value Create(Napi::Env env, at::Tensor t);
  // The handle behind a JS value, or nullptr when it is not a live tensor handle of this addon
  // (an external from another addon, any other value).
  static TensorHandle* FromValue(Napi::Env env, const Napi::Value& v);

  bool disposed() const { return !tensor_.defined(); }
  at::Tensor& tensor() { return tensor_; }
  // Re-count the bytes after the tensor changed size in place (setData).
  void refreshBytes(Napi::Env env);
  // Frees the tensor now (dispose(), disposeMany()); idempotent.
  void release(Napi::Env env);

 private:
  explicit TensorHandle(at::Tensor t);
  static void Finalize(node_api_basic_env env, void* data, void* hint);

  at::Tensor tensor_;
  int64_t bytes_ = 0;          // counted in memoryStats().liveBytes
  int64_t reportedBytes_ = 0;  // reported to V8 (host tensors only)
};

// Process-wide counters behind memoryStats(): live handles and the bytes they reference
// (a view counts as much as the elements it shows).
struct HandleStats {
  int64_t liveHandles;
  int64_t liveBytes;
  int64_t createdTotal;
};
HandleStats handleStats();

// ---- argument readers: each throws a TypeError naming the op and the argument ----------------
at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i, const char* name);
c10::optional<at::Tensor> optionalTensorArg(const Napi::CallbackInfo& info, size_t i,
                                            const char* name);
std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i, const char* name);
double numberArg(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* name);
bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string stringArg(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<int64_t> intListArg(const Napi::CallbackInfo& info, size_t i, const char* name);
c10::optional<std::vector<int64_t>> optionalIntListArg(const Napi::CallbackInfo& info, size_t i,
                                                       const char* name);
bool isMissing(const Napi::CallbackInfo& info, size_t i);
at::ScalarType dtypeArg(const Napi::CallbackInfo& info, size_t i, const char* name);
c10::Device deviceArg(const Napi::CallbackInfo& info, size_t i, const char* name);
// The tensor of argument i, or nullptr when it is not a Tensor (throws when it is a disposed one):
// one handle check for arguments that may be a Tensor or something else.
at::Tensor* tensorArgIfAny(const Napi::CallbackInfo& info, size_t i, const char* name);

at::ScalarType parseDtype(const std::string& name);
const char* dtypeName(at::ScalarType t);
std::string shapeString(at::IntArrayRef sizes);
// Whether a and b share any element's memory (ATen's overlap check; where it cannot tell, as for
// some strided views, sharing one storage counts as overlapping).
bool memoryOverlaps(const at::Tensor& a, const at::Tensor& b);

Napi::Value wrap(Napi::Env env, at::Tensor t);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);

// ---- registration: every exported function runs inside a guard ----------------------------
// The guard turns c10::Error into a JS Error carrying libtorch's message (without its C++
// backtrace) prefixed with the op name and followed by the shapes of the tensor arguments, so a
// shape mismatch always names both shapes.
using NativeFn = Napi::Value (*)(const Napi::CallbackInfo&);
void define(Napi::Env env, Napi::Object exports, const char* name, NativeFn fn);

}  // namespace slm
