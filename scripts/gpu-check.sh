#!/usr/bin/env bash
# The GPU check in one go, for a device session on a host without Node (see ../shared/gpu/README.md):
# build against the host's PyTorch libtorch, doctor, the CUDA test files (tensors, graphs, no host
# sync in the step, the fused loss and add + LayerNorm kernels; or the whole suite with FULL=1),
# throughput against PyTorch eager (eager and CUDA-graph steps, with libtorch's kernels and with our
# fused ones: bench/gpu-vs-torch.sh) and the README's table from it, the loss alone
# (bench/cross-entropy.ts), the residual add + LayerNorm alone (bench/add-layer-norm.ts), the speed of training right
# after a growth and the growth time of a 124M state, the eager step's GPU time by kind of work,
# PyTorch's and ours side by side (bench/profile-reference.py, bench --profile, bench/trace-summary.ts), the trainer's
# eager and graph steps, a 1-rank NCCL data-parallel run, the 350M reference with scaled init,
# sampling with the KV cache, activation checkpointing's memory and time, a bf16 matmul, and
# fp16 with loss scaling beside bf16 at 124M, with PyTorch's fp16 recipe (bench/torch-fp16-reference.py).
# Logs go to $OUT (or /tmp/staged-lm-gpu), at most 8 files; a short summary goes to stdout.
# The whole check keeps within BUDGET_S seconds (default 500, for a device command limited to
# 540–600 s): each part runs under its own limit, cut to what is left, and parts are skipped once
# the budget is spent — most important first, so that a part that hangs (a collective, a capture)
# costs only its own limit and says so.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/staged-lm-gpu}
mkdir -p "$out"
budget=${BUDGET_S:-500}
deadline=$(($(date +%s) + budget))
# part NAME LIMIT CMD...: CMD under a limit of LIMIT seconds, or what is left of the budget
part() {
  local name=$1 limit=$2
  shift 2
  local left=$((deadline - $(date +%s)))
  if [ "$left" -lt 15 ]; then
    echo "$name: skipped, the check's $budget s are spent" >&2
    return 124
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  timeout -k 10 "$limit" "$@"
  local status=$?
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then echo "$name: stopped after $limit s" >&2; fi
  return "$status"
}
# shellcheck disable=SC1091
source .gpu/env.sh
# node_modules comes from the packed kit: mark it current so set-up does not try `npm ci` offline
touch node_modules/.package-lock.json
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  start=$(date +%s)
  if ! part build 240 bash scripts/setup.sh all >"$out/setup.log" 2>&1; then
    tail -60 "$out/setup.log"
    exit 1
  fi
  echo "build: $(($(date +%s) - start)) s"
  grep -E "staged-lm: (CUDA|distributed|cuda_graph|dist|native/kernels)" "$out/setup.log"
  part doctor 30 node dist/lib/cli/main.js doctor
  # the CUDA tests first: the fused kernels and the graphs are checked before they are timed
  if [ "${FULL:-0}" = 1 ]; then
    part jest 400 npx jest --ci >"$out/jest.log" 2>&1
  else
    # (the kernels' CPU emulation is left to CI: it is the same on every machine)
    part jest 150 npx jest --ci -t '^(?!.*emulated on the CPU)' test/cuda.test.ts test/cuda-graph.test.ts test/host-sync.test.ts \
      test/nn/fused-cross-entropy.test.ts test/nn/float32-cross-entropy.test.ts test/nn/add-layer-norm.test.ts test/tf32.test.ts \
      test/optim/grad-scaler.test.ts >"$out/jest.log" 2>&1
  fi
  echo "jest exit $?"
  # failures and totals here; every test's line is in $out/jest.log
  grep -E "✕|Tests:|Time:" "$out/jest.log" | head -40
  part gpu-vs-torch 260 bash bench/gpu-vs-torch.sh >"$out/bench.jsonl" 2>"$out/bench.err" || tail -20 "$out/bench.err"
  grep -E "error|Error" "$out/bench.err" | head -5
  grep '"shape"' "$out/bench.jsonl"
  # the README's table, from the same lines
  node dist/bench/gpu-table.js "$out/bench.jsonl"
  # where each eager step's GPU time goes, by kind of work: PyTorch's (its profiler, 3 steps) and
  # ours with the fused kernels where the build has them (Kineto, one step), split by one
  # classifier (bench/trace-summary.ts: a last line with each kind side by side), and the ATen
  # operators our step dispatches (--count-ops)
  for shape in "124M 16 1024 45" "tiny 16 256 30"; do
    read -r model batch seq limit <<<"$shape"
    part "profile-reference $model" "$limit" python3 bench/profile-reference.py .gpu/torch_reference.py --model "$model" \
      --batch "$batch" --seq "$seq" --trace "/tmp/slm-ref-$model.json" 2>>"$out/profile.err" | tail -1 ||
      tail -3 "$out/profile.err"
    STAGED_LM_LOSS_KERNEL=fused STAGED_LM_NORM_KERNEL=fused part "profile-ours $model" "$limit" node dist/lib/cli/main.js bench \
      --model "$model" --device cuda --batch "$batch" --seq "$seq" --steps 3 --warmup 3 --count-ops \
      --profile "/tmp/slm-ours-$model.json" >"/tmp/slm-ours-$model.bench.json" 2>>"$out/profile.err" || tail -5 "$out/profile.err"
    node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(JSON.stringify({ ours: r.impl, model: r.model, ms_per_step: r.ms_per_step, aten_ops_per_step: r.ops_per_step?.total, by_phase: r.ops_per_step?.by_phase,
        top_ops: Object.entries(r.ops_per_step?.byName ?? {}).slice(0, 12) }));' "/tmp/slm-ours-$model.bench.json" 2>&1 | tail -1
    node dist/bench/trace-summary.js "/tmp/slm-ours-$model.json" "/tmp/slm-ref-$model.json:3" 2>&1
    node dist/bench/trace-summary.js --markdown "/tmp/slm-ours-$model.json" "/tmp/slm-ref-$model.json:3" 2>&1
    rm -f "/tmp/slm-ref-$model.json" "/tmp/slm-ours-$model.json" "/tmp/slm-ours-$model.bench.json"
  done
  # the LM loss alone, usual vs float32CrossEntropy, chunked (the default) and not: time and peak
  # memory at 124M's 16×1024 rows and tiny's 16×256 (launch-bound: does chunking cost there?)
  for rows in 16384 4096; do
    part "cross-entropy $rows" 40 node dist/bench/cross-entropy.js --device cuda --rows $rows --rounds 3 | tail -1
  done
  # the residual add + LayerNorm alone, libtorch's kernels vs the fused ones: 124M's and tiny's shapes
  part "add-layer-norm 124M" 30 node dist/bench/add-layer-norm.js --device cuda --rows 16384 --dim 768 --rounds 3 | tail -1
  part "add-layer-norm tiny" 30 node dist/bench/add-layer-norm.js --device cuda --rows 4096 --dim 256 --rounds 3 | tail -1
  # training right after a growth into 124M vs a fresh 124M: time and memory ratios
  part speed-after-growth 90 node dist/bench/speed-after-growth.js --device cuda --steps 10 --rounds 3 | grep summary
  part growth-time 45 node dist/bench/growth-time.js cuda
  # activation checkpointing at 124M, 16×1024: peak allocated and time, recomputing vs plain
  part activation-memory 60 node dist/bench/activation-memory.js --device cuda --steps 5 --rounds 1 | grep summary
  # the trainer's own step, eager and replayed as a CUDA graph (wall-clock of the same 300 steps)
  for g in "" --cuda-graph; do
    part "train ${g:-eager}" 60 node dist/lib/cli/main.js train --preset tiny --device cuda --steps 300 --batch-size 16 \
      --seq-len 256 --out /tmp/slm-train-graph --no-progress --json $g >"$out/train.json"
    node -e 'const [g, f] = process.argv.slice(1);
      try { const r = JSON.parse(require("fs").readFileSync(f, "utf8")); console.log(JSON.stringify({ train: g || "eager", steps: r.step, seconds: r.seconds })); }
      catch { console.log(`train ${g || "eager"}: no result`); }' -- "$g" "$out/train.json"
    rm -rf /tmp/slm-train-graph "$out/train.json"
  done
  # data parallel over NCCL with one rank (the multi-GPU path is the same code with -n N)
  STAGED_LM_DIST_TIMEOUT=30 part nccl 60 node dist/lib/cli/main.js launch -n 1 -- staged-lm train --preset tiny --device cuda \
    --steps 30 --batch-size 8 --seq-len 128 --out "$out/nccl-1rank" --no-progress >"$out/nccl.log" 2>&1
  echo "nccl 1-rank run exit $?: $(tail -4 "$out/nccl.log" | tr '\n' ' ')"
  echo "nccl 'NOT been destroyed' warnings (0 expected since distDestroy shuts the group down): $(grep -c 'NOT been destroyed' "$out/nccl.log")"
  rm -rf "$out/nccl-1rank"
  # 350M's final loss was 8.89 ours vs 6.44 PyTorch's (same fixed random batch, 35 steps). On a
  # CPU (fp32, 350M at 2×256) the c_proj init accounted for most of it: reference 3.18 plain,
  # 5.07 scaled as ours; ours 4.47 (3.70 with the plain init). This checks it at the full shape in
  # bf16: the reference rerun with GPT-2's scaled init (0.02/sqrt(2L) on c_proj)
  part scaled-init-reference 45 python3 - .gpu/torch_reference.py --model 350M --batch 8 --seq 1024 --steps 30 --warmup 5 <<'PY' ||
