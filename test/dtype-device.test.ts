// Dtypes and devices: exact round trips for every dtype, casts, cpu→cpu moves, and (only where a
// CUDA device is present) cpu↔cuda round trips and CUDA ops that must match the CPU.
import {
  arange,
  crossEntropy,
  cudaAvailable,
  DTYPES,
  embedding,
  fromTypedArray,
  gelu,
  layerNorm,
  linear,
  logSoftmax,
  manualSeed,
  noGrad,
  ones,
  randint,
  randn,
  scaledDotProductAttention,
  softmax,
  synchronize,
  tensor,
  tidy,
  where,
  zeros,
  type Device,
  type Dtype,
  type Tensor,
} from '../lib';
import { itWhen, expectAllClose, expectTyped, flat, jsUniform, type TypedKind } from './helpers';

function itT(name: string, fn: () => void): void {
  it(name, () => {
    tidy(fn);
  });
}

const HAS_CUDA = cudaAvailable();
// CUDA cases run only where a CUDA device is present; elsewhere they are reported as skipped.
const itCuda = itWhen(HAS_CUDA, 'no CUDA device');
const itNoCuda = itWhen(!HAS_CUDA, 'checks the no-CUDA error, and CUDA is present');

/** Values each dtype represents exactly (bool as 0/1). */
const EXACT: Record<Dtype, number[]> = {
  float32: [0, -1.5, 3.25, 1024, 2 ** -10, 16777216, -3.4028234663852886e38, 1.1754943508222875e-38],
  float64: [0.1, -1e300, Math.PI, 2 ** -1074, 9007199254740991, -2.5],
  bfloat16: [0, 1, -2, 0.5, 255, 384, -0.0078125, 2 ** 127, 2 ** -126],
  float16: [0, 1, -2, 0.5, 2048, 65504, -65504, 2 ** -14, 2 ** -24, 0.333251953125],
  int64: [0, -1, 9007199254740991, -9007199254740991, 42],
  int32: [-2147483648, 2147483647, 0, 7],
  uint8: [0, 255, 128, 1],
  bool: [1, 0, 1, 1],
};

/** The typed array toArray() gives for each dtype. */
const KIND: Record<Dtype, TypedKind> = {
  float32: 'Float32Array',
  float64: 'Float64Array',
  bfloat16: 'Float32Array',
  float16: 'Float32Array',
  int64: 'BigInt64Array',
  int32: 'Int32Array',
  uint8: 'Uint8Array',
  bool: 'Uint8Array',
};

const make = (dtype: Dtype, device: Device = 'cpu'): Tensor =>
  dtype === 'bool'
    ? tensor(
        EXACT.bool.map((v) => v === 1),
        { device },
      )
    : tensor(EXACT[dtype], { dtype, device });

const expectExact = (t: Tensor, dtype: Dtype, values: number[]) => {
  expect(t.dtype).toBe(dtype);
  const arr = t.toArray();
  expectTyped(arr, KIND[dtype], dtype === 'int64' ? values.map((v) => BigInt(v)) : values);
};

const NON_BOOL = DTYPES.filter((d) => d !== 'bool');
/** Small integers every dtype but bool holds exactly. */
const COMMON = [0, 1, 2, 3, 5, 100, 127];

