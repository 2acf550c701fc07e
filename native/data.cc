// Data in and out of tensors: JS typed arrays <-> tensors, item(), and an asynchronous read that
// runs the device-to-host copy on a libuv worker so a CUDA sync never blocks the event loop.
#include <ATen/ops/empty.h>
#include <c10/core/GradMode.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "tensor.h"

namespace slm {
namespace {

// The dtype a typed array's bytes are read as. Uint16Array (token ids) is widened to int32,
// since libtorch has no uint16 dtype.
at::ScalarType sourceDtype(const Napi::CallbackInfo& info, napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_bigint64_array: return at::kLong;
    case napi_uint8_array:
    case napi_uint8_clamped_array: return at::kByte;
    case napi_int8_array: return at::kChar;
    case napi_int16_array: return at::kShort;
    case napi_uint16_array: return at::kInt;
    default:
      throw Napi::TypeError::New(info.Env(),
                                 "expected a Float32Array, Float64Array, Int32Array, "
                                 "BigInt64Array, Uint8Array, Uint16Array, Int16Array or Int8Array "
                                 "for argument 'data'");
  }
}

// fromTypedArray(data, shape, dtype, device): copies the elements (the tensor owns its memory).
// Floating values bound for an integer dtype must fit it: the cast of NaN, ±Infinity or a value out
// of range is undefined (it gave the type's minimum for every one), where full() and fill_ refuse.
void checkIntegralRange(const Napi::CallbackInfo& info, const at::Tensor& host,
                        at::ScalarType dtype) {
  // [lo, end): both powers of two (or 0), exact in float32 as in float64. An inclusive top such as
  // 2^31 − 1 would round to 2^31 in a float32 comparison and let 2^31 through as INT32_MIN.
  double lo = 0, end = 0;
  switch (dtype) {
    case at::kLong: lo = -9223372036854775808.0, end = 9223372036854775808.0; break;
    case at::kInt: lo = -2147483648.0, end = 2147483648.0; break;
    case at::kShort: lo = -32768.0, end = 32768.0; break;
    case at::kChar: lo = -128.0, end = 128.0; break;
    case at::kByte: lo = 0.0, end = 256.0; break;
    default: return;
  }
  at::Tensor bad = host.isnan().logical_or(host.lt(lo)).logical_or(host.ge(end));
  if (!bad.any().item<bool>()) return;
  std::ostringstream v;
  v << std::setprecision(17) << host.masked_select(bad)[0].item<double>();
  throw Napi::TypeError::New(info.Env(), "value " + v.str() + " cannot be converted to " +
                                             dtypeName(dtype) + " without overflow");
}

// The values an integer dtype holds; false for any other dtype.
bool integerRange(at::ScalarType t, int64_t& lo, int64_t& hi) {
  switch (t) {
    case at::kLong: lo = INT64_MIN, hi = INT64_MAX; return true;
    case at::kInt: lo = INT32_MIN, hi = INT32_MAX; return true;
    case at::kShort: lo = INT16_MIN, hi = INT16_MAX; return true;
    case at::kChar: lo = INT8_MIN, hi = INT8_MAX; return true;
    case at::kByte: lo = 0, hi = UINT8_MAX; return true;
    default: return false;
  }
}

// Integer values bound for a narrower integer dtype must fit it too: the cast wraps (300 → uint8
// 44, 2^40 → int32 0). Compared in int64, exactly; nothing to do when every source value fits.
void checkIntegerSourceRange(const Napi::CallbackInfo& info, const at::Tensor& host,
                             at::ScalarType dtype) {
  int64_t srcLo, srcHi, lo, hi;
  if (!integerRange(host.scalar_type(), srcLo, srcHi) || !integerRange(dtype, lo, hi)) return;
  if (srcLo >= lo && srcHi <= hi) return;
  at::Tensor wide = host.to(at::kLong);
  at::Tensor bad = wide.lt(at::Scalar(lo)).logical_or(wide.gt(at::Scalar(hi)));
  if (!bad.any().item<bool>()) return;
  throw Napi::TypeError::New(
      info.Env(), "value " + std::to_string(wide.masked_select(bad)[0].item<int64_t>()) +
                      " cannot be converted to " + dtypeName(dtype) + " without overflow");
}

Napi::Value FromTypedArray(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw Napi::TypeError::New(info.Env(), "expected a typed array for argument 'data'");
  }
  // the other arguments first: reading them can run JS (a getter on shape[0]) that detaches or
  // shrinks the data's buffer, so its length and address are taken after, and used at once
  std::vector<int64_t> shape = intListArg(info, 1, "shape");
  at::ScalarType dtype = dtypeArg(info, 2, "dtype");
  c10::Device device = deviceArg(info, 3, "device");
  Napi::TypedArray arr = info[0].As<Napi::TypedArray>();
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  if (numel != static_cast<int64_t>(arr.ElementLength())) {
    throw Napi::Error::New(info.Env(), "fromTypedArray: shape " + shapeString(shape) + " holds " +
                                           std::to_string(numel) + " elements but the data has " +
                                           std::to_string(arr.ElementLength()));
  }
  napi_typedarray_type type = arr.TypedArrayType();
  at::ScalarType src = sourceDtype(info, type);
  at::Tensor host = at::empty(shape, at::TensorOptions().dtype(src));
  const uint8_t* bytes = static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  if (type == napi_uint16_array) {
    const uint16_t* in = reinterpret_cast<const uint16_t*>(bytes);
    int32_t* out = host.data_ptr<int32_t>();
    for (int64_t k = 0; k < numel; k++) out[k] = in[k];
  } else if (numel > 0) {
    std::memcpy(host.data_ptr(), bytes, arr.ByteLength());
  }
  if (numel > 0 && at::isFloatingType(src) && at::isIntegralType(dtype, /*includeBool=*/false))
    checkIntegralRange(info, host, dtype);
  if (numel > 0 && at::isIntegralType(src, /*includeBool=*/false))
    checkIntegerSourceRange(info, host, dtype);
  if (src == dtype && device.is_cpu()) return wrap(info.Env(), host);
  return wrap(info.Env(), host.to(device, dtype));
}

