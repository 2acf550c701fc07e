// Arithmetic, comparisons, reductions and matrix products, with their in-place forms.
// A second operand may be a Tensor (broadcast) or a JS number.
#include <ATen/ops/abs.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/outer.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/tril.h>
#include <ATen/ops/triu.h>
#include <ATen/ops/where.h>

#include <cmath>
#include <sstream>

#include "tensor.h"

namespace slm {
namespace {

// An integral JS number becomes an integer Scalar so int tensors stay int (PyTorch's promotion).
// -0 stays a double (as Python's -0.0 is a float): as the integer 0 it lost its sign, and
// reciprocal(x·-0) gave +Infinity. Magnitudes from 2^63 on stay doubles too (the cast to int64
// would be undefined).
at::Scalar scalarArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d = numberArg(info, i, name);
  if (std::isfinite(d) && std::fabs(d) < 9223372036854775808.0 && !(d == 0 && std::signbit(d)) &&
      d == std::trunc(d)) {
    return at::Scalar(static_cast<int64_t>(d));
  }
  return at::Scalar(d);
}

// The second operand as a tensor: a JS number becomes a 0-dim tensor (a "wrapped number", which
// takes part in type promotion like a Python scalar).
at::Tensor operandArg(const Napi::CallbackInfo& info, size_t i, const char* name,
                      const at::Tensor& like) {
  if (at::Tensor* t = tensorArgIfAny(info, i, name)) return *t;
  // int64 for integral numbers, float64 otherwise, on the CPU: as a wrapped number it neither
  // widens the result (float32 + 0.1 stays float32) nor costs a host-to-device copy, yet keeps
  // full precision for float64 tensors.
  at::Scalar value = scalarArg(info, i, name);
  at::Tensor s = at::scalar_tensor(
      value, at::TensorOptions().dtype(value.isIntegral(false) ? at::kLong : at::kDouble));
  s.unsafeGetTensorImpl()->set_wrapped_number(true);
  return s;
}

#define UNARY(NAME, EXPR)                            \
  Napi::Value NAME(const Napi::CallbackInfo& info) { \
    at::Tensor& t = tensorArg(info, 0, "tensor");    \
    return wrap(info.Env(), EXPR);                   \
  }

// op(a, b, alpha?) with b a Tensor or number
#define BINARY(NAME, METHOD)                                            \
  Napi::Value NAME(const Napi::CallbackInfo& info) {                    \
    at::Tensor& a = tensorArg(info, 0, "tensor");                       \
    return wrap(info.Env(), a.METHOD(operandArg(info, 1, "other", a))); \
  }
#define BINARY_INPLACE(NAME, METHOD)                 \
  Napi::Value NAME(const Napi::CallbackInfo& info) { \
    at::Tensor& a = tensorArg(info, 0, "tensor");    \
    a.METHOD(operandArg(info, 1, "other", a));       \
    return info.Env().Undefined();                   \
  }

at::Scalar alphaArg(const Napi::CallbackInfo& info, size_t i) {
  return isMissing(info, i) ? at::Scalar(1) : scalarArg(info, i, "alpha");
}

Napi::Value Add(const Napi::CallbackInfo& info) {
  at::Tensor& a = tensorArg(info, 0, "tensor");
  return wrap(info.Env(), a.add(operandArg(info, 1, "other", a), alphaArg(info, 2)));
}
Napi::Value Sub(const Napi::CallbackInfo& info) {
  at::Tensor& a = tensorArg(info, 0, "tensor");
  return wrap(info.Env(), a.sub(operandArg(info, 1, "other", a), alphaArg(info, 2)));
}
Napi::Value AddInplace(const Napi::CallbackInfo& info) {
  at::Tensor& a = tensorArg(info, 0, "tensor");
  a.add_(operandArg(info, 1, "other", a), alphaArg(info, 2));
  return info.Env().Undefined();
}
Napi::Value SubInplace(const Napi::CallbackInfo& info) {
  at::Tensor& a = tensorArg(info, 0, "tensor");
  a.sub_(operandArg(info, 1, "other", a), alphaArg(info, 2));
  return info.Env().Undefined();
}

// pow(t, exponent): an integer (or bool) tensor to a negative integer number is refused, as
// PyTorch does (libtorch 1.13 returned zeros).
void checkIntegerPow(const Napi::CallbackInfo& info, const at::Tensor& base) {
  if (info.Length() < 2 || !info[1].IsNumber() ||
      !at::isIntegralType(base.scalar_type(), /*includeBool=*/true))
    return;
  double e = info[1].As<Napi::Number>().DoubleValue();
  if (e < 0 && e == std::trunc(e)) {
    std::ostringstream v;
    v << e;
    throw Napi::Error::New(info.Env(), "Integers to negative integer powers are not allowed (" +
                                           std::string(dtypeName(base.scalar_type())) +
                                           " tensor to the power " + v.str() +
                                           "): convert the tensor to a floating dtype first");
  }
}
Napi::Value Pow(const Napi::CallbackInfo& info) {
  at::Tensor& a = tensorArg(info, 0, "tensor");
  checkIntegerPow(info, a);
  at::Tensor e = operandArg(info, 1, "exponent", a);
  return wrap(info.Env(), a.pow(e));
}
Napi::Value PowInplace(const Napi::CallbackInfo& info) {
  at::Tensor& a = tensorArg(info, 0, "tensor");
  checkIntegerPow(info, a);
  at::Tensor e = operandArg(info, 1, "exponent", a);
  a.pow_(e);
  return info.Env().Undefined();
}

BINARY(Mul, mul)
BINARY(Div, div)
BINARY(Eq, eq)
BINARY(Ne, ne)
BINARY(Lt, lt)
BINARY(Le, le)
BINARY(Gt, gt)
BINARY(Ge, ge)
BINARY(Maximum, maximum)
BINARY(Minimum, minimum)
BINARY_INPLACE(MulInplace, mul_)
BINARY_INPLACE(DivInplace, div_)
BINARY_INPLACE(CopyInplace, copy_)

UNARY(Neg, t.neg())
UNARY(Abs, t.abs())
UNARY(Sqrt, t.sqrt())
UNARY(Rsqrt, t.rsqrt())
UNARY(Exp, t.exp())
UNARY(Log, t.log())
UNARY(Tanh, t.tanh())
UNARY(Sigmoid, t.sigmoid())
UNARY(Relu, t.relu())
UNARY(Square, t.square())
UNARY(Reciprocal, t.reciprocal())
UNARY(Sign, t.sign())
UNARY(IsFinite, t.isfinite())
UNARY(IsNan, t.isnan())
UNARY(LogicalNot, t.logical_not())

Napi::Value ZeroInplace(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor").zero_();
  return info.Env().Undefined();
}
Napi::Value FillInplace(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor").fill_(scalarArg(info, 1, "value"));
  return info.Env().Undefined();
}
Napi::Value SqrtInplace(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor").sqrt_();
  return info.Env().Undefined();
}
// addcmul_(t, a, b, value): t += value·a·b
Napi::Value AddcmulInplace(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor")
      .addcmul_(tensorArg(info, 1, "tensor1"), tensorArg(info, 2, "tensor2"),
                scalarArg(info, 3, "value"));
  return info.Env().Undefined();
}
// addcdiv_(t, a, b, value): t += value·a/b
Napi::Value AddcdivInplace(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor")
      .addcdiv_(tensorArg(info, 1, "tensor1"), tensorArg(info, 2, "tensor2"),
                scalarArg(info, 3, "value"));
  return info.Env().Undefined();
}
// lerp_(t, end, weight): t += weight·(end − t)
Napi::Value LerpInplace(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor").lerp_(tensorArg(info, 1, "end"), scalarArg(info, 2, "weight"));
  return info.Env().Undefined();
}

// clamp(t, min|null, max|null)
Napi::Value Clamp(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  c10::optional<at::Scalar> lo, hi;
  if (!isMissing(info, 1)) lo = scalarArg(info, 1, "min");
  if (!isMissing(info, 2)) hi = scalarArg(info, 2, "max");
  return wrap(info.Env(), at::clamp(t, lo, hi));
}

// where(cond, a, b): a and b Tensors or numbers
Napi::Value Where(const Napi::CallbackInfo& info) {
  at::Tensor& c = tensorArg(info, 0, "condition");
  at::Tensor a = operandArg(info, 1, "input", c);
  at::Tensor b = operandArg(info, 2, "other", a);
  return wrap(info.Env(), at::where(c, a, b));
}

// The mask must be bool: libtorch 1.13 takes uint8 with a logged deprecation and ignores a
// floating mask without a word (a 0/1 float mask filled nothing).
const at::Tensor& boolMask(const Napi::CallbackInfo& info, size_t i) {
  const at::Tensor& mask = tensorArg(info, i, "mask");
  if (mask.scalar_type() != at::kBool)
    throw Napi::TypeError::New(info.Env(), std::string("expected a bool tensor for argument 'mask' "
                                                       "but received ") +
                                               dtypeName(mask.scalar_type()));
  return mask;
}

Napi::Value MaskedFill(const Napi::CallbackInfo& info) {
  return wrap(
      info.Env(),
      tensorArg(info, 0, "tensor").masked_fill(boolMask(info, 1), scalarArg(info, 2, "value")));
}
Napi::Value MaskedFillInplace(const Napi::CallbackInfo& info) {
  tensorArg(info, 0, "tensor").masked_fill_(boolMask(info, 1), scalarArg(info, 2, "value"));
  return info.Env().Undefined();
}

Napi::Value Triu(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::triu(tensorArg(info, 0, "tensor"), intArg(info, 1, "diagonal")));
}
Napi::Value Tril(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::tril(tensorArg(info, 0, "tensor"), intArg(info, 1, "diagonal")));
}

