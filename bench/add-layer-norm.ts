// The residual add + LayerNorm alone, forward + backward, two ways side by side: libtorch's add,
// LayerNorm and cast (addLayerNorm kernel 'aten') and, on CUDA with staged-lm's kernels built, the
// fused kernels ('fused', native/kernels/add_layer_norm.cu). Shaped as in a model: two sites in a
// row, the second's branch being the first's normalised output, so that backward meets both
// cases (a's gradient from above or not); h float32, the branch in bf16 under autocast on CUDA
// (float32 on the CPU, which has no autocast), rows = batch × sequence (124M's 16×1024 on CUDA),
// d = the model width. Rounds alternate the ways (shared machines are noisy); prints one JSON line
// per round, then a summary with the medians and the ratio fused/aten of time and peak memory.
//   node dist/bench/add-layer-norm.js [--device cuda] [--rows 16384] [--dim 768] [--rounds 5] [--reps 20]
import { parseArgs } from 'node:util';
import {
  addLayerNorm,
  cudaAvailable,
  emptyCache,
  memoryStats,
  normKernelInfo,
  ones,
  randn,
  resetPeakMemory,
  synchronize,
  tidy,
  withAutocast,
  zeros,
  type NormKernel,
} from '../lib';
import { median } from './stats';

const { values: a } = parseArgs({
  options: {
    device: { type: 'string', default: cudaAvailable() ? 'cuda' : 'cpu' },
    rows: { type: 'string' },
    dim: { type: 'string', default: '768' },
    rounds: { type: 'string', default: '5' },
    reps: { type: 'string' },
  },
});
const device = a.device === 'cuda' ? 'cuda' : 'cpu';
if (device === 'cuda' && !cudaAvailable()) throw new Error('--device cuda: this build or machine has no CUDA');
const rows = Number(a.rows ?? (device === 'cuda' ? 16 * 1024 : 1024));
const dim = Number(a.dim);
const rounds = Number(a.rounds);
const reps = Number(a.reps ?? (device === 'cuda' ? 20 : 5));
const cuda = device === 'cuda';

const h = randn([rows, dim], { device }).requiresGrad_();
const y = randn([rows, dim], { device, dtype: cuda ? 'bfloat16' : 'float32' }).requiresGrad_();
const params = [0, 1].map(() => ({ w: ones([dim], { device }).requiresGrad_(), b: zeros([dim], { device }).requiresGrad_() }));
const upstream = randn([rows, dim], { device, dtype: cuda ? 'bfloat16' : 'float32' });

const ways: NormKernel[] = cuda && normKernelInfo().available ? ['aten', 'fused'] : ['aten'];

/** ms per forward + backward of the two sites, and on CUDA the peak bytes allocated above what was live before. */
function time(kernel: NormKernel): { ms: number; peakBytes: number | null } {
  const step = () =>
    tidy(() => {
      const forward = () => {
        const [a1, z1] = addLayerNorm(h, y, params[0].w, params[0].b, { kernel });
        return addLayerNorm(a1, z1, params[1].w, params[1].b, { kernel })[1];
      };
      (cuda ? withAutocast('bfloat16', forward) : forward()).backward(upstream);
      for (const t of [h, y, ...params.flatMap((p) => [p.w, p.b])]) t.grad = null;
    });
  synchronize();
  if (cuda) {
    emptyCache();
    resetPeakMemory();
  }
  const base = cuda ? memoryStats().cuda[0].allocated : 0;
  step(); // warm-up
  synchronize();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) step();
  synchronize();
  return { ms: (performance.now() - t0) / reps, peakBytes: cuda ? memoryStats().cuda[0].peakAllocated - base : null };
}

const results: Record<string, { ms: number; peakBytes: number | null }[]> = Object.fromEntries(ways.map((w) => [w, []]));
for (let r = 0; r < rounds; r++) {
  for (const way of ways) {
    const res = time(way);
    results[way].push(res);
    process.stdout.write(
      JSON.stringify({ bench: 'add-layer-norm', way, device, rows, dim, round: r, ms: +res.ms.toFixed(3), peak_bytes: res.peakBytes }) +
        '\n',
    );
  }
}
const medianMs = (way: string): number => median(results[way].map((x) => x.ms));
const fused = results.fused !== undefined;
const atenPeak = results.aten[0].peakBytes;
const fusedPeak = fused ? results.fused[0].peakBytes : null;
process.stdout.write(
  JSON.stringify({
    bench: 'add-layer-norm',
    summary: true,
    device,
    rows,
    dim,
    aten_ms: +medianMs('aten').toFixed(3),
    // null where the fused kernels were not run (CPU, or a build without staged-lm's CUDA kernels)
    fused_ms: fused ? +medianMs('fused').toFixed(3) : null,
    fused_ratio_time: fused ? +(medianMs('fused') / medianMs('aten')).toFixed(3) : null,
    fused_ratio_peak_mem: atenPeak && fusedPeak !== null ? +(fusedPeak / atenPeak).toFixed(3) : null,
  }) + '\n',
);
