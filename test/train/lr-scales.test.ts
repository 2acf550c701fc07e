// Width-scaled learning rates (config.lr.hiddenWidthBase, lib/train/lr-scales.ts): which parameters
// they scale, AdamW's per-parameter multipliers, and the reason they exist — under them a width-grown
// model (off-diagonal moments scaled like the copies', no dropout) trains exactly as the small model
// would have, while with one rate for all parameters its function moves about twice as far a step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { growWidth } from '../../lib/growth';
import { instantiate } from '../../lib/growth/model-state';
import { AdamW } from '../../lib/optim/adamw';
import { lrScales } from '../../lib/train/lr-scales';
import { parseRunConfig } from '../../lib/train/config';
import { Trainer } from '../../lib/train/trainer';
import { noGrad, tensor, tidy, type Tensor } from '../../lib';
import type { GPT } from '../../lib/nn';
import type { TrainState } from '../../lib/growth';
import { batch, maxAbsDiff, tinyState } from '../growth/fixture';

describe('lrScales', () => {
  it('scales the blocks’ weight matrices and the final LayerNorm by base/width, nothing else', () => {
    const { model } = tinyState();
    const scale = lrScales(4, { nEmbd: 8 })!;
    const got = Object.fromEntries(model.namedParameters().map((p) => [p.name, scale(p)]));
    for (const n of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']) {
      expect(got[`transformer.h.1.${n}.weight`]).toBe(0.5);
      expect(got[`transformer.h.1.${n}.bias`]).toBe(1);
    }
    expect(got['transformer.ln_f.weight']).toBe(0.5);
    expect(got['transformer.ln_f.bias']).toBe(0.5);
    for (const n of ['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.0.ln_1.weight', 'transformer.h.0.ln_2.bias'])
      expect(got[n]).toBe(1);
    model.dispose();
  });

  it('is null without a base (one rate for all)', () => {
    expect(lrScales(undefined, { nEmbd: 8 })).toBeNull();
  });
});

describe('AdamW learning-rate multipliers', () => {
  const run = (scale: number, lr: number, weightDecay: number): number[] => {
    const p = tensor([1, -2, 3], { dtype: 'float64' });
    const opt = new AdamW([{ name: 'w', tensor: p, kind: 'weight' }], { weightDecay, eps: 1e-8 });
    opt.setLrScales(() => scale);
    for (let i = 0; i < 3; i++) {
      p.grad = tensor([0.5, 0.25, -1 - i], { dtype: 'float64' });
      opt.update(lr);
    }
    const out = p.toNumberArray();
    opt.dispose();
    p.dispose();
    return out;
  };

  it('a multiplier s takes the Adam step of lr·s', () => {
    const scaled = run(0.25, 1e-2, 0);
    const direct = run(1, 2.5e-3, 0);
    scaled.forEach((v, i) => expect(v).toBeCloseTo(direct[i], 14));
    expect(Math.abs(scaled[0] - run(1, 1e-2, 0)[0])).toBeGreaterThan(1e-3);
  });

  it('weight decay stays lr·weightDecay under a multiplier (the formula, 3 steps)', () => {
    // with zero gradients Adam's step is 0 and only the decay acts: p·(1 − lr·wd)^3 whatever s is
    const p = tensor([1, -2, 3], { dtype: 'float64' });
    const opt = new AdamW([{ name: 'w', tensor: p, kind: 'weight' }], { weightDecay: 0.1 });
    opt.setLrScales(() => 0.5);
    for (let i = 0; i < 3; i++) {
      p.grad = tensor([0, 0, 0], { dtype: 'float64' });
      opt.update(1e-1);
    }
    p.toNumberArray().forEach((v, i) => expect(v).toBeCloseTo([1, -2, 3][i] * (1 - 1e-2) ** 3, 14));
    opt.dispose();
  });

  it('refuses a negative or non-finite multiplier, naming the parameter', () => {
    const p = tensor([1], { dtype: 'float64' });
    const opt = new AdamW([{ name: 'w', tensor: p, kind: 'weight' }]);
    expect(() => opt.setLrScales(() => -1)).toThrow(/learning-rate scale of 'w'/);
    expect(() => opt.setLrScales(() => NaN)).toThrow(/learning-rate scale of 'w'/);
    opt.dispose();
  });
});