// ---- reductions: (t, dims|null, keepdim) -------------------------------------------------
// With no dims they reduce every element; keepdim then keeps every dimension as size 1, as
// PyTorch does ([2, 3] → [1, 1]).

// Every dimension of t, for a full reduction with keepdim (none for a 0-dim tensor).
std::vector<int64_t> allDims(const at::Tensor& t) {
  std::vector<int64_t> dims(t.dim());
  for (int64_t d = 0; d < t.dim(); d++) dims[d] = d;
  return dims;
}

Napi::Value Sum(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  auto dims = optionalIntListArg(info, 1, "dims");
  bool keepdim = boolArg(info, 2, "keepdim");
  if (!dims && (!keepdim || t.dim() == 0)) return wrap(info.Env(), t.sum());
  return wrap(info.Env(), t.sum(dims ? *dims : allDims(t), keepdim));
}

Napi::Value Mean(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  auto dims = optionalIntListArg(info, 1, "dims");
  bool keepdim = boolArg(info, 2, "keepdim");
  if (!dims && (!keepdim || t.dim() == 0)) return wrap(info.Env(), t.mean());
  return wrap(info.Env(), t.mean(dims ? *dims : allDims(t), keepdim));
}

// norm(t, p, dims|null, keepdim): the vector p-norm over dims (all elements when null)
Napi::Value Norm(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  at::Scalar p = numberArg(info, 1, "p");
  auto dims = optionalIntListArg(info, 2, "dims");
  bool keepdim = boolArg(info, 3, "keepdim");
  if (!dims && (!keepdim || t.dim() == 0)) return wrap(info.Env(), t.norm(p));
  return wrap(info.Env(), t.norm(p, dims ? *dims : allDims(t), keepdim));
}