import importlib.util, math, sys, torch
spec = importlib.util.spec_from_file_location("R", sys.argv[1]); R = importlib.util.module_from_spec(spec); spec.loader.exec_module(R)
init = R.GPT.__init__
def scaled(self, L, h, d, vocab, seq):
    init(self, L, h, d, vocab, seq)
    for b in self.blocks:
        for m in (b.proj, b.fc2): torch.nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * L))
R.GPT.__init__ = scaled
sys.argv = sys.argv[1:]
R.main()
PY
    echo "scaled-init reference failed"
  # sampling with the KV cache against recomputing every window (same greedy tokens, checked)
  part sample-speed 40 node dist/bench/sample-speed.js --device cuda --preset gpt2-124m --prompt 256 --tokens 256
  part matmul 30 node dist/bench/matmul.js 8192
  # fp16 autocast with dynamic loss scaling beside bf16, at 124M (for GPUs without bf16; here, its
  # cost), and PyTorch's fp16 recipe (GradScaler + fused AdamW) on the same shape
  for p in bf16 fp16; do
    part "bench $p 124M" 40 node dist/lib/cli/main.js bench --model 124M --device cuda --precision $p --steps 10 --warmup 3 |
      node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const r = JSON.parse(s);
        console.log(JSON.stringify({ precision: r.precision, ms_per_step: r.ms_per_step, tokens_per_s: r.tokens_per_s, peak_mem_gib: r.peak_mem_gib, final_loss: r.final_loss })); });'
  done
  part "pytorch fp16 124M" 45 python3 bench/torch-fp16-reference.py .gpu/torch_reference.py --model 124M --steps 10 --warmup 3 | tail -1
  echo "check: $(($(date +%s) - start)) s of $budget"
} 2>&1 | tee "$out/summary.txt"
