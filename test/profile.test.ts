// profileToFile (libtorch's Kineto profiler → a Chrome trace), bench --profile, and the split of a
// trace by kind of work (lib/train/trace-summary.ts) that compares ours with PyTorch's.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { profilerAvailable, profileToFile, randn, tidy } from '../lib';
import { checkTracePath } from '../lib/profile';
import { runBench } from '../lib/train/bench';
import { Trainer } from '../lib/train/trainer';
import { kindOf, readTrace, summarizeTrace } from '../lib/train/trace-summary';
import { itWhen } from './helpers';

const itProfiler = itWhen(profilerAvailable(), "this libtorch has no Kineto (Debian's; pip's PyTorch has it)");
const itNoProfiler = itWhen(!profilerAvailable(), 'this libtorch has Kineto');
let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'staged-lm-profile-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const matmuls = (): void =>
  tidy(() => {
    const a = randn([32, 32]).requiresGrad_();
    a.matmul(a).relu().sum().backward();
  });

describe('summarizeTrace', () => {
  it('splits device activity by kind, per step, and ignores the CPU side when there is device activity', () => {
    const events = [
      { ph: 'X', cat: 'kernel', name: 'sm90_xmma_gemm_bf16bf16_bf16f32', ts: 0, dur: 300 },
      { ph: 'X', cat: 'kernel', name: 'void at::native::vectorized_elementwise_kernel<4, AddFunctor>', ts: 400, dur: 100 },
      { ph: 'X', cat: 'kernel', name: 'flash_fwd_kernel', ts: 600, dur: 200 },
      { ph: 'X', cat: 'gpu_memset', name: 'Memset (Device)', ts: 900, dur: 20 },
      { ph: 'X', cat: 'cpu_op', name: 'aten::addmm', ts: 0, dur: 5000 },
      { ph: 'i', cat: 'kernel', name: 'an instant, not a span', ts: 0 },
    ];
    const s = summarizeTrace(events, 2);
    expect(s.measure).toBe('GPU kernel time');
    expect(s.kernels_per_step).toBe(2);
    expect(s.ms_per_step).toBeCloseTo(0.31, 6);
    expect(s.by_kind_ms).toEqual({ gemm: 0.15, attention: 0.1, elementwise: 0.05, 'copy/cast': 0.01 });
    expect(s.top[0]).toEqual(['sm90_xmma_gemm_bf16bf16_bf16f32', 0.15]);
  });

  it('without device activity, counts CPU operators that are not inside another of the same thread', () => {
    const events = [
      { ph: 'X', cat: 'cpu_op', name: 'aten::linear', ts: 0, dur: 100, pid: 1, tid: 1 },
      { ph: 'X', cat: 'cpu_op', name: 'aten::addmm', ts: 10, dur: 80, pid: 1, tid: 1 }, // inside linear
      { ph: 'X', cat: 'cpu_op', name: 'aten::gelu', ts: 100, dur: 50, pid: 1, tid: 1 }, // starts as linear ends
      { ph: 'X', cat: 'cpu_op', name: 'aten::mm', ts: 20, dur: 30, pid: 1, tid: 2 }, // another thread
      { ph: 'X', cat: 'user_annotation', name: 'Optimizer.step', ts: 0, dur: 1000, pid: 1, tid: 1 },
    ];
    const s = summarizeTrace(events, 1);
    expect(s.measure).toBe('CPU time of top-level ops');
    expect(s.kernels_per_step).toBe(3);
    expect(s.by_kind_ms).toEqual({ other: 0.1, activation: 0.05, gemm: 0.03 });
  });

  it('classifies as bench/profile-reference.py does, and refuses what is not a trace', () => {
    expect(kindOf('void cutlass::Kernel<cutlass_80_tensorop_bf16_s16816gemm>')).toBe('gemm');
    expect(kindOf('void at::native::(anonymous namespace)::vectorized_layer_norm_kernel')).toBe('normalization');
    expect(kindOf('multi_tensor_apply_kernel<FusedAdamMathFunctor>')).toBe('optimizer');
    // staged-lm's fused kernels, as a trace names them
    expect(kindOf('void slm::kernels::(anonymous namespace)::crossEntropyForwardKernel<__nv_bfloat16, 8>')).toBe('loss');
    expect(kindOf('void slm::kernels::(anonymous namespace)::addLayerNormBackwardKernel<float, float, float, 2>')).toBe('normalization');
    expect(kindOf('void slm::kernels::(anonymous namespace)::addLayerNormColumnSumKernel')).toBe('normalization');
    expect(kindOf('something else')).toBe('other');
    expect(() => summarizeTrace([], 1)).toThrow(/neither device activity nor CPU operators/);
    expect(() => summarizeTrace([], 0)).toThrow(/positive integer for steps/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"traceEvents": ');
    expect(() => readTrace(bad)).toThrow(/bad\.json: not a readable Chrome trace/);
    writeFileSync(bad, '{"events": []}');
    expect(() => readTrace(bad)).toThrow(/bad\.json: not a Chrome trace \(no traceEvents\)/);
  });
});

describe('profileToFile', () => {
  itProfiler('writes a Chrome trace of the operators fn ran, forward and backward, and nothing else beside it', () => {
    const path = join(dir, 'matmul.json');
    profileToFile(path, matmuls);
    const names = new Set(readTrace(path).map((e) => e.name));
    for (const n of ['aten::mm', 'aten::relu', 'aten::threshold_backward']) expect(names.has(n)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
    expect(summarizeTrace(readTrace(path), 1).by_kind_ms.gemm).toBeGreaterThan(0);
  });

  itProfiler('writes nothing when fn throws, and the next profile still works', () => {
    const path = join(dir, 'thrown.json');
    expect(() =>
      profileToFile(path, () => {
        matmuls();
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
    profileToFile(path, matmuls);
    expect(existsSync(path)).toBe(true);
  });

  itProfiler("bench --profile: one step's trace and its split", () => {
    const path = join(dir, 'bench.json');
    const r = runBench({ model: 'micro', device: 'cpu', batch: 1, seq: 8, steps: 1, warmup: 1, vocab: 64, profile: path });
    expect(r.profile).toMatchObject({ trace: path, measure: 'CPU time of top-level ops' });
    expect(r.profile!.by_kind_ms.gemm).toBeGreaterThan(0);
    expect(existsSync(path)).toBe(true);
  });

  it('refuses a path it cannot write before recording anything: a directory, a missing directory', () => {
    expect(() => profileToFile(dir, matmuls)).toThrow(/profileToFile: .* is a directory, not a file/);
    expect(() => profileToFile(join(dir, 'missing', 't.json'), matmuls)).toThrow(/profileToFile: cannot write the trace in .*missing/);
    expect(() => checkTracePath('', '--profile')).toThrow(/--profile: expected a file path/);
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
  });

  itNoProfiler('says why without Kineto, before bench spends its time, and writes nothing', () => {
    const path = join(dir, 'none.json');
    expect(() => profileToFile(path, matmuls)).toThrow(/startProfile: this libtorch was built without Kineto/);
    expect(() => runBench({ model: 'micro', device: 'cpu', batch: 1, seq: 8, steps: 1, warmup: 0, vocab: 64, profile: path })).toThrow(
      /--profile: this libtorch was built without Kineto/,
    );
    expect(existsSync(path)).toBe(false);
  });
});

describe('train --profile (TrainOptions.profile)', () => {
  const run = (steps: number) =>
    Trainer.create(
      { model: { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 8 }, steps, batchSize: 1, logInterval: 1, eval: { interval: 0 } },
      { name: 'ones', train: new Uint16Array(64).fill(1), val: new Uint16Array(64).fill(1) },
    );

  itProfiler('records the steps after the warm-up, writes the trace and puts their split in the result', async () => {
    const t = run(5);
    try {
      const trace = join(dir, 'train.json');
      const r = await t.train({ out: join(dir, 'run-a'), progress: false, profile: { trace, steps: 2, after: 1 } });
      expect(r.step).toBe(5);
      expect(r.profile).toMatchObject({ trace, fromStep: 2, steps: 2, measure: 'CPU time of top-level ops' });
      expect(r.profile!.by_kind_ms.gemm).toBeGreaterThan(0);
      expect(new Set(readTrace(trace).map((e) => e.name)).has('aten::addmm')).toBe(true);
    } finally {
      t.dispose();
    }
  });

  itProfiler('a run that ends inside the window writes the steps it recorded; one that ends before it, nothing', async () => {
    const t = run(3);
    try {
      const inside = join(dir, 'inside.json');
      const r = await t.train({ out: join(dir, 'run-b'), progress: false, steps: 2, profile: { trace: inside, steps: 3, after: 1 } });
      expect(r.profile).toMatchObject({ trace: inside, fromStep: 2, steps: 1 });
      const never = join(dir, 'never.json');
      const r2 = await t.train({ out: join(dir, 'run-b'), progress: false, profile: { trace: never, after: 5 } });
      expect(r2.step).toBe(3);
      expect(r2.profile).toBeNull();
      expect(existsSync(never)).toBe(false);
    } finally {
      t.dispose();
    }
  });

  it('refuses bad counts and an unwritable path before the first step', async () => {
    const t = run(2);
    try {
      const out = join(dir, 'run-c');
      const refused = profilerAvailable()
        ? [
            [{ trace: join(dir, 'c.json'), steps: 0 }, /profile: steps must be a positive integer, not 0/],
            [{ trace: join(dir, 'c.json'), after: -1 }, /profile: after must be a non-negative integer, not -1/],
            [{ trace: join(dir, 'missing', 'c.json') }, /profile: cannot write the trace in/],
          ]
        : [[{ trace: join(dir, 'c.json') }, /profile: this libtorch was built without Kineto/]];
      for (const [profile, message] of refused as [{ trace: string }, RegExp][])
        await expect(t.train({ out, progress: false, profile })).rejects.toThrow(message);
      expect(t.progression.step).toBe(0);
      expect(existsSync(out)).toBe(false);
    } finally {
      t.dispose();
    }
  });
});