// max(t) → the largest element; maxDim(t, dim, keepdim) → [values, indices]
Napi::Value Max(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").max());
}
Napi::Value Min(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").min());
}
Napi::Value MaxDim(const Napi::CallbackInfo& info) {
  auto r = tensorArg(info, 0, "tensor").max(intArg(info, 1, "dim"), boolArg(info, 2, "keepdim"));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
Napi::Value MinDim(const Napi::CallbackInfo& info) {
  auto r = tensorArg(info, 0, "tensor").min(intArg(info, 1, "dim"), boolArg(info, 2, "keepdim"));
  return wrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
// argmax(t, dim|null, keepdim)
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  at::Tensor& t = tensorArg(info, 0, "tensor");
  if (isMissing(info, 1)) {
    // the flat index of the largest element; keepdim: shaped [1, 1, …] (one per dimension)
    at::Tensor r = t.argmax();
    if (boolArg(info, 2, "keepdim")) r = r.reshape(std::vector<int64_t>(t.dim(), 1));
    return wrap(info.Env(), r);
  }
  return wrap(info.Env(), t.argmax(intArg(info, 1, "dim"), boolArg(info, 2, "keepdim")));
}
Napi::Value All(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").all());
}
Napi::Value Any(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), tensorArg(info, 0, "tensor").any());
}

