// The language-model loss alone, forward + backward, two ways side by side: the usual
// crossEntropy(logits.float(), t) and float32CrossEntropy(logits, t) (native/loss.cc), on logits of
// a GPT's shape (rows = batch × sequence, columns = padded vocabulary; half precision by default,
// with float32 the usual way has no cast). Two more ways force float32CrossEntropy's row chunks
// (2^26 values) or none (one float32 temporary of the logits' size): fewer, larger kernels against
// more memory, the trade-off behind its default (whole up to 2^28 values, chunks above). On CUDA
// with staged-lm's kernels built, one more: the fused kernel (float32CrossEntropy kernel 'fused',
// native/kernels/cross_entropy.cu), one read of the logits forward, a read and a write backward.
// Rounds alternate the two (shared machines are noisy); prints one JSON line per round, then a
// summary with the medians, the ratio new/usual of time, and on CUDA of peak memory.
//   node dist/bench/cross-entropy.js [--device cuda] [--rows 16384] [--vocab 50304]
//                                    [--dtype bfloat16|float16|float32] [--rounds 5] [--reps 10]
import { parseArgs } from 'node:util';
import {
  crossEntropy,
  cudaAvailable,
  emptyCache,
  float32CrossEntropy,
  lossKernelInfo,
  memoryStats,
  randint,
  randn,
  resetPeakMemory,
  synchronize,
  tidy,
  type Tensor,
} from '../lib';
import { median } from './stats';

const { values: a } = parseArgs({
  options: {
    device: { type: 'string', default: cudaAvailable() ? 'cuda' : 'cpu' },
    rows: { type: 'string' },
    vocab: { type: 'string', default: '50304' },
    dtype: { type: 'string', default: 'bfloat16' },
    rounds: { type: 'string', default: '5' },
    reps: { type: 'string' },
  },
});
const device = a.device === 'cuda' ? 'cuda' : 'cpu';
if (device === 'cuda' && !cudaAvailable()) throw new Error('--device cuda: this build or machine has no CUDA');
const dtypes = ['bfloat16', 'float16', 'float32'] as const;
const dtype = dtypes.find((d) => d === a.dtype);
if (dtype === undefined) throw new Error(`--dtype must be one of ${dtypes.join(', ')}`);
// CPU default: tiny's batch 16×256 a quarter as long (the CPU streams memory ~100× slower)
const rows = Number(a.rows ?? (device === 'cuda' ? 16 * 1024 : 1024));
const vocab = Number(a.vocab);
const rounds = Number(a.rounds);
const reps = Number(a.reps ?? (device === 'cuda' ? 10 : 3));

const logits = randn([rows, vocab], { device, dtype }).mul_(2).requiresGrad_();
const targets = randint(0, vocab, [rows], { device });

// each way returns its loss from a scope of its own, as the model's loss() does: the float32 cast
// of the usual way is freed before backward (autograd keeps what it needs)
const fused = device === 'cuda' && lossKernelInfo().available;
const ways: Record<string, () => Tensor> = {
  usual: () => tidy(() => crossEntropy(logits.float(), targets)),
  float32CrossEntropy: () => tidy(() => float32CrossEntropy(logits, targets, { kernel: 'aten' })),
  chunked: () => tidy(() => float32CrossEntropy(logits, targets, { kernel: 'aten', chunkElements: 2 ** 26 })),
  whole: () => tidy(() => float32CrossEntropy(logits, targets, { kernel: 'aten', chunkElements: rows * vocab })),
  ...(fused ? { fused: () => tidy(() => float32CrossEntropy(logits, targets, { kernel: 'fused' })) } : {}),
};

/** ms per forward + backward, and on CUDA the peak bytes allocated above what was live before. */
function time(way: () => Tensor): { ms: number; peakBytes: number | null } {
  const step = () =>
    tidy(() => {
      way().backward();
      logits.grad = null;
    });
  // the peak counts from before the warm-up, whose allocations are then cached for the timed steps
  // (emptying the cache after it would charge cudaMalloc to the way that allocates more)
  synchronize();
  if (device === 'cuda') {
    emptyCache();
    resetPeakMemory();
  }
  const base = device === 'cuda' ? memoryStats().cuda[0].allocated : 0;
  step(); // warm-up (allocator, kernels' first launch)
  synchronize();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) step();
  synchronize();
  const ms = (performance.now() - t0) / reps;
  return { ms, peakBytes: device === 'cuda' ? memoryStats().cuda[0].peakAllocated - base : null };
}

const results: Record<string, { ms: number; peakBytes: number | null }[]> = Object.fromEntries(Object.keys(ways).map((w) => [w, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, way] of Object.entries(ways)) {
    const res = time(way);
    results[name].push(res);
    process.stdout.write(
      JSON.stringify({
        bench: 'cross-entropy',
        way: name,
        device,
        dtype,
        rows,
        vocab,
        round: r,
        ms: +res.ms.toFixed(3),
        peak_bytes: res.peakBytes,
      }) + '\n',
    );
  }
}
const medianMs = (way: string): number => median(results[way].map((x) => x.ms));
const usualMs = medianMs('usual');
const usualPeak = results.usual[0].peakBytes;
/** Time and peak memory of a way relative to the usual loss. */
const ratios = (way: string): { ms: number; time: number; peak: number | null } => {
  const peak = results[way][0].peakBytes;
  return {
    ms: +medianMs(way).toFixed(3),
    time: +(medianMs(way) / usualMs).toFixed(3),
    peak: usualPeak && peak !== null ? +(peak / usualPeak).toFixed(3) : null,
  };
};
const ours = ratios('float32CrossEntropy');
const chunked = ratios('chunked');
const whole = ratios('whole');
const fusedRatios = fused ? ratios('fused') : null;
process.stdout.write(
  JSON.stringify({
    bench: 'cross-entropy',
    summary: true,
    device,
    dtype,
    rows,
    vocab,
    usual_ms: +usualMs.toFixed(3),
    float32CrossEntropy_ms: ours.ms,
    ratio_time: ours.time,
    ratio_peak_mem: ours.peak,
    chunked_ms: chunked.ms,
    chunked_ratio_time: chunked.time,
    chunked_ratio_peak_mem: chunked.peak,
    whole_ms: whole.ms,
    whole_ratio_time: whole.time,
    whole_ratio_peak_mem: whole.peak,
    // null where the fused kernel was not run (CPU, or a build without staged-lm's CUDA kernels)
    fused_ms: fusedRatios?.ms ?? null,
    fused_ratio_time: fusedRatios?.time ?? null,
    fused_ratio_peak_mem: fusedRatios?.peak ?? null,
  }) + '\n',
);