// A host copy in the dtype JS can hold: half types become float32, bool becomes uint8.
at::Tensor hostReadable(const at::Tensor& t) {
  at::NoGradGuard noGrad;
  at::Tensor h = t.detach();
  at::ScalarType st = h.scalar_type();
  if (st == at::kBFloat16 || st == at::kHalf) h = h.to(at::kFloat);
  if (st == at::kBool) h = h.to(at::kByte);
  return h.to(at::kCPU).contiguous();
}

Napi::Value toTypedArray(Napi::Env env, const at::Tensor& host) {
  size_t n = static_cast<size_t>(host.numel());
  size_t nbytes = n * host.element_size();
  // allocated here, where a failure can be told: Napi::ArrayBuffer::New (V8's ArrayBuffer::New)
  // aborts the process when the host memory is short. The buffer owns the block and frees it.
  void* data = std::malloc(nbytes == 0 ? 1 : nbytes);
  if (data == nullptr)
    throw Napi::RangeError::New(
        env, "cannot allocate " + std::to_string(nbytes) + " bytes on the host for the copy");
  if (nbytes) std::memcpy(data, host.data_ptr(), nbytes);
  Napi::ArrayBuffer buf;
  try {
    buf = Napi::ArrayBuffer::New(env, data, nbytes, [](Napi::Env, void* p) { std::free(p); });
  } catch (...) {
    std::free(data);  // (not taken over)
    throw;
  }
  switch (host.scalar_type()) {
    case at::kFloat: return Napi::Float32Array::New(env, n, buf, 0);
    case at::kDouble: return Napi::Float64Array::New(env, n, buf, 0);
    case at::kLong: return Napi::BigInt64Array::New(env, n, buf, 0);
    case at::kInt: return Napi::Int32Array::New(env, n, buf, 0);
    case at::kByte: return Napi::Uint8Array::New(env, n, buf, 0);
    case at::kChar: return Napi::Int8Array::New(env, n, buf, 0);
    case at::kShort: return Napi::Int16Array::New(env, n, buf, 0);
    default:
      throw Napi::TypeError::New(env, std::string("cannot read dtype ") +
                                          dtypeName(host.scalar_type()) + " into a typed array");
  }
}

Napi::Value ToTypedArray(const Napi::CallbackInfo& info) {
  return toTypedArray(info.Env(), hostReadable(tensorArg(info, 0, "tensor")));
}

// The read runs off the main thread, on a copy taken on the main thread when it is asked for (on
// the tensor's device, queued in order there): the values are those of that moment, whatever the
// program does to the tensor afterwards (an in-place op, setData, dispose()), and the worker
// touches nothing the main thread can reach.
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, at::Tensor t)
      : Napi::AsyncWorker(env),
        tensor_(std::move(t)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      host_ = hostReadable(tensor_);
    } catch (const c10::Error& e) {
      SetError(std::string("toTypedArrayAsync: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(std::string("toTypedArrayAsync: ") + e.what());
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(toTypedArray(Env(), host_));
    } catch (const Napi::Error& e) {
      reject(e);
    }
    tensor_ = at::Tensor();
    host_ = at::Tensor();
  }
  void OnError(const Napi::Error& e) override { reject(e); }

 private:
  // A worker thread being terminated (or its environment shutting down) can no longer settle the
  // promise: the rejection throws, and out of here it would reach libuv and abort the process
  void reject(const Napi::Error& e) {
    try {
      deferred_.Reject(e.Value());
    } catch (const Napi::Error&) {
    }
  }

  at::Tensor tensor_;
  at::Tensor host_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value ToTypedArrayAsync(const Napi::CallbackInfo& info) {
  at::Tensor snapshot;
  {
    at::NoGradGuard noGrad;
    snapshot = tensorArg(info, 0, "tensor").detach().clone();
  }
  auto* w = new ReadWorker(info.Env(), std::move(snapshot));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// item(t): the single element of a one-element tensor, as a JS number (or boolean).
Napi::Value Item(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  if (t.numel() != 1) {
    throw Napi::Error::New(
        info.Env(),
        "item: expected a tensor with one element but its shape is " + shapeString(t.sizes()));
  }
  if (t.scalar_type() == at::kBool) return Napi::Boolean::New(info.Env(), t.item<bool>());
  return Napi::Number::New(info.Env(), t.item<double>());
}

}  // namespace

void initData(Napi::Env env, Napi::Object exports) {
  define(env, exports, "fromTypedArray", FromTypedArray);
  define(env, exports, "toTypedArray", ToTypedArray);
  define(env, exports, "toTypedArrayAsync", ToTypedArrayAsync);
  define(env, exports, "item", Item);
}

}  // namespace slm
