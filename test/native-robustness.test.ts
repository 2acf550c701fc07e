// Calls that used to take the whole process down through the native layer (an abort, a segfault,
// V8's out-of-memory abort, a leak nothing reported): each now ends in a JS error, or in nothing
// at all, and the process lives on. The ones that need a process of their own (a worker thread,
// a memory limit) run in a child node.
import { spawnSync } from 'node:child_process';
import { native } from '../lib/native';
import { AdamW } from '../lib/optim/adamw';
import { cudaAvailable, fromTypedArray, memoryStats, ones, randn, tensor, watchStorage, zeros, type Tensor } from './imports';
import { itWhen } from './helpers';

const dist = JSON.stringify(require.resolve('../dist/lib/native.js'));

/** Runs a script in a child node; its exit status, signal and output. */
function child(script: string, shellPrefix = ''): { status: number | null; signal: string | null; out: string } {
  const r = shellPrefix
    ? spawnSync('bash', ['-c', `${shellPrefix} exec "${process.execPath}" -e "$SCRIPT"`], {
        encoding: 'utf8',
        env: { ...process.env, SCRIPT: script },
      })
    : spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

describe('a worker thread terminated while it runs native ops', () => {
  it('ends the worker, not the process (an error that can no longer be thrown into JS is dropped)', () => {
    // the worker loops over matmul and dispose, or waits on toTypedArrayAsync, when terminated
    const r = child(`
      const { Worker } = require('node:worker_threads');
      const body = (mode) => \`
        const { parentPort } = require('node:worker_threads');
        const { native: N } = require(${dist});
        N.setNumThreads(1);
        const a = N.randn([300, 300], 'float32', 'cpu');
        parentPort.postMessage('go');
        if ('\${mode}' === 'async') for (;;) N.toTypedArrayAsync(a);
        for (;;) N.tensorDispose(N.matmul(a, a));\`;
      (async () => {
        for (let i = 0; i < 8; i++) {
          const w = new Worker(body(i % 2 ? 'async' : 'ops'), { eval: true });
          await new Promise((res) => w.once('message', res));
          await new Promise((r) => setTimeout(r, 10 + 20 * i));
          await w.terminate();
        }
        console.log('main lives');
      })();`);
    expect(r.signal).toBeNull();
    expect(r.out).toMatch(/main lives/);
    expect(r.status).toBe(0);
  });
});

describe('reading back a tensor the host has no memory for', () => {
  it('throws a RangeError the caller can catch (V8 aborted the process before)', () => {
    // how much address space the child uses with the tensor allocated, then a limit that leaves
    // too little for the tensor's copy (1 GiB): the copy's allocation fails
    const script = `
      const { native: N } = require(${dist});
      const t = N.empty([1024 * 256 * 1024], 'float32', 'cpu');
      const vm = Number(require('fs').readFileSync('/proc/self/status', 'utf8').match(/VmSize:\\s+(\\d+)/)[1]);
      if (process.env.MEASURE) console.log(vm);
      else {
        try { N.toTypedArray(t); console.log('read'); } catch (e) { console.log(e.constructor.name + ': ' + e.message); }
        console.log('lives');
      }`;
    const measured = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, MEASURE: '1' } });
    const vmKb = Number(measured.stdout.trim());
    expect(vmKb).toBeGreaterThan(0);
    const r = child(script, `ulimit -v ${vmKb + 384 * 1024};`);
    expect(r.signal).toBeNull();
    expect(r.out).toMatch(/RangeError: toTypedArray: cannot allocate 1073741824 bytes on the host for the copy/);
    expect(r.out).toMatch(/lives/);
  });
});

describe('arguments whose reading runs JS that pulls the data away', () => {
  it('a shape getter that detaches the data buffer: a length mismatch, not a read of freed memory', () => {
    const n = 1 << 16;
    const buf = new ArrayBuffer(n * 4);
    const data = new Float32Array(buf).fill(1);
    const shape = [n];
    Object.defineProperty(shape, 0, {
      get() {
        structuredClone(buf, { transfer: [buf] });
        return n;
      },
    });
    expect(() => native.fromTypedArray(data, shape, 'float32', 'cpu')).toThrow(
      /fromTypedArray: shape \[65536\] holds 65536 elements but the data has 0/,
    );
  });

  it('a sparse shape of length 2^27 is refused at its first hole, without sizing a vector by its length', () => {
    const shape: number[] = [];
    shape.length = 2 ** 27;
    const rss = process.memoryUsage().rss;
    const t0 = performance.now();
    expect(() => native.zeros(shape, 'float32', 'cpu')).toThrow(/zeros: expected an integer at shape\[0\] but received undefined/);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * 2 ** 20);
  });

  it('a size beyond int64 is an error naming it (casting it was undefined behaviour)', () => {
    expect(() => native.zeros([1e300, 0], 'float32', 'cpu')).toThrow(/expected an integer at shape\[0\] but received 1000000000000/);
  });
});

