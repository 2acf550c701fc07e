// TensorHandle lifetime and byte accounting, argument readers, and the error guard.
#include "tensor.h"

#include <ATen/MemoryOverlap.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_set>

namespace slm {

namespace {

std::atomic<int64_t> gLiveHandles{0};
std::atomic<int64_t> gLiveBytes{0};
std::atomic<int64_t> gCreatedTotal{0};

// Every live handle, so that FromValue can tell our externals from anyone else's (an external's
// data pointer says nothing about who made it). Finalizers may run on any environment's thread
// (worker threads), hence the lock; uncontended it costs a few dozen instructions. Never freed:
// finalizers can still run while the process tears down.
std::mutex& liveLock() {
  static auto* m = new std::mutex();
  return *m;
}
std::unordered_set<const void*>& liveSet() {
  static auto* s = new std::unordered_set<const void*>();
  return *s;
}

// The bytes a handle shows, at most what its storage holds: a broadcast view (expand) shows many
// elements of a few bytes, and reporting its logical size made V8 run full collections for
// memory that does not exist (and overflowed int64 for the largest views).
int64_t bytesOf(const at::Tensor& t) {
  if (!t.defined()) return 0;
  int64_t elem = static_cast<int64_t>(t.element_size());
  int64_t n = static_cast<int64_t>(t.numel());
  if (!t.has_storage()) return n * elem;
  int64_t held = static_cast<int64_t>(t.storage().nbytes());
  return elem > 0 && n > held / elem ? held : n * elem;
}

// Only host memory is reported to V8: its GC heuristics are about host RAM, and reporting GPU
// activations (gigabytes per step) makes it run full collections back to back.
int64_t v8BytesOf(const at::Tensor& t) {
  return t.defined() && t.is_cpu() ? bytesOf(t) : 0;
}

const char* kDisposed =
    "Tensor was disposed: it cannot be used after dispose() or outside its tidy() scope";

}  // namespace

HandleStats handleStats() {
  return {gLiveHandles.load(), gLiveBytes.load(), gCreatedTotal.load()};
}

TensorHandle::TensorHandle(at::Tensor t) : tensor_(std::move(t)) {
  bytes_ = bytesOf(tensor_);
  reportedBytes_ = v8BytesOf(tensor_);
}

Napi::Value TensorHandle::Create(Napi::Env env, at::Tensor t) {
  std::unique_ptr<TensorHandle> owned(new TensorHandle(std::move(t)));
  TensorHandle* h = owned.get();
  // registered before the external exists, so that its finalizer always finds what it undoes
  {
    std::lock_guard<std::mutex> lock(liveLock());
    liveSet().insert(h);
  }
  napi_value out;
  napi_status st = napi_create_external(env, h, &TensorHandle::Finalize, nullptr, &out);
  if (st != napi_ok) {
    std::lock_guard<std::mutex> lock(liveLock());
    liveSet().erase(h);
  }
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  owned.release();  // the external's finalizer owns it now
  gLiveHandles++;
  gCreatedTotal++;
  gLiveBytes += h->bytes_;
  if (h->reportedBytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, h->reportedBytes_);
  return Napi::Value(env, out);
}

// Every op reads its tensor arguments through here, so it is kept cheap: a type check, the
// external's pointer, and a hash lookup that proves the pointer is one of ours.
TensorHandle* TensorHandle::FromValue(Napi::Env env, const Napi::Value& v) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external) return nullptr;
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok) return nullptr;
  std::lock_guard<std::mutex> lock(liveLock());
  return liveSet().count(p) ? static_cast<TensorHandle*>(p) : nullptr;
}

// The external was collected: free what it still holds. This runs inside the GC (the addon is
// built with NAPI_EXPERIMENTAL), where adjusting V8's external-memory counter is still allowed,
// also while the environment shuts down.
void TensorHandle::Finalize(node_api_basic_env env, void* data, void* /*hint*/) {
  auto* h = static_cast<TensorHandle*>(data);
  {
    std::lock_guard<std::mutex> lock(liveLock());
    liveSet().erase(h);
  }
  if (!h->disposed()) {
    gLiveHandles--;
    gLiveBytes -= h->bytes_;
    int64_t ignored;
    if (h->reportedBytes_ > 0) napi_adjust_external_memory(env, -h->reportedBytes_, &ignored);
  }
  delete h;
}

