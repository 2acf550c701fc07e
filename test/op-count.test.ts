// countOps: the ATen operators a piece of code dispatches, by name, and bench's ops_per_step.
import { countOps, randn, tensor, tidy } from '../lib';
import { runBench } from '../lib/train/bench';

it('counts each dispatched operator by name, forward and backward, most frequent first', () => {
  tidy(() => {
    const a = randn([4, 8]);
    const b = randn([8, 3]).requiresGrad_();
    const counts = countOps(() => {
      const y = a.matmul(b).relu().add(a.sum()).sum();
      y.backward();
    });
    // forward: matmul (its mm), relu, the two sums and the add; backward: relu's threshold_backward
    for (const name of ['aten::matmul', 'aten::mm', 'aten::relu', 'aten::add', 'aten::threshold_backward'])
      expect(counts.byName[name]).toBeGreaterThanOrEqual(1);
    expect(counts.byName['aten::relu']).toBe(1);
    expect(counts.byName['aten::sum']).toBeGreaterThanOrEqual(2);
    const values = Object.values(counts.byName);
    expect(counts.total).toBe(values.reduce((s, n) => s + n, 0));
    expect(values).toEqual([...values].sort((x, y) => y - x));
  });
});

it('stops counting when the function throws, so that the next count can start', () => {
  const t = tensor([1, 2, 3]);
  try {
    expect(() =>
      countOps(() => {
        t.mul(2).dispose();
        throw new Error('boom');
      }),
    ).toThrow('boom');
    const counts = countOps(() => t.neg().dispose());
    expect(counts.byName).toEqual({ 'aten::neg': 1 });
  } finally {
    t.dispose();
  }
});

it('refuses a count inside a count and an async function, and keeps the outer count', () => {
  const t = tensor([1, 2, 3]);
  try {
    const outer = countOps(() => {
      t.neg().dispose();
      expect(() => countOps(() => undefined)).toThrow(/startOpCount: operators are already being counted/);
      t.neg().dispose();
    });
    expect(outer.byName['aten::neg']).toBe(2);
    expect(() => countOps((async () => undefined) as unknown as () => void)).toThrow(/countOps\(\) takes a synchronous function/);
    expect(countOps(() => undefined).total).toBe(0);
  } finally {
    t.dispose();
  }
});

it("bench --count-ops: one step's operators, one addmm per Conv1D and one LayerNorm per site", () => {
  const r = runBench({ model: 'micro', device: 'cpu', batch: 1, seq: 8, steps: 1, warmup: 1, vocab: 64, countOps: true });
  const ops = r.ops_per_step!;
  // micro: 4 blocks × (c_attn, attn c_proj, c_fc, mlp c_proj) forward; 2 per block + ln_f
  expect(ops.byName['aten::addmm']).toBe(16);
  expect(ops.byName['aten::native_layer_norm']).toBe(9);
  expect(ops.byName['aten::native_layer_norm_backward']).toBe(9);
  expect(ops.total).toBeGreaterThan(100);
  const { forward, backward, optimizer } = ops.by_phase!;
  expect(forward + backward + optimizer).toBe(ops.total);
  for (const n of [forward, backward, optimizer]) expect(n).toBeGreaterThan(0);
  // the counted step is not one of the timed ones: on the CPU a step's host time is its wall time
  expect(r.host_ms_per_step).toBeLessThanOrEqual(r.ms_per_step);
  expect(runBench({ model: 'micro', device: 'cpu', batch: 1, seq: 8, steps: 1, warmup: 0, vocab: 64 }).ops_per_step).toBeNull();
});
