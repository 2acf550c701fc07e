// Every op against values written out by hand (or from the closed-form formula evaluated with
// plain JS Math), on small literal inputs.
import {
  addmm,
  arange,
  cat,
  crossEntropy,
  dropout,
  embedding,
  empty,
  eye,
  fromTypedArray,
  full,
  gelu,
  layerNorm,
  linear,
  logSoftmax,
  manualSeed,
  matmul,
  ones,
  onesLike,
  outer,
  rand,
  randint,
  randn,
  randperm,
  scaledDotProductAttention,
  softmax,
  stack,
  tensor,
  where,
  zeros,
  zerosLike,
  type Tensor,
} from '../lib';
import { expectAllClose, expectTyped, flat, itT } from './helpers';

const i64 = (data: number[] | number[][]): Tensor => tensor(data, { dtype: 'int64' });

describe('creation', () => {
  itT('zeros, ones and full have the shape, dtype and value asked for', () => {
    const z = zeros([2, 3]);
    expect(z.shape).toEqual([2, 3]);
    expect(z.dtype).toBe('float32');
    expect(z.device).toBe('cpu');
    expect(z.numel).toBe(6);
    expect(z.ndim).toBe(2);
    expect(flat(z)).toEqual([0, 0, 0, 0, 0, 0]);

    const o = ones([2], { dtype: 'int32' });
    expect(o.dtype).toBe('int32');
    expectTyped(o.toArray(), 'Int32Array', [1, 1]);

    const f = full([2, 2], 7.5);
    expect(f.toList()).toEqual([
      [7.5, 7.5],
      [7.5, 7.5],
    ]);
    const fi = full([3], -4, { dtype: 'int64' });
    expectTyped(fi.toArray(), 'BigInt64Array', [-4n, -4n, -4n]);

    const zl = zerosLike(fi);
    expect(zl.dtype).toBe('int64');
    expect(flat(zl)).toEqual([0, 0, 0]);
    const ol = onesLike(f, { dtype: 'float64' });
    expect(ol.dtype).toBe('float64');
    expect(ol.shape).toEqual([2, 2]);
    expect(flat(ol)).toEqual([1, 1, 1, 1]);
    const em = empty([3, 0, 2], { dtype: 'uint8' });
    expect(em.shape).toEqual([3, 0, 2]);
    expect(em.numel).toBe(0);
    expect(() => zeros([2, -1])).toThrow(TypeError);

    const s = zeros([]);
    expect(s.shape).toEqual([]);
    expect(s.numel).toBe(1);
    expect(s.item()).toBe(0);
  });

  itT('arange: int64 for integer arguments, float32 otherwise, negative steps, explicit dtype', () => {
    const a = arange(5);
    expect(a.dtype).toBe('int64');
    expectTyped(a.toArray(), 'BigInt64Array', [0n, 1n, 2n, 3n, 4n]);

    const b = arange(2, 8, 2);
    expect(b.dtype).toBe('int64');
    expect(flat(b)).toEqual([2, 4, 6]);

    const c = arange(0, 1, 0.25);
    expect(c.dtype).toBe('float32');
    expect(flat(c)).toEqual([0, 0.25, 0.5, 0.75]);

    expect(flat(arange(5, 0, -2))).toEqual([5, 3, 1]);

    const d = arange(3, undefined, 1, { dtype: 'float64' });
    expect(d.dtype).toBe('float64');
    expect(flat(d)).toEqual([0, 1, 2]);

    expect(() => arange(0, 3, 0)).toThrow(TypeError);
  });

  itT('eye is the identity', () => {
    expect(eye(3).toList()).toEqual([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    expect(eye(2, { dtype: 'int64' }).dtype).toBe('int64');
  });

  itT('tensor from nested arrays, booleans and scalars', () => {
    const t = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expectTyped(t.toArray(), 'Float32Array', [1, 2, 3, 4, 5, 6]);

    const b = tensor([
      [true, false],
      [false, true],
    ]);
    expect(b.dtype).toBe('bool');
    expect(b.toList()).toEqual([
      [true, false],
      [false, true],
    ]);

    const s = tensor(3.5);
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(3.5);

    const l = tensor([[-3, 7]], { dtype: 'int64' });
    expect(l.dtype).toBe('int64');
    expectTyped(l.toArray(), 'BigInt64Array', [-3n, 7n]);

    const e = tensor([]);
    expect(e.shape).toEqual([0]);
    expect(e.numel).toBe(0);

    expect(() => tensor([[1, 2], [3]])).toThrow(TypeError);
    expect(() => tensor([1, 'a' as unknown as number])).toThrow(TypeError);
  });

  itT('tensor and fromTypedArray from typed arrays keep (or widen) the element type', () => {
    const cases: [ArrayBufferView, string, number[]][] = [
      [new Float32Array([1.5, -2]), 'float32', [1.5, -2]],
      [new Float64Array([0.1, 1e300]), 'float64', [0.1, 1e300]],
      [new Int32Array([-2147483648, 2147483647]), 'int32', [-2147483648, 2147483647]],
      [new BigInt64Array([-(2n ** 40n), 5n]), 'int64', [-(2 ** 40), 5]],
      [new Uint8Array([0, 255]), 'uint8', [0, 255]],
      [new Uint16Array([0, 65535]), 'int32', [0, 65535]],
      [new Int16Array([-32768, 32767]), 'int32', [-32768, 32767]],
      [new Int8Array([-128, 127]), 'int32', [-128, 127]],
    ];
    for (const [data, dtype, values] of cases) {
      const t = tensor(data);
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual([2]);
      expect(flat(t)).toEqual(values);
    }
    const m = fromTypedArray(new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2]);
    expect(m.toList()).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const cast = fromTypedArray(new Int32Array([1, 2]), [2], { dtype: 'float64' });
    expect(cast.dtype).toBe('float64');
    expectTyped(cast.toArray(), 'Float64Array', [1, 2]);
    // a view into a larger buffer reads only its own elements
    const buf = new Float32Array([9, 1, 2, 9]);
    expect(flat(tensor(buf.subarray(1, 3)))).toEqual([1, 2]);
    expect(() => fromTypedArray(new Float32Array(5), [2, 2])).toThrow(/4 elements but the data has 5/);
  });

  itT('randn, rand, randint and randperm are reproducible under manualSeed and in range', () => {
    manualSeed(1234);
    const a = flat(randn([1000]));
    const r1 = flat(rand([500]));
    const i1 = flat(randint(3, 7, [500]));
    manualSeed(1234);
    const b = flat(randn([1000]));
    const r2 = flat(rand([500]));
    const i2 = flat(randint(3, 7, [500]));
    expect(b).toEqual(a);
    expect(r2).toEqual(r1);
    expect(i2).toEqual(i1);
    // the generator advances: the next draw differs
    expect(flat(randn([1000]))).not.toEqual(a);

    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const variance = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.15);
    expect(variance).toBeGreaterThan(0.8);
    expect(variance).toBeLessThan(1.2);

    expect(r1.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.min(...r1)).toBeLessThan(0.05);
    expect(Math.max(...r1)).toBeGreaterThan(0.95);

    const ri = randint(3, 7, [500]);
    expect(ri.dtype).toBe('int64');
    expect(i1.every((x) => Number.isInteger(x) && x >= 3 && x < 7)).toBe(true);
    expect(new Set(i1)).toEqual(new Set([3, 4, 5, 6]));
    expect(randint(0, 2, [4], { dtype: 'int32' }).dtype).toBe('int32');
    expect(() => randint(5, 5, [2])).toThrow(TypeError);

    expect(randn([2, 3], { dtype: 'float64' }).dtype).toBe('float64');
    const p = randperm(10);
    expect(p.dtype).toBe('int64');
    expect(flat(p).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('shape ops', () => {
  // x = [[0, 1, 2], [3, 4, 5]]
  const x23 = () => arange(6, undefined, 1, { dtype: 'float32' }).view(2, 3);

  itT('view with -1, and view of a non-contiguous tensor is refused', () => {
    const x = x23();
    expect(x.view(-1, 2).toList()).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect(x.view(3, -1).shape).toEqual([3, 2]);
    expect(x.view(6).shape).toEqual([6]);
    expect(x.view(-1).shape).toEqual([6]);
    expect(() => x.T.view(6)).toThrow(/view/);
    expect(() => x.view(4, -1)).toThrow();
    // a view shares memory
    x.view(6).select(0, 4).fill_(40);
    expect(x.toList()).toEqual([
      [0, 1, 2],
      [3, 40, 5],
    ]);
  });

  itT('reshape copies when it must', () => {
    const x = x23();
    expect(flat(x.T.reshape(6))).toEqual([0, 3, 1, 4, 2, 5]);
    expect(x.reshape(3, -1).toList()).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
  });

  itT('transpose / T, strides and contiguous', () => {
    const x = x23();
    expect(x.strides).toEqual([3, 1]);
    expect(x.isContiguous).toBe(true);
    const t = x.transpose(0, 1);
    expect(t.shape).toEqual([3, 2]);
    expect(t.toList()).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    expect(t.strides).toEqual([1, 3]);
    expect(t.isContiguous).toBe(false);
    const c = t.contiguous();
    expect(c.isContiguous).toBe(true);
    expect(c.strides).toEqual([2, 1]);
    expect(flat(c)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(x.T.toList()).toEqual(t.toList());
    // negative dims count from the end
    expect(arange(24).view(2, 3, 4).transpose(-1, 0).shape).toEqual([4, 3, 2]);
  });

  itT('permute', () => {
    // y[k][i][j] = x[i][j][k] = 12 i + 4 j + k
    const y = arange(24).view(2, 3, 4).permute(2, 0, 1);
    expect(y.shape).toEqual([4, 2, 3]);
    const l = y.toList() as number[][][];
    expect(l[1][1][2]).toBe(12 + 8 + 1);
    expect(l[3][0][1]).toBe(4 + 3);
    expect(l[0][1][0]).toBe(12);
    expect(flat(y.select(0, 2))).toEqual([2, 6, 10, 14, 18, 22]);
  });

  itT('cat and stack', () => {
    const a = tensor([[1, 2]]);
    const b = tensor([
      [3, 4],
      [5, 6],
    ]);
    expect(cat([a, b]).toList()).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(
      cat(
        [
          tensor([[1], [2]]),
          tensor([
            [3, 4],
            [5, 6],
          ]),
        ],
        1,
      ).toList(),
    ).toEqual([
      [1, 3, 4],
      [2, 5, 6],
    ]);
    expect(cat([tensor([1, 2]), tensor([3])], -1).toList()).toEqual([1, 2, 3]);
    expect(() => cat([a, tensor([[1, 2, 3]])])).toThrow(/cat/);

    const p = tensor([1, 2]);
    const q = tensor([3, 4]);
    expect(stack([p, q]).toList()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(stack([p, q], 1).toList()).toEqual([
      [1, 3],
      [2, 4],
    ]);
    expect(stack([p, q], -1).shape).toEqual([2, 2]);
  });

  itT('split in equal pieces and by sizes, chunk', () => {
    const parts = arange(5).split(2);
    expect(parts.map(flat)).toEqual([[0, 1], [2, 3], [4]]);
    expect(
      arange(5)
        .split([1, 4])
        .map((t) => flat(t)),
    ).toEqual([[0], [1, 2, 3, 4]]);
    const cols = x23().split([2, 1], 1);
    expect(cols[0].toList()).toEqual([
      [0, 1],
      [3, 4],
    ]);
    expect(cols[1].toList()).toEqual([[2], [5]]);
    expect(() => arange(5).split([1, 1])).toThrow();

    expect(
      arange(6)
        .chunk(3)
        .map((t) => flat(t)),
    ).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    const ch = x23().chunk(2, 1);
    expect(ch.map((t) => t.shape)).toEqual([
      [2, 2],
      [2, 1],
    ]);
    expect(ch[1].toList()).toEqual([[2], [5]]);
  });

  itT('narrow and slice (with step, negative start) are views', () => {
    const x = x23();
    const n = x.narrow(1, 1, 2);
    expect(n.toList()).toEqual([
      [1, 2],
      [4, 5],
    ]);
    n.fill_(-1);
    expect(x.toList()).toEqual([
      [0, -1, -1],
      [3, -1, -1],
    ]);

    const r = arange(10);
    expect(flat(r.slice(0, 1, 8, 3))).toEqual([1, 4, 7]);
    expect(flat(r.slice(0, -3))).toEqual([7, 8, 9]);
    expect(flat(r.slice(0, 0, 10, 4))).toEqual([0, 4, 8]);
    expect(flat(r.slice(0, 2, 4))).toEqual([2, 3]);
    expect(x23().slice(1, 0, undefined, 2).toList()).toEqual([
      [0, 2],
      [3, 5],
    ]);
    const s = r.slice(0, 0, undefined, 2);
    s.fill_(0);
    expect(flat(r)).toEqual([0, 1, 0, 3, 0, 5, 0, 7, 0, 9]);
  });

  itT('select and indexSelect', () => {
    const x = x23();
    expect(flat(x.select(0, 1))).toEqual([3, 4, 5]);
    expect(x.select(0, 1).shape).toEqual([3]);
    expect(flat(x.select(1, -1))).toEqual([2, 5]);
    expect(x.indexSelect(1, i64([2, 0, 2])).toList()).toEqual([
      [2, 0, 2],
      [5, 3, 5],
    ]);
    expect(x.indexSelect(0, i64([1])).toList()).toEqual([[3, 4, 5]]);
  });

  itT('unsqueeze, squeeze, expand and flatten', () => {
    const x = x23();
    expect(x.unsqueeze(0).shape).toEqual([1, 2, 3]);
    expect(x.unsqueeze(-1).shape).toEqual([2, 3, 1]);
    expect(x.unsqueeze(1).shape).toEqual([2, 1, 3]);
    const y = zeros([1, 2, 1, 3]);
    expect(y.squeeze().shape).toEqual([2, 3]);
    expect(y.squeeze(0).shape).toEqual([2, 1, 3]);
    expect(y.squeeze(2).shape).toEqual([1, 2, 3]);
    expect(y.squeeze(1).shape).toEqual([1, 2, 1, 3]);

    const e = tensor([[1], [2]]).expand(2, 3);
    expect(e.toList()).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
    expect(e.strides).toEqual([1, 0]);
    expect(tensor([1, 2, 3]).expand(2, -1).toList()).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
    expect(() => tensor([1, 2]).expand(3)).toThrow();

    const z = arange(24).view(2, 3, 4);
    expect(z.flatten().shape).toEqual([24]);
    expect(z.flatten(1).shape).toEqual([2, 12]);
    expect(z.flatten(0, 1).shape).toEqual([6, 4]);
    expect(flat(z.flatten(0, 1).select(0, 5))).toEqual([20, 21, 22, 23]);
  });
});

describe('arithmetic', () => {
  const a = () =>
    tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  const row = () => tensor([10, 20, 30]);
  const col = () => tensor([[2], [4]]);

  itT('add with broadcasting, alpha and numbers', () => {
    expect(a().add(row()).toList()).toEqual([
      [11, 22, 33],
      [14, 25, 36],
    ]);
    expect(a().add(col()).toList()).toEqual([
      [3, 4, 5],
      [8, 9, 10],
    ]);
    expect(a().add(row(), 0.5).toList()).toEqual([
      [6, 12, 18],
      [9, 15, 21],
    ]);
    expect(a().add(2).toList()).toEqual([
      [3, 4, 5],
      [6, 7, 8],
    ]);
    expect(a().add(1, -2).toList()).toEqual([
      [-1, 0, 1],
      [2, 3, 4],
    ]);
    expect(() => a().add(tensor([1, 2]))).toThrow(/\[2, 3\], \[2\]/);
  });

  itT('sub with alpha, mul, div', () => {
    expect(row().sub(a()).toList()).toEqual([
      [9, 18, 27],
      [6, 15, 24],
    ]);
    expectAllClose(a().sub(row(), 0.1), [0, 0, 0, 3, 3, 3], 5);
    expect(a().sub(1).toList()).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(a().mul(col()).toList()).toEqual([
      [2, 4, 6],
      [16, 20, 24],
    ]);
    expect(a().mul(-1.5).toList()).toEqual([
      [-1.5, -3, -4.5],
      [-6, -7.5, -9],
    ]);
    expect(a().div(col()).toList()).toEqual([
      [0.5, 1, 1.5],
      [1, 1.25, 1.5],
    ]);
    expect(a().div(4).toList()).toEqual([
      [0.25, 0.5, 0.75],
      [1, 1.25, 1.5],
    ]);
    // integer tensors divide to float (true division)
    const d = arange(1, 4).div(i64([2, 2, 2]));
    expect(d.dtype).toBe('float32');
    expect(flat(d)).toEqual([0.5, 1, 1.5]);
  });

  itT('pow with number and tensor exponents', () => {
    expect(a().pow(2).toList()).toEqual([
      [1, 4, 9],
      [16, 25, 36],
    ]);
    expectAllClose(tensor([4, 9, 16]).pow(0.5), [2, 3, 4], 5);
    expect(flat(tensor([2, 3]).pow(tensor([3, 2])))).toEqual([8, 9]);
    expectAllClose(tensor([2, 4]).pow(-1), [0.5, 0.25], 6);
  });

  itT('unary ops', () => {
    expect(flat(tensor([1, -2, 0]).neg())).toEqual([-1, 2, -0]);
    expect(flat(tensor([-2, 0, 3.5]).abs())).toEqual([2, 0, 3.5]);
    expect(flat(tensor([4, 2.25, 0]).sqrt())).toEqual([2, 1.5, 0]);
    expectAllClose(tensor([4, 0.25, 16]).rsqrt(), [0.5, 2, 0.25], 6);
    expectAllClose(tensor([0, 1, -1]).exp(), [1, 2.718281828, 0.3678794412], 6);
    expectAllClose(tensor([1, Math.E, 10]).log(), [0, 1, 2.302585093], 6);
    expectAllClose(tensor([0, 0.5, -2]).tanh(), [0, 0.4621171573, -0.9640275801], 6);
    expectAllClose(tensor([0, 2, -1]).sigmoid(), [0.5, 0.880797078, 0.2689414214], 6);
    expect(flat(tensor([-1, 0, 2]).relu())).toEqual([0, 0, 2]);
    expect(flat(tensor([-3, 0.5]).square())).toEqual([9, 0.25]);
    expect(flat(tensor([4, -0.5]).reciprocal())).toEqual([0.25, -2]);
    expect(flat(tensor([-3, 0, 0.2]).sign())).toEqual([-1, 0, 1]);
    expect(tensor([-1]).sqrt().isNan().item()).toBe(1);
    expect(tensor([0]).log().item()).toBe(-Infinity);
  });

  itT('maximum, minimum and clamp', () => {
    const p = tensor([
      [1, 5],
      [-3, 2],
    ]);
    expect(p.maximum(tensor([0, 3])).toList()).toEqual([
      [1, 5],
      [0, 3],
    ]);
    expect(p.minimum(tensor([0, 3])).toList()).toEqual([
      [0, 3],
      [-3, 2],
    ]);
    expect(p.maximum(1.5).toList()).toEqual([
      [1.5, 5],
      [1.5, 2],
    ]);
    expect(p.minimum(0).toList()).toEqual([
      [0, 0],
      [-3, 0],
    ]);
    const c = tensor([-1, 0.5, 3]);
    expect(flat(c.clamp(0, 1))).toEqual([0, 0.5, 1]);
    expect(flat(c.clamp(null, 2))).toEqual([-1, 0.5, 2]);
    expect(flat(c.clamp(0.75))).toEqual([0.75, 0.75, 3]);
    expect(c.clamp(-0.5, 0.5).dtype).toBe('float32');
  });

  itT('comparisons give bool tensors, with numbers and broadcasting', () => {
    const v = tensor([1, 2, 3]);
    const eq = v.eq(2);
    expect(eq.dtype).toBe('bool');
    expect(eq.toList()).toEqual([false, true, false]);
    expect(v.ne(2).toList()).toEqual([true, false, true]);
    expect(v.lt(tensor([2, 2, 2])).toList()).toEqual([true, false, false]);
    expect(v.le(2).toList()).toEqual([true, true, false]);
    expect(v.gt(1.5).toList()).toEqual([false, true, true]);
    expect(v.ge(tensor([[3], [1]])).toList()).toEqual([
      [false, false, true],
      [true, true, true],
    ]);
    const odd = tensor([1, Infinity, NaN, -Infinity]);
    expect(odd.isFinite().toList()).toEqual([true, false, false, false]);
    expect(odd.isNan().toList()).toEqual([false, false, true, false]);
    expect(tensor([true, false]).logicalNot().toList()).toEqual([false, true]);
    expect(tensor([0, 2]).logicalNot().toList()).toEqual([true, false]);
  });

  itT('where with tensor and number operands', () => {
    const cond = tensor([true, false, true]);
    const x = tensor([1, 2, 3]);
    const y = tensor([10, 20, 30]);
    expect(where(cond, x, y).toList()).toEqual([1, 20, 3]);
    expect(where(cond, x, -1).toList()).toEqual([1, -1, 3]);
    expect(where(cond, 5, y).toList()).toEqual([5, 20, 5]);
    expect(where(cond, 0.5, -2).toList()).toEqual([0.5, -2, 0.5]);
    expect(where(tensor([[true], [false]]), x, y).toList()).toEqual([
      [1, 2, 3],
      [10, 20, 30],
    ]);
    expect(where(x.gt(1.5), x, 0).toList()).toEqual([0, 2, 3]);
  });

  itT('maskedFill with a full and a broadcast mask', () => {
    const m = tensor([
      [true, false, true],
      [false, false, true],
    ]);
    expect(a().maskedFill(m, -1).toList()).toEqual([
      [-1, 2, -1],
      [4, 5, -1],
    ]);
    expect(
      a()
        .maskedFill(tensor([false, true, false]), -Infinity)
        .toList(),
    ).toEqual([
      [1, -Infinity, 3],
      [4, -Infinity, 6],
    ]);
  });

  itT('triu and tril with diagonals', () => {
    const m = arange(1, 10, 1, { dtype: 'float32' }).view(3, 3);
    expect(m.triu().toList()).toEqual([
      [1, 2, 3],
      [0, 5, 6],
      [0, 0, 9],
    ]);
    expect(m.triu(1).toList()).toEqual([
      [0, 2, 3],
      [0, 0, 6],
      [0, 0, 0],
    ]);
    expect(m.tril().toList()).toEqual([
      [1, 0, 0],
      [4, 5, 0],
      [7, 8, 9],
    ]);
    expect(m.tril(-1).toList()).toEqual([
      [0, 0, 0],
      [4, 0, 0],
      [7, 8, 0],
    ]);
    expect(ones([2, 3]).tril().toList()).toEqual([
      [1, 0, 0],
      [1, 1, 0],
    ]);
  });
});

describe('reductions', () => {
  const a = () =>
    tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);

  itT('sum and mean over all elements and over dims, with keepdim', () => {
    const s = a().sum();
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(21);
    expect(flat(a().sum(0))).toEqual([5, 7, 9]);
    expect(flat(a().sum(1))).toEqual([6, 15]);
    expect(flat(a().sum(-1))).toEqual([6, 15]);
    const k = a().sum(1, true);
    expect(k.shape).toEqual([2, 1]);
    expect(k.toList()).toEqual([[6], [15]]);
    const both = a().sum([0, 1]);
    expect(both.shape).toEqual([]);
    expect(both.item()).toBe(21);

    expect(a().mean().item()).toBe(3.5);
    expect(flat(a().mean(0))).toEqual([2.5, 3.5, 4.5]);
    expect(a().mean(1, true).toList()).toEqual([[2], [5]]);
    expect(a().mean([0, 1], true).shape).toEqual([1, 1]);
    // int64 sums stay int64
    const si = arange(5).sum();
    expect(si.dtype).toBe('int64');
    expect(si.item()).toBe(10);
  });

  itT('norm with p = 1 and 2, over dims', () => {
    const m = tensor([
      [3, -4],
      [0, 0],
    ]);
    expect(m.norm(1).item()).toBe(7);
    expectAllClose([m.norm(2).item()], [5], 6);
    expectAllClose([m.norm().item()], [5], 6);
    const r = tensor([
      [3, 4],
      [6, -8],
    ]);
    expectAllClose(r.norm(2, 1), [5, 10], 5);
    expectAllClose(r.norm(1, 0), [9, 12], 6);
    expect(r.norm(2, 1, true).shape).toEqual([2, 1]);
  });

  itT('max, min, maxDim / minDim with indices, argmax', () => {
    const m = tensor([
      [1, 5, 3],
      [7, 2, 4],
    ]);
    expect(m.max().item()).toBe(7);
    expect(m.min().item()).toBe(1);
    const { values, indices } = m.maxDim(1);
    expect(flat(values)).toEqual([5, 7]);
    expect(indices.dtype).toBe('int64');
    expect(flat(indices)).toEqual([1, 0]);
    const k = m.maxDim(0, true);
    expect(k.values.toList()).toEqual([[7, 5, 4]]);
    expect(k.indices.toList()).toEqual([[1, 0, 1]]);
    const mn = m.minDim(1);
    expect(flat(mn.values)).toEqual([1, 2]);
    expect(flat(mn.indices)).toEqual([0, 1]);
    expect(m.argmax().item()).toBe(3);
    expect(m.argmax().dtype).toBe('int64');
    expect(flat(m.argmax(1))).toEqual([1, 0]);
    expect(m.argmax(0, true).toList()).toEqual([[1, 0, 1]]);
    expect(m.argmax(-1, true).shape).toEqual([2, 1]);
  });

  itT('all and any', () => {
    expect(tensor([true, true]).all().item()).toBe(1);
    expect(tensor([true, false]).all().item()).toBe(0);
    expect(tensor([true, false]).any().item()).toBe(1);
    expect(tensor([false, false]).any().item()).toBe(0);
    expect(tensor([false, false]).any().dtype).toBe('bool');
    expect(tensor([1, 2]).all().item()).toBe(1);
    expect(tensor([1, 0]).all().item()).toBe(0);
    expect(tensor([0, 0.5]).any().item()).toBe(1);
  });
});

describe('matrix products', () => {
  const A = () =>
    tensor([
      [1, 2],
      [3, 4],
    ]);
  const B = () =>
    tensor([
      [5, 6],
      [7, 8],
    ]);
  const AB = [
    [19, 22],
    [43, 50],
  ];

  itT('matmul and mm', () => {
    expect(A().matmul(B()).toList()).toEqual(AB);
    expect(matmul(A(), B()).toList()).toEqual(AB);
    expect(A().mm(B()).toList()).toEqual(AB);
    expect(flat(A().matmul(tensor([1, 1])))).toEqual([3, 7]);
    expect(tensor([1, 1]).matmul(A()).toList()).toEqual([4, 6]);
    // batched with broadcasting: (2, 2, 2) @ (2, 2)
    const batch = stack([A(), eye(2)]).matmul(B());
    expect(batch.toList()).toEqual([
      AB,
      [
        [5, 6],
        [7, 8],
      ],
    ]);
    // (2, 3) @ (3, 1)
    expect(
      tensor([
        [1, 0, 2],
        [0, 1, -1],
      ])
        .matmul(tensor([[1], [2], [3]]))
        .toList(),
    ).toEqual([[7], [-1]]);
    expect(() => A().mm(tensor([[1, 2, 3]]))).toThrow(/\[2, 2\], \[1, 3\]/);
  });

  itT('bmm', () => {
    const r = stack([A(), eye(2)]).bmm(stack([B(), A()]));
    expect(r.toList()).toEqual([
      AB,
      [
        [1, 2],
        [3, 4],
      ],
    ]);
  });

  itT('addmm with beta and alpha', () => {
    expect(addmm(tensor([1, 1]), A(), B(), 2, 0.5).toList()).toEqual([
      [11.5, 13],
      [23.5, 27],
    ]);
    expect(addmm(tensor([[1], [-1]]), A(), B()).toList()).toEqual([
      [20, 23],
      [42, 49],
    ]);
  });

  itT('linear with and without bias, outer', () => {
    const x = tensor([
      [1, 2, 3],
      [0, 1, 0],
    ]);
    const w = tensor([
      [1, 0, -1],
      [2, 1, 0],
    ]);
    expect(linear(x, w, tensor([0.5, -0.5])).toList()).toEqual([
      [-1.5, 3.5],
      [0.5, 0.5],
    ]);
    expect(linear(x, w).toList()).toEqual([
      [-2, 4],
      [0, 1],
    ]);
    expect(linear(x, w, null).shape).toEqual([2, 2]);
    // leading batch dims pass through
    expect(linear(x.unsqueeze(0), w).shape).toEqual([1, 2, 2]);
    expect(outer(tensor([1, 2]), tensor([3, 4, 5])).toList()).toEqual([
      [3, 4, 5],
      [6, 8, 10],
    ]);
  });
});

describe('neural-network functions', () => {
  const xs = [-2, -0.5, 0, 0.5, 1, 3];

  itT("gelu 'none' is x·Φ(x)", () => {
    // x·Φ(x) with Φ the standard normal CDF: Φ(-2) = 0.0227501319, Φ(-0.5) = 0.3085375387,
    // Φ(0.5) = 0.6914624613, Φ(1) = 0.8413447461, Φ(3) = 0.9986501020
    const expected = [-0.0455002639, -0.1542687694, 0, 0.3457312306, 0.8413447461, 2.995950306];
    expectAllClose(gelu(tensor(xs)), expected, 5);
    expectAllClose(tensor(xs).gelu(), expected, 5);
    expectAllClose(gelu(tensor(xs, { dtype: 'float64' }), 'none'), expected, 9);
  });

  itT("gelu 'tanh' is 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))", () => {
    const formula = xs.map((x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))));
    expect(formula[4]).toBeCloseTo(0.8411919906, 9);
    expect(formula[0]).toBeCloseTo(-0.0454023059, 9);
    expectAllClose(gelu(tensor(xs), 'tanh'), formula, 6);
    expectAllClose(tensor(xs, { dtype: 'float64' }).gelu('tanh'), formula, 12);
    // the two differ
    expect(Math.abs(gelu(tensor([1]), 'tanh').item() - gelu(tensor([1])).item())).toBeGreaterThan(1e-4);
  });

  itT('softmax and logSoftmax', () => {
    const v = tensor([1, 2, 3]);
    const sm = [0.0900305732, 0.2447284711, 0.6652409558];
    expectAllClose(softmax(v, 0), sm, 6);
    expectAllClose(v.softmax(-1), sm, 6);
    expectAllClose(logSoftmax(v, 0), [-2.4076059644, -1.4076059644, -0.4076059644], 6);
    expectAllClose(v.logSoftmax(0), [-2.4076059644, -1.4076059644, -0.4076059644], 6);
    const m = tensor([
      [1, 2],
      [3, 4],
    ]);
    // over dim 0 each column differs by 2: [σ(−2), σ(2)]
    expectAllClose(softmax(m, 0), [0.119202922, 0.119202922, 0.880797078, 0.880797078], 6);
    expectAllClose(softmax(m, 1), [0.2689414214, 0.7310585786, 0.2689414214, 0.7310585786], 6);
    // shift invariance and large logits stay finite
    expectAllClose(softmax(tensor([1001, 1002, 1003]), 0), sm, 6);
    expectAllClose(logSoftmax(tensor([[1000, 0]]), 1), [0, -1000], 4);
  });

  itT('layerNorm with weight and bias against the formula', () => {
    const rows = [
      [1, 2, 3, 4],
      [2, 2, 2, 6],
    ];
    const w = [1, 2, 0.5, -1];
    const b = [0, 0.5, 1, -1];
    const eps = 1e-5;
    const ref = (withAffine: boolean) =>
      rows.flatMap((r) => {
        const mu = r.reduce((s, x) => s + x, 0) / r.length;
        const v = r.reduce((s, x) => s + (x - mu) ** 2, 0) / r.length; // biased variance
        return r.map((x, j) => {
          const n = (x - mu) / Math.sqrt(v + eps);
          return withAffine ? n * w[j] + b[j] : n;
        });
      });
    // row 0: μ = 2.5, σ² = 1.25; row 1: μ = 3, σ² = 3
    expect(ref(false)[0]).toBeCloseTo(-1.5 / Math.sqrt(1.25), 4);
    expect(ref(false)[7]).toBeCloseTo(3 / Math.sqrt(3), 4);
    const x = tensor(rows);
    expectAllClose(layerNorm(x, [4], tensor(w), tensor(b)), ref(true), 5);
    expectAllClose(layerNorm(x, [4]), ref(false), 5);
    expectAllClose(layerNorm(x, [4], null, null, eps), ref(false), 5);
    // eps matters for a constant row: (x − μ)/√(0 + eps) = 0
    expectAllClose(layerNorm(tensor([[5, 5]]), [2], null, tensor([1, 2])), [1, 2], 6);
    // normalizing over two trailing dims equals normalizing the flattened row
    expectAllClose(layerNorm(x.view(2, 2, 2), [2, 2]), ref(false), 5);
    expectAllClose(layerNorm(x.double(), [4], tensor(w, { dtype: 'float64' }), tensor(b, { dtype: 'float64' })), ref(true), 10);
  });

  itT('embedding gathers rows for any index shape', () => {
    const W = tensor([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    const e = embedding(
      W,
      i64([
        [2, 0],
        [1, 1],
      ]),
    );
    expect(e.shape).toEqual([2, 2, 2]);
    expect(e.toList()).toEqual([
      [
        [4, 5],
        [0, 1],
      ],
      [
        [2, 3],
        [2, 3],
      ],
    ]);
    expect(embedding(W, i64([1])).toList()).toEqual([[2, 3]]);
    expect(embedding(W, tensor([2, 0], { dtype: 'int32' })).toList()).toEqual([
      [4, 5],
      [0, 1],
    ]);
    expect(() => embedding(W, i64([3]))).toThrow();
  });

  itT('dropout: identity in eval and for p = 0; zeros ≈ p and scales by 1/(1 − p) in training', () => {
    const x = ones([4000]);
    expect(flat(dropout(x, 0.3, false)).every((v) => v === 1)).toBe(true);
    expect(flat(dropout(x, 0, true)).every((v) => v === 1)).toBe(true);
    expect(flat(dropout(x, 1, true)).every((v) => v === 0)).toBe(true);

    manualSeed(7);
    const y = flat(dropout(x, 0.3, true));
    const zerosCount = y.filter((v) => v === 0).length;
    expect(zerosCount / y.length).toBeGreaterThan(0.27);
    expect(zerosCount / y.length).toBeLessThan(0.33);
    const kept = y.filter((v) => v !== 0);
    for (const v of kept) expect(v).toBeCloseTo(1 / 0.7, 6);
    // the mask is reproducible
    manualSeed(7);
    expect(flat(dropout(x, 0.3, true))).toEqual(y);
    // the values kept are the input's, scaled
    const r = tensor([1, 2, 3, 4, 5, 6, 7, 8]);
    const d = flat(dropout(r, 0.5, true));
    d.forEach((v, i) => expect(v === 0 || v === 2 * (i + 1)).toBe(true));
    expect(() => dropout(x, 1.5, true)).toThrow(TypeError);
  });

  describe('scaledDotProductAttention', () => {
    // explicit softmax(q·kᵀ/√d + mask)·v on nested arrays, per (batch, head)
    function reference(q: number[][], k: number[][], v: number[][], causal: boolean): number[][] {
      const d = q[0].length;
      return q.map((qi, i) => {
        const scores = k.map((kj, j) => (causal && j > i ? -Infinity : qi.reduce((s, x, c) => s + x * kj[c], 0) / Math.sqrt(d)));
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((s, x) => s + x, 0);
        return v[0].map((_, c) => e.reduce((s, w, j) => s + (w / z) * v[j][c], 0));
      });
    }
    // (B = 1, heads = 2, T = 3, dh = 2)
    const Q = [
      [
        [1, 0],
        [0, 1],
        [1, 1],
      ],
      [
        [0.5, -1],
        [2, 0],
        [-1, 0.25],
      ],
    ];
    const K = [
      [
        [1, 2],
        [0, 1],
        [-1, 0],
      ],
      [
        [0, 0],
        [1, -1],
        [0.5, 0.5],
      ],
    ];
    const V = [
      [
        [1, 0],
        [0, 2],
        [3, 1],
      ],
      [
        [-1, 1],
        [2, 2],
        [0, -3],
      ],
    ];

    itT('non-causal equals the explicit formula', () => {
      const out = scaledDotProductAttention(tensor([Q]), tensor([K]), tensor([V]));
      expect(out.shape).toEqual([1, 2, 3, 2]);
      const expected = [0, 1].flatMap((h) => reference(Q[h], K[h], V[h], false).flat());
      // head 0, query 0: scores [1, 0, −1]/√2
      const w0 = [1, 0, -1].map((s) => Math.exp(s / Math.SQRT2));
      const z0 = w0[0] + w0[1] + w0[2];
      expect(expected[0]).toBeCloseTo((w0[0] * 1 + w0[2] * 3) / z0, 12);
      expectAllClose(out, expected, 5);
      expectAllClose(
        scaledDotProductAttention(tensor([Q], { dtype: 'float64' }), tensor([K], { dtype: 'float64' }), tensor([V], { dtype: 'float64' })),
        expected,
        12,
      );
    });

    itT('causal equals the explicit formula with future keys masked, and so does a boolean mask', () => {
      const expected = [0, 1].flatMap((h) => reference(Q[h], K[h], V[h], true).flat());
      // the first query sees only the first key
      expect(expected.slice(0, 2)).toEqual([1, 0]);
      expectAllClose(scaledDotProductAttention(tensor([Q]), tensor([K]), tensor([V]), { isCausal: true }), expected, 5);
      const allow = tensor([
        [true, false, false],
        [true, true, false],
        [true, true, true],
      ]);
      expectAllClose(scaledDotProductAttention(tensor([Q]), tensor([K]), tensor([V]), { mask: allow }), expected, 5);
      const additive = zeros([3, 3]).maskedFill(allow.logicalNot(), -Infinity);
      expectAllClose(scaledDotProductAttention(tensor([Q]), tensor([K]), tensor([V]), { mask: additive }), expected, 5);
    });

    itT('keys longer than queries (S ≠ T)', () => {
      const q = [[[1, -1]]];
      const k = [
        [
          [1, 0],
          [0, 1],
          [1, 1],
          [-2, 0],
        ],
      ];
      const v = [
        [
          [1, 2],
          [3, 4],
          [5, 6],
          [7, 8],
        ],
      ];
      const out = scaledDotProductAttention(tensor([q]), tensor([k]), tensor([v]));
      expect(out.shape).toEqual([1, 1, 1, 2]);
      expectAllClose(out, reference(q[0], k[0], v[0], false).flat(), 5);
    });
  });

  describe('crossEntropy', () => {
    const L = [
      [1, 2, 3],
      [1, 1, 1],
      [0, 0, 2],
      [-1, 0.5, 0],
    ];
    const T = [2, 0, 1, 0];
    const lse = (r: number[]) => Math.log(r.reduce((s, x) => s + Math.exp(x), 0));
    // −log softmax(z)[t] = logsumexp(z) − z[t]; with smoothing ε: (1 − ε)·that + ε/C·Σ_c (lse − z_c)
    const perRow = (eps: number) =>
      L.map((r, i) => (1 - eps) * (lse(r) - r[T[i]]) + (eps / r.length) * r.reduce((s, z) => s + (lse(r) - z), 0));

    itT('reductions none / sum / mean against the formula', () => {
      const ref = perRow(0);
      expect(ref[0]).toBeCloseTo(0.4076059644, 9);
      expect(ref[1]).toBeCloseTo(Math.log(3), 12);
      const logits = tensor(L);
      const targets = i64(T);
      const none = crossEntropy(logits, targets, { reduction: 'none' });
      expect(none.shape).toEqual([4]);
      expectAllClose(none, ref, 5);
      expectAllClose([crossEntropy(logits, targets, { reduction: 'sum' }).item()], [ref.reduce((s, x) => s + x, 0)], 5);
      const mean = crossEntropy(logits, targets);
      expect(mean.shape).toEqual([]);
      expectAllClose([mean.item()], [ref.reduce((s, x) => s + x, 0) / 4], 5);
      expectAllClose([crossEntropy(logits.double(), targets).item()], [ref.reduce((s, x) => s + x, 0) / 4], 12);
    });

    itT('ignoreIndex: default −100 and a custom one are skipped (mean over the rest)', () => {
      const ref = perRow(0);
      const logits = tensor(L);
      const t1 = i64([2, -100, 1, 0]);
      expectAllClose([crossEntropy(logits, t1).item()], [(ref[0] + ref[2] + ref[3]) / 3], 5);
      expectAllClose(crossEntropy(logits, t1, { reduction: 'none' }), [ref[0], 0, ref[2], ref[3]], 5);
      expectAllClose([crossEntropy(logits, t1, { reduction: 'sum' }).item()], [ref[0] + ref[2] + ref[3]], 5);
      // ignoreIndex 0 skips the targets equal to 0 (rows 1 and 3)
      expectAllClose([crossEntropy(logits, i64(T), { ignoreIndex: 0 }).item()], [(ref[0] + ref[2]) / 2], 5);
    });

    itT('label smoothing', () => {
      const ref = perRow(0.1);
      const logits = tensor(L);
      expectAllClose(crossEntropy(logits, i64(T), { labelSmoothing: 0.1, reduction: 'none' }), ref, 5);
      expectAllClose([crossEntropy(logits, i64(T), { labelSmoothing: 0.1 }).item()], [ref.reduce((s, x) => s + x, 0) / 4], 5);
      // with ignored rows the mean is over the others
      expectAllClose([crossEntropy(logits, i64([2, -100, 1, 0]), { labelSmoothing: 0.1 }).item()], [(ref[0] + ref[2] + ref[3]) / 3], 5);
    });
  });
});

describe('in-place ops return this', () => {
  itT('add_, sub_, mul_, div_, pow_ with tensors and numbers', () => {
    const x = tensor([1, 2, 3]);
    expect(x.add_(tensor([1, 1, 1]), 2)).toBe(x);
    expect(flat(x)).toEqual([3, 4, 5]);
    expect(x.add_(1)).toBe(x);
    expect(flat(x)).toEqual([4, 5, 6]);
    expect(x.sub_(tensor([1, 2, 3]), 0.5)).toBe(x);
    expect(flat(x)).toEqual([3.5, 4, 4.5]);
    expect(x.sub_(0.5)).toBe(x);
    expect(flat(x)).toEqual([3, 3.5, 4]);
    expect(x.mul_(tensor([2, 2, 0.5]))).toBe(x);
    expect(flat(x)).toEqual([6, 7, 2]);
    expect(x.mul_(-1)).toBe(x);
    expect(flat(x)).toEqual([-6, -7, -2]);
    expect(x.div_(tensor([2, 7, -4]))).toBe(x);
    expect(flat(x)).toEqual([-3, -1, 0.5]);
    expect(x.div_(0.5)).toBe(x);
    expect(flat(x)).toEqual([-6, -2, 1]);
    expect(x.pow_(2)).toBe(x);
    expect(flat(x)).toEqual([36, 4, 1]);
    expect(x.pow_(tensor([0.5, 1, 3]))).toBe(x);
    expectAllClose(x, [6, 4, 1], 5);
    // broadcast source into a larger destination
    const m = zeros([2, 2]);
    m.add_(tensor([1, 2]));
    expect(m.toList()).toEqual([
      [1, 2],
      [1, 2],
    ]);
  });

  itT('copy_, zero_, fill_, sqrt_', () => {
    const x = tensor([1, 2, 3]);
    expect(x.copy_(tensor([7, 8, 9]))).toBe(x);
    expect(flat(x)).toEqual([7, 8, 9]);
    // copy_ casts and broadcasts
    expect(x.copy_(tensor([5], { dtype: 'int64' }))).toBe(x);
    expect(flat(x)).toEqual([5, 5, 5]);
    expect(x.dtype).toBe('float32');
    expect(x.zero_()).toBe(x);
    expect(flat(x)).toEqual([0, 0, 0]);
    expect(x.fill_(2.5)).toBe(x);
    expect(flat(x)).toEqual([2.5, 2.5, 2.5]);
    const s = tensor([4, 9, 0.25]);
    expect(s.sqrt_()).toBe(s);
    expect(flat(s)).toEqual([2, 3, 0.5]);
    const i = zeros([2], { dtype: 'int64' });
    i.fill_(7);
    expectTyped(i.toArray(), 'BigInt64Array', [7n, 7n]);
  });

  itT('addcmul_, addcdiv_, lerp_, maskedFill_', () => {
    const x = tensor([1, 2, 3]);
    const a = tensor([2, 4, 6]);
    const b = tensor([0.5, 2, -1]);
    expect(x.addcmul_(a, b, 0.5)).toBe(x);
    // 1 + 0.5·1, 2 + 0.5·8, 3 + 0.5·(−6)
    expect(flat(x)).toEqual([1.5, 6, 0]);
    expect(x.addcmul_(a, b)).toBe(x);
    expect(flat(x)).toEqual([2.5, 14, -6]);
    expect(x.addcdiv_(a, b, 2)).toBe(x);
    // + 2·[4, 2, −6]
    expect(flat(x)).toEqual([10.5, 18, -18]);
    expect(x.addcdiv_(a, b)).toBe(x);
    expect(flat(x)).toEqual([14.5, 20, -24]);

    const y = tensor([0, 10, -4]);
    expect(y.lerp_(tensor([4, 0, 4]), 0.25)).toBe(y);
    expect(flat(y)).toEqual([1, 7.5, -2]);

    const z = tensor([
      [1, 2],
      [3, 4],
    ]);
    expect(z.maskedFill_(tensor([true, false]), 9)).toBe(z);
    expect(z.toList()).toEqual([
      [9, 2],
      [9, 4],
    ]);
    expect(
      z.maskedFill_(
        tensor([
          [false, true],
          [false, false],
        ]),
        -1,
      ),
    ).toBe(z);
    expect(z.toList()).toEqual([
      [9, -1],
      [9, 4],
    ]);
  });

  itT('in-place ops on a view write through to the base', () => {
    const base = zeros([2, 3]);
    base.select(0, 1).add_(tensor([1, 2, 3]));
    base.narrow(1, 0, 1).fill_(-1);
    base.T.select(0, 2).mul_(10);
    expect(base.toList()).toEqual([
      [-1, 0, 0],
      [-1, 2, 30],
    ]);
  });
});

describe('reading data out', () => {
  itT('item()', () => {
    expect(tensor(3.5).item()).toBe(3.5);
    expect(tensor([[-2]]).item()).toBe(-2);
    expect(i64([42]).item()).toBe(42);
    expect(tensor([true]).item()).toBe(1);
    expect(tensor([false]).item()).toBe(0);
    expect(tensor([0.1], { dtype: 'float64' }).item()).toBe(0.1);
    expect(() => tensor([1, 2]).item()).toThrow(/one element/);
  });

  itT('toList() nests like the shape, with numbers or booleans', () => {
    expect(tensor(2).toList()).toBe(2);
    expect(tensor([1.5]).toList()).toEqual([1.5]);
    expect(arange(8).view(2, 2, 2).toList()).toEqual([
      [
        [0, 1],
        [2, 3],
      ],
      [
        [4, 5],
        [6, 7],
      ],
    ]);
    expect(zeros([2, 0]).toList()).toEqual([[], []]);
    expect(tensor([true, false]).toList()).toEqual([true, false]);
    // a non-contiguous view reads in its own row-major order
    expect(arange(6).view(2, 3).T.toList()).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
  });

  itT('toArray() gives the typed array of the dtype', () => {
    expect(Object.prototype.toString.call(tensor([1, 2]).toArray())).toBe('[object Float32Array]');
    expect(Object.prototype.toString.call(tensor([1, 2], { dtype: 'float64' }).toArray())).toBe('[object Float64Array]');
    expect(Object.prototype.toString.call(arange(2).toArray())).toBe('[object BigInt64Array]');
    expect(Object.prototype.toString.call(tensor([1, 2], { dtype: 'int32' }).toArray())).toBe('[object Int32Array]');
    expect(Object.prototype.toString.call(tensor([1, 2], { dtype: 'uint8' }).toArray())).toBe('[object Uint8Array]');
    expectTyped(tensor([true, false]).toArray(), 'Uint8Array', [1, 0]);
    expectTyped(tensor([1.5, 2], { dtype: 'bfloat16' }).toArray(), 'Float32Array', [1.5, 2]);
    expectTyped(tensor([1.5, 2], { dtype: 'float16' }).toArray(), 'Float32Array', [1.5, 2]);
  });

  it('toArrayAsync() resolves to the same elements as toArray()', async () => {
    const t = arange(6, undefined, 1, { dtype: 'float32' }).view(2, 3);
    const tt = t.T;
    const i = arange(4);
    const b = tensor([true, false, true]);
    try {
      const [a1, a2, a3, a4] = await Promise.all([t.toArrayAsync(), tt.toArrayAsync(), i.toArrayAsync(), b.toArrayAsync()]);
      expectTyped(a1, 'Float32Array', [0, 1, 2, 3, 4, 5]);
      expectTyped(a2, 'Float32Array', [0, 3, 1, 4, 2, 5]);
      expectTyped(a3, 'BigInt64Array', [0n, 1n, 2n, 3n]);
      expectTyped(a4, 'Uint8Array', [1, 0, 1]);
      // disposing right after the call does not break the read
      const d = tensor([7, 8]);
      const p = d.toArrayAsync();
      d.dispose();
      expectTyped(await p, 'Float32Array', [7, 8]);
      // a disposed tensor is refused at the call (synchronously)
      expect(() => d.toArrayAsync()).toThrow(/disposed/);
      // the values are those of the call: what the program does to the tensor afterwards (in place,
      // or a new storage and shape) is not seen by the read, whatever the dtype
      for (const dtype of ['float32', 'bfloat16'] as const) {
        const w = tensor([1, 2, 3], { dtype });
        const pending = w.toArrayAsync();
        w.fill_(7);
        w.setData(tensor([9, 9, 9, 9, 9], { dtype }));
        expectTyped(await pending, 'Float32Array', [1, 2, 3]);
        w.dispose();
      }
    } finally {
      for (const x of [t, tt, i, b]) x.dispose();
    }
  });
});

// Numbers as second operands should behave like Python scalars in PyTorch: an integral number
// keeps an integer tensor integral, and a float64 tensor sees the number at double precision.
describe('number operands keep the dtype and precision (PyTorch scalar semantics)', () => {
  itT('integer tensor op integer number stays integer', () => {
    expect(arange(3).add(1).dtype).toBe('int64');
    expect(arange(3).mul(2).dtype).toBe('int64');
    expect(tensor([1, 2], { dtype: 'int32' }).sub(1).dtype).toBe('int32');
    expect(flat(arange(3).add(1))).toEqual([1, 2, 3]);
    // an integer tensor with a float number becomes float (category promotion)
    expect(arange(3).add(0.5).dtype).toBe('float32');
  });

  itT('in-place integer ops with numbers work', () => {
    const x = arange(3);
    expect(flat(x.add_(1))).toEqual([1, 2, 3]);
    expect(flat(x.mul_(2))).toEqual([2, 4, 6]);
    expect(flat(x.sub_(1))).toEqual([1, 3, 5]);
  });

  itT('a float64 tensor sees a number operand at double precision', () => {
    const z = zeros([1], { dtype: 'float64' });
    expect(z.add(0.1).item()).toBe(0.1);
    expect(z.add(16777217).item()).toBe(16777217);
    expect(
      ones([1], { dtype: 'float64' })
        .mul(1 / 3)
        .item(),
    ).toBe(1 / 3);
    expect(where(tensor([false]), z, 0.1).item()).toBe(0.1);
    expect(tensor([1], { dtype: 'float64' }).maximum(1.1).item()).toBe(1.1);
  });
});