void TensorHandle::release(Napi::Env env) {
  if (disposed()) return;
  tensor_ = at::Tensor();
  gLiveHandles--;
  gLiveBytes -= bytes_;
  if (reportedBytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, -reportedBytes_);
  reportedBytes_ = 0;
  bytes_ = 0;
}

void TensorHandle::refreshBytes(Napi::Env env) {
  if (disposed()) return;
  int64_t bytes = bytesOf(tensor_);
  int64_t v8Bytes = v8BytesOf(tensor_);
  gLiveBytes += bytes - bytes_;
  bytes_ = bytes;
  if (v8Bytes != reportedBytes_)
    Napi::MemoryManagement::AdjustExternalMemory(env, v8Bytes - reportedBytes_);
  reportedBytes_ = v8Bytes;
}

namespace {
// The handle of argument 0 of a handle method (dispose, shape, ...).
TensorHandle& selfArg(const Napi::CallbackInfo& info) {
  TensorHandle* h = info.Length() > 0 ? TensorHandle::FromValue(info.Env(), info[0]) : nullptr;
  if (h == nullptr)
    throw Napi::TypeError::New(info.Env(), "expected a tensor handle for argument 'tensor'");
  return *h;
}

at::Tensor& liveSelfArg(const Napi::CallbackInfo& info) {
  TensorHandle& h = selfArg(info);
  if (h.disposed()) throw Napi::Error::New(info.Env(), kDisposed);
  return h.tensor();
}

Napi::Value TensorDispose(const Napi::CallbackInfo& info) {
  selfArg(info).release(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorIsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), selfArg(info).disposed());
}

Napi::Value TensorShape(const Napi::CallbackInfo& info) {
  auto sizes = liveSelfArg(info).sizes();
  Napi::Array out = Napi::Array::New(info.Env(), sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) out.Set(i, Napi::Number::New(info.Env(), sizes[i]));
  return out;
}

Napi::Value TensorDtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtypeName(liveSelfArg(info).scalar_type()));
}

Napi::Value TensorDevice(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), liveSelfArg(info).device().str());
}
}  // namespace

// Without define()'s guard: their one error ("Tensor was disposed…") reads best without an op
// name, and they call nothing that throws c10::Error.
void TensorHandle::Init(Napi::Env env, Napi::Object exports) {
  for (auto [name, fn] : {std::pair{"tensorDispose", TensorDispose},
                          {"tensorIsDisposed", TensorIsDisposed},
                          {"tensorShape", TensorShape},
                          {"tensorDtype", TensorDtype},
                          {"tensorDevice", TensorDevice}})
    exports.Set(name, Napi::Function::New(env, fn, name));
}

// ---- dtypes ------------------------------------------------------------------------------

at::ScalarType parseDtype(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  if (name == "int64") return at::kLong;
  if (name == "int32") return at::kInt;
  if (name == "uint8") return at::kByte;
  if (name == "bool") return at::kBool;
  return at::ScalarType::Undefined;
}

const char* dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

std::string shapeString(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < sizes.size(); i++) s << (i ? ", " : "") << sizes[i];
  s << "]";
  return s.str();
}

bool memoryOverlaps(const at::Tensor& a, const at::Tensor& b) {
  if (!a.defined() || !b.defined() || !a.has_storage() || !b.has_storage()) return false;
  if (!a.storage().is_alias_of(b.storage())) return false;
  if (a.numel() == 0 || b.numel() == 0) return false;
  at::MemOverlapStatus s = at::get_overlap_status(a, b);
  return s != at::MemOverlapStatus::No;
}

// ---- argument readers --------------------------------------------------------------------

namespace {
std::string typeOf(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_bigint: return "bigint";
    case napi_function: return "function";
    default: return v.IsArray() ? "array" : "object";
  }
}