describe('exact round trips on the CPU', () => {
  it('DTYPES lists the eight dtypes', () => {
    expect([...DTYPES].sort()).toEqual(['bfloat16', 'bool', 'float16', 'float32', 'float64', 'int32', 'int64', 'uint8']);
  });

  for (const dtype of DTYPES) {
    itT(`${dtype}: tensor → toArray / toList keep exactly representable values`, () => {
      const t = make(dtype);
      expect(t.device).toBe('cpu');
      expect(t.shape).toEqual([EXACT[dtype].length]);
      expectExact(t, dtype, EXACT[dtype]);
      expect(t.toList()).toEqual(dtype === 'bool' ? EXACT.bool.map((v) => v === 1) : EXACT[dtype]);
      // zeros and ones in every dtype
      expect(flat(zeros([2], { dtype }))).toEqual([0, 0]);
      expect(flat(ones([2], { dtype }))).toEqual([1, 1]);
      expect(zeros([1], { dtype }).dtype).toBe(dtype);
    });
  }

  itT('int64 over its whole range through BigInt64Array', () => {
    const big = [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -1n, 0n];
    const t = fromTypedArray(BigInt64Array.from(big), [5]);
    expect(t.dtype).toBe('int64');
    expectTyped(t.toArray(), 'BigInt64Array', big);
    expectTyped(t.to('int64').clone().toArray(), 'BigInt64Array', big);
  });

  for (const src of NON_BOOL) {
    itT(`${src} → every dtype → ${src} keeps small integers exactly`, () => {
      const t = tensor(COMMON, { dtype: src });
      for (const dst of NON_BOOL) {
        const u = t.to(dst);
        expectExact(u, dst, COMMON);
        expectExact(u.to(src), src, COMMON);
      }
      const b = tensor([0, 1], { dtype: src }).to('bool');
      expectExact(b, 'bool', [0, 1]);
      expectExact(b.to(src), src, [0, 1]);
    });
  }

  itT('exactly representable values survive a cast to a wider float type and back', () => {
    for (const dtype of ['bfloat16', 'float16', 'float32'] as Dtype[]) {
      const t = make(dtype);
      expectExact(t.to('float64').to(dtype), dtype, EXACT[dtype]);
      expectExact(t.double(), 'float64', EXACT[dtype]);
    }
    expectExact(make('float16').to('float32').to('float16'), 'float16', EXACT.float16);
    expectExact(make('bfloat16').float().to('bfloat16'), 'bfloat16', EXACT.bfloat16);
    expectExact(make('int32').to('int64').to('int32'), 'int32', EXACT.int32);
    expectExact(make('int32').to('float64').to('int32'), 'int32', EXACT.int32);
    expectExact(make('uint8').to('int32').to('uint8'), 'uint8', EXACT.uint8);
  });

  itT('casts round and truncate like PyTorch', () => {
    // float → integer truncates toward zero
    expectExact(tensor([-1.7, 2.9, -0.5]).to('int64'), 'int64', [-1, 2, 0]);
    expectExact(tensor([-1.7, 2.9]).to('int32'), 'int32', [-1, 2]);
    // float64 → float32 rounds to nearest
    expectExact(tensor([0.1], { dtype: 'float64' }).float(), 'float32', [Math.fround(0.1)]);
    // round half to even: 257 lies halfway between bfloat16's 256 and 258; 2049 between float16's 2048 and 2050
    expectExact(tensor([257, 259]).to('bfloat16'), 'bfloat16', [256, 260]);
    expectExact(tensor([2049, 2051]).to('float16'), 'float16', [2048, 2052]);
    // float16 overflows to infinity
    expectExact(tensor([70000, -70000]).to('float16'), 'float16', [Infinity, -Infinity]);
    // anything non-zero is true
    expectExact(tensor([0, 2, -0.5]).to('bool'), 'bool', [0, 1, 1]);
    expectExact(tensor([true, false]).to('float32'), 'float32', [1, 0]);
  });

  itT('cpu → cpu `to` keeps values; with nothing to change it is the same tensor (a new handle)', () => {
    const t = tensor([1.5, -2, 3]);
    const same = t.to('cpu');
    expect(same).not.toBe(t);
    expect(same.device).toBe('cpu');
    expectExact(same, 'float32', [1.5, -2, 3]);
    const same2 = t.to('float32');
    const same3 = t.to({ device: 'cpu', dtype: 'float32' });
    const same4 = t.cpu();
    // they share the storage: a write through one is seen by the others
    same.select(0, 0).fill_(7);
    for (const s of [t, same2, same3, same4]) expect(flat(s)).toEqual([7, -2, 3]);
    // a real cast is a copy
    const d = t.to({ device: 'cpu', dtype: 'float64' });
    expectExact(d, 'float64', [7, -2, 3]);
    d.fill_(0);
    expect(flat(t)).toEqual([7, -2, 3]);
    // disposing the original leaves the other handle valid
    const u = tensor([4, 5]);
    const v = u.to('cpu');
    u.dispose();
    expect(u.isDisposed).toBe(true);
    expect(flat(v)).toEqual([4, 5]);
  });

  itT('bad dtypes and devices are refused', () => {
    const t = tensor([1]);
    expect(() => t.to('float8' as Dtype)).toThrow(TypeError);
    expect(() => t.to({ device: 'gpu' as Device })).toThrow(TypeError);
    expect(() => t.to({ device: 'cpu:0' as Device })).toThrow(TypeError);
    expect(() => zeros([1], { dtype: 'int16' as Dtype })).toThrow(TypeError);
    expect(() => t.to(null as unknown as Dtype)).toThrow(TypeError);
  });

  itNoCuda('without CUDA, asking for a CUDA device says so', () => {
    tidy(() => {
      expect(() => tensor([1]).to('cuda')).toThrow(/CUDA is not available/);
      expect(() => zeros([1], { device: 'cuda:0' })).toThrow(/CUDA is not available/);
    });
  });
});

