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
results=$(mktemp)
trap 'rm -f "$results"' EXIT
args=(--batch 1 --seq 8 --vocab 64 --steps "$steps" --warmup 20 --threads 1)
for ((r = 1; r <= rounds; r++)); do
  node dist/lib/cli/main.js bench --model micro --device cpu "${args[@]}" | tee -a "$results"
  "$py" - "$ref" --model micro "${args[@]}" <<'EOF' 2> >(grep -v -e NumPy -e _conversion_method_template >&2) | tee -a "$results"
import functools, importlib.util, sys
import torch
spec = importlib.util.spec_from_file_location("torch_reference", sys.argv[1])
R = importlib.util.module_from_spec(spec)
spec.loader.exec_module(R)
R.MODELS["micro"] = (4, 4, 32)  # n_layer, n_head, n_embd: tiny's structure
if "fused" in torch.optim.AdamW.__init__.__code__.co_varnames:  # fused on CPU exists since 2.4
    torch.optim.AdamW = functools.partial(torch.optim.AdamW, fused=True)
sys.argv = [sys.argv[0]] + sys.argv[2:]
R.main()
EOF
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