[[noreturn]] void badArg(const Napi::CallbackInfo& info, size_t i, const char* name,
                         const char* expected) {
  throw Napi::TypeError::New(info.Env(), std::string("expected ") + expected + " for argument '" +
                                             name + "' but received " + typeOf(info[i]));
}
}  // namespace

bool isMissing(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() <= i || info[i].IsUndefined() || info[i].IsNull();
}

at::Tensor* tensorArgIfAny(const Napi::CallbackInfo& info, size_t i, const char* name) {
  TensorHandle* h = info.Length() > i ? TensorHandle::FromValue(info.Env(), info[i]) : nullptr;
  if (h == nullptr) return nullptr;
  if (h->disposed()) {
    throw Napi::Error::New(info.Env(), std::string(kDisposed) + " (argument '" + name + "')");
  }
  return &h->tensor();
}

at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  at::Tensor* t = tensorArgIfAny(info, i, name);
  if (t == nullptr) badArg(info, i, name, "a Tensor");
  return *t;
}

c10::optional<at::Tensor> optionalTensorArg(const Napi::CallbackInfo& info, size_t i,
                                            const char* name) {
  if (isMissing(info, i)) return c10::nullopt;
  return tensorArg(info, i, name);
}

std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsArray()) badArg(info, i, name, "an array of Tensors");
  Napi::Array arr = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  // (capped: a sparse array's length is no promise of elements; see intListArg)
  out.reserve(std::min<uint32_t>(arr.Length(), 1u << 16));
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    TensorHandle* h = TensorHandle::FromValue(info.Env(), v);
    if (h == nullptr) {
      throw Napi::TypeError::New(info.Env(), std::string("expected a Tensor at ") + name + "[" +
                                                 std::to_string(k) + "] but received " + typeOf(v));
    }
    if (h->disposed()) {
      throw Napi::Error::New(info.Env(),
                             std::string(kDisposed) + " (" + name + "[" + std::to_string(k) + "])");
    }
    out.push_back(h->tensor());
  }
  return out;
}

double numberArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) badArg(info, i, name, "a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = numberArg(info, i, name);
  if (d != static_cast<double>(static_cast<int64_t>(d))) badArg(info, i, name, "an integer");
  return static_cast<int64_t>(d);
}

bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsBoolean()) badArg(info, i, name, "a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string stringArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) badArg(info, i, name, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> intListArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsArray()) badArg(info, i, name, "an array of integers");
  Napi::Array arr = info[i].As<Napi::Array>();
  // grown as read, not sized by length(): a sparse array of length 2^32 − 1 would otherwise ask
  // for 34 GB before its first (missing) element is looked at
  std::vector<int64_t> out;
  out.reserve(std::min<uint32_t>(arr.Length(), 16));
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0.5;
    // (int64's range first: casting a double beyond it is undefined behaviour)
    if (!(std::abs(d) < 9223372036854775808.0) ||
        d != static_cast<double>(static_cast<int64_t>(d))) {
      throw Napi::TypeError::New(info.Env(), std::string("expected an integer at ") + name + "[" +
                                                 std::to_string(k) + "] but received " +
                                                 (v.IsNumber() ? std::to_string(d) : typeOf(v)));
    }
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

c10::optional<std::vector<int64_t>> optionalIntListArg(const Napi::CallbackInfo& info, size_t i,
                                                       const char* name) {
  if (isMissing(info, i)) return c10::nullopt;
  return intListArg(info, i, name);
}

at::ScalarType dtypeArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  std::string s = stringArg(info, i, name);
  at::ScalarType t = parseDtype(s);
  if (t == at::ScalarType::Undefined) {
    throw Napi::TypeError::New(info.Env(), std::string("unknown dtype '") + s + "' for argument '" +
                                               name +
                                               "' (expected float32, float64, bfloat16, "
                                               "float16, int64, int32, uint8 or bool)");
  }
  return t;
}

