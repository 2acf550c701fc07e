// Autograd: gradients of composite float64 expressions against central finite differences, and
// the gradient API (leaves, accumulation, grad mode, detach, retainGrad, setData).
import {
  addmm,
  cat,
  crossEntropy,
  embedding,
  enableGrad,
  gelu,
  isGradEnabled,
  layerNorm,
  linear,
  logSoftmax,
  noGrad,
  ones,
  outer,
  scaledDotProductAttention,
  softmax,
  stack,
  tensor,
  tidy,
  where,
  zeros,
  type Tensor,
} from '../lib';
import { flat, gradCheck, itT, jsUniform, type GradInput } from './helpers';

const f64 = (data: number[], shape: number[]): Tensor => tensor(data, { dtype: 'float64' }).view(...shape);
const i64 = (data: number[] | number[][]): Tensor => tensor(data, { dtype: 'int64' });
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** A float64 input of this shape with seeded values in [lo, hi). */
const input = (shape: number[], seed: number, lo = -1, hi = 1): GradInput => ({ shape, data: jsUniform(numel(shape), seed, lo, hi) });

const TOL = 1e-6;

describe('gradients against central finite differences (float64)', () => {
  itT('a tiny MLP: linear → gelu(tanh) → layerNorm → linear → crossEntropy', () => {
    const targets = i64([0, 2, 1]);
    const r = gradCheck(
      [input([3, 4], 1), input([5, 4], 2), input([5], 3), input([5], 4, 0.5, 1.5), input([5], 5), input([3, 5], 6), input([3], 7)],
      ([x, w1, b1, g, beta, w2, b2]) => {
        const h = layerNorm(gelu(linear(x, w1, b1), 'tanh'), [5], g, beta);
        return crossEntropy(linear(h, w2, b2), targets);
      },
    );
    expect(r.relError).toBeLessThan(TOL);
    // every parameter receives a non-trivial gradient
    for (const g of r.analytic) expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(1e-4);
  });

  itT('the MLP with label smoothing, ignoreIndex and sum reduction', () => {
    const targets = i64([1, -100, 2, 0]);
    const r = gradCheck([input([4, 3], 11), input([3, 3], 12)], ([x, w]) =>
      crossEntropy(linear(x, w).gelu('none'), targets, { labelSmoothing: 0.2, reduction: 'sum' }),
    );
    expect(r.relError).toBeLessThan(TOL);
    // the ignored row contributes nothing
    expect(r.analytic[0].slice(3, 6)).toEqual([0, 0, 0]);
  });

  itT('attention via scaledDotProductAttention with isCausal', () => {
    const shape = [1, 2, 3, 4];
    const c = f64(jsUniform(24, 20), shape);
    const r = gradCheck([input(shape, 21), input(shape, 22), input(shape, 23)], ([q, k, v]) =>
      scaledDotProductAttention(q, k, v, { isCausal: true }).mul(c).sum(),
    );
    expect(r.relError).toBeLessThan(TOL);
    // causal: the last key and value are seen only by the last query; the first query sees only key 0,
    // so its scores are constant → q[0] of each head gets zero gradient
    expect(r.analytic[0].slice(0, 4).every((x) => Math.abs(x) < 1e-15)).toBe(true);
    expect(r.analytic[0].slice(12, 16).every((x) => Math.abs(x) < 1e-15)).toBe(true);
  });

  itT('attention without a mask, and with an additive mask (keys longer than queries)', () => {
    const c = f64(jsUniform(2 * 2 * 3, 30), [1, 2, 2, 3]);
    const mask = f64([0, -1, 0.5, -Infinity, 0, 0, 2, 0], [2, 4]);
    const r = gradCheck([input([1, 2, 2, 3], 31), input([1, 2, 4, 3], 32), input([1, 2, 4, 3], 33)], ([q, k, v]) =>
      scaledDotProductAttention(q, k, v)
        .mul(c)
        .sum()
        .add(scaledDotProductAttention(q, k, v, { mask }).mul(c).sum()),
    );
    expect(r.relError).toBeLessThan(TOL);
  });

  itT('softmax and logSoftmax over different dims', () => {
    const c1 = f64(jsUniform(6, 40), [2, 3]);
    const c2 = f64(jsUniform(6, 41), [2, 3]);
    const r = gradCheck([input([2, 3], 42, -2, 2)], ([x]) =>
      softmax(x, 1).mul(c1).sum().add(logSoftmax(x, 0).mul(c2).sum()).add(x.softmax(-1).logSoftmax(0).mul(c2).sum()),
    );
    expect(r.relError).toBeLessThan(TOL);
  });

  itT('embedding (repeated indices accumulate)', () => {
    const idx = i64([
      [0, 2],
      [2, 4],
    ]);
    const c = f64(jsUniform(12, 50), [2, 2, 3]);
    const r = gradCheck([input([5, 3], 51)], ([w]) => embedding(w, idx).tanh().mul(c).sum());
    expect(r.relError).toBeLessThan(TOL);
    // rows 1 and 3 are never gathered
    expect(r.analytic[0].slice(3, 6)).toEqual([0, 0, 0]);
    expect(r.analytic[0].slice(9, 12)).toEqual([0, 0, 0]);
  });

  itT('matmul chains, mm, bmm, addmm, outer', () => {
    const r = gradCheck([input([2, 3], 60), input([3, 4], 61), input([4, 2], 62), input([2, 4], 63)], ([a, b, c, bias]) => {
      const chain = a.matmul(b).matmul(c).tanh().sum();
      const mm = a.mm(b).mul(bias).sum();
      const batched = stack([a, a.mul(2)])
        .bmm(stack([b, b]))
        .pow(2)
        .mean();
      const am = addmm(bias, a, b, 0.5, -1.5).square().sum();
      const o = outer(a.select(0, 0), c.select(1, 1)).sum();
      const vec = a.matmul(c.select(1, 0).narrow(0, 0, 3)).sum();
      return chain.add(mm).add(batched).add(am).add(o).add(vec);
    });
    expect(r.relError).toBeLessThan(TOL);
  });

  itT('division, pow and the elementwise functions', () => {
    const r = gradCheck([input([2, 3], 70, 0.5, 2), input([2, 3], 71, 0.5, 2)], ([x, y]) =>
      x
        .div(y)
        .sum()
        .add(x.pow(y).sum())
        .add(x.pow(3).sum())
        .add(y.pow(-0.5).sum())
        .add(x.sqrt().mul(y.rsqrt()).sum())
        .add(y.log().mul(x.exp()).sum())
        .add(x.sigmoid().div(y.reciprocal().add(1)).sum())
        .add(x.sub(y, 0.5).abs().sum())
        .add(x.norm(2))
        .add(y.norm(1, 1).pow(2).sum())
        .add(x.neg().relu().add(x.clamp(0.7, 1.8)).sum()),
    );
    expect(r.relError).toBeLessThan(TOL);
  });

  itT('shape ops and reductions route gradients', () => {
    const idx = i64([3, 0, 3]);
    const mask = tensor([true, false, false, true]);
    const c = f64(jsUniform(4, 80), [4]);
    const r = gradCheck([input([2, 3, 4], 81)], ([x]) => {
      const a = x.permute(2, 0, 1).reshape(4, 6).narrow(1, 1, 4).mean(0).pow(2).sum();
      const b = cat([x.select(0, 1), x.select(0, 0)], 1)
        .indexSelect(1, idx)
        .sum();
      const e = x.mean(1, true).expand(2, 3, 4).mul(x).sum();
      const s = x.slice(2, 0, 4, 2).square().sum();
      const w = where(x.gt(0), x, x.mul(0.5)).sum();
      const m = x.maskedFill(mask, 0).mul(c).sum();
      const n = x.norm(2, [2]).sum();
      const sp = x
        .split([1, 3], 2)[1]
        .transpose(1, 2)
        .contiguous()
        .view(-1)
        .mul(x.flatten().narrow(0, 0, 18))
        .sum();
      const ch = x.chunk(2, 2)[0].unsqueeze(0).squeeze(0).tril().sum(1).pow(2).mean();
      const mx = x.maxDim(2).values.sum().add(x.max());
      return a.add(b).add(e).add(s).add(w).add(m).add(n).add(sp).add(ch).add(mx);
    });
    expect(r.relError).toBeLessThan(TOL);
  });
});

