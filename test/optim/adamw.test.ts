// AdamW against the formula, written out in plain float64 JS (torch.optim.AdamW's math).
import { AdamW, type NamedParameter, type ParamKind } from '../../lib/optim/adamw';
import { fromTypedArray, manualSeed, memoryStats, randn, tidy, zeros, type Tensor } from '../../lib';
import { countOps } from '../../lib/op-count';
import { native } from '../../lib/native';
import { itWhen } from '../helpers';

interface RefParam {
  p: number[];
  m: number[];
  v: number[];
  decay: boolean;
}

function refStep(
  ps: RefParam[],
  grads: number[][],
  t: number,
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; bc: boolean },
) {
  const bc1 = o.bc ? 1 - o.b1 ** t : 1;
  const bc2 = o.bc ? 1 - o.b2 ** t : 1;
  ps.forEach((rp, k) => {
    for (let i = 0; i < rp.p.length; i++) {
      const g = grads[k][i];
      if (rp.decay) rp.p[i] *= 1 - o.lr * o.wd;
      rp.m[i] = o.b1 * rp.m[i] + (1 - o.b1) * g;
      rp.v[i] = o.b2 * rp.v[i] + (1 - o.b2) * g * g;
      rp.p[i] -= (o.lr / bc1) * (rp.m[i] / (Math.sqrt(rp.v[i]) / Math.sqrt(bc2) + o.eps));
    }
  });
}

/** clip_grad_norm_'s scaling in float64: every gradient times min(1, maxNorm / (‖all‖ + 1e-6)). */
function refClip(grads: number[][], maxNorm: number): number[][] {
  const norm = Math.sqrt(grads.flat().reduce((acc, g) => acc + g * g, 0));
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  return grads.map((g) => g.map((x) => x * coef));
}

/** Ten AdamW steps on random float64 gradients; with clip, each step is clipAndUpdate(clip, lr). */
function run(biasCorrection: boolean, fused = true, clip?: number) {
  manualSeed(3);
  const kinds: ParamKind[] = ['weight', 'bias', 'layernorm', 'embedding'];
  const shapes = [[3, 4], [4], [4], [5, 4]];
  const params: NamedParameter[] = shapes.map((s, i) => ({
    name: `p${i}`,
    kind: kinds[i],
    tensor: randn(s, { dtype: 'float64' }).requiresGrad_(),
  }));
  const o = { lr: 0.01, b1: 0.9, b2: 0.98, eps: 1e-6, wd: 0.1, bc: biasCorrection };
  const opt = new AdamW(params, {
    betas: [o.b1, o.b2],
    eps: o.eps,
    weightDecay: o.wd,
    noDecay: ['bias', 'layernorm'],
    biasCorrection,
    fused,
  });
  const ref: RefParam[] = params.map((p) => ({
    p: Array.from(p.tensor.toArray() as Float64Array),
    m: new Array(p.tensor.numel).fill(0),
    v: new Array(p.tensor.numel).fill(0),
    decay: p.kind === 'weight' || p.kind === 'embedding',
  }));
  for (let t = 1; t <= 10; t++) {
    const grads = params.map((p) => tidy(() => Array.from(randn(p.tensor.shape, { dtype: 'float64' }).toArray() as Float64Array)));
    params.forEach((p, k) => (p.tensor.grad = fromTypedArray(new Float64Array(grads[k]), p.tensor.shape)));
    if (clip === undefined) {
      opt.update(o.lr);
      refStep(ref, grads, t, o);
    } else {
      opt.clipAndUpdate(clip, o.lr).dispose();
      const clipped = refClip(grads, clip);
      refStep(ref, clipped, t, o);
      // the gradients are left clipped, as clipGradNorm leaves them (in float64: float64's precision)
      params.forEach((p, k) => expect(maxRelErr(p.tensor.grad!, clipped[k])).toBeLessThan(1e-13));
    }
  }
  return { params, ref, opt };
}

function maxRelErr(t: Tensor, expected: number[]): number {
  const got = t.toArray() as Float64Array;
  let worst = 0;
  expected.forEach((e, i) => (worst = Math.max(worst, Math.abs(got[i] - e) / Math.max(Math.abs(e), 1e-12))));
  return worst;
}

