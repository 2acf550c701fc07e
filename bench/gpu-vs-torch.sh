#!/usr/bin/env bash
# On a GPU host: build the addon against the host's PyTorch libtorch, then run our trainer's bench
# and PyTorch's reference (../shared/bench/torch_reference.py, packed as .gpu/torch_reference.py)
# on the same shapes in the same run. Prints one JSON line per run, then one line per shape with
# the ratios ours/PyTorch for tokens/s and peak memory; ours runs twice, eager and as a
# replayed CUDA graph (--cuda-graph), and twice more with staged-lm's fused CUDA kernels (the loss
# and the residual add + LayerNorm: --loss-kernel fused --norm-kernel fused) where the build has them.
#   bash bench/gpu-vs-torch.sh [REFERENCE.py]      (after `source .gpu/env.sh` on a host without Node)
set -uo pipefail
cd "$(dirname "$0")/.."
ref=${1:-}
for c in "$ref" .gpu/torch_reference.py ../shared/bench/torch_reference.py; do [ -n "$c" ] && [ -f "$c" ] && ref=$c && break; done
[ -f "$ref" ] || { echo "torch_reference.py not found" >&2; exit 2; }
export LIBTORCH_USE_PYTORCH=${LIBTORCH_USE_PYTORCH:-1}
bash scripts/setup.sh all >&2 || exit 1
results=$(mktemp)
run() { # model batch seq
  node dist/lib/cli/main.js bench --model "$1" --device cuda --batch "$2" --seq "$3" --steps 30 --warmup 5 | tee -a "$results"
  python3 "$ref" --model "$1" --batch "$2" --seq "$3" --steps 30 --warmup 5 | tee -a "$results"
  # the same step captured once as a CUDA graph and replayed (static shapes); a capture that
  # fails prints its reason instead of a result
  node dist/lib/cli/main.js bench --model "$1" --device cuda --batch "$2" --seq "$3" --steps 30 --warmup 5 --cuda-graph | tee -a "$results" ||
    echo "{\"impl\":\"staged-lm-cuda-graph\",\"model\":\"$1\",\"failed\":true}"
  # both again with staged-lm's fused CUDA kernels, where this build has them
  if [ "$fused" = true ]; then
    for g in "" --cuda-graph; do
      node dist/lib/cli/main.js bench --model "$1" --device cuda --batch "$2" --seq "$3" --steps 30 --warmup 5 \
        --loss-kernel fused --norm-kernel fused $g |
        tee -a "$results" || echo "{\"impl\":\"staged-lm${g:+-cuda-graph}+fused-loss+fused-norm\",\"model\":\"$1\",\"failed\":true}"
    done
  fi
}
fused=$(node -e 'console.log(require("./dist/lib").lossKernelInfo().available)')
run 124M 16 1024
run 350M 8 1024
run tiny 16 256
# one line per run of ours: the ratios to PyTorch eager on the same shape
node dist/bench/gpu-table.js --json "$results"
rm -f "$results"
