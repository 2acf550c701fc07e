// Host syncs: a training step on CUDA must only queue work — a read-back inside it (a loss read
// for logging, a norm compared on the host) makes the CPU wait for the GPU every step and leaves
// the GPU idle while the next step is issued. cudaSyncDebugMode('error') turns each such wait into
// an error, so these tests fail on the first one. The GPU parts run where libtorch sees a GPU; the
// mode's contract on a CPU-only build is checked everywhere.
import {
  buildInfo,
  cudaAvailable,
  cudaSyncDebugMode,
  forbidHostSync,
  lossKernelInfo,
  normKernelInfo,
  randn,
  setLossKernel,
  setNormKernel,
  tidy,
  type SyncDebugMode,
} from '../lib';
import { cudaGraphsAvailable } from '../lib/cuda-graph';
import { Trainer } from '../lib/train/trainer';
import { itWhen } from './helpers';

const cudaBuild = buildInfo().cudaBuild;
const itCuda = itWhen(cudaAvailable(), 'no CUDA device');
const itCpuBuild = itWhen(!cudaBuild, 'this build has CUDA (its CPU-only refusals do not apply)');
const itGraphs = itWhen(cudaAvailable() && cudaGraphsAvailable(), 'no CUDA device, or no CUDA graphs in this build');
const itFused = itWhen(cudaAvailable() && lossKernelInfo().available, 'no CUDA device, or no staged-lm CUDA kernels in this build');

describe('cudaSyncDebugMode', () => {
  it('refuses a mode it does not know', () => {
    expect(() => cudaSyncDebugMode('loud' as SyncDebugMode)).toThrow(/'off', 'warn' or 'error'.*loud/);
    expect(cudaSyncDebugMode()).toBe('off');
  });

  itCpuBuild('on a CPU-only build: reports off and refuses to watch for waits that cannot happen', () => {
    expect(cudaSyncDebugMode('off')).toBe('off');
    expect(() => cudaSyncDebugMode('error')).toThrow(/built without CUDA/);
    expect(() => forbidHostSync(() => 1)).toThrow(/built without CUDA/);
    expect(cudaSyncDebugMode()).toBe('off');
  });

  itCuda('turns a read-back into an error inside forbidHostSync, and restores the mode after', () => {
    const t = randn([4], { device: 'cuda' });
    try {
      expect(() => forbidHostSync(() => t.sum().item())).toThrow(/synchroniz/i);
      expect(cudaSyncDebugMode()).toBe('off');
      // queued work alone is allowed, and the value is readable once the mode is back
      const s = forbidHostSync(() => tidy(() => t.mul(2).sum()));
      expect(Number.isFinite(s.item())).toBe(true);
      s.dispose();
    } finally {
      t.dispose();
      cudaSyncDebugMode('off');
    }
  });
});

describe('the training step makes no host sync on CUDA', () => {
  // steps 1–2 run first (lazy CUDA set-up, the pinned-memory pool, a graph's capture): what is
  // checked is the steady state, 3 steps with every host wait an error
  const steadySteps = (cudaGraph: boolean, precision: 'fp32' | 'bf16' | 'fp16'): number[] => {
    const t = Trainer.create({
      model: { nLayer: 2, nHead: 2, nEmbd: 32, contextLength: 32 },
      device: 'cuda',
      precision,
      batchSize: 4,
      seqLen: 32,
      steps: 20,
      cudaGraph,
      clipGradNorm: 1.0,
      lr: { peak: 1e-3, total: 20, warmup: 2 },
    });
    const results: ReturnType<Trainer['step']>[] = [];
    try {
      // a captured step needs 3 eager steps and a capture first (the capture itself waits)
      for (let i = 0; i < (cudaGraph ? 4 : 2); i++) results.push(t.step());
      forbidHostSync(() => {
        for (let i = 0; i < 3; i++) results.push(t.step());
      });
      if (cudaGraph) expect(t.cudaGraphStats()).toEqual({ captures: 1, replays: 4, failed: false });
      return results.map((r) => r.loss.item());
    } finally {
      cudaSyncDebugMode('off');
      for (const r of results) {
        r.loss.dispose();
        r.gradNorm?.dispose();
        r.skipped?.dispose();
      }
      t.dispose();
    }
  };

  itCuda(
    'eager, fp32, bf16 autocast and fp16 with loss scaling (forward, backward, clipping, fused AdamW, the scale, the next batch)',
    () => {
      for (const precision of ['fp32', 'bf16', 'fp16'] as const) {
        const losses = steadySteps(false, precision);
        expect(losses.length).toBe(5);
        for (const l of losses) expect(Number.isFinite(l)).toBe(true);
      }
    },
  );

  itGraphs('replayed CUDA graph (copying the batch in, the rate staged on the device)', () => {
    const losses = steadySteps(true, 'bf16');
    expect(losses.length).toBe(7);
    for (const l of losses) expect(Number.isFinite(l)).toBe(true);
  });

  itFused("eager bf16 with staged-lm's fused kernels (the loss, the residual add + LayerNorm)", () => {
    const before = [lossKernelInfo().default, normKernelInfo().default] as const;
    try {
      setLossKernel('fused');
      setNormKernel('fused');
      const losses = steadySteps(false, 'bf16');
      expect(losses.length).toBe(5);
      for (const l of losses) expect(Number.isFinite(l)).toBe(true);
    } finally {
      setLossKernel(before[0]);
      setNormKernel(before[1]);
    }
  });
});
