// Dynamic loss scaling (GradScaler, AdamW.scaledUpdate) against PyTorch's: the scale's update
// against torch._amp_update_scale_, and a scaled training run against torch.amp.GradScaler +
// AdamW + clip_grad_norm_ (test/fixtures/grad-scaler-torch.json, written by the script beside
// it with torch 2.13); and against AdamW's own unscaled update, in float64 and to the bit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW, type NamedParameter } from '../../lib/optim/adamw';
import { GradScaler } from '../../lib/optim/grad-scaler';
import { cudaAvailable, forbidHostSync, fromTypedArray, full, manualSeed, randn, tidy, zeros, type Device, type Tensor } from '../../lib';
import { itWhen } from '../helpers';
import { native } from '../../lib/native';

interface Fixture {
  torch: string;
  update: {
    init: number;
    growthFactor: number;
    backoffFactor: number;
    growthInterval: number;
    foundInf: number[];
    scales: number[];
    trackers: number[];
  }[];
  training: {
    w0: number[][];
    b0: number[];
    lr: number;
    betas: [number, number];
    eps: number;
    weightDecay: number;
    initScale: number;
    growthInterval: number;
    maxNorm: number;
    steps: { w: number[]; b: number[]; scale: number }[];
  };
}

const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'grad-scaler-torch.json'), 'utf8')) as Fixture;

/** The fixture's sequences of overflow flags through GradScaler.update on `device`: torch's scales and counts. */
function expectUpdatesLikeTorch(device: Device): void {
  for (const c of fixture.update) {
    const { init, growthFactor, backoffFactor, growthInterval } = c;
    const s = new GradScaler(device, { init, growthFactor, backoffFactor, growthInterval });
    const seen = c.foundInf.map((f) =>
      tidy(() => {
        s.update(full([], f, { device }));
        return s.state();
      }),
    );
    expect(seen.map((x) => x.scale)).toEqual(c.scales);
    expect(seen.map((x) => x.growthTracker)).toEqual(c.trackers);
    s.dispose();
  }
}

describe("the loss scale's update", () => {
  it('follows torch._amp_update_scale_ step by step: back-off, growth after the interval, a growth past float32 kept out', () => {
    expectUpdatesLikeTorch('cpu');
  });

  it('refuses settings and states it cannot hold, naming the field', () => {
    expect(() => new GradScaler('cpu', { init: 1e39 })).toThrow(/init/);
    expect(() => new GradScaler('cpu', { growthFactor: 1 })).toThrow(/growthFactor/);
    expect(() => new GradScaler('cpu', { backoffFactor: 1 })).toThrow(/backoffFactor/);
    expect(() => new GradScaler('cpu', { growthInterval: 0.5 })).toThrow(/growthInterval/);
    expect(() => new GradScaler('cpu', {}, { scale: -1, growthTracker: 0 })).toThrow(/loss-scale state.*scale/);
    expect(() => new GradScaler('cpu', {}, { scale: 2, growthTracker: 1.5 })).toThrow(/growthTracker/);
    const s = new GradScaler('cpu', {}, { scale: 1024, growthTracker: 7 });
    expect(s.state()).toEqual({ scale: 1024, growthTracker: 7 });
    // a number where a tensor belongs: named, not a JavaScript error from inside
    expect(() => s.scaleLoss(3 as unknown as Tensor)).toThrow(/GradScaler\.scaleLoss: loss must be a Tensor, got number/);
    expect(() => s.update(0 as unknown as Tensor)).toThrow(
      /GradScaler\.update: foundInf must be the Tensor AdamW\.scaledUpdate returned, got number/,
    );
    s.dispose();
  });

  it('the native update refuses tensors of the wrong kind, naming them', () => {
    tidy(() => {
      const scale = full([], 4);
      const tracker = zeros([], { dtype: 'int32' });
      expect(() => native.ampUpdateScale(scale.native, zeros([]).native, zeros([]).native, 2, 0.5, 3)).toThrow(
        /growth tracker must be an int32/,
      );
      expect(() => native.ampUpdateScale(scale.native, tracker.native, zeros([2]).native, 2, 0.5, 3)).toThrow(
        /foundInf tensor must be a float32 scalar/,
      );
      expect(() => native.ampUpdateScale(full([], 4, { dtype: 'float64' }).native, tracker.native, zeros([]).native, 2, 0.5, 3)).toThrow(
        /scale tensor must be a float32 scalar/,
      );
      expect(() => native.ampUpdateScale(scale.native, tracker.native, zeros([]).native, 2, 0.5, 0)).toThrow(/growthInterval/);
    });
  });
});

