// Memory discipline: dispose() and tidy() really free native memory, counters return to where they
// started, RSS stays flat over many cycles, and finalizers catch what was never disposed.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { keep, memoryStats, ones, randn, tidy, watchStorage, zeros, Tensor, dispose } from '../lib';

const RSS_TOLERANCE = 0.05;

describe('dispose', () => {
  it('frees the storage at once and makes the tensor unusable', () => {
    const before = memoryStats().liveTensors;
    const t = zeros([1000]);
    const watch = watchStorage(t);
    expect(memoryStats().liveTensors).toBe(before + 1);
    expect(memoryStats().liveBytes).toBeGreaterThanOrEqual(4000);
    t.dispose();
    expect(watch.alive()).toBe(false);
    expect(t.isDisposed).toBe(true);
    expect(memoryStats().liveTensors).toBe(before);
    expect(() => t.add(1)).toThrow(/disposed/);
    t.dispose(); // idempotent
  });

  it('keeps the storage while another handle (a view) still refers to it', () => {
    const t = ones([4, 4]);
    const v = t.view(16);
    const watch = watchStorage(t);
    t.dispose();
    expect(watch.alive()).toBe(true);
    expect(tidy(() => v.sum().item())).toBe(16);
    v.dispose();
    expect(watch.alive()).toBe(false);
  });

  it('dispose() of a structure frees every tensor in it', () => {
    const a = zeros([2]);
    const b = zeros([2]);
    dispose({ a, list: [b] });
    expect(a.isDisposed && b.isDisposed).toBe(true);
  });
});

describe('tidy', () => {
  it('frees intermediates, moves returned tensors to the parent scope, honours keep()', () => {
    const start = memoryStats().liveTensors;
    let kept: Tensor | undefined;
    let inner: Tensor | undefined;
    const outer = tidy(() => {
      const r = tidy(() => {
        const a = randn([8, 8]);
        const b = a.mul(2).add(1);
        kept = keep(a.sum());
        inner = a;
        return { out: b.relu(), list: [b.sum()] };
      });
      expect(inner!.isDisposed).toBe(true);
      expect(r.out.isDisposed).toBe(false);
      return r.out; // r.list[0] is not returned from the outer scope: freed
    });
    expect(outer.isDisposed).toBe(false);
    expect(kept!.isDisposed).toBe(false);
    expect(memoryStats().liveTensors).toBe(start + 2);
    outer.dispose();
    kept!.dispose();
    expect(memoryStats().liveTensors).toBe(start);
  });

  it('frees everything when fn throws, and rethrows', () => {
    const start = memoryStats().liveTensors;
    expect(() =>
      tidy(() => {
        // nothing created here survives
        zeros([3]).add(1);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(memoryStats().liveTensors).toBe(start);
  });

  it('refuses an async function', () => {
    const start = memoryStats().liveTensors;
    expect(() => tidy(async () => zeros([2]))).toThrow(TypeError);
    expect(memoryStats().liveTensors).toBe(start);
  });
});

describe('no leak over many cycles', () => {
  it('100k create/dispose cycles leave the counters where they started and RSS flat', () => {
    const cycle = () => {
      const t = zeros([64]);
      t.add_(1);
      t.dispose();
    };
    for (let i = 0; i < 200_000; i++) cycle(); // warm-up until V8 and malloc reach their steady heap sizes
    const before = memoryStats();
    for (let i = 0; i < 100_000; i++) cycle();
    const after = memoryStats();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.createdTotal - before.createdTotal).toBe(100_000);
    expect(after.rss / before.rss).toBeLessThan(1 + RSS_TOLERANCE);
  });

  it('10k tidy iterations leave the counters where they started and RSS flat', () => {
    const w = randn([32, 32]);
    const step = () =>
      tidy(() => {
        const h = w.matmul(w).tanh().add(1);
        return h.mean().item();
      });
    for (let i = 0; i < 15_000; i++) step(); // warm-up: RSS climbs ~100 MB under jest, then plateaus
    const before = memoryStats();
    for (let i = 0; i < 10_000; i++) step();
    const after = memoryStats();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.rss / before.rss).toBeLessThan(1 + RSS_TOLERANCE);
    w.dispose();
  });
});

describe('finalizers (safety net)', () => {
  it('free tensors that were never disposed once the GC collects their handles', () => {
    // A separate process with --expose-gc, on the bare addon, so the GC can be forced.
    const root = join(__dirname, '..');
    const script = `
      const n = require('bindings')({ bindings: 'staged_lm', module_root: ${JSON.stringify(root)} });
      const base = n.memoryStats().liveTensors;
      (function () { for (let i = 0; i < 2000; i++) n.zeros([256], 'float32', 'cpu'); })();
      const made = n.memoryStats().liveTensors - base;
      setImmediate(() => {
        global.gc(); global.gc();
        setImmediate(() => {
          global.gc();
          console.log(JSON.stringify({ made, left: n.memoryStats().liveTensors - base }));
        });
      });`;
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' })) as {
      made: number;
      left: number;
    };
    expect(out.made).toBe(2000);
    expect(out.left).toBeLessThan(100);
  });
});