describe('width growth under width-scaled rates trains exactly like the small model', () => {
  const { x, y } = batch();
  const logits = (m: GPT): Tensor => tidy(() => noGrad(() => m.logits(x)));
  // ε ≈ 0: the copies' v/4 doubles ε in m/(√v+ε) (spec), which would blur an exact comparison
  const adam = { betas: [0.9, 0.98] as [number, number], eps: 1e-30, weightDecay: 0.1, biasCorrection: false };

  function train(s: TrainState, base: number | undefined, steps: number): GPT {
    const { model, optimizer } = instantiate(s, { optimizer: adam });
    const scale = lrScales(base, s.config);
    if (scale !== null) optimizer.setLrScales(scale);
    for (let i = 0; i < steps; i++) {
      tidy(() => model.loss(x, y).backward());
      optimizer.update(1e-2);
      optimizer.zeroGrad();
    }
    optimizer.dispose();
    return model;
  }

  const { state: small } = tinyState();
  const grown = growWidth(small, { offDiagonalMoments: 'scaled' });

  it('10 steps: same logits as the small model (fp64, relative 1e-9); one rate for all: off by > 1%', () => {
    const ref = train(small, 8, 10);
    const scaled = train(grown, 8, 10);
    const plain = train(grown, undefined, 10);
    const l0 = logits(ref);
    const size = tidy(() => l0.abs().max().item());
    expect(maxAbsDiff(logits(scaled), l0) / size).toBeLessThan(1e-9);
    // the control: the same grown state with one learning rate moves away from the small model
    expect(maxAbsDiff(logits(plain), l0) / size).toBeGreaterThan(1e-2);
    // and the run actually trained (the comparison is not between untouched models)
    const untouched = instantiate(small).model;
    expect(maxAbsDiff(logits(untouched), l0) / size).toBeGreaterThan(1e-2);
    for (const m of [ref, scaled, plain, untouched]) m.dispose();
  });
});

describe('the run config', () => {
  it('refuses hiddenWidthBase with the mlp or heads operators, naming the field', () => {
    for (const op of ['mlp', 'heads'])
      expect(() => parseRunConfig({ steps: 4, lr: { hiddenWidthBase: 16 }, stages: [{ until: { steps: 2 }, grow: { op } }] })).toThrow(
        /lr\.hiddenWidthBase: lr\.hiddenWidthBase scales by nEmbd/,
      );
    expect(() => parseRunConfig({ steps: 4, lr: { hiddenWidthBase: 0 } })).toThrow(/lr\.hiddenWidthBase/);
  });
});

describe('the trainer applies the rates of the current width', () => {
  it('before and after a width growth in a staged run', async () => {
    const t = Trainer.create({
      model: { preset: 'tiny', nLayer: 1, nEmbd: 16, nHead: 2, contextLength: 16 },
      data: 'embedded',
      steps: 4,
      batchSize: 2,
      seqLen: 16,
      lr: { hiddenWidthBase: 16 },
      eval: { interval: 0 },
      logInterval: 1,
      stages: [{ until: { steps: 2 }, grow: { op: 'width' } }],
    });
    expect(t.optimizer.lrScale('transformer.h.0.mlp.c_fc.weight')).toBe(1);
    expect(t.optimizer.lrScale('transformer.wte.weight')).toBe(1);
    const out = mkdtempSync(join(tmpdir(), 'lr-scales-'));
    await t.train({ out, progress: false });
    rmSync(out, { recursive: true, force: true });
    expect(t.modelConfig.nEmbd).toBe(32);
    expect(t.optimizer.lrScale('transformer.h.0.mlp.c_fc.weight')).toBe(0.5);
    expect(t.optimizer.lrScale('transformer.ln_f.bias')).toBe(0.5);
    expect(t.optimizer.lrScale('transformer.wte.weight')).toBe(1);
    t.dispose();
  });
});
