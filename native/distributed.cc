// Data parallelism over libtorch's c10d: one process group per process (Gloo on CPU, NCCL on
// CUDA) rendezvousing through a TCPStore the way torchrun does, the collectives the trainer needs
// (all-reduce, broadcast, barrier), and a gradient reducer that all-reduces gradients in buckets as
// soon as backward has produced them (post-hooks on the parameters' gradient accumulators, like
// PyTorch's DDP), so communication overlaps the rest of backward.
//
// Compiled with STAGED_LM_GLOO / STAGED_LM_NCCL when the libtorch ships those backends' headers
// (scripts/libtorch.js decides); without either, distBackends() says so and distInit refuses.
#include <ATen/ops/cat.h>
#include <ATen/ops/zeros_like.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "compat.h"
#include "tensor.h"

#ifndef STAGED_LM_GLOO
#define STAGED_LM_GLOO 0
#endif
#ifndef STAGED_LM_NCCL
#define STAGED_LM_NCCL 0
#endif
#if STAGED_LM_GLOO || STAGED_LM_NCCL
#define STAGED_LM_DISTRIBUTED 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#if STAGED_LM_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif
#else
#define STAGED_LM_DISTRIBUTED 0
#endif
#if STAGED_LM_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if STAGED_LM_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace slm {
namespace {

#if STAGED_LM_DISTRIBUTED
// The common base of the backends: ProcessGroup in 1.13, Backend since 2.0.
#if STAGED_LM_TORCH_AT_LEAST(2, 0)
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

struct Group {
  std::string backend;
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> pg;
};
std::shared_ptr<Group> g_group;  // the process group of this process, once distInit ran

std::shared_ptr<Group> requireGroup(const Napi::Env& env, const char* op) {
  if (!g_group) {
    throw Napi::Error::New(env, std::string(op) +
                                    ": no process group: call initDistributed() first "
                                    "(or launch with staged-lm launch / torchrun)");
  }
  return g_group;
}

// Waits for a collective; a failure (a rank died, the timeout passed) becomes an error naming the
// collective, this rank and the cause.
void waitFor(const c10::intrusive_ptr<c10d::Work>& work, const Group& g, const std::string& what) {
  try {
    work->wait(g.timeout);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto* ce = dynamic_cast<const c10::Error*>(&e)) msg = ce->what_without_backtrace();
    throw std::runtime_error("distributed " + what + " failed on rank " + std::to_string(g.rank) +
                             " of " + std::to_string(g.size) + " (" + g.backend + "): " + msg +
                             " (a rank that died or stopped answering fails it after " +
                             std::to_string(g.timeout.count() / 1000) + " s)");
  }
}

c10d::ReduceOp reduceOpArg(const Napi::CallbackInfo& info, size_t i) {
  std::string op = stringArg(info, i, "op");
  if (op == "sum" || op == "mean") return c10d::ReduceOp::SUM;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "max") return c10d::ReduceOp::MAX;
  throw Napi::TypeError::New(info.Env(),
                             "allReduce: unknown op '" + op + "' (expected sum, mean, min, max)");
}