describe('values and buffers the conversions used to get wrong', () => {
  it('float32 2^31 into int32 is an overflow, not INT32_MIN (float32 rounded the bound up to 2^31)', () => {
    expect(() => tensor(new Float32Array([2 ** 31]), { dtype: 'int32' })).toThrow(
      /value 2147483648 cannot be converted to int32 without overflow/,
    );
    expect(() => tensor(new Float32Array([128]), { dtype: 'int32' }).dispose()).not.toThrow();
    expect(tensor(new Float32Array([2 ** 31 - 128, -(2 ** 31)]), { dtype: 'int32' }).toNumberArray()).toEqual([2 ** 31 - 128, -(2 ** 31)]);
    expect(() => tensor(new Float32Array([256]), { dtype: 'uint8' })).toThrow(/value 256 cannot be converted to uint8/);
    expect(tensor(new Float64Array([255.5]), { dtype: 'uint8' }).toNumberArray()).toEqual([255]);
  });

  it('a typed array over a SharedArrayBuffer is read (copied), not refused with "Invalid argument"', () => {
    const shared = new Float32Array(new SharedArrayBuffer(12));
    shared.set([1, 2, 3]);
    expect(tensor(shared).toNumberArray()).toEqual([1, 2, 3]);
    expect(fromTypedArray(shared, [3, 1]).shape).toEqual([3, 1]);
  });
});

describe('pinMemory without CUDA', () => {
  itWhen(!cudaAvailable(), 'this libtorch has CUDA: pinning works')('says there is no CUDA, not that a CUDA kernel is missing', () => {
    expect(() => tensor([1, 2]).pinMemory()).toThrow(
      /^pinMemory: pinned \(page-locked\) memory serves copies to a CUDA device, and this libtorch has no CUDA device to copy to$/,
    );
  });
});

describe('a gradient in the tensor’s own memory, or holding the tensor through its graph', () => {
  it('is refused where it overlaps the tensor, as PyTorch refuses a tensor as its own grad (a view of it kept it alive forever)', () => {
    const p = randn([4, 4]).requiresGrad_();
    for (const g of [() => p, () => p.view([16]).view([4, 4]), () => p.detach()])
      expect(() => (p.grad = g())).toThrow(/the gradient overlaps the tensor's own memory \(the tensor itself, or a view of it\)/);
    expect(p.grad).toBeNull();
    // a slice of the same buffer beside it shares the storage, not the memory: allowed
    const buf = zeros([8]);
    const [lo, hi] = [buf.narrow(0, 0, 4), buf.narrow(0, 4, 4)];
    lo.grad = hi;
    expect(lo.grad).not.toBeNull();
    p.dispose();
  });

  it('is freed with the tensor: a gradient with a graph (p·p) is kept without it (the graph held p: a cycle)', () => {
    for (const make of [(p: Tensor) => p.mul(p), (p: Tensor) => randn(p.shape)]) {
      const p = randn([64, 64]).requiresGrad_();
      const storage = watchStorage(p);
      const g = make(p);
      p.grad = g;
      expect(p.grad!.requiresGrad).toBe(false);
      g.dispose();
      p.dispose();
      expect(storage.alive()).toBe(false);
    }
  });
});

describe('AdamW.setMoments', () => {
  it('refuses moments the update could not run on, before anything changes', () => {
    const a = ones([3]).requiresGrad_();
    const b = ones([3]).requiresGrad_();
    const opt = new AdamW([
      { name: 'a', tensor: a, kind: 'weight' },
      { name: 'b', tensor: b, kind: 'weight' },
    ]);
    const m = zeros([3]);
    expect(() => opt.setMoments('b', { expAvg: zeros([3], { dtype: 'int64' }), expAvgSq: zeros([3]) })).toThrow(
      /AdamW: expAvg of 'b' is int64: the moments of a float32 parameter are float32/,
    );
    const share = /AdamW: expAvg and expAvgSq of 'b' share memory: each needs a tensor of its own/;
    expect(() => opt.setMoments('b', { expAvg: m, expAvgSq: m })).toThrow(share);
    expect(() => opt.setMoments('b', { expAvg: m, expAvgSq: m.view([3]) })).toThrow(share);
    for (const own of [b, b.detach()])
      expect(() => opt.setMoments('b', { expAvg: own, expAvgSq: zeros([3]) })).toThrow(
        /AdamW: expAvg of 'b' lies in the parameter's own memory/,
      );
    // resetParameters checks every given moment before it keeps or allocates anything
    // (counted as created, not as live: a finalizer run by the GC meanwhile does not move it)
    const created = memoryStats().createdTotal;
    const c = ones([3], { dtype: 'float64' }).requiresGrad_();
    expect(() =>
      opt.resetParameters(
        [
          { name: 'a', tensor: a, kind: 'weight' },
          { name: 'n', tensor: ones([3]).requiresGrad_(), kind: 'weight' },
          { name: 'c', tensor: c, kind: 'weight' },
        ],
        { c: { expAvg: zeros([3]), expAvgSq: zeros([3]) } },
      ),
    ).toThrow(/AdamW: expAvg of 'c' is float32: the moments of a float64 parameter are float64/);
    expect(memoryStats().createdTotal - created).toBe(4); // c, the new 'n' parameter and the refused moments: nothing allocated
    expect(() => opt.setMoments('b', { expAvg: zeros([3], { dtype: 'float64' }), expAvgSq: zeros([3]) })).toThrow(
      /expAvg of 'b' is float64: the moments of a float32 parameter are float32/,
    );
    // nothing changed: one update goes as from fresh moments
    a.grad = ones([3]);
    b.grad = ones([3]);
    opt.update(0.1);
    expect(opt.step).toBe(1);
    expect(
      opt
        .getMoments('b')
        .expAvg.toNumberArray()
        .map((v) => Number(v.toFixed(6))),
    ).toEqual([0.1, 0.1, 0.1]);
  });
});