/** Two float32 parameters trained as the fixture's script trains them, each step through scaledUpdate. */
function trainLikeFixture(fused: boolean, device: Device = 'cpu'): { w: number[]; b: number[]; scale: number; step: number }[] {
  const f = fixture.training;
  const w = fromTypedArray(Float32Array.from(f.w0.flat()), [3, 4], { device }).requiresGrad_();
  const b = fromTypedArray(Float32Array.from(f.b0), [4], { device }).requiresGrad_();
  const params: NamedParameter[] = [
    { name: 'w', tensor: w, kind: 'weight' },
    { name: 'b', tensor: b, kind: 'bias' },
  ];
  const opt = new AdamW(params, { betas: f.betas, eps: f.eps, weightDecay: f.weightDecay, noDecay: ['bias'], fused });
  const scaler = new GradScaler(device, { init: f.initScale, growthInterval: f.growthInterval });
  const out: { w: number[]; b: number[]; scale: number; step: number }[] = [];
  for (let t = 0; t < f.steps.length; t++) {
    tidy(() => {
      // the script's inputs: exact values, and 2^110 at steps 2 and 5 (its gradient times the scale overflows)
      const xs = Array.from({ length: 12 }, (_, k) => ((t * 7 + Math.floor(k / 4) * 3 + (k % 4)) % 11) - 5).map((v) => v / 4);
      if (t === 2 || t === 5) xs[1 * 4 + 2] = 2 ** 110;
      const ys = Array.from({ length: 4 }, (_, j) => (((t * 5 + j) % 7) - 3) / 8);
      const x = fromTypedArray(Float32Array.from(xs), [3, 4], { device });
      const y = fromTypedArray(Float32Array.from(ys), [4], { device });
      const loss = w.mul(x).sum().add(b.mul(b).mul(y).sum().mul(4));
      scaler.scaleLoss(loss).backward();
      const { foundInf } = opt.scaledUpdate(f.lr, scaler.scale, f.maxNorm);
      scaler.update(foundInf);
      opt.zeroGrad();
    });
    out.push({ w: w.toNumberArray(), b: b.toNumberArray(), scale: scaler.state().scale, step: opt.step });
  }
  opt.dispose();
  scaler.dispose();
  w.dispose();
  b.dispose();
  return out;
}

/** The fixture's run as torch trained it: scales, updates made, parameters (to float32 rounding). */
function expectLikeFixture(ours: ReturnType<typeof trainLikeFixture>): void {
  const ref = fixture.training.steps;
  expect(ours.map((s) => s.scale)).toEqual(ref.map((s) => s.scale));
  // ten steps, two of them skipped: the optimizer counts eight updates
  expect(ours.map((s) => s.step)).toEqual([1, 2, 2, 3, 4, 4, 5, 6, 7, 8]);
  for (let t = 0; t < ref.length; t++) {
    for (const [mine, theirs] of [
      [ours[t].w, ref[t].w],
      [ours[t].b, ref[t].b],
    ]) {
      for (let i = 0; i < theirs.length; i++) expect(Math.abs(mine[i] - theirs[i])).toBeLessThan(2e-6);
    }
  }
  // a skipped step leaves the parameters as they were
  expect(ours[2].w).toEqual(ours[1].w);
  expect(ours[5].b).toEqual(ours[4].b);
}

