// A language model's loss: mean cross-entropy computed in float32 (float64 for float64 logits)
// whatever the logits' dtype, with a backward that writes the gradient straight into that dtype.
//
// Why: a GPT's logits are (tokens × vocabulary), the largest activation of the step (124M at
// 16×1024 tokens: 824M elements, 3.3 GB in float32). For half-precision logits the usual
// `cross_entropy(logits.float(), t)` leaves autograd four passes over that size in backward:
// NLL's dense gradient (zero-filled, float32), the log-softmax backward reading it and the saved
// log-probabilities and writing a float32 gradient, then the cast back to the logits' dtype. Here
// backward is exp(log p) and one multiply that writes the result in the logits' dtype: 11.6 GB of
// memory traffic instead of 18.2 GB at 124M (forward is the same two passes either way: the cast,
// and log-softmax in float32).
// Memory: the usual loss holds three float32 copies at once at the start of backward (log p, the
// dense gradient, the float32 gradient: 9.9 GB at 124M, on top of every activation: the step's
// peak) and two in forward (the cast and log p); here only log p is full-size above 2^28 values,
// the rest is processed in row chunks (below, one more temporary of log p's size at most). For
// float32 logits the traffic is the same as the usual loss's, the memory is not. On the 2-core CPU,
// the loss alone (bench/cross-entropy.ts) took 0.64–0.75× the usual time at 512 × 50304 and 0.23×
// at 2048 × 50304 — fewer and smaller allocations, not traffic (there a float32 → bf16 mul_out goes
// through a float32 temporary) — yet whole training steps whose loss has that shape did not change
// beyond noise (micro model, 8×64 tokens, one thread: 132 vs 135 ms median). The arithmetic is
// PyTorch's: ∂loss/∂x = (softmax(x) − onehot(t)) · g / n in float32 for every row whose target is
// not ignored (n of them), 0 for the others, rounded once to the logits' dtype.
#include <ATen/core/Reduction.h>
#include <ATen/ops/_log_softmax.h>
#include <ATen/ops/div.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/nll_loss_forward.h>
#include <ATen/ops/where.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <string>

#include "kernel_choice.h"
#include "tensor.h"

#if STAGED_LM_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <climits>

#include "kernels/cross_entropy.h"
#include "kernels/errors.h"
#endif

namespace slm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Large logits are processed in row chunks of as many rows as fit in kChunkElements float32
// values (at least one row): each kernel still streams a quarter of a gigabyte (its launch is
// noise), but the float32 temporaries — the cast in forward, exp(log p) in backward — never exist
// at the logits' full size. Logits of at most kWholeElements values (a temporary of at most
// 1 GiB, no larger than log p itself) are processed whole: chunking them would add three kernels
// per chunk in backward and two in forward, which a launch-bound step (a small model, e.g. tiny's
// 16×256 rows: 206M values, 4 chunks) pays for in time.
constexpr int64_t kChunkElements = int64_t{1} << 26;
constexpr int64_t kWholeElements = int64_t{1} << 28;

// The chunk size for `elements` logits when the caller asked for `requested` (0: the default).
int64_t chunkElementsFor(int64_t elements, int64_t requested) {
  if (requested > 0) return requested;
  return elements <= kWholeElements ? std::max<int64_t>(elements, 1) : kChunkElements;
}

template <typename Fn>
void forEachRowChunk(int64_t rows, int64_t cols, int64_t chunkElements, Fn fn) {
  int64_t step = std::max<int64_t>(1, chunkElements / std::max<int64_t>(1, cols));
  for (int64_t r = 0; r < rows; r += step) fn(r, std::min(step, rows - r));
}

// The fused CUDA kernels (native/kernels/cross_entropy.cu): the whole loss in about two passes
// over the logits (forward reads them once, backward reads them once and writes the gradient),
// nothing full-size saved but the logits themselves. Used for CUDA logits of float32, float16 or
// bfloat16 when asked for, per call or process-wide (setLossKernel, STAGED_LM_LOSS_KERNEL=fused).
KernelChoice lossKernel("STAGED_LM_LOSS_KERNEL");

// Why the fused kernels cannot take these logits ("" when they can).
std::string fusedUnavailableReason(const at::Tensor& logits) {
#if STAGED_LM_CUDA_KERNELS
  at::ScalarType dt = logits.scalar_type();
  if (!logits.is_cuda()) return "the logits are on " + logits.device().str() + ", not CUDA";
  if (dt != at::kFloat && dt != at::kHalf && dt != at::kBFloat16)
    return std::string("the logits are ") + dtypeName(dt) + " (float32, float16, bfloat16 only)";
  if (logits.size(0) == 0 || logits.size(0) > INT_MAX) return "rows must be in [1, 2^31)";
  return "";
#else
  return "this build has no staged-lm CUDA kernels (a CUDA libtorch and nvcc at build time)";
#endif
}

