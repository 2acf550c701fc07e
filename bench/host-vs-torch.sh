#!/usr/bin/env bash
# The launch-bound case of issue 6 without a GPU: ours and PyTorch's reference
# (../shared/bench/torch_reference.py) train the `micro` shape (tiny's 4 layers × 4 heads at width
# 32, vocabulary 64, batch 1 × 8) on one CPU thread, where the arithmetic takes microseconds and a
# step's time is what it costs the host to issue its ops. Rounds alternate the two (this machine is
# shared and noisy); prints one JSON line per run, then one summary line with the medians and the
# ratio ours/PyTorch of ms per step (below 1: we are faster).
# Both sides use fused AdamW where libtorch has it (the GPU setting); the reference is patched for
# that on CPU, nothing else of it changes.
#   PYTHON=/path/to/python-with-torch ROUNDS=5 STEPS=300 bash bench/host-vs-torch.sh
# CALLGRIND=1 counts instructions per step instead (valgrind's callgrind: the same count on every
# run, whatever else the machine does): each side runs twice, 20 and 120 timed steps, and the
# difference over 100 steps is its cost per step. ~6 minutes (importing torch under valgrind is slow).
# OPS=1 counts the ATen operators one step dispatches on each side, by name (ours: bench --count-ops,
# PyTorch: its profiler; composite operators count with those they call, views and allocations too)
# and lists the names whose counts differ. CPU counts, not a GPU's kernels: on CUDA the foreach ops
# are multi-tensor kernels and autocast adds its casts, on both sides alike.
# Compare like with like: build the addon against that same torch first
# (`PATH=<its bin>:$PATH LIBTORCH_USE_PYTORCH=1 npm run setup`); the summary names both versions.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
rounds=${ROUNDS:-5}
steps=${STEPS:-300}
ref=${REFERENCE:-../shared/bench/torch_reference.py}
[ -f "$ref" ] || { echo "torch_reference.py not found at $ref (set REFERENCE)" >&2; exit 2; }
"$py" -c 'import torch' 2>/dev/null || { echo "$py has no torch (set PYTHON)" >&2; exit 2; }
[ -f dist/lib/cli/main.js ] && [ -f build/Release/staged_lm.node ] || { echo "not built: run npm run setup first" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results
# the reference, patched for the micro shape and fused AdamW on CPU
cat >"$tmp/reference.py" <<'EOF'
import functools, importlib.util, json, os, sys
import torch
spec = importlib.util.spec_from_file_location("torch_reference", sys.argv[1])
R = importlib.util.module_from_spec(spec)
spec.loader.exec_module(R)
R.MODELS["micro"] = (4, 4, 32)  # n_layer, n_head, n_embd: tiny's structure
if "fused" in torch.optim.AdamW.__init__.__code__.co_varnames:  # fused on CPU exists since 2.4
    torch.optim.AdamW = functools.partial(torch.optim.AdamW, fused=True)
sys.argv = [sys.argv[0]] + sys.argv[2:]
if os.environ.get("OPS_OUT"):  # OPS=1: the ATen operators of the whole run, by name
    with torch.autograd.profiler.profile() as prof:
        R.main()
    with open(os.environ["OPS_OUT"], "w") as f:
        json.dump({e.key: e.count for e in prof.key_averages()}, f)
else:
    R.main()
EOF
ours=(node dist/lib/cli/main.js bench --model micro --device cpu)
pytorch=("$py" "$tmp/reference.py" "$ref" --model micro)
common=(--batch 1 --seq 8 --vocab 64 --warmup 20 --threads 1)

if [ "${OPS:-0}" = 1 ]; then
  # ours counts one step after the warm-up (bench --count-ops); PyTorch's profiler sees the whole
  # run, so its step is the difference of a run with one more step (set-up and warm-up cancel)
  "${ours[@]}" --steps 1 --count-ops "${common[@]}" >"$tmp/ours.json"
  for s in 1 2; do
    OPS_OUT="$tmp/pytorch-$s.json" "${pytorch[@]}" --steps $s "${common[@]}" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  done
  node -e '
    const fs = require("fs");
    const [oursFile, p1, p2] = process.argv.slice(1);
    const ours = JSON.parse(fs.readFileSync(oursFile, "utf8")).ops_per_step.byName;
    const [a, b] = [p1, p2].map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
    const pytorch = Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - (a[k] ?? 0)]));
    // the dispatcher`s operators only (PyTorch`s profiler also lists autograd nodes and user scopes)
    const names = [...new Set([...Object.keys(ours), ...Object.keys(pytorch)])].filter((k) => k.startsWith("aten::"));
    const sum = (m) => names.reduce((s, k) => s + (m[k] ?? 0), 0);
    const differ = Object.fromEntries(names.filter((k) => (ours[k] ?? 0) !== (pytorch[k] ?? 0))
      .sort((x, y) => Math.abs((ours[y] ?? 0) - (pytorch[y] ?? 0)) - Math.abs((ours[x] ?? 0) - (pytorch[x] ?? 0)))
      .map((k) => [k, [ours[k] ?? 0, pytorch[k] ?? 0]]));
    const o = sum(ours), p = sum(pytorch);
    console.log(JSON.stringify({ shape: "micro b1x8 cpu 1 thread", measure: "ATen operators per step",
      ours: o, pytorch: p, ratio_ours_over_pytorch: +(o / p).toFixed(3), by_name_where_they_differ_ours_pytorch: differ }));
  ' "$tmp/ours.json" "$tmp/pytorch-1.json" "$tmp/pytorch-2.json"
  exit 0
