#!/usr/bin/env bash
# The GPU check in one go, for a device session on a host without Node (see ../shared/gpu/README.md):
# build against the host's PyTorch libtorch, doctor, throughput against PyTorch eager (eager and
# CUDA-graph steps, bench/gpu-vs-torch.sh), the loss alone (bench/cross-entropy.ts), growth time of
# a 124M state and the speed of training right after it, a 1-rank NCCL data-parallel run, then
# the CUDA test files (or the whole suite with FULL=1).
# Logs go to $OUT (or /tmp/staged-lm-gpu), at most 8 files; a short summary goes to stdout.
# Each part has its own time limit (`timeout`), so that one that hangs (a collective, a capture)
# reports and the rest still runs within the device session.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/staged-lm-gpu}
mkdir -p "$out"
# shellcheck disable=SC1091
source .gpu/env.sh
# node_modules comes from the packed kit: mark it current so set-up does not try `npm ci` offline
touch node_modules/.package-lock.json
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  start=$(date +%s)
  if ! bash scripts/setup.sh all >"$out/setup.log" 2>&1; then
    tail -60 "$out/setup.log"
    exit 1
  fi
  echo "build: $(($(date +%s) - start)) s"
  grep -E "staged-lm: (CUDA|distributed|cuda_graph|dist)" "$out/setup.log"
  node dist/lib/cli/main.js doctor
  node dist/bench/matmul.js 8192
  # the LM loss alone, usual vs float32CrossEntropy (124M's 16×1024 rows): time and peak memory
  timeout 60 node dist/bench/cross-entropy.js --device cuda --rounds 3 | tail -1
  timeout 300 bash bench/gpu-vs-torch.sh >"$out/bench.jsonl" 2>"$out/bench.err" || tail -20 "$out/bench.err"
  grep -E "error|Error" "$out/bench.err" | head -5
  grep '"shape"' "$out/bench.jsonl"
  # the README's table, from the same lines
  node dist/bench/gpu-table.js "$out/bench.jsonl"
  # 350M's final loss was 8.89 ours vs 6.44 PyTorch's (same fixed random batch, 35 steps): is it
  # the init? ours scales c_proj by 1/sqrt(2L) (GPT-2), the reference does not; rerun it scaled.
  # On a CPU (fp32, 350M at 2×256, 35 steps) the init explains it: reference 3.18 plain / 5.07
  # scaled, ours 3.70 with the reference's plain init / 4.47 scaled (the rest is the seed)
  timeout 60 python3 - .gpu/torch_reference.py --model 350M --batch 8 --seq 1024 --steps 30 --warmup 5 <<'EOF' || echo "scaled-init reference failed"
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
EOF
  timeout 60 node dist/bench/growth-time.js cuda
  # training right after a growth into 124M vs a fresh 124M: time and memory ratios
  timeout 120 node dist/bench/speed-after-growth.js --device cuda --steps 10 --rounds 3 | grep summary
  # data parallel over NCCL with one rank (the multi-GPU path is the same code with -n N)
  STAGED_LM_DIST_TIMEOUT=60 timeout 90 node dist/lib/cli/main.js launch -n 1 -- staged-lm train --preset tiny --device cuda --steps 30 \
    --batch-size 8 --seq-len 128 --out "$out/nccl-1rank" --no-progress >"$out/nccl.log" 2>&1
  echo "nccl 1-rank run exit $?: $(tail -4 "$out/nccl.log" | tr '\n' ' ')"
  echo "nccl 'NOT been destroyed' warnings (0 expected since distDestroy shuts the group down): $(grep -c 'NOT been destroyed' "$out/nccl.log")"
  rm -rf "$out/nccl-1rank"
  # the trainer's own step, eager and replayed as a CUDA graph (wall-clock of the same 300 steps)
  for g in "" --cuda-graph; do
    timeout 90 node dist/lib/cli/main.js train --preset tiny --device cuda --steps 300 --batch-size 16 --seq-len 256 \
      --out /tmp/slm-train-graph --no-progress --json $g | node -e 'const r=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(JSON.stringify({train: process.argv[1] || "eager", steps: r.step, seconds: r.seconds}))' "$g"
    rm -rf /tmp/slm-train-graph
  done
  if [ "${FULL:-0}" = 1 ]; then timeout 600 npx jest --ci >"$out/jest.log" 2>&1; else timeout 240 npx jest --ci test/cuda.test.ts test/cuda-graph.test.ts >"$out/jest.log" 2>&1; fi
  echo "jest exit $?"
  grep -E "✕|✓|○|Tests:|Time:" "$out/jest.log" | tail -30
} 2>&1 | tee "$out/summary.txt"