describe('AdamW matches the fp64 formula for 10 steps', () => {
  // fused: libtorch's fused kernel where this build has it on CPU (>= 2.4), else the foreach ops
  it.each([
    [true, true],
    [false, true],
    [true, false],
    [false, false],
  ])('bias correction %s, fused %s, with weight-decay groups', (bc, fused) => {
    const { params, ref, opt } = run(bc, fused);
    expect(opt.step).toBe(10);
    params.forEach((p, k) => {
      expect(maxRelErr(p.tensor, ref[k].p)).toBeLessThan(1e-10);
      const { expAvg, expAvgSq } = opt.getMoments(p.name);
      expect(maxRelErr(expAvg, ref[k].m)).toBeLessThan(1e-10);
      expect(maxRelErr(expAvgSq, ref[k].v)).toBeLessThan(1e-10);
    });
  });

  // the clipping folded into the update: the fused kernel's gradient divisor (CPU >= 2.4), else
  // the gradients divided before the foreach ops; 0.5 clips every step (the norms are ~7), 1e9 none
  it.each([
    [true, true, 0.5],
    [false, true, 0.5],
    [true, false, 0.5],
    [true, true, 1e9],
    [true, false, 1e9],
  ])('clipAndUpdate: bias correction %s, fused %s, max norm %s: clip_grad_norm_ then AdamW', (bc, fused, clip) => {
    const { params, ref } = run(bc, fused, clip);
    params.forEach((p, k) => expect(maxRelErr(p.tensor, ref[k].p)).toBeLessThan(1e-10));
  });

  it('bias correction changes the result (the flag is honoured)', () => {
    const a = run(true).params[0].tensor.toNumberArray();
    const b = run(false).params[0].tensor.toNumberArray();
    expect(a).not.toEqual(b);
  });
});

/** Two parameters, a gradient (norm 5) on the first only. */
function gradientOnA() {
  const a = randn([4]).requiresGrad_();
  const b = randn([4]).requiresGrad_();
  const opt = new AdamW([
    { name: 'a', tensor: a, kind: 'weight' },
    { name: 'b', tensor: b, kind: 'weight' },
  ]);
  a.grad = fromTypedArray(new Float32Array([3, 0, 4, 0]), [4]);
  return { a, b, before: b.toNumberArray(), opt };
}