#if STAGED_LM_CUDA_KERNELS
kernels::LogitsType logitsType(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kHalf: return kernels::LogitsType::Float16;
    case at::kBFloat16: return kernels::LogitsType::BFloat16;
    default: return kernels::LogitsType::Float32;
  }
}

void checkLaunch(cudaError_t error, const char* what) {
  TORCH_CHECK(error == cudaSuccess, "float32CrossEntropy: the fused ", what,
              " kernel failed: ", kernels::errorString(error));
}

// → {loss (float32 scalar), the saved tensors: logits (contiguous), targets, lse, count}
std::pair<at::Tensor, std::vector<at::Tensor>> fusedForward(const at::Tensor& logits,
                                                            const at::Tensor& targets,
                                                            int64_t ignoreIndex) {
  at::Tensor x = logits.contiguous(), t = targets.contiguous();
  const c10::cuda::CUDAGuard guard(x.device());
  int64_t rows = x.size(0), cols = x.size(1);
  // rows of lse, loss, counted (1/0); the loss is Σ loss / Σ counted, both in one reduction
  at::Tensor stats = at::empty({3, rows}, x.options().dtype(at::kFloat));
  checkLaunch(kernels::crossEntropyForward(x.data_ptr(), logitsType(x), t.data_ptr<int64_t>(), rows,
                                           cols, ignoreIndex, stats.data_ptr<float>(),
                                           c10::cuda::getCurrentCUDAStream().stream()),
              "forward");
  at::Tensor sums = stats.narrow(0, 1, 2).sum(1);
  at::Tensor count = sums.select(0, 1);
  return {sums.select(0, 0).div(count), {x, t, stats.select(0, 0), count}};
}

at::Tensor fusedBackward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& lse,
                         const at::Tensor& count, const at::Tensor& gradLoss, int64_t ignoreIndex) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor g = gradLoss.to(at::kFloat).contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options());
  checkLaunch(kernels::crossEntropyBackward(
                  x.data_ptr(), logitsType(x), t.data_ptr<int64_t>(), lse.data_ptr<float>(),
                  g.data_ptr<float>(), count.data_ptr<float>(), x.size(0), x.size(1), ignoreIndex,
                  out.data_ptr(), c10::cuda::getCurrentCUDAStream().stream()),
              "backward");
  return out;
}
#endif

struct Float32CrossEntropy : public torch::autograd::Function<Float32CrossEntropy> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits,
                            const at::Tensor& targets, int64_t ignoreIndex, int64_t chunkElements,
                            bool fused) {
    ctx->saved_data["ignoreIndex"] = ignoreIndex;
    ctx->saved_data["fused"] = fused;
#if STAGED_LM_CUDA_KERNELS
    if (fused) {
      auto [loss, saved] = fusedForward(logits, targets, ignoreIndex);
      ctx->save_for_backward(saved);
      return loss;
    }
#endif
    int64_t rows = logits.size(0), cols = logits.size(1);
    // CUDA's log-softmax can read float16 and write float32 in one pass, skipping the cast (not
    // bfloat16: its kernel refuses the conversion; not on the CPU)
    bool direct = logits.is_cuda() && logits.scalar_type() == at::kHalf;
    // float32, or float64 for float64 logits (never narrower than the logits)
    at::ScalarType work = logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    auto input = [&](const at::Tensor& x) { return direct ? x : x.to(work); };
    at::Tensor logp;
    if (rows * cols <= chunkElements) {
      logp = at::_log_softmax(input(logits), 1, /*half_to_float=*/direct);
    } else {
      logp = at::empty({rows, cols}, logits.options().dtype(work));
      forEachRowChunk(rows, cols, chunkElements, [&](int64_t r, int64_t n) {
        at::Tensor part = logp.narrow(0, r, n);
        at::_log_softmax_out(part, input(logits.narrow(0, r, n)), 1, direct);
      });
    }
    // total: how many targets count (float32, on the device: no host sync)
    auto [loss, total] =
        at::nll_loss_forward(logp, targets, c10::nullopt, at::Reduction::Mean, ignoreIndex);
    ctx->save_for_backward({logp, targets, total});
    ctx->saved_data["chunkElements"] = chunkElements;
    ctx->saved_data["dtype"] = static_cast<int64_t>(logits.scalar_type());
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list gradOutputs) {
    variable_list saved = ctx->get_saved_variables();
    int64_t ignoreIndex = ctx->saved_data["ignoreIndex"].toInt();
    // create_graph: this backward is not itself differentiable (mul_out records no history)
    TORCH_CHECK(!c10::GradMode::is_enabled(),
                "float32CrossEntropy has no second derivative (backward with create_graph)");
    variable_list none{at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
#if STAGED_LM_CUDA_KERNELS
    if (ctx->saved_data["fused"].toBool()) {
      none[0] = fusedBackward(saved[0], saved[1], saved[2], saved[3], gradOutputs[0], ignoreIndex);
      return none;
    }
#endif
    const at::Tensor &logp = saved[0], &targets = saved[1], &total = saved[2];
    int64_t chunkElements = ctx->saved_data["chunkElements"].toInt();
    auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    at::Tensor counted = targets.ne(ignoreIndex);
    // each row's factor g/n, 0 for ignored rows (and no 0·∞ when every target is ignored)
    at::Tensor rowScale =
        at::where(counted, at::div(gradOutputs[0].to(logp.scalar_type()), total), 0.0).unsqueeze(1);
    // − onehot(t): ignored rows point at column 0, their factor is 0
    at::Tensor column = at::where(counted, targets, 0).unsqueeze(1);
    at::Tensor minusOne = at::full({targets.size(0), 1}, -1.0, logp.options());
    at::Tensor out = at::empty(logp.sizes(), logp.options().dtype(dtype));
    forEachRowChunk(logp.size(0), logp.size(1), chunkElements, [&](int64_t r, int64_t n) {
      at::Tensor grad = logp.narrow(0, r, n).exp();  // softmax, float32
      grad.scatter_add_(1, column.narrow(0, r, n), minusOne.narrow(0, r, n));
      at::Tensor part = out.narrow(0, r, n);
      at::mul_out(part, grad, rowScale.narrow(0, r, n));  // one rounding, into the logits' dtype
    });
    none[0] = out;
    return none;
  }
};

