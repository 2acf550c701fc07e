// Memory discipline: dispose() and tidy() really free native memory, counters return to where they
// started, RSS stays flat over many cycles, and finalizers catch what was never disposed.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { keep, memoryStats, ones, randn, tidy, watchStorage, zeros, Tensor, dispose } from '../lib';
import { native } from '../lib/native';

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

  it('tidy keeps the tensors its result holds in class instances, Sets and deep nesting (once freed silently)', () => {
    class StepResult {
      constructor(readonly loss: Tensor) {}
    }
    const before = memoryStats().liveTensors;
    const r = tidy(() => {
      let deep: unknown = ones([1]);
      for (let i = 0; i < 20; i++) deep = [deep];
      const cyclic: { t: Tensor; self?: unknown } = { t: ones([1]).mul(4) };
      cyclic.self = cyclic;
      return { instance: new StepResult(ones([1]).mul(2)), set: new Set([ones([1]).mul(3)]), deep, cyclic, scratch: new Float32Array(4) };
    });
    expect(r.instance.loss.item()).toBe(2);
    expect([...r.set][0].item()).toBe(3);
    let d: unknown = r.deep;
    while (Array.isArray(d)) d = d[0];
    expect((d as Tensor).item()).toBe(1);
    expect(r.cyclic.t.item()).toBe(4);
    expect(memoryStats().liveTensors).toBe(before + 4); // the four returned, none of the intermediates
    dispose([r.instance.loss, r.set, d, r.cyclic]);
    expect(memoryStats().liveTensors).toBe(before);
  });

  it('a broadcast view counts the bytes its storage holds, not the elements it shows', () => {
    const one = ones([1]);
    const before = memoryStats().liveBytes;
    const t0 = performance.now();
    // logits-sized views: each used to report 13 GB to V8, which then collected garbage in full
    for (let i = 0; i < 200; i++) one.expand(64, 1024, 50304).dispose();
    expect(performance.now() - t0).toBeLessThan(2000);
    const huge = one.expand(2 ** 61);
    expect(memoryStats().liveBytes).toBe(before + 4); // (it overflowed to a negative count)
    huge.dispose();
    one.dispose();
  });

  it('a storage watcher is told from other native handles (a tensor is not misread as one)', () => {
    const t = zeros([2]);
    expect(() => native.storageAlive(t.native)).toThrow(/expected a watcher from watchStorage\(\)/);
    t.dispose();
  });

  it('dispose() of a structure frees every tensor in it', () => {
    const a = zeros([2]);
    const b = zeros([2]);
    dispose({ a, list: [b] });
    expect(a.isDisposed && b.isDisposed).toBe(true);
  });
});