describe('AdamW state', () => {
  it('refuses parameters it could not train: integer, one tensor under two names', () => {
    tidy(() => {
      const w = randn([2]).requiresGrad_();
      expect(() => new AdamW([{ name: 'i', tensor: zeros([2], { dtype: 'int64' }), kind: 'weight' }])).toThrow(
        /AdamW: parameter 'i' is int64: only floating-point tensors can be trained/,
      );
      expect(
        () =>
          new AdamW([
            { name: 'a', tensor: w, kind: 'weight' },
            { name: 'b', tensor: w, kind: 'weight' },
          ]),
      ).toThrow(/AdamW: 'b' is the same tensor as 'a'/);
    });
  });

  it('moments are addressable and replaceable by name; shape mismatches are refused', () => {
    const p = randn([2, 3]).requiresGrad_();
    const opt = new AdamW([{ name: 'w', tensor: p, kind: 'weight' }]);
    expect(opt.getMoments('w').expAvg.shape).toEqual([2, 3]);
    expect(() => opt.setMoments('w', { expAvg: randn([3]), expAvgSq: randn([3]) })).toThrow(
      /expAvg of 'w' has shape \[3\] but the parameter has \[2,3\]/,
    );
    expect(() => opt.getMoments('nope')).toThrow(/no parameter named 'nope'/);
  });

  it.each(['bfloat16', 'float16'] as const)('%s parameters (fp32 moments) update like fp32 ones, fused flag or not', (dtype) => {
    // the fused kernel needs moments in the parameter's dtype: half weights take the foreach ops
    manualSeed(5);
    const w32 = randn([4, 3]);
    const g32 = randn([4, 3]);
    const step = (d: 'float32' | typeof dtype) => {
      const p = w32.to({ dtype: d }).requiresGrad_();
      const opt = new AdamW([{ name: 'w', tensor: p, kind: 'weight' }], { fused: true });
      p.grad = g32.to({ dtype: d });
      opt.update(1e-2);
      expect(opt.getMoments('w').expAvg.dtype).toBe('float32');
      return p.to({ dtype: 'float32' }).toNumberArray();
    };
    const want = step('float32');
    step(dtype).forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(2e-2 * Math.max(1, Math.abs(want[i]))));
  });

  it('a non-contiguous parameter updates like its contiguous copy (the fused CPU kernel would misread it)', () => {
    manualSeed(9);
    const base = randn([3, 5]);
    const g = randn([5, 3]);
    const run = (p: Tensor) => {
      const opt = new AdamW([{ name: 'w', tensor: p, kind: 'weight' }], { fused: true });
      for (let i = 0; i < 2; i++) {
        p.grad = g.clone();
        opt.update(0.1);
      }
      return p.contiguous().toNumberArray();
    };
    const strided = base.transpose(0, 1).requiresGrad_();
    expect(strided.isContiguous).toBe(false);
    const want = run(base.transpose(0, 1).contiguous().requiresGrad_());
    run(strided).forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
  });

  it("refuses a gradient that is not its parameter's shape (one left from before the parameter grew)", () => {
    const p = randn([2, 3]).requiresGrad_();
    const opt = new AdamW([{ name: 'w', tensor: p, kind: 'weight' }]);
    const loss = p.mul(2).sum();
    p.setData(randn([5, 3])); // a growth between the forward and the backward
    loss.backward();
    expect(p.grad!.shape).toEqual([2, 3]);
    const before = p.toNumberArray();
    expect(() => opt.update(0.1)).toThrow(/gradient of parameter 0 is \[2, 3\] on cpu but the parameter \[5, 3\] on cpu/);
    expect(() => opt.clipAndUpdate(1, 0.1)).toThrow(/gradient of parameter 0 is \[2, 3\]/);
    expect(p.toNumberArray()).toEqual(before);
    expect(opt.step).toBe(0);
  });

  it('loaded moments take the dtype fresh ones would have (float64 parameters keep float64 moments)', () => {
    const p = randn([3], { dtype: 'float64' }).requiresGrad_();
    const opt = new AdamW([{ name: 'w', tensor: p, kind: 'weight' }]);
    opt.loadMomentTensors({ 'w.exp_avg': randn([3]), 'w.exp_avg_sq': randn([3]).abs() }, 7);
    expect(opt.getMoments('w').expAvg.dtype).toBe('float64');
    expect(opt.getMoments('w').expAvgSq.dtype).toBe('float64');
    p.grad = randn([3], { dtype: 'float64' });
    opt.update(1e-3);
    expect(opt.step).toBe(8);
    // a checkpoint's own moments (exactDtype) must be in that dtype already; a stray one is refused
    expect(() => opt.loadMomentTensors({ 'w.exp_avg': randn([3]), 'w.exp_avg_sq': randn([3]) }, 7, { exactDtype: true })).toThrow(
      /moment tensor 'w\.exp_avg' is float32: the moments of 'w' are float64/,
    );
    const f64 = () => randn([3], { dtype: 'float64' });
    expect(() => opt.loadMomentTensors({ 'w.exp_avg': f64(), 'w.exp_avg_sq': f64(), 'v.exp_avg': f64() }, 7)).toThrow(
      /unexpected moment tensor 'v\.exp_avg': no parameter of the model has it/,
    );
    expect(opt.step).toBe(8);
  });

  it('skips parameters without a gradient and clips by global norm', () => {
    const { a, b, before, opt } = gradientOnA();
    const norm = opt.clipGradNorm(1);
    expect(norm.item()).toBeCloseTo(5, 5);
    expect(a.grad!.norm().item()).toBeCloseTo(1, 4);
    opt.update(0.1);
    expect(b.toNumberArray()).toEqual(before);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
  });

  it.each([true, false])('an update with no gradient at all changes nothing and leaves the step (fused %s)', (fused) => {
    // torch.optim's steps are per parameter and advance only with a gradient; the one shared
    // step here must not count an update that touched nothing, or the next one's bias
    // corrections would be those of a later step
    const p = fromTypedArray(new Float64Array([0.5, -1, 2]), [3]).requiresGrad_();
    const opt = new AdamW([{ name: 'p', tensor: p, kind: 'weight' }], { fused });
    const o = { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: opt.options.weightDecay, bc: true };
    const ref: RefParam[] = [{ p: p.toNumberArray(), m: [0, 0, 0], v: [0, 0, 0], decay: true }];
    const g = [0.3, -0.2, 0.1];
    p.grad = fromTypedArray(new Float64Array(g), [3]);
    opt.update(0.1);
    refStep(ref, [g], 1, o);
    opt.zeroGrad();
    opt.update(0.1);
    opt.clipAndUpdate(1, 0.1).dispose();
    expect(opt.step).toBe(1);
    expect(maxRelErr(p, ref[0].p)).toBeLessThan(1e-15);
    p.grad = fromTypedArray(new Float64Array(g), [3]);
    opt.update(0.1);
    refStep(ref, [g], 2, o);
    expect(opt.step).toBe(2);
    expect(maxRelErr(p, ref[0].p)).toBeLessThan(1e-12);
  });

  it('float64 gradients are clipped at float64 precision, as clip_grad_norm_ does', () => {
    const p = fromTypedArray(new Float64Array([1 / 3, 2 / 3, 1]), [3]).requiresGrad_();
    const opt = new AdamW([{ name: 'p', tensor: p, kind: 'weight' }]);
    p.grad = fromTypedArray(new Float64Array([1 / 3, 2 / 3, 1]), [3]);
    const norm = opt.clipGradNorm(0.5);
    const total = Math.sqrt(1 / 9 + 4 / 9 + 1);
    expect(norm.dtype).toBe('float64');
    expect(Math.abs(norm.item() - total)).toBeLessThan(1e-15);
    const coef = 0.5 / (total + 1e-6);
    expect(maxRelErr(p.grad, [coef / 3, (2 * coef) / 3, coef])).toBeLessThan(1e-15);
    // a float32 gradient's norm stays float32
    const q = randn([4]).requiresGrad_();
    q.grad = randn([4]);
    expect(new AdamW([{ name: 'q', tensor: q, kind: 'weight' }]).clipGradNorm(1).dtype).toBe('float32');
  });

  it('clips several gradients by their joint norm (fp64 reference) and leaves small ones alone', () => {
    const shapes = [[3, 5], [7], [2, 2, 2]];
    const ps = shapes.map((s) => randn(s).requiresGrad_());
    const opt = new AdamW(ps.map((tensor, i) => ({ name: `p${i}`, tensor, kind: 'weight' as const })));
    const gs = shapes.map((s) => randn(s).mul_(2));
    ps.forEach((p, i) => (p.grad = gs[i].clone()));
    const values = gs.map((g) => g.toNumberArray());
    const total = Math.sqrt(values.flat().reduce((acc, v) => acc + v * v, 0));
    expect(opt.clipGradNorm(0.5).item()).toBeCloseTo(total, 4);
    const coef = 0.5 / (total + 1e-6);
    ps.forEach((p, i) => p.grad!.toNumberArray().forEach((v, j) => expect(v).toBeCloseTo(values[i][j] * coef, 5)));
    expect(opt.clipGradNorm(1e9).item()).toBeCloseTo(0.5, 4); // below the bound: unchanged
    ps.forEach((p, i) => p.grad!.toNumberArray().forEach((v, j) => expect(v).toBeCloseTo(values[i][j] * coef, 5)));
  });

  it('clipAndUpdate returns the norm, leaves parameters without a gradient alone and keeps no tensor', () => {
    const { a, b, before, opt } = gradientOnA();
    opt.clipAndUpdate(1, 0.1).dispose(); // the first step allocates the optimizer's own tensors
    a.grad = fromTypedArray(new Float32Array([3, 0, 4, 0]), [4]);
    const live = memoryStats().liveTensors;
    const norm = opt.clipAndUpdate(1, 0.1);
    expect(memoryStats().liveTensors).toBe(live + 1); // the norm, nothing else
    expect(norm.item()).toBeCloseTo(5, 5);
    expect(a.grad!.norm().item()).toBeCloseTo(1, 4);
    expect(b.toNumberArray()).toEqual(before);
    expect(opt.step).toBe(2);
    expect(() => opt.clipAndUpdate(1, -1)).toThrow(/learning rate must be a finite non-negative number, got -1/);
    expect(() => opt.update(Infinity)).toThrow(/learning rate must be a finite non-negative number, got Infinity/);
    expect(() => opt.update('0.1' as unknown as number)).toThrow(/learning rate must be a finite non-negative number, got '0\.1'/);
    expect(() => opt.scaledUpdate(0.1, 65536 as unknown as Tensor)).toThrow(
      /AdamW\.scaledUpdate: lossScale must be a float32 scalar Tensor \(GradScaler's scale\), got number/,
    );
    expect(opt.step).toBe(2);
    // nothing to clip: no gradients at all
    opt.zeroGrad();
    expect(opt.clipAndUpdate(1, 0.1).item()).toBe(0);
  });

  itWhen(native.hasFusedAdamWCpu, 'libtorch < 2.4 has no fused AdamW on the CPU')(
    'with the fused kernel the clipping costs no pass of its own over the gradients',
    () => {
      const ps = [randn([8, 4]).requiresGrad_(), randn([4]).requiresGrad_()];
      const opt = new AdamW(ps.map((tensor, i) => ({ name: `p${i}`, tensor, kind: 'weight' as const })));
      const counts = (fn: () => void) => {
        ps.forEach((p) => (p.grad = randn(p.shape).mul_(10)));
        return countOps(fn).byName;
      };
      const folded = counts(() => opt.clipAndUpdate(1, 0.1).dispose());
      expect(folded['aten::_fused_adamw_']).toBe(1);
      expect(folded['aten::_foreach_mul_']).toBeUndefined();
      // the separate clipping scales the gradients in a pass of its own
      const separate = counts(() => {
        opt.clipGradNorm(1).dispose();
        opt.update(0.1);
      });
      expect(separate['aten::_foreach_mul_']).toBe(1);
    },
  );
});
