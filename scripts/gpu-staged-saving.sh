#!/usr/bin/env bash
# Issue 5's compute-saving experiment (bench/staged-saving.ts) on a GPU host, width ×2 then depth
# ×2 against one from-scratch baseline. Run after scripts/gpu-check.sh built the project on the
# same machine; the Gutenberg shards travel in CORPUS (default .corpus: a copy of
# ../shared/data/gutenberg/*.txt.br kept out of git). Results go to $OUT (at most 8 files).
#   STEPS=2500 DEVICE=cuda bash scripts/gpu-staged-saving.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/staged-lm-gpu}
mkdir -p "$out"
corpus=${CORPUS:-.corpus}
if ! command -v node >/dev/null 2>&1; then
  if [ -x /tmp/node-kit/bin/node ]; then export PATH=/tmp/node-kit/bin:$PATH; elif [ -f .gpu/env.sh ]; then source .gpu/env.sh; fi
fi
command -v node >/dev/null || { echo "no node here: run scripts/gpu-check.sh first (same machine)"; exit 3; }
[ -f build/Release/staged_lm.node ] && [ -f dist/bench/staged-saving.js ] || { echo "not built here: run scripts/gpu-check.sh first"; exit 3; }
runs=${RUNS_DIR:-runs/staged-saving-gpu}
common=(--gutenberg --gutenberg-dir "$corpus" --target tiny --layers "${LAYERS:-8}" --embd "${EMBD:-512}" --heads "${HEADS:-8}"
  --ctx "${SEQ:-256}" --seq "${SEQ:-256}" --batch "${BATCH:-32}" --steps "${STEPS:-2500}" --eval-interval "${EVAL_INTERVAL:-125}"
  --eval-batches "${EVAL_BATCHES:-16}" --device "${DEVICE:-cuda}" --out "$runs")
start=$(date +%s)
node dist/bench/staged-saving.js "${common[@]}" --op width --c-op 1.776 >"$out/width.txt" 2>"$out/log.txt"
echo "width exit $? after $(($(date +%s) - start)) s"; tail -1 "$out/width.txt"
cp "$runs/result.json" "$out/width-result.json" 2>/dev/null
cp "$runs/baseline/metrics.jsonl" "$out/baseline-metrics.jsonl" 2>/dev/null
cp "$runs/staged/metrics.jsonl" "$out/width-staged-metrics.jsonl" 2>/dev/null
node dist/bench/staged-saving.js "${common[@]}" --op depth --c-op 1.412 --reuse-baseline >"$out/depth.txt" 2>>"$out/log.txt"
echo "depth exit $? after $(($(date +%s) - start)) s"; tail -1 "$out/depth.txt"
cp "$runs/result.json" "$out/depth-result.json" 2>/dev/null
cp "$runs/staged/metrics.jsonl" "$out/depth-staged-metrics.jsonl" 2>/dev/null