describe('AdamW.scaledUpdate', () => {
  it.each([true, false])('trains as torch.amp.GradScaler + clip_grad_norm_ + AdamW do, overflowing steps skipped (fused %s)', (fused) => {
    expectLikeFixture(trainLikeFixture(fused));
  });

  it('with a power-of-two scale, gives the unscaled update to the bit (float32, clipped and not)', () => {
    for (const maxNorm of [0.5, Infinity]) {
      const run = (scaled: boolean): number[][] => {
        manualSeed(11);
        const params: NamedParameter[] = [
          { name: 'a', tensor: randn([8, 5]).requiresGrad_(), kind: 'weight' },
          { name: 'c', tensor: randn([5]).requiresGrad_(), kind: 'bias' },
        ];
        const opt = new AdamW(params);
        const scaler = new GradScaler('cpu', { init: 2 ** 24 });
        for (let t = 0; t < 5; t++)
          tidy(() => {
            const target = randn([8, 5]);
            const loss = params[0].tensor.sub(target).pow(2).sum().add(params[1].tensor.pow(3).sum());
            if (scaled) {
              scaler.scaleLoss(loss).backward();
              const r = opt.scaledUpdate(0.01, scaler.scale, maxNorm);
              scaler.update(r.foundInf);
            } else {
              loss.backward();
              if (Number.isFinite(maxNorm)) opt.clipAndUpdate(maxNorm, 0.01);
              else opt.update(0.01);
            }
            opt.zeroGrad();
          });
        const out = params.map((p) => p.tensor.toNumberArray());
        opt.dispose();
        scaler.dispose();
        for (const p of params) p.tensor.dispose();
        return out;
      };
      expect(run(true)).toEqual(run(false));
    }
  });

  it('returns the norm of the unscaled gradients; a skipped update leaves moments and step alone, and the next one is the first', () => {
    const make = (): { p: Tensor; opt: AdamW } => {
      const p = fromTypedArray(Float64Array.from([1, -2, 3]), [3]).requiresGrad_();
      return { p, opt: new AdamW([{ name: 'p', tensor: p, kind: 'weight' }], { weightDecay: 0.1 }) };
    };
    const a = make();
    const b = make();
    const scale = full([], 2 ** 10);
    tidy(() => {
      // a's first backward overflows (float64: 1e306 · 2^10 is inf)
      a.p
        .mul(fromTypedArray(Float64Array.from([1e306, 0, 0]), [3]))
        .sum()
        .mul(scale)
        .backward();
      const r = a.opt.scaledUpdate(0.1, scale);
      expect(r.foundInf.item()).toBe(1);
      a.opt.zeroGrad();
    });
    expect(a.p.toNumberArray()).toEqual([1, -2, 3]);
    expect(a.opt.getMoments('p').expAvg.toNumberArray()).toEqual([0, 0, 0]);
    expect(a.opt.step).toBe(0);
    expect(a.opt.skippedUpdates()).toBe(1);
    for (const { p, opt } of [a, b])
      tidy(() => {
        p.mul(fromTypedArray(Float64Array.from([0.5, 0.25, -1]), [3]))
          .sum()
          .mul(scale)
          .backward();
        const r = opt.scaledUpdate(0.1, scale);
        expect(r.foundInf.item()).toBe(0);
        expect(r.norm.item()).toBeCloseTo(Math.sqrt(0.25 + 0.0625 + 1), 12);
        opt.zeroGrad();
      });
    // a's first update made is bias-corrected as the first: b's, which skipped nothing
    expect(a.p.toNumberArray()).toEqual(b.p.toNumberArray());
    expect(a.opt.step).toBe(1);
    // setting the step (a checkpoint's count) forgets the skipped ones
    a.opt.step = 5;
    expect(a.opt.step).toBe(5);
    expect(a.opt.skippedUpdates()).toBe(0);
    for (const x of [a, b]) {
      x.opt.dispose();
      x.p.dispose();
    }
    scale.dispose();
  });

  // Two optimizers on the same gradients, one of which first skips `skips` overflowing updates:
  // the updates they then make (scaled or plain, as `then` says) must be the same.
  function afterSkips(o: { skips: number; then: 'scaled' | 'plain'; biasCorrection: boolean; fused: boolean; strided?: boolean }) {
    const make = (): { p: Tensor; opt: AdamW } => {
      // (strided: a transposed view, which the fused kernel does not take: the native falls back to foreach)
      const base = fromTypedArray(Float32Array.from([1, -2, 3, 0.5, 0.25, -1]), o.strided ? [3, 2] : [2, 3]);
      const p = (o.strided ? base.T : base).requiresGrad_();
      const opt = new AdamW([{ name: 'p', tensor: p, kind: 'weight' }], {
        weightDecay: 0.1,
        biasCorrection: o.biasCorrection,
        fused: o.fused,
      });
      return { p, opt };
    };
    const a = make();
    const b = make();
    const scale = full([], 2 ** 10);
    const grad = (t: number) => fromTypedArray(Float32Array.from([0.5, 0.25, -1, t, -t, 2]), [2, 3]);
    for (let i = 0; i < o.skips; i++)
      tidy(() => {
        a.p
          .mul(fromTypedArray(Float32Array.from([1e38, 0, 0, 0, 0, 0]), [2, 3]))
          .sum()
          .mul(scale)
          .backward();
        expect(a.opt.scaledUpdate(0.1, scale).foundInf.item()).toBe(1);
        a.opt.zeroGrad();
      });
    for (let t = 1; t <= 3; t++)
      for (const { p, opt } of [a, b])
        tidy(() => {
          const loss = p.mul(grad(t)).sum();
          if (o.then === 'scaled') {
            loss.mul(scale).backward();
            opt.scaledUpdate(0.1, scale);
          } else {
            loss.backward();
            opt.update(0.1);
          }
          opt.zeroGrad();
        });
    const out = [a.p.toNumberArray(), b.p.toNumberArray(), [a.opt.step, b.opt.step]];
    for (const x of [a, b]) {
      x.opt.dispose();
      x.p.dispose();
    }
    scale.dispose();
    return out;
  }

  it.each([
    ['scaled', true, true],
    ['scaled', true, false],
    ['scaled', false, true],
    ['scaled', false, false],
    ['plain', true, true],
    ['plain', true, false],
    ['plain', false, true],
  ] as const)(
    'after skipped updates, %s updates (bias correction %s, fused %s) are those of an optimizer that skipped none',
    (then, biasCorrection, fused) => {
      const [a, b, steps] = afterSkips({ skips: 4, then, biasCorrection, fused });
      // (without bias correction the fused kernel is given lr, ε and decay rescaled at the step it
      // reads, the attempted count: the same update, rounded differently — the ulps of float32)
      if (biasCorrection) expect(a).toEqual(b);
      else for (let i = 0; i < b.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-6);
      expect(steps).toEqual([3, 3]);
    },
  );

  it("after skipped updates, a parameter the fused kernel cannot take (strided) is updated at the device's step count", () => {
    const [a, b, steps] = afterSkips({ skips: 3, then: 'scaled', biasCorrection: true, fused: true, strided: true });
    expect(a).toEqual(b);
    expect(steps).toEqual([3, 3]);
  });

  it('refuses half-precision gradients (their norm overflows at 65504, and unscaling them loses what the scale kept)', () => {
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const p = fromTypedArray(Float32Array.from([1, 2]), [2], { dtype }).requiresGrad_();
      const opt = new AdamW([{ name: 'p', tensor: p, kind: 'weight' }]);
      tidy(() => {
        p.sum().backward();
        expect(() => opt.scaledUpdate(0.1, full([], 8))).toThrow(
          new RegExp(`loss scaling needs float32 or float64 gradients \\(float32 master weights, as autocast keeps them\\), got ${dtype}`),
        );
      });
      expect(opt.step).toBe(0);
      opt.dispose();
      p.dispose();
    }
  });

  it('refuses a loss scale that is not a float32 scalar on the parameters’ device', () => {
    const p = fromTypedArray(Float32Array.from([1, 2]), [2]).requiresGrad_();
    const opt = new AdamW([{ name: 'p', tensor: p, kind: 'weight' }]);
    tidy(() => {
      p.sum().backward();
      expect(() => opt.scaledUpdate(0.1, full([], 8, { dtype: 'float64' }))).toThrow(
        /clipGradNorm: the lossScale tensor must be a float32 scalar on cpu, got float64/,
      );
      expect(() => opt.scaledUpdate(0.1, full([2], 8))).toThrow(/lossScale tensor must be a float32 scalar/);
    });
    expect(opt.step).toBe(0);
    opt.dispose();
    p.dispose();
  });
});

