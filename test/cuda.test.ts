// CUDA-only behaviour: runs where libtorch sees a GPU, reported as skipped elsewhere.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  crossEntropy,
  cudaAvailable,
  emptyCache,
  float32CrossEntropy,
  fromTypedArray,
  generate,
  GPT,
  KVCache,
  manualSeed,
  noGrad,
  parseGPTConfig,
  memoryStats,
  randint,
  randn,
  resetPeakMemory,
  tidy,
  withAutocast,
  zeros,
  type Tensor,
} from '../lib';
import { AdamW } from '../lib/optim/adamw';
import { native } from '../lib/native';
import { Trainer } from '../lib/train/trainer';
import { autoPrecision } from '../lib/train/precision';
import { readCheckpointState } from '../lib/train/checkpoint';
import { expectRelClose, itWhen } from './helpers';

const itCuda = itWhen(cudaAvailable(), 'no CUDA device');

describe('CUDA', () => {
  itCuda('fused AdamW (CUDA) matches the foreach path on the CPU, with and without bias correction and folded clipping', () => {
    for (const [biasCorrection, clip] of [
      [true, null],
      [false, null],
      [true, 0.5], // the CPU clips first; CUDA's kernel divides by clipAndUpdate's divisor
    ] as const) {
      manualSeed(5);
      const cpu = randn([64, 32]).requiresGrad_();
      const gpu = cpu.detach().to('cuda').requiresGrad_();
      const o = { betas: [0.9, 0.98] as [number, number], eps: 1e-6, weightDecay: 0.1, biasCorrection };
      const a = new AdamW([{ name: 'w', tensor: cpu, kind: 'weight' }], { ...o, fused: false });
      const b = new AdamW([{ name: 'w', tensor: gpu, kind: 'weight' }], { ...o, fused: true });
      for (let i = 0; i < 5; i++) {
        const g = randn([64, 32]);
        cpu.grad = g;
        gpu.grad = g.to('cuda');
        if (clip === null) {
          a.update(1e-2);
          b.update(1e-2);
        } else {
          const normA = a.clipGradNorm(clip);
          a.update(1e-2);
          const normB = b.clipAndUpdate(clip, 1e-2);
          expectRelClose([normB.item()], [normA.item()], 1e-5);
          const gradDiff = tidy(() => cpu.grad!.sub(gpu.grad!.cpu()).abs().max().item());
          expect(gradDiff).toBeLessThan(1e-6); // left clipped
          normA.dispose();
          normB.dispose();
        }
      }
      const diff = tidy(() => cpu.sub(gpu.cpu()).abs().max().item());
      expect(diff).toBeLessThan(1e-5);
      expect(native.hasFusedAdamW).toBe(true);
      a.dispose();
      b.dispose();
    }
  });

  itCuda('float32CrossEntropy: bf16 logits under autocast as on the CPU, and a peak well below the usual loss', () => {
    // float16 takes CUDA's one-pass float16 → float32 log-softmax (the CPU casts first)
    for (const dtype of ['bfloat16', 'float16'] as const) {
      tidy(() => {
        manualSeed(6);
        const x = randn([64, 1000], { dtype }).mul(3);
        const t = randint(0, 1000, [64]);
        for (const chunkElements of [0, 5000]) {
          const onCpu = x.detach().requiresGrad_();
          const lossCpu = float32CrossEntropy(onCpu, t, { chunkElements });
          lossCpu.backward();
          const onGpu = x.to('cuda').requiresGrad_();
          const lossGpu = withAutocast(dtype, () => float32CrossEntropy(onGpu, t.to('cuda'), { chunkElements }));
          lossGpu.backward();
          expect(Math.abs(lossGpu.item() - lossCpu.item())).toBeLessThan(1e-5);
          expect(onGpu.grad!.dtype).toBe(dtype);
          // element by element: both round a float32 gradient once, so they differ by at most one
          // unit in the last place of the half type (a relative 2^-8 for bf16)
          const gpu = onGpu.grad!.cpu().float().toNumberArray();
          expectRelClose(gpu, onCpu.grad!.float().toNumberArray(), 2 ** -7, 1e-12, `${dtype} chunk ${chunkElements}: element`);
        }
      });
    }
    // the point of it: the usual loss holds three float32 copies of the logits at once at the start
    // of backward (log p, NLL's dense gradient, log-softmax's gradient), this one log p and chunks
    // (by default above 2^28 values: 8192 × 50304 is 412M, 124M's 16×1024 rows twice that)
    const peak = (loss: (x: Tensor, t: Tensor) => Tensor) =>
      tidy(() => {
        const x = randn([8192, 50304], { dtype: 'bfloat16', device: 'cuda' }).requiresGrad_();
        const t = randint(0, 50304, [8192], { device: 'cuda' });
        emptyCache();
        resetPeakMemory();
        const before = memoryStats().cuda[0].allocated;
        loss(x, t).backward();
        return memoryStats().cuda[0].peakAllocated - before;
      });
    // each loss from a scope of its own, as the model's: the usual way's float32 cast is freed
    // before backward
    const usual = peak((x, t) => tidy(() => crossEntropy(x.float(), t)));
    const ours = peak((x, t) => tidy(() => float32CrossEntropy(x, t)));
    expect(ours).toBeLessThan(0.75 * usual);
  });

  itCuda('autocast runs matmuls in bfloat16 and keeps float32 parameters', () => {
    const w = randn([16, 16], { device: 'cuda' });
    const y = withAutocast('bfloat16', () => w.mm(w));
    expect(y.dtype).toBe('bfloat16');
    expect(w.dtype).toBe('float32');
  });

  itCuda('reads back asynchronously, reports allocator memory and empties the cache', async () => {
    const t = zeros([1024, 1024], { device: 'cuda' }).add_(2);
    expect(Array.from((await t.toArrayAsync()) as Float32Array).slice(0, 3)).toEqual([2, 2, 2]);
    const m = memoryStats().cuda[0];
    expect(m.allocated).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    t.dispose();
    emptyCache();
    expect(memoryStats().cuda[0].reserved).toBeLessThan(m.reserved + 1);
  });

  itCuda('samples with the KV cache on CUDA as it does recomputing every window (float32 and bf16 autocast)', () => {
    manualSeed(3);
    const model = new GPT(parseGPTConfig({ vocabSize: 300, contextLength: 24, nLayer: 2, nHead: 4, nEmbd: 64 }), { device: 'cuda' });
    const prompt = [5, 17, 250, 3];
    for (const autocast of [null, 'bfloat16'] as const) {
      const opts = { maxNewTokens: 30, temperature: 0, autocast }; // past the context (24): the window slides
      const cached = generate(model, prompt, opts);
      expect(cached).toHaveLength(30);
      if (autocast === null) expect(cached).toEqual(generate(model, prompt, { ...opts, kvCache: false }));
    }
    // the logits themselves, float32: cached against the full forward at each new position
    const cache = new KVCache(model.config, 2);
    const rows = [Array.from({ length: 12 }, (_, i) => (i * 37) % 300), Array.from({ length: 12 }, (_, i) => (i * 91) % 300)];
    const x = (a: number, n: number) =>
      fromTypedArray(Int32Array.from(rows.flatMap((r) => r.slice(a, a + n))), [2, n], { dtype: 'int64', device: 'cuda' });
    for (const [a, n] of [
      [0, 5],
      [5, 1],
      [6, 4],
      [10, 2],
    ]) {
      const diff = tidy(() =>
        noGrad(() =>
          model
            .nextLogits(x(a, n), cache)
            .sub(model.logits(x(0, a + n)).select(1, a + n - 1))
            .abs()
            .max()
            .item(),
        ),
      );
      expect(diff).toBeLessThan(1e-4);
    }
    cache.dispose();
    model.dispose();
  });

  itCuda("activation checkpointing on CUDA: the plain backward's gradients (dropout on the CUDA generator), a lower peak", () => {
    manualSeed(5);
    const config = parseGPTConfig({
      vocabSize: 512,
      contextLength: 256,
      nLayer: 6,
      nHead: 4,
      nEmbd: 128,
      dropout: { embedding: 0.1, attention: 0.1, residual: 0.1 },
    });
    const model = new GPT(config, { device: 'cuda' });
    model.train();
    const x = randint(0, 512, [8, 256], { device: 'cuda' });
    const y = randint(0, 512, [8, 256], { device: 'cuda' });
    const step = (recompute: boolean) => {
      manualSeed(9);
      for (const p of model.parameters()) p.grad?.zero_();
      emptyCache();
      resetPeakMemory();
      const loss = tidy(() => model.lossBackward(x, y, { recompute }).item());
      const peak = memoryStats().cuda[0].peakAllocated;
      const grads = model.parameters().map((p) => p.grad!.clone());
      return { loss, peak, grads };
    };
    const plain = step(false);
    const again = step(true);
    expect(again.loss).toBeCloseTo(plain.loss, 5);
    plain.grads.forEach((g, i) => {
      const d = tidy(() => again.grads[i].sub(g).abs().max().item());
      const scale = tidy(() => g.abs().max().item());
      expect(d).toBeLessThanOrEqual(1e-4 * Math.max(scale, 1e-3));
    });
    expect(again.peak).toBeLessThan(0.7 * plain.peak);
    for (const g of [...plain.grads, ...again.grads]) g.dispose();
    x.dispose();
    y.dispose();
    model.dispose();
  });

  itCuda('trains the tiny preset in bf16 autocast on CUDA and lowers the loss', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-cuda-'));
    try {
      const t = Trainer.create({
        model: 'tiny',
        device: 'cuda',
        steps: 60,
        batchSize: 8,
        seqLen: 128,
        eval: { interval: 60, batches: 4 },
        lr: { peak: 3e-3, warmup: 5 },
      });
      // ('auto': bf16 where the GPU has bf16 tensor cores, fp16 with loss scaling before them)
      expect([t.precision, t.autocast]).toEqual(autoPrecision('cuda') === 'bf16' ? ['bf16', 'bfloat16'] : ['fp16', 'float16']);
      const before = t.evaluate();
      const r = await t.train({ out: dir, progress: false });
      expect(before - r.valLoss!).toBeGreaterThan(0.5);
      const resumed = Trainer.resume(join(dir, 'checkpoint'), { steps: 62 });
      await resumed.train({ out: dir, progress: false });
      t.dispose();
      resumed.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  itCuda(
    'trains in fp16 autocast with dynamic loss scaling: the loss falls as in bf16, few updates skipped, and a resume goes on with the scale',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'slm-cuda-'));
      try {
        const cfg = {
          model: 'tiny',
          device: 'cuda',
          steps: 60,
          batchSize: 8,
          seqLen: 128,
          eval: { interval: 60, batches: 4 },
          lr: { peak: 3e-3, warmup: 5 },
          logInterval: 10,
        };
        const run = async (precision: 'bf16' | 'fp16', out: string) => {
          // fp16 from a scale of 2^30: the first backwards overflow float16 (logit gradients of
          // 2^30/1024 tokens), so the skip path runs before the scale settles
          const t = Trainer.create({ ...cfg, precision, ...(precision === 'fp16' ? { lossScale: { init: 2 ** 30 } } : {}) });
          const before = t.evaluate();
          const r = await t.train({ out, progress: false });
          t.dispose();
          return { drop: before - r.valLoss!, r };
        };
        const half = await run('fp16', join(dir, 'fp16'));
        const bf16 = await run('bf16', join(dir, 'bf16'));
        expect(half.r.lossScale).not.toBeNull();
        expect(half.r.lossScale!.skippedUpdates).toBeGreaterThanOrEqual(1);
        expect(half.r.lossScale!.skippedUpdates).toBeLessThan(20);
        expect(half.r.lossScale!.scale).toBeLessThan(2 ** 30);
        expect(half.drop).toBeGreaterThan(0.5);
        expect(Math.abs(half.r.valLoss! - bf16.r.valLoss!)).toBeLessThan(0.1);
        const state = readCheckpointState(join(dir, 'fp16', 'checkpoint'));
        expect(state.optimizerStep).toBe(60 - half.r.lossScale!.skippedUpdates);
        const resumed = Trainer.resume(join(dir, 'fp16', 'checkpoint'), { steps: 62 });
        expect(resumed.scaler!.state()).toEqual((state.extra as { lossScale: unknown }).lossScale);
        await resumed.train({ out: join(dir, 'fp16'), progress: false });
        resumed.dispose();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