// The tensors as one flat contiguous buffer (the collectives take one tensor per device), and
// the copy back into them.
at::Tensor flatten(const std::vector<at::Tensor>& ts) {
  if (ts.size() == 1 && ts[0].is_contiguous()) return ts[0].view({-1});
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const auto& t : ts) flat.push_back(t.reshape({-1}));
  return at::cat(flat);
}
void unflatten(const at::Tensor& flat, std::vector<at::Tensor>& ts) {
  if (ts.size() == 1 && ts[0].is_contiguous() && flat.data_ptr() == ts[0].data_ptr()) return;
  int64_t off = 0;
  for (auto& t : ts) {
    t.copy_(flat.narrow(0, off, t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

void checkSameKind(const Napi::Env& env, const std::vector<at::Tensor>& ts, const char* op) {
  for (const auto& t : ts) {
    if (t.scalar_type() != ts[0].scalar_type() || t.device() != ts[0].device()) {
      throw Napi::TypeError::New(env,
                                 std::string(op) + ": all tensors must share one dtype and device");
    }
  }
}
#endif

// distBackends() → {gloo, nccl}: what this build can use
Napi::Value DistBackends(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("gloo", Napi::Boolean::New(info.Env(), STAGED_LM_GLOO ? true : false));
  o.Set("nccl", Napi::Boolean::New(info.Env(), STAGED_LM_NCCL ? true : false));
  return o;
}

#if STAGED_LM_DISTRIBUTED
// distInit(backend, rank, worldSize, masterAddr, masterPort, timeoutMs, agentStorePrefix?)
// Rank 0 serves the TCPStore; every rank connects to it, then the backend rendezvouses through it.
// Under torchrun's agent (TORCHELASTIC_USE_AGENT_STORE=True) the agent already serves a store on
// MASTER_PORT: every rank is a client and keys live under the prefix of this restart attempt, as
// torch.distributed's own rendezvous does (a second server there would fail to bind).
Napi::Value DistInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_group) throw Napi::Error::New(env, "initDistributed: a process group already exists");
  std::string backend = stringArg(info, 0, "backend");
  int64_t rank64 = intArg(info, 1, "rank");
  int64_t size64 = intArg(info, 2, "worldSize");
  std::string addr = stringArg(info, 3, "masterAddr");
  int64_t port = intArg(info, 4, "masterPort");
  std::chrono::milliseconds timeout(intArg(info, 5, "timeoutMs"));
  bool agentStore = info.Length() > 6 && !info[6].IsUndefined();
  std::string storePrefix = agentStore ? stringArg(info, 6, "agentStorePrefix") : "";
  // checked before narrowing to c10d's int (rank 2^32 would wrap to 0)
  if (size64 < 1 || size64 > std::numeric_limits<int>::max() || rank64 < 0 || rank64 >= size64) {
    throw Napi::RangeError::New(env, "initDistributed: rank " + std::to_string(rank64) +
                                         " is outside a world of size " + std::to_string(size64));
  }
  int rank = static_cast<int>(rank64), size = static_cast<int>(size64);
  if (port < 1 || port > 65535)
    throw Napi::RangeError::New(env, "initDistributed: bad master port");
  auto g = std::make_shared<Group>();
  g->backend = backend;
  g->rank = rank;
  g->size = size;
  g->timeout = timeout;
  // A rank that cannot reach the others (not started, another port) fails here after `timeout`.
  auto rendezvousError = [&](const std::exception& e) {
    std::string msg = e.what();
    if (auto* ce = dynamic_cast<const c10::Error*>(&e)) msg = ce->what_without_backtrace();
    return Napi::Error::New(
        env, "initDistributed: rank " + std::to_string(rank) + " of " + std::to_string(size) +
                 " could not reach the other ranks through " + addr + ":" + std::to_string(port) +
                 " within " + std::to_string(timeout.count() / 1000) +
                 " s (are all WORLD_SIZE ranks started, with the same MASTER_ADDR and "
                 "MASTER_PORT?): " +
                 msg);
  };
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = rank == 0 && !agentStore;
    so.numWorkers = size;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(addr, so);
    if (agentStore) {
      g->store = c10::make_intrusive<c10d::PrefixStore>(storePrefix, tcp);
    } else {
      g->store = tcp;
    }
    if (backend == "gloo") {
#if STAGED_LM_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = getenv("GLOO_SOCKET_IFNAME");
      bool loopback = addr == "localhost" || addr.rfind("127.", 0) == 0;
      if (ifname != nullptr && *ifname != '\0') {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (loopback) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2;
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, size, opts);
#else
      throw Napi::Error::New(env, "initDistributed: this build has no Gloo backend");
#endif
    } else if (backend == "nccl") {
#if STAGED_LM_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, rank, size, opts);
#else
      throw Napi::Error::New(env, "initDistributed: this build has no NCCL backend");
#endif
    } else {
      throw Napi::TypeError::New(
          env, "initDistributed: unknown backend '" + backend + "' (expected gloo or nccl)");
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw rendezvousError(e);
  }
  g_group = g;
  return env.Undefined();
}

Napi::Value DistDestroy(const Napi::CallbackInfo& info) {
#if STAGED_LM_TORCH_AT_LEAST(2, 7)
  // Backend::shutdown() (2.7+) lets NCCL finish and free its communicators; ProcessGroupNCCL's
  // destructor warns "process group has NOT been destroyed" without it (a no-op for Gloo)
  if (g_group && g_group->pg) g_group->pg->shutdown();
#endif
  g_group.reset();
  return info.Env().Undefined();
}

// One in-place collective over a list of tensors (one dtype and device): flattened into one buffer,
// `start` issues the collective on it, `finish` (optional) adjusts the result, which is then copied
// back into the tensors.
template <typename Start>
void inPlaceCollective(const Napi::CallbackInfo& info, const char* what, Start start,
                       const std::function<void(at::Tensor&, const Group&)>& finish = nullptr) {
  auto g = requireGroup(info.Env(), what);
  std::vector<at::Tensor> ts = tensorListArg(info, 0, "tensors");
  if (ts.empty()) return;
  checkSameKind(info.Env(), ts, what);
  c10::NoGradGuard noGrad;
  std::vector<at::Tensor> buf{flatten(ts)};
  waitFor(start(*g, buf), *g, what);
  if (finish) finish(buf[0], *g);
  unflatten(buf[0], ts);
}

// distAllReduce(tensors, op): in place; 'mean' divides the sum by the world size
Napi::Value DistAllReduce(const Napi::CallbackInfo& info) {
  c10d::AllreduceOptions opts;
  opts.reduceOp = reduceOpArg(info, 1);
  bool mean = stringArg(info, 1, "op") == "mean";
  // (an integer mean would fail in the division after the collective, the sums already taken)
  if (mean)
    for (const at::Tensor& t : tensorListArg(info, 0, "tensors"))
      if (!at::isFloatingType(t.scalar_type()))
        throw Napi::TypeError::New(info.Env(), std::string("allReduce: 'mean' needs floating-point "
                                                           "tensors, got ") +
                                                   dtypeName(t.scalar_type()));
  inPlaceCollective(
      info, "allReduce",
      [&](const Group& g, std::vector<at::Tensor>& buf) {
        opts.timeout = g.timeout;
        return g.pg->allreduce(buf, opts);
      },
      [&](at::Tensor& sum, const Group& g) {
        if (mean) sum.div_(g.size);
      });
  return info.Env().Undefined();
}

// distBroadcast(tensors, root): every rank ends with root's values, in place
Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  c10d::BroadcastOptions opts;
  opts.rootRank = intArg(info, 1, "root");
  inPlaceCollective(info, "broadcast", [&](const Group& g, std::vector<at::Tensor>& buf) {
    opts.timeout = g.timeout;
    return g.pg->broadcast(buf, opts);
  });
  return info.Env().Undefined();
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  auto g = requireGroup(info.Env(), "barrier");
  c10d::BarrierOptions opts;
  opts.timeout = g->timeout;
  waitFor(g->pg->barrier(opts), *g, "barrier");
  return info.Env().Undefined();
}

// ---- the gradient reducer ---------------------------------------------------------------------

// What the autograd hooks share with the reducer: the hooks hold it weakly, so a hook left on a
// gradient accumulator after its reducer is gone does nothing.
struct ReducerState {
  struct Bucket {
    std::vector<size_t> params;  // indices into `params`, in the order of the flat buffer
    size_t pending = 0;          // gradients of this backward still to come
    std::vector<at::Tensor> flat;
    c10::intrusive_ptr<c10d::Work> work;
    bool launched = false;
  };
  std::mutex mu;
  std::shared_ptr<Group> group;
  std::vector<at::Tensor> params;
  std::vector<size_t> bucketOf;
  std::vector<Bucket> buckets;
  bool armed = false;
  size_t nextLaunch = 0;       // buckets start strictly in order (see launchReady)
  size_t launchedByHooks = 0;  // buckets started during the last armed backward (overlap)
  std::string error;           // a failure inside a hook, reported by finish()

  // Flattens the bucket's gradients (zeros for a parameter that got none) and starts the
  // all-reduce. Called with `mu` held.
  void launch(Bucket& b) {
    std::vector<at::Tensor> grads;
    grads.reserve(b.params.size());
    for (size_t i : b.params) {
      at::Tensor& p = params[i];
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      grads.push_back(p.grad());
    }
    b.flat = {flatten(grads)};
    c10d::AllreduceOptions opts;
    opts.timeout = group->timeout;
    b.work = group->pg->allreduce(b.flat, opts);
    b.launched = true;
  }

  // Starts the next buckets in order while their gradients are all in; returns how many. Every
  // rank must issue its collectives in the same order (Gloo and NCCL pair them by order): a
  // bucket that completes early on one rank (a parameter without a gradient there) waits for the
  // ones before it, as DDP's do. Called with `mu` held.
  size_t launchReady() {
    size_t started = 0;
    while (nextLaunch < buckets.size() && buckets[nextLaunch].pending == 0) {
      launch(buckets[nextLaunch++]);
      started++;
    }
    return started;
  }
};

// Runs after AccumulateGrad has written a parameter's .grad in this backward.
class GradReadyHook : public torch::autograd::FunctionPostHook {
 public:
  GradReadyHook(std::weak_ptr<ReducerState> state, size_t index)
      : state_(std::move(state)), index_(index) {}
  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    auto s = state_.lock();
    if (!s) return outputs;
    std::lock_guard<std::mutex> lock(s->mu);
    if (!s->armed) return outputs;
    auto& b = s->buckets[s->bucketOf[index_]];
    if (b.launched || b.pending == 0) return outputs;
    if (--b.pending == 0) {
      try {
        c10::NoGradGuard noGrad;
        s->launchedByHooks += s->launchReady();
      } catch (const std::exception& e) {
        s->error = e.what();
      }
    }
    return outputs;
  }

 private:
  std::weak_ptr<ReducerState> state_;
  size_t index_;
};

