#!/usr/bin/env python3
# PyTorch's float16 recipe, the peer of `staged-lm bench --precision fp16`: the model and shapes of
# ../shared/bench/torch_reference.py (imported from the path given first, nothing of it changed),
# trained with float16 autocast and torch.amp.GradScaler as PyTorch documents it — scale(loss)
# .backward(), unscale_, clip_grad_norm_, step (fused AdamW), update. Prints one JSON line in the
# reference's format (impl "pytorch-eager-fp16") with the updates the scaler skipped.
# On a machine without CUDA it runs the same loop in float32 with a CPU GradScaler (torch >= 2.3):
# a check of the script, not a measurement.
#   python3 bench/torch-fp16-reference.py ../shared/bench/torch_reference.py --model 124M --steps 10
import argparse
import importlib.util
import json
import sys
import time

import torch

if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
    sys.exit("usage: torch-fp16-reference.py PATH/torch_reference.py [--model 124M] [--batch 16] [--seq 1024] [--steps 30] [--warmup 5]")
spec = importlib.util.spec_from_file_location("torch_reference", sys.argv[1])
R = importlib.util.module_from_spec(spec)
spec.loader.exec_module(R)

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="124M", choices=R.MODELS)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--seq", type=int, default=1024)
ap.add_argument("--vocab", type=int, default=50304)
ap.add_argument("--steps", type=int, default=30)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense 16-bit peak of the card")
a = ap.parse_args(sys.argv[2:])

torch.manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = True  # (as the reference sets it)
cuda = torch.cuda.is_available()
dev = "cuda" if cuda else "cpu"
L, h, d = R.MODELS[a.model]
model = R.GPT(L, h, d, a.vocab, a.seq).to(dev)
n_params = sum(p.numel() for p in model.parameters())
opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1, **({"fused": True} if cuda else {}))
scaler = torch.amp.GradScaler(dev)
x = torch.randint(0, a.vocab, (a.batch, a.seq), device=dev)
y = torch.randint(0, a.vocab, (a.batch, a.seq), device=dev)


def step():
    with torch.autocast(device_type=dev, dtype=torch.float16, enabled=cuda):
        loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)
    return loss


for _ in range(a.warmup):
    step()
if cuda:
    torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(a.steps):
    loss = step()
loss.item()
if cuda:
    torch.cuda.synchronize()
dt = (time.perf_counter() - t0) / a.steps
tok = a.batch * a.seq / dt
flops_per_tok = 6 * n_params + 12 * L * d * a.seq  # as the reference counts them
print(json.dumps({
    "impl": "pytorch-eager-fp16" if cuda else "pytorch-eager-fp32-scaled",
    "torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu",
    "model": a.model, "params": n_params, "batch": a.batch, "seq": a.seq,
    "ms_per_step": round(dt * 1e3, 3), "tokens_per_s": round(tok),
    "mfu": round(tok * flops_per_tok / (a.peak_tflops * 1e12), 4) if cuda else None,
    "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    "final_loss": round(loss.item(), 4), "loss_scale": scaler.get_scale(),
}), flush=True)
