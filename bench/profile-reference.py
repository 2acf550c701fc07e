#!/usr/bin/env python3
"""Where a training step's GPU time goes, by kernel kind: PyTorch's profiler over the reference's
eager step (../shared/bench/torch_reference.py), whose kernels are ours too (same libtorch ops:
cuBLAS GEMMs, flash attention, layer norm, fused AdamW...), so the split says which fusions could
pay and how much. One JSON line: ms per step by kind (GEMM, attention, normalisation, activation,
elementwise, loss, embedding, optimizer, reduction, copy/cast, other), the kernel count per step,
and the top kernels. --trace FILE also writes the profile as a Chrome trace, which
bench/trace-summary.ts splits with the same kinds as ours (`staged-lm bench --profile`).

  python3 bench/profile-reference.py [REFERENCE] [--model 124M] [--batch 16] [--seq 1024] [--steps 3] [--trace FILE]

On a CPU it profiles CPU ops instead (a smoke test of this script; the split means little there).
"""
import argparse, collections, importlib.util, json, re, sys

import torch
from torch.profiler import ProfilerActivity, profile

# first match wins: kernel names (CUDA) or op names (CPU), lower-cased (the table of
# lib/train/trace-summary.ts, which splits our traces: keep the two alike)
KINDS = [
    ("attention", r"flash|fmha|attention|sdpa|efficient_attention"),
    ("gemm", r"gemm|cutlass|sm\d+_xmma|ampere_|hopper_|nvjet|cublas|addmm|\bmm\b|::mm|matmul"),
    ("optimizer", r"adam|multi_tensor_apply"),
    ("loss", r"softmax|nll_loss|cross_?entropy|log_softmax"),
    ("normalization", r"layer_norm|layernorm"),
    ("activation", r"gelu"),
    ("embedding", r"embedding|indexselect|index_select|radix|sort|segment|scan|unique"),
    ("reduction", r"reduce|norm_kernel|sum|norm"),
    ("copy/cast", r"copy|memset|cast|to_copy|fill|zero"),
    ("elementwise", r"elementwise|vectorized|unrolled|add|mul|where"),
]


def kind(name):
    n = name.lower()
    for k, pat in KINDS:
        if re.search(pat, n):
            return k
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference", nargs="?", default="../shared/bench/torch_reference.py")
    ap.add_argument("--model", default="124M")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--trace", help="also write the profile to this file as a Chrome trace")
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("torch_reference", a.reference)
    R = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(R)
    if a.model not in R.MODELS:
        sys.exit(f"unknown model {a.model}: the reference has {', '.join(R.MODELS)}")
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    torch.manual_seed(0)
    L, h, d = R.MODELS[a.model]
    model = R.GPT(L, h, d, a.vocab, a.seq).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            **({"fused": True} if cuda else {}))
    x = torch.randint(0, a.vocab, (a.batch, a.seq), device=dev)
    y = torch.randint(0, a.vocab, (a.batch, a.seq), device=dev)

    def step():  # the reference's step
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=cuda):
            loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    # with --trace the CPU side too, as ours records it (its ops are in the trace, not the split)
    activities = [ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    if cuda and a.trace:
        activities.append(ProfilerActivity.CPU)
    with profile(activities=activities) as prof:
        for _ in range(a.steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    if a.trace:
        prof.export_chrome_trace(a.trace)
    by_kind = collections.Counter()
    by_name = collections.Counter()
    count = 0
    for e in prof.events():
        if cuda:
            if e.device_type != torch.autograd.DeviceType.CUDA:
                continue
            us = e.time_range.elapsed_us()  # a kernel, memcpy or memset on the device
        else:
            if e.cpu_parent is not None:  # top-level CPU ops only (children are inside them)
                continue
            us = e.cpu_time_total
        count += 1
        by_kind[kind(e.name)] += us
        by_name[e.name] += us
    if count == 0:
        sys.exit("the profiler recorded no device activity (is CUPTI available to this torch?)")
    per_step = lambda us: round(us / a.steps / 1e3, 3)
    total = sum(by_kind.values())
    print(json.dumps({
        "profile": "pytorch-eager", "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__, "model": a.model, "batch": a.batch, "seq": a.seq,
        "measure": "GPU kernel time" if cuda else "CPU time of top-level ops",
        "ms_per_step": per_step(total), "kernels_per_step": round(count / a.steps, 1),
        "by_kind_ms": {k: per_step(v) for k, v in by_kind.most_common()},
        "top": [[n[:90], per_step(v)] for n, v in by_name.most_common(a.top)],
    }), flush=True)


if __name__ == "__main__":
    main()