class GradientReducer : public Napi::ObjectWrap<GradientReducer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "GradientReducer",
        {InstanceMethod("prepare", &GradientReducer::Prepare),
         InstanceMethod("finish", &GradientReducer::Finish),
         InstanceMethod("buckets", &GradientReducer::Buckets),
         InstanceMethod("launchedDuringBackward", &GradientReducer::LaunchedDuringBackward),
         InstanceMethod("dispose", &GradientReducer::Dispose)});
  }

  // new GradientReducer(params, bucketBytes): buckets in reverse parameter order (backward
  // produces the last layers' gradients first), at most bucketBytes each, one dtype/device each.
  explicit GradientReducer(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<GradientReducer>(info) {
    Napi::Env env = info.Env();
    state_ = std::make_shared<ReducerState>();
    state_->group = requireGroup(env, "GradientReducer");
    state_->params = tensorListArg(info, 0, "params");
    int64_t cap = intArg(info, 1, "bucketBytes");
    auto& s = *state_;
    s.bucketOf.assign(s.params.size(), 0);
    int64_t bytes = 0;
    for (size_t k = s.params.size(); k-- > 0;) {
      const at::Tensor& p = s.params[k];
      if (!p.requires_grad() || !p.is_leaf()) {
        throw Napi::TypeError::New(env, "GradientReducer: parameter " + std::to_string(k) +
                                            " is not a leaf that requires grad");
      }
      int64_t nb = p.numel() * static_cast<int64_t>(p.element_size());
      bool fresh = s.buckets.empty() || bytes + nb > cap ||
                   s.params[s.buckets.back().params.front()].scalar_type() != p.scalar_type() ||
                   s.params[s.buckets.back().params.front()].device() != p.device();
      if (fresh) {
        s.buckets.emplace_back();
        bytes = 0;
      }
      s.buckets.back().params.push_back(k);
      s.bucketOf[k] = s.buckets.size() - 1;
      bytes += nb;
    }
    std::weak_ptr<ReducerState> weak = state_;
    for (size_t k = 0; k < s.params.size(); k++) {
      auto acc = torch::autograd::impl::grad_accumulator(s.params[k]);
      auto key = acc->add_post_hook(std::make_unique<GradReadyHook>(weak, k));
      // the accumulator lives only while a graph or someone holds it: keep it, with our hook
      hooks_.push_back({acc, key});
    }
  }

  ~GradientReducer() override { detach(); }

 private:
  // prepare(): the next backward all-reduces (the last micro-batch of a step)
  Napi::Value Prepare(const Napi::CallbackInfo& info) {
    requireAttached(info.Env());
    std::lock_guard<std::mutex> lock(state_->mu);
    for (auto& b : state_->buckets) {
      b.pending = b.params.size();
      b.launched = false;
      b.work.reset();
      b.flat.clear();
    }
    state_->error.clear();
    state_->nextLaunch = 0;
    state_->launchedByHooks = 0;
    state_->armed = true;
    return info.Env().Undefined();
  }

  // finish(): starts the buckets whose gradients did not all arrive, waits for every bucket, and
  // writes the mean gradient back into each parameter's .grad
  Napi::Value Finish(const Napi::CallbackInfo& info) {
    requireAttached(info.Env());
    auto& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.armed)
      throw Napi::Error::New(info.Env(), "GradientReducer.finish: prepare() was not called");
    s.armed = false;
    if (!s.error.empty()) {
      throw Napi::Error::New(info.Env(),
                             "distributed gradient all-reduce failed to start: " + s.error);
    }
    c10::NoGradGuard noGrad;
    for (auto& b : s.buckets) b.pending = 0;  // what did not arrive is zeros (launch fills them in)
    s.launchReady();
    for (auto& b : s.buckets) {
      waitFor(b.work, *s.group, "gradient all-reduce");
      b.flat[0].div_(s.group->size);
      std::vector<at::Tensor> grads;
      for (size_t i : b.params) grads.push_back(s.params[i].mutable_grad());
      unflatten(b.flat[0], grads);
      b.work.reset();
      b.flat.clear();
    }
    return info.Env().Undefined();
  }

  // buckets() → [[param index, …], …] in launch order
  Napi::Value Buckets(const Napi::CallbackInfo& info) {
    requireAttached(info.Env());
    Napi::Array out = Napi::Array::New(info.Env(), state_->buckets.size());
    for (size_t b = 0; b < state_->buckets.size(); b++) {
      const auto& ps = state_->buckets[b].params;
      Napi::Array a = Napi::Array::New(info.Env(), ps.size());
      for (size_t j = 0; j < ps.size(); j++) a.Set(j, Napi::Number::New(info.Env(), ps[j]));
      out.Set(b, a);
    }
    return out;
  }

  // launchedDuringBackward(): buckets whose all-reduce the hooks started before finish()
  Napi::Value LaunchedDuringBackward(const Napi::CallbackInfo& info) {
    requireAttached(info.Env());
    std::lock_guard<std::mutex> lock(state_->mu);
    return Napi::Number::New(info.Env(), static_cast<double>(state_->launchedByHooks));
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    detach();
    return info.Env().Undefined();
  }

  void requireAttached(const Napi::Env& env) {
    if (!state_) throw Napi::Error::New(env, "GradientReducer: disposed");
  }

  void detach() {
    for (auto& h : hooks_) h.first->del_post_hook(h.second);
    hooks_.clear();
    state_.reset();
  }

  std::shared_ptr<ReducerState> state_;
  // the accumulator's pointer type: std::shared_ptr<Node> up to 2.11, c10::intrusive_ptr<Node>
  // later
  using NodePtr =
      decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()));
  std::vector<std::pair<NodePtr, uintptr_t>> hooks_;
};
#endif

}  // namespace

void initDistributed(Napi::Env env, Napi::Object exports) {
  define(env, exports, "distBackends", DistBackends);
#if STAGED_LM_DISTRIBUTED
  define(env, exports, "distInit", DistInit);
  define(env, exports, "distDestroy", DistDestroy);
  define(env, exports, "distAllReduce", DistAllReduce);
  define(env, exports, "distBroadcast", DistBroadcast);
  define(env, exports, "distBarrier", DistBarrier);
  exports.Set("GradientReducer", GradientReducer::Define(env));
#endif
}

}  // namespace slm