describe('CUDA', () => {
  for (const dtype of DTYPES) {
    itCuda(`${dtype}: cpu → cuda → cpu is exact`, () => {
      tidy(() => {
        const t = make(dtype);
        const g = t.to('cuda');
        expect(g.device).toBe('cuda:0');
        expect(g.dtype).toBe(dtype);
        // toArray reads straight from the device too
        expectExact(g, dtype, EXACT[dtype]);
        const back = g.cpu();
        expect(back.device).toBe('cpu');
        expectExact(back, dtype, EXACT[dtype]);
        // created directly on the device
        const direct = make(dtype, 'cuda:0');
        expect(direct.device).toBe('cuda:0');
        expectExact(direct.cpu(), dtype, EXACT[dtype]);
        // casts on the device
        if (dtype !== 'bool') {
          const c = tensor(COMMON, { dtype, device: 'cuda' });
          for (const dst of NON_BOOL) expectExact(c.to(dst).cpu().to(dtype), dtype, COMMON);
        }
      });
    });
  }

  itCuda('int64 full range, combined moves, pinned non-blocking copies, asynchronous reads', async () => {
    const big = [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n];
    const t = fromTypedArray(BigInt64Array.from(big), [3], { device: 'cuda' });
    const moved = tensor([1.5, 2.5]).to({ device: 'cuda', dtype: 'float64' });
    const pinned = tensor([3, 4, 5]).pinMemory();
    const nb = pinned.to({ device: 'cuda', nonBlocking: true });
    try {
      expectTyped(t.cpu().toArray(), 'BigInt64Array', big);
      expect(moved.device).toBe('cuda:0');
      expectExact(moved, 'float64', [1.5, 2.5]);
      synchronize();
      expectExact(nb, 'float32', [3, 4, 5]);
      expectTyped(await moved.toArrayAsync(), 'Float64Array', [1.5, 2.5]);
      expectTyped(await t.toArrayAsync(), 'BigInt64Array', big);
    } finally {
      for (const x of [t, moved, pinned, nb]) x.dispose();
    }
  });

  itCuda('ops on CUDA match the CPU', () => {
    tidy(() => {
      const x = tensor(jsUniform(24, 1), { dtype: 'float64' }).view(2, 3, 4);
      const w = tensor(jsUniform(20, 2), { dtype: 'float64' }).view(5, 4);
      const b = tensor(jsUniform(5, 3), { dtype: 'float64' });
      const idx = tensor([3, 0, 4, 4], { dtype: 'int64' });
      const targets = tensor([1, 4, 0, 2, 3, 1], { dtype: 'int64' });
      const q = tensor(jsUniform(48, 4), { dtype: 'float64' }).view(1, 2, 6, 4);
      const ops: [string, (d: Device) => Tensor][] = [
        [
          'add/mul broadcast',
          (d) =>
            x
              .to(d)
              .add(b.to(d).narrow(0, 0, 4))
              .mul(x.to(d).select(0, 0)),
        ],
        ['numbers', (d) => x.to(d).add(2).mul(0.5).pow(2).sub(1, 3)],
        ['matmul', (d) => x.to(d).matmul(w.to(d).T)],
        ['linear+gelu', (d) => gelu(linear(x.to(d), w.to(d), b.to(d)), 'tanh').add(gelu(x.to(d)).sum())],
        ['softmax', (d) => softmax(x.to(d), -1).add(logSoftmax(x.to(d), 1).sum(1, true))],
        ['layerNorm', (d) => layerNorm(x.to(d), [4], w.to(d).select(0, 0), b.to(d).narrow(0, 1, 4))],
        ['reductions', (d) => x.to(d).sum(1).add(x.to(d).mean(1)).add(x.to(d).norm(2, 1)).add(x.to(d).maxDim(1).values)],
        ['where/maskedFill/triu', (d) => where(x.to(d).gt(0), x.to(d), -1).maskedFill(x.to(d).lt(-0.5), 9).triu(1)],
        ['embedding', (d) => embedding(w.to(d), idx.to(d))],
        ['sdpa causal', (d) => scaledDotProductAttention(q.to(d), q.to(d).mul(0.5), q.to(d).tanh(), { isCausal: true })],
        [
          'crossEntropy',
          (d) => crossEntropy(linear(x.to(d).view(6, 4), w.to(d)), targets.to(d), { labelSmoothing: 0.1, reduction: 'none' }),
        ],
      ];
      for (const [name, op] of ops) {
        const cpu = op('cpu');
        const gpu = op('cuda');
        expect(gpu.device).toBe('cuda:0');
        expect(gpu.shape).toEqual(cpu.shape);
        try {
          expectAllClose(gpu.cpu(), flat(cpu), 10);
        } catch (e) {
          throw new Error(`${name}: ${(e as Error).message}`);
        }
      }
      // float32 and half precision within their tolerances
      const qf = q.float();
      const ref = flat(scaledDotProductAttention(qf, qf, qf, { isCausal: true }));
      expectAllClose(scaledDotProductAttention(qf.cuda(), qf.cuda(), qf.cuda(), { isCausal: true }).cpu(), ref, 4);
      const qh = qf.to({ device: 'cuda', dtype: 'float16' });
      expectAllClose(scaledDotProductAttention(qh, qh, qh, { isCausal: true }).float().cpu(), ref, 2);
    });
  });

  itCuda('gradients on CUDA match the CPU', () => {
    tidy(() => {
      const grads = (d: Device) => {
        const w = tensor(jsUniform(12, 5), { dtype: 'float64', device: d }).view(3, 4).requiresGrad_();
        const x = tensor(jsUniform(8, 6), { dtype: 'float64', device: d }).view(2, 4);
        crossEntropy(layerNorm(gelu(linear(x, w), 'tanh'), [3]), tensor([0, 2], { dtype: 'int64', device: d })).backward();
        expect(w.grad!.device).toBe(d === 'cpu' ? 'cpu' : 'cuda:0');
        return flat(w.grad!.cpu());
      };
      expectAllClose(grads('cuda'), grads('cpu'), 10);
    });
  });

  itCuda('seeded random factories repeat on CUDA; devices mix only by explicit moves', () => {
    tidy(() => {
      manualSeed(3);
      const a = flat(randn([64], { device: 'cuda' }).cpu());
      const r = flat(randint(2, 5, [64], { device: 'cuda' }).cpu());
      manualSeed(3);
      expect(flat(randn([64], { device: 'cuda' }).cpu())).toEqual(a);
      expect(flat(randint(2, 5, [64], { device: 'cuda' }).cpu())).toEqual(r);
      expect(r.every((v) => v >= 2 && v < 5)).toBe(true);
      expect(() => tensor([1]).add(tensor([1], { device: 'cuda' }))).toThrow(/device/);
      expect(() => tensor([1]).to('cuda:99' as Device)).toThrow(/does not exist/);
      expect(noGrad(() => arange(3, undefined, 1, { device: 'cuda' }).cpu().toList())).toEqual([0, 1, 2]);
    });
  });
});