fi

if [ "${CALLGRIND:-0}" = 1 ]; then
  command -v valgrind >/dev/null || { echo "CALLGRIND=1 needs valgrind (apt install valgrind)" >&2; exit 2; }
  counts=()
  for side in ours pytorch; do
    if [ $side = ours ]; then cmd=("${ours[@]}"); else cmd=("${pytorch[@]}"); fi
    for s in 20 120; do
      valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "${cmd[@]}" --steps $s "${common[@]}" >/dev/null 2>"$tmp/err" ||
        { cat "$tmp/err" >&2; exit 1; }
      counts+=("$(sed -n 's/^summary: //p' "$tmp/cg")")
    done
  done
  node -e '
    const [o1, o2, p1, p2] = process.argv.slice(1).map(Number);
    const ours = (o2 - o1) / 100, pt = (p2 - p1) / 100;
    console.log(JSON.stringify({ shape: "micro b1x8 cpu 1 thread", measure: "callgrind instructions per step",
      ours: Math.round(ours), pytorch: Math.round(pt), ratio_ours_over_pytorch: +(ours / pt).toFixed(3) }));
  ' "${counts[@]}"
  exit 0
fi

for ((r = 1; r <= rounds; r++)); do
  "${ours[@]}" --steps "$steps" "${common[@]}" | tee -a "$results"
  "${pytorch[@]}" --steps "$steps" "${common[@]}" 2> >(grep -v -e NumPy -e _conversion_method_template >&2) | tee -a "$results"
done
node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const ours = rows.filter((r) => r.impl === "staged-lm"), ref = rows.filter((r) => r.impl === "pytorch-eager");
  const o = median(ours.map((r) => r.ms_per_step)), p = median(ref.map((r) => r.ms_per_step));
  const phase = (k) => +median(ours.map((r) => r.host_phase_ms[k])).toFixed(3);
  console.log(JSON.stringify({ shape: "micro b1x8 cpu 1 thread", rounds: ours.length,
    torch: { ours: ours[0].torch, pytorch: ref[0].torch },
    ms_per_step_median: { ours: o, pytorch: p }, ratio_ours_over_pytorch: +(o / p).toFixed(3),
    ours_host_phase_ms_median: { forward: phase("forward"), backward: phase("backward"), optimizer: phase("optimizer") } }));
' "$results"