c10::Device deviceArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  std::string s = stringArg(info, i, name);
  c10::Device d(at::kCPU);
  try {
    d = c10::Device(s);
  } catch (const c10::Error&) {
    throw Napi::TypeError::New(info.Env(), std::string("unknown device '") + s +
                                               "' for argument '" + name +
                                               "' (expected cpu, cuda or cuda:N)");
  }
  if (d.is_cuda()) {
    auto& hooks = at::detail::getCUDAHooks();
    if (!hooks.hasCUDA()) {
      throw Napi::Error::New(info.Env(),
                             "CUDA is not available: this build of staged-lm uses a "
                             "libtorch without CUDA or sees no GPU (device '" +
                                 s + "')");
    }
    if (d.has_index() && d.index() >= hooks.getNumGPUs()) {
      throw Napi::Error::New(
          info.Env(), "device '" + s + "' does not exist: " + std::to_string(hooks.getNumGPUs()) +
                          " CUDA device(s)");
    }
  } else if (!d.is_cpu()) {
    throw Napi::TypeError::New(info.Env(), std::string("unsupported device '") + s +
                                               "' for argument '" + name +
                                               "' (expected cpu, cuda or cuda:N)");
  }
  return d;
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  return TensorHandle::Create(env, std::move(t));
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array out = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) out.Set(i, TensorHandle::Create(env, ts[i]));
  return out;
}

// ---- the guard ---------------------------------------------------------------------------

namespace {
// Shapes of the live tensor arguments, e.g. " (input shapes: [2, 3], [4, 5])".
std::string argumentShapes(const Napi::CallbackInfo& info) {
  std::string out;
  int n = 0;
  auto add = [&](const Napi::Value& v) {
    TensorHandle* h = TensorHandle::FromValue(info.Env(), v);
    if (h == nullptr) return;
    if (h->disposed()) return;
    out += (n++ ? ", " : "") + shapeString(h->tensor().sizes());
  };
  for (size_t i = 0; i < info.Length(); i++) {
    if (info[i].IsArray()) {
      Napi::Array arr = info[i].As<Napi::Array>();
      for (uint32_t k = 0; k < arr.Length(); k++) add(arr.Get(k));
    } else {
      add(info[i]);
    }
  }
  return n ? " (input shapes: " + out + ")" : "";
}

std::string firstLines(const std::string& msg) {
  // libtorch sometimes appends a long dispatcher listing after the first line; keep the message.
  auto cut = msg.find("\n\nCPU:");
  std::string s = cut == std::string::npos ? msg : msg.substr(0, cut);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

void define(Napi::Env env, Napi::Object exports, const char* name, NativeFn fn) {
  std::string op(name);
  exports.Set(name, Napi::Function::New(
                        env,
                        [fn, op](const Napi::CallbackInfo& info) -> Napi::Value {
                          try {
                            return fn(info);
                          } catch (const Napi::TypeError& e) {
                            throw Napi::TypeError::New(info.Env(), op + ": " + e.Message());
                          } catch (const Napi::RangeError& e) {
                            throw Napi::RangeError::New(info.Env(), op + ": " + e.Message());
                          } catch (const Napi::Error& e) {
                            if (e.Message().rfind(op + ":", 0) == 0) throw;
                            // an error object (one a JS callback threw, of whatever class) keeps
                            // its type, stack and properties: only its message is prefixed
                            Napi::Value thrown = e.Value();
                            if (thrown.IsObject()) {
                              thrown.As<Napi::Object>().Set("message", op + ": " + e.Message());
                              throw;
                            }
                            throw Napi::Error::New(
                                info.Env(), op + ": a value that is not an Error was thrown");
                          } catch (const c10::Error& e) {
                            throw Napi::Error::New(
                                info.Env(), op + ": " + firstLines(e.what_without_backtrace()) +
                                                argumentShapes(info));
                          } catch (const std::exception& e) {
                            throw Napi::Error::New(info.Env(), op + ": " + firstLines(e.what()) +
                                                                   argumentShapes(info));
                          }
                        },
                        name));
}

}  // namespace slm
