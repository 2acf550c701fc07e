// Six training steps against PyTorch: a 2-layer GPT-2 written independently in plain PyTorch
// (test/fixtures/gpt-training-torch.py: float64, torch.optim.AdamW with decay on matrices and
// embeddings only, clip_grad_norm_, warmup + cosine) from the same formula-made weights and the
// same batches. The losses, gradient norms, rates and the final weights and moments must agree
// to float64 rounding: the model, autograd, clipping, AdamW and the schedule together. And the same
// run grown to width ×2 or depth ×2 mid-run, against the script's own growth written from
// spec/growth.md: the grown weights, moments and step train on as the reference's do.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW } from '../../lib/optim/adamw';
import {
  GPT,
  fromTypedArray,
  growDepth,
  growWidth,
  instantiate,
  learningRate,
  noGrad,
  parseGPTConfig,
  parseSchedule,
  stateOf,
  tidy,
  type Tensor,
} from '../imports';

interface Reference {
  config: { nLayer: number; nHead: number; nEmbd: number; contextLength: number; vocabSize: number };
  batch: number;
  peak: number;
  warmup: number;
  final: number;
  steps: StepRef[];
  params: Record<string, ParamRef>;
  /** The same run grown to width ×2 after step `at` (spec/growth.md's table, the schedule kept), trained on. */
  grown: { at: number; steps: StepRef[]; params: Record<string, ParamRef> };
  /** The same with depth ×2 (identity blocks interleaved, copied weights, zero moments). */
  deepened: { at: number; steps: StepRef[]; params: Record<string, ParamRef> };
}
type StepRef = { step: number; lr: number; loss: number; gradNorm: number };
type ParamRef = { sum: number; sumSq: number; expAvgSumSq: number; expAvgSqSum: number };

const ref = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'gpt-training-torch.json'), 'utf8')) as Reference;

/** The fixture's initial weights: the same formula as the Python script's `initial`. */
function initial(k: number, name: string, shape: number[]): Float64Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const a = 0.7 * j + 1.3 * k;
    v[j] =
      name.includes('ln_') && name.endsWith('weight')
        ? 1 + 0.1 * Math.sin(a)
        : name.endsWith('bias')
          ? 0.01 * Math.cos(a)
          : 0.1 * Math.sin(a);
  }
  return v;
}

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

/** The fixture's batch of a step: the same formula as the Python script's `batch`. */
function batchOf(step: number): { x: Tensor; y: Tensor } {
  const { batch: B, config: c } = ref;
  const T = c.contextLength;
  const xs = new Float64Array(B * T);
  const ys = new Float64Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      xs[b * T + t] = (3 * step + 5 * b + 7 * t) % c.vocabSize;
      ys[b * T + t] = (3 * xs[b * T + t] + 1 + step) % c.vocabSize;
    }
  return { x: fromTypedArray(xs, [B, T], { dtype: 'int64' }), y: fromTypedArray(ys, [B, T], { dtype: 'int64' }) };
}

const schedule = parseSchedule({ kind: 'cosine', peak: ref.peak, warmup: ref.warmup, total: ref.steps.length, final: ref.final });

/** The reference's steps, on this model and optimizer: rate, loss and gradient norm of each. */
function trainAlong(model: GPT, opt: AdamW, steps: StepRef[]): void {
  for (const s of steps) {
    const lr = learningRate(schedule, s.step);
    expect(relErr(lr, s.lr)).toBeLessThan(1e-15);
    const { loss, norm } = tidy(() => {
      const { x, y } = batchOf(s.step);
      const l = model.loss(x, y);
      l.backward();
      const n = opt.clipAndUpdate(1, lr);
      return { loss: l.item(), norm: n.item() };
    });
    opt.zeroGrad();
    expect(relErr(loss, s.loss)).toBeLessThan(1e-12);
    expect(relErr(norm, s.gradNorm)).toBeLessThan(1e-11);
  }
}

/** The final weights and moments against the reference's sums. */
function expectParams(model: GPT, opt: AdamW, params: Record<string, ParamRef>): void {
  expect(model.namedParameters().map((p) => p.name)).toEqual(Object.keys(params));
  for (const p of model.namedParameters()) {
    const want = params[p.name];
    const m = opt.getMoments(p.name);
    tidy(() => {
      expect(relErr(p.tensor.sum().item(), want.sum)).toBeLessThan(1e-9);
      expect(relErr(p.tensor.mul(p.tensor).sum().item(), want.sumSq)).toBeLessThan(1e-11);
      // (squares: a sum of signed values can cancel to near nothing, and its relative error with it)
      expect(relErr(m.expAvg.mul(m.expAvg).sum().item(), want.expAvgSumSq)).toBeLessThan(1e-10);
      expect(relErr(m.expAvgSq.sum().item(), want.expAvgSqSum)).toBeLessThan(1e-10);
    });
  }
}

/** The fixture's model at its initial weights, with AdamW as the script's (decay on matrices and embeddings). */
function start(): { model: GPT; opt: AdamW } {
  const model = new GPT(parseGPTConfig({ ...ref.config, dropout: { embedding: 0, attention: 0, residual: 0 } }), { dtype: 'float64' });
  const named = model.namedParameters();
  // the same order as the script's list: embeddings, each block, the final LayerNorm
  expect(named.map((p) => p.name)).toEqual(Object.keys(ref.params));
  noGrad(() => named.forEach((p, k) => tidy(() => p.tensor.copy_(fromTypedArray(initial(k, p.name, p.tensor.shape), p.tensor.shape)))));
  return { model, opt: new AdamW(named, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }) };
}

describe('training steps match PyTorch (float64)', () => {
  it('losses, gradient norms, rates, final weights and moments', () => {
    const { model, opt } = start();
    trainAlong(model, opt, ref.steps);
    expectParams(model, opt, ref.params);
    model.dispose();
    opt.dispose();
  });

  it.each([
    ['width', ref.grown],
    ['depth', ref.deepened],
  ] as const)('grown (%s ×2) mid-run — weights, moments, step — it trains on as the reference grown by the spec does', (op, want) => {
    const { model, opt } = start();
    const at = want.at;
    trainAlong(model, opt, ref.steps.slice(0, at));
    const state = stateOf(model, opt, schedule, { step: at, tokens: 0, flops: 0, stage: 0, schedulePos: at });
    // the schedule kept (the reference keeps its rates): this checks the weights, moments and step
    const next = op === 'width' ? growWidth(state, { schedule: false }) : growDepth(state, { schedule: false });
    const grown = instantiate(next, { adopt: true, optimizer: { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 } });
    model.dispose();
    opt.dispose();
    expect(grown.optimizer.step).toBe(at);
    // the first grown step's loss is the small model's at that step: the function is kept
    expect(want.steps[0].loss).toBe(ref.steps[at].loss);
    trainAlong(grown.model, grown.optimizer, want.steps);
    expectParams(grown.model, grown.optimizer, want.params);
    grown.model.dispose();
    grown.optimizer.dispose();
  });
});