describe('freeing many tensors in one native call (what tidy and dispose use)', () => {
  it('frees every tensor, skips disposed ones, and the counters return to where they were', () => {
    const before = memoryStats();
    const ts = [zeros([100]), ones([3, 3]), randn([7])];
    const watches = ts.map((t) => watchStorage(t));
    ts[1].dispose();
    native.disposeMany(ts.map((t) => t.native));
    expect(ts.every((t) => t.isDisposed)).toBe(true);
    expect(watches.some((w) => w.alive())).toBe(false);
    expect(memoryStats().liveTensors).toBe(before.liveTensors);
    expect(memoryStats().liveBytes).toBe(before.liveBytes);
  });

  it('refuses an element that is not a tensor, naming its index, before freeing any', () => {
    const t = zeros([2]);
    expect(() => native.disposeMany([t.native, {} as never])).toThrow(/disposeMany: element 1 is not a tensor/);
    expect(t.isDisposed).toBe(false);
    expect(() => native.disposeMany('x' as never)).toThrow(/expected an array of tensors/);
    t.dispose();
  });

  it('a scope of many intermediates is freed by one call', () => {
    const calls: number[] = [];
    const original = native.disposeMany;
    native.disposeMany = (handles) => {
      calls.push(handles.length);
      original(handles);
    };
    try {
      const start = memoryStats().liveTensors;
      tidy(() => {
        let x = ones([4]);
        for (let i = 0; i < 10; i++) x = x.add(1);
        return null;
      });
      expect(calls).toEqual([11]);
      expect(memoryStats().liveTensors).toBe(start);
    } finally {
      native.disposeMany = original;
    }
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

  it('a single returned tensor moves up one scope at a time; keep() reaches into outer scopes', () => {
    const start = memoryStats().liveTensors;
    const outside = zeros([2]);
    let lifted: Tensor | undefined;
    let fromOuter: Tensor | undefined;
    const n = tidy(() => {
      fromOuter = zeros([3]); // created in the outer scope, kept from the inner one
      lifted = tidy(() => {
        keep(fromOuter!);
        const t = tidy(() => zeros([4]).add(1)); // the zeros is freed, the sum moves up
        expect(t.isDisposed).toBe(false);
        return t;
      });
      expect(lifted.isDisposed).toBe(false);
      expect(tidy(() => outside)).toBe(outside); // a tensor from outside the scope is left alone
      expect(tidy(() => undefined)).toBeUndefined();
      return lifted.sum().item(); // a number: everything of this scope is freed, lifted too
    });
    expect(n).toBe(4);
    expect(lifted!.isDisposed).toBe(true);
    expect(fromOuter!.isDisposed).toBe(false);
    expect(outside.isDisposed).toBe(false);
    fromOuter!.dispose();
    outside.dispose();
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
  // Tensors that earlier tests left to the garbage collector may be finalized during the loops, so
  // the counters may fall, never rise: a leak of one tensor per cycle would add thousands.
  it('100k create/dispose cycles leave the counters where they started (or lower)', () => {
    const cycle = () => {
      const t = zeros([64]);
      t.add_(1);
      t.dispose();
    };
    for (let i = 0; i < 1000; i++) cycle();
    const before = memoryStats();
    for (let i = 0; i < 100_000; i++) cycle();
    const after = memoryStats();
    expect(after.liveTensors).toBeLessThanOrEqual(before.liveTensors);
    expect(after.liveBytes).toBeLessThanOrEqual(before.liveBytes);
    expect(after.createdTotal - before.createdTotal).toBe(100_000);
  });

  it('10k tidy iterations leave the counters where they started (or lower)', () => {
    const w = randn([32, 32]);
    const step = () => tidy(() => w.matmul(w).tanh().add(1).mean().item());
    for (let i = 0; i < 100; i++) step();
    const before = memoryStats();
    for (let i = 0; i < 10_000; i++) step();
    const after = memoryStats();
    expect(after.liveTensors).toBeLessThanOrEqual(before.liveTensors);
    expect(after.liveBytes).toBeLessThanOrEqual(before.liveBytes);
    w.dispose();
  });

  // RSS is measured in a plain Node process over the built library: jest's sandbox grows its own
  // heap in steps that have nothing to do with native memory. Rounds of 100k create/dispose cycles
  // and 10k tidy steps: RSS climbs for up to ~7 rounds (malloc's heap and V8 settle, by 2–40 MB in
  // steps whose timing varies from run to run), then stays flat; a leak keeps climbing. The last
  // three rounds (300k cycles, 30k steps) may add at most 16 MB: a leak of ~50 bytes a cycle.
  it('RSS stays flat over 300k create/dispose cycles and 30k tidy steps, once settled', () => {
    const lib = join(__dirname, '..', 'dist', 'lib');
    const script = `
      const { zeros, randn, tidy, setNumThreads } = require(${JSON.stringify(lib)});
      setNumThreads(1);
      const cycle = () => { const t = zeros([64]); t.add_(1); t.dispose(); };
      const w = randn([32, 32]);
      const step = () => tidy(() => w.matmul(w).tanh().add(1).mean().item());
      const rss = [];
      for (let round = 0; round < 11; round++) {
        for (let i = 0; i < 100000; i++) cycle();
        for (let i = 0; i < 10000; i++) step();
        rss.push(process.memoryUsage.rss());
      }
      console.log(JSON.stringify(rss));`;
    const rss = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as number[];
    const settled = rss[7];
    const last = Math.max(...rss.slice(8));
    if (last - settled >= 16 * 2 ** 20)
      throw new Error(
        `RSS grew ${((last - settled) / 2 ** 20).toFixed(1)} MB in the last three rounds (MB by round: ${rss.map((r) => (r / 2 ** 20).toFixed(0)).join(' ')})`,
      );
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