const itCuda = itWhen(cudaAvailable(), 'no CUDA device');

describe('on CUDA', () => {
  itCuda("the scale's update (libtorch's kernel there) follows torch._amp_update_scale_", () => {
    expectUpdatesLikeTorch('cuda');
  });

  itCuda('scaledUpdate trains as torch.amp.GradScaler does: the fused kernel reading foundInf on the device, and the foreach path', () => {
    expectLikeFixture(trainLikeFixture(true, 'cuda'));
    expectLikeFixture(trainLikeFixture(false, 'cuda'));
  });

  itCuda('a fused scaled update and the scale update wait for nothing on the host, an overflow included', () => {
    // entries of 8·N(0, 1): scaled gradients 2·p·2^(127−k) hold infs for the first five steps k
    const p = randn([64, 64], { device: 'cuda' }).mul_(8).requiresGrad_();
    const opt = new AdamW([{ name: 'p', tensor: p, kind: 'weight' }]);
    const scaler = new GradScaler('cuda', { init: 2 ** 127 });
    const step = () =>
      tidy(() => {
        scaler.scaleLoss(p.pow(2).sum()).backward();
        scaler.update(opt.scaledUpdate(0.01, scaler.scale, 1.0).foundInf);
        opt.zeroGrad();
      });
    step(); // (first-use set-up may read back)
    forbidHostSync(() => {
      for (let i = 0; i < 4; i++) step();
    });
    expect(scaler.state().scale).toBe(2 ** 122);
    expect(opt.skippedUpdates()).toBe(5);
    opt.dispose();
    scaler.dispose();
    p.dispose();
  });
});