describe('the gradient API', () => {
  itT('requiresGrad_ and requiresGrad, from factories too', () => {
    const x = zeros([2], { dtype: 'float64' });
    expect(x.requiresGrad).toBe(false);
    expect(x.requiresGrad_()).toBe(x);
    expect(x.requiresGrad).toBe(true);
    x.requiresGrad_(false);
    expect(x.requiresGrad).toBe(false);
    expect(ones([2], { requiresGrad: true }).requiresGrad).toBe(true);
    expect(tensor([1, 2], { requiresGrad: true }).requiresGrad).toBe(true);
  });

  itT('isLeaf; grad is null before backward', () => {
    const x = tensor([1, 2, 3], { requiresGrad: true });
    expect(x.isLeaf).toBe(true);
    expect(x.grad).toBeNull();
    const y = x.mul(2);
    expect(y.isLeaf).toBe(false);
    expect(y.requiresGrad).toBe(true);
    // a result of tensors that need no grad is a leaf (PyTorch's convention)
    expect(tensor([1]).mul(2).isLeaf).toBe(true);
    y.sum().backward();
    expect(flat(x.grad!)).toEqual([2, 2, 2]);
    expect(x.grad!.shape).toEqual([3]);
  });

  itT('gradients accumulate across two backward calls; grad = null drops them; grad can be set', () => {
    const x = tensor([1, 2, 3], { requiresGrad: true });
    x.mul(x).sum().backward();
    expect(flat(x.grad!)).toEqual([2, 4, 6]);
    x.mul(x).sum().backward();
    expect(flat(x.grad!)).toEqual([4, 8, 12]);

    x.grad = null;
    expect(x.grad).toBeNull();
    x.mul(3).sum().backward();
    expect(flat(x.grad!)).toEqual([3, 3, 3]);

    x.grad = tensor([10, 20, 30]);
    expect(flat(x.grad!)).toEqual([10, 20, 30]);
    x.sum().backward();
    expect(flat(x.grad!)).toEqual([11, 21, 31]);

    // as PyTorch's setter: a gradient is its tensor's shape, dtype and device (an optimizer reads
    // it as the parameter's memory)
    expect(() => (x.grad = tensor([1]))).toThrow(
      /^setGrad: the gradient's shape differs from the tensor's: float32 \[1\] on cpu for float32 \[3\]/,
    );
    expect(() => (x.grad = tensor([1, 2, 3], { dtype: 'float64' }))).toThrow(/the gradient's dtype differs/);
    expect(flat(x.grad!)).toEqual([11, 21, 31]);
  });

  itT('retainGraph lets one graph be backpropagated twice; without it the second call throws', () => {
    const x = tensor([1, 2], { requiresGrad: true });
    const y = x.mul(x).sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    expect(flat(x.grad!)).toEqual([4, 8]);
    const z = x.mul(x).sum();
    z.backward();
    expect(() => z.backward()).toThrow(/backward/);
  });

  itT('backward with an explicit gradient for a non-scalar; without one it throws', () => {
    const x = tensor([1, 2, 3], { requiresGrad: true });
    const y = x.mul(x);
    y.backward(tensor([1, 0.5, -1]));
    // d/dx Σ g·x² = 2·x·g
    expect(flat(x.grad!)).toEqual([2, 2, -6]);

    const y2 = x.mul(2);
    let caught: unknown;
    try {
      y2.backward();
    } catch (e) {
      caught = e;
    }
    // the addon's errors come from Node's main realm, so check the shape of an Error, not instanceof
    expect(caught).toBeDefined();
    expect((caught as Error).name).toBe('Error');
    expect((caught as Error).message).toMatch(/gradient is needed for a non-scalar tensor of shape \[3\]/);
    expect(() => tensor([1, 2]).sum().backward()).toThrow(/does not require grad/);
  });

  itT('noGrad: results do not require grad; the mode is restored, even when fn throws', () => {
    const x = tensor([1, 2], { requiresGrad: true });
    expect(isGradEnabled()).toBe(true);
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      return x.mul(2);
    });
    expect(y.requiresGrad).toBe(false);
    expect(flat(y)).toEqual([2, 4]);
    expect(isGradEnabled()).toBe(true);

    expect(() =>
      noGrad(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(isGradEnabled()).toBe(true);

    // nested: the inner call restores the outer (disabled) mode
    noGrad(() => {
      noGrad(() => expect(isGradEnabled()).toBe(false));
      expect(isGradEnabled()).toBe(false);
    });
    expect(isGradEnabled()).toBe(true);

    // an async function is refused, and the mode is still restored
    expect(() => noGrad(async () => 1)).toThrow(TypeError);
    expect(isGradEnabled()).toBe(true);

    // in-place updates of a leaf that requires grad: refused with grad on, allowed in noGrad
    expect(() => x.add_(1)).toThrow(/in-place/);
    noGrad(() => x.sub_(tensor([0.5, 0.5])));
    expect(flat(x)).toEqual([0.5, 1.5]);
    expect(x.requiresGrad).toBe(true);
    expect(x.isLeaf).toBe(true);
  });

  itT('enableGrad inside noGrad records the graph', () => {
    const x = tensor([1, 2], { requiresGrad: true });
    const { inner, outer } = noGrad(() => {
      const inner = enableGrad(() => {
        expect(isGradEnabled()).toBe(true);
        return x.mul(x);
      });
      expect(isGradEnabled()).toBe(false);
      return { inner, outer: x.mul(x) };
    });
    expect(inner.requiresGrad).toBe(true);
    expect(outer.requiresGrad).toBe(false);
    inner.sum().backward();
    expect(flat(x.grad!)).toEqual([2, 4]);
    expect(() => enableGrad(() => Promise.resolve(1))).toThrow(TypeError);
    expect(isGradEnabled()).toBe(true);
  });

  itT('detach shares data but leaves the graph', () => {
    const x = tensor([1, 2, 3], { requiresGrad: true });
    const y = x.mul(2);
    const d = y.detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.isLeaf).toBe(true);
    expect(flat(d)).toEqual([2, 4, 6]);
    // the same storage: writes through the detached view show in the original
    const dx = x.detach();
    dx.mul_(10);
    expect(flat(x)).toEqual([10, 20, 30]);
    // gradients do not flow through a detached branch
    x.mul(dx).sum().backward();
    expect(flat(x.grad!)).toEqual([10, 20, 30]);
  });

  itT('retainGrad keeps the gradient of a non-leaf', () => {
    const x = tensor([1, 2], { requiresGrad: true });
    const y = x.mul(3);
    expect(y.retainGrad()).toBe(y);
    y.mul(y).sum().backward();
    // d/dy Σ y² = 2y = [6, 12]; d/dx = 3·2y = [18, 36]
    expect(flat(y.grad!)).toEqual([6, 12]);
    expect(flat(x.grad!)).toEqual([18, 36]);
  });

  itT('alias shares the autograd identity', () => {
    const x = tensor([1, 2], { requiresGrad: true });
    const a = x.alias();
    expect(a).not.toBe(x);
    x.mul(4).sum().backward();
    expect(flat(a.grad!)).toEqual([4, 4]);
    a.grad = null;
    expect(x.grad).toBeNull();
  });

  itT('setData changes the shape while keeping the tensor identity', () => {
    const p = tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { requiresGrad: true },
    );
    const a = p.alias();
    // the earlier graph is freed before the growth (see the next test for when it is not)
    tidy(() => p.mul(p).sum().backward());
    expect(p.grad).not.toBeNull();

    const src = zeros([3, 3]);
    expect(p.setData(src)).toBe(p);
    expect(p.shape).toEqual([3, 3]);
    expect(a.shape).toEqual([3, 3]);
    expect(flat(a)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // the gradient of the old shape is dropped; the tensor is still a leaf that requires grad
    expect(p.grad).toBeNull();
    expect(a.requiresGrad).toBe(true);
    expect(a.isLeaf).toBe(true);
    // p shows src's storage
    src.fill_(2);
    expect(flat(p)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2]);
    // a backward through the new data fills a gradient of the new shape, seen by both handles
    a.mul(p).sum().backward();
    expect(p.grad!.shape).toEqual([3, 3]);
    expect(flat(a.grad!)).toEqual([4, 4, 4, 4, 4, 4, 4, 4, 4]);
  });

  itT('setData with a new shape, then backward while an output of an earlier graph is still alive', () => {
    // Growing a parameter while the previous step's loss handle is still open (not yet disposed by
    // its tidy scope, or kept for logging) must not break the next backward.
    const p = tensor([1, 2], { requiresGrad: true });
    const loss = p.mul(p).sum();
    loss.backward();
    p.setData(tensor([1, 2, 3]));
    p.mul(p).sum().backward();
    expect(flat(p.grad!)).toEqual([2, 4, 6]);
    expect(loss.isDisposed).toBe(false);
  });
});