// float32CrossEntropy(logits (N, C) of any floating dtype, targets (N) int64, ignoreIndex,
// chunkElements (0: the default, see chunkElementsFor), kernel ("default" | "fused" | "aten"))
// → the mean over counted targets as a float32 scalar (float64 for float64 logits); its gradient
// has the logits' dtype. "fused" refuses logits the fused kernels cannot take; "default" uses them
// where the process-wide setting asks for them and they can.
Napi::Value Float32CrossEntropyOp(const Napi::CallbackInfo& info) {
  at::Tensor& logits = tensorArg(info, 0, "logits");
  at::Tensor& targets = tensorArg(info, 1, "targets");
  int64_t ignoreIndex = intArg(info, 2, "ignoreIndex");
  int64_t chunkElements = intArg(info, 3, "chunkElements");
  if (chunkElements < 0) {
    throw Napi::RangeError::New(info.Env(), "chunkElements must be 0 (the default) or positive");
  }
  at::ScalarType dt = logits.scalar_type();
  bool floating = dt == at::kHalf || dt == at::kBFloat16 || dt == at::kFloat || dt == at::kDouble;
  if (logits.dim() != 2 || !floating || logits.size(1) == 0) {
    throw Napi::TypeError::New(
        info.Env(),
        "expected float16, bfloat16, float32 or float64 logits of shape (N, C) with C ≥ 1, got " +
            std::string(dtypeName(dt)) + " " + shapeString(logits.sizes()));
  }
  if (targets.dim() != 1 || targets.size(0) != logits.size(0) ||
      targets.scalar_type() != at::kLong) {
    throw Napi::TypeError::New(info.Env(), "expected int64 targets of shape (" +
                                               std::to_string(logits.size(0)) + "), got " +
                                               std::string(dtypeName(targets.scalar_type())) + " " +
                                               shapeString(targets.sizes()));
  }
  if (targets.device() != logits.device()) {
    throw Napi::Error::New(info.Env(), "the targets are on " + targets.device().str() +
                                           ", the logits on " + logits.device().str());
  }
  // the reason is looked for only when the fused kernel is wanted (every step calls this)
  KernelChoice::Wanted wanted = lossKernel.wanted(info, 4);
  std::string unavailable = wanted.fused ? fusedUnavailableReason(logits) : "";
  if (wanted.named && !unavailable.empty()) {
    throw Napi::Error::New(info.Env(),
                           "float32CrossEntropy: the fused kernel cannot be used: " + unavailable);
  }
  bool fused = wanted.fused && unavailable.empty();
  return wrap(info.Env(),
              Float32CrossEntropy::apply(logits, targets, ignoreIndex,
                                         chunkElementsFor(logits.numel(), chunkElements), fused));
}

}  // namespace

void initLoss(Napi::Env env, Napi::Object exports) {
  define(env, exports, "float32CrossEntropy", Float32CrossEntropyOp);
  // setLossKernel("fused" | "aten"): what float32CrossEntropy's "default" uses where it can;
  // lossKernelInfo() → {default, available}
  define(env, exports, "setLossKernel",
         [](const Napi::CallbackInfo& i) { return lossKernel.set(i); });
  define(env, exports, "lossKernelInfo",
         [](const Napi::CallbackInfo& i) { return lossKernel.info(i); });
}

}  // namespace slm