// ---- matrix products ---------------------------------------------------------------------

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::matmul(tensorArg(info, 0, "tensor"), tensorArg(info, 1, "other")));
}
Napi::Value Mm(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::mm(tensorArg(info, 0, "tensor"), tensorArg(info, 1, "other")));
}
Napi::Value Bmm(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::bmm(tensorArg(info, 0, "tensor"), tensorArg(info, 1, "other")));
}
Napi::Value Outer(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::outer(tensorArg(info, 0, "tensor"), tensorArg(info, 1, "other")));
}
// addmm(bias, a, b, beta, alpha) = beta·bias + alpha·(a@b)
Napi::Value Addmm(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::addmm(tensorArg(info, 0, "bias"), tensorArg(info, 1, "mat1"),
                                    tensorArg(info, 2, "mat2"), scalarArg(info, 3, "beta"),
                                    scalarArg(info, 4, "alpha")));
}
// linear(x, weight, bias?) = x·weightᵀ + bias, weight stored (out, in) as in torch.nn.Linear
Napi::Value Linear(const Napi::CallbackInfo& info) {
  return wrap(info.Env(), at::linear(tensorArg(info, 0, "input"), tensorArg(info, 1, "weight"),
                                     optionalTensorArg(info, 2, "bias")));
}

}  // namespace

void initMathOps(Napi::Env env, Napi::Object exports) {
  define(env, exports, "add", Add);
  define(env, exports, "sub", Sub);
  define(env, exports, "mul", Mul);
  define(env, exports, "div", Div);
  define(env, exports, "pow", Pow);
  define(env, exports, "eq", Eq);
  define(env, exports, "ne", Ne);
  define(env, exports, "lt", Lt);
  define(env, exports, "le", Le);
  define(env, exports, "gt", Gt);
  define(env, exports, "ge", Ge);
  define(env, exports, "maximum", Maximum);
  define(env, exports, "minimum", Minimum);
  define(env, exports, "add_", AddInplace);
  define(env, exports, "sub_", SubInplace);
  define(env, exports, "mul_", MulInplace);
  define(env, exports, "div_", DivInplace);
  define(env, exports, "pow_", PowInplace);
  define(env, exports, "copy_", CopyInplace);
  define(env, exports, "zero_", ZeroInplace);
  define(env, exports, "fill_", FillInplace);
  define(env, exports, "sqrt_", SqrtInplace);
  define(env, exports, "addcmul_", AddcmulInplace);
  define(env, exports, "addcdiv_", AddcdivInplace);
  define(env, exports, "lerp_", LerpInplace);
  define(env, exports, "maskedFill_", MaskedFillInplace);
  define(env, exports, "neg", Neg);
  define(env, exports, "abs", Abs);
  define(env, exports, "sqrt", Sqrt);
  define(env, exports, "rsqrt", Rsqrt);
  define(env, exports, "exp", Exp);
  define(env, exports, "log", Log);
  define(env, exports, "tanh", Tanh);
  define(env, exports, "sigmoid", Sigmoid);
  define(env, exports, "relu", Relu);
  define(env, exports, "square", Square);
  define(env, exports, "reciprocal", Reciprocal);
  define(env, exports, "sign", Sign);
  define(env, exports, "isFinite", IsFinite);
  define(env, exports, "isNan", IsNan);
  define(env, exports, "logicalNot", LogicalNot);
  define(env, exports, "clamp", Clamp);
  define(env, exports, "where", Where);
  define(env, exports, "maskedFill", MaskedFill);
  define(env, exports, "triu", Triu);
  define(env, exports, "tril", Tril);
  define(env, exports, "sum", Sum);
  define(env, exports, "mean", Mean);
  define(env, exports, "norm", Norm);
  define(env, exports, "max", Max);
  define(env, exports, "min", Min);
  define(env, exports, "maxDim", MaxDim);
  define(env, exports, "minDim", MinDim);
  define(env, exports, "argmax", Argmax);
  define(env, exports, "all", All);
  define(env, exports, "any", Any);
  define(env, exports, "matmul", Matmul);
  define(env, exports, "mm", Mm);
  define(env, exports, "bmm", Bmm);
  define(env, exports, "outer", Outer);
  define(env, exports, "addmm", Addmm);
  define(env, exports, "linear", Linear);
}

}  // namespace slm
