// A tiny random GPT in float64 with non-trivial LayerNorm and bias values and random AdamW moments,
// as a TrainState, for the growth tests (dropout off unless asked).
import { GPT, parseGPTConfig, type GPTConfigInput } from '../../lib/nn';
import { AdamW } from '../../lib/optim/adamw';
import { parseSchedule } from '../../lib/optim/schedule';
import { stateOf } from '../../lib/growth/model-state';
import type { TrainState } from '../../lib/growth';
import { manualSeed, noGrad, rand, randint, randn, tidy, type Dtype, type Tensor } from '../../lib';

export function tinyState(opts: { seed?: number; dtype?: Dtype; config?: Partial<GPTConfigInput> } = {}): {
  state: TrainState;
  model: GPT;
  optimizer: AdamW;
} {
  manualSeed(opts.seed ?? 11);
  const config = parseGPTConfig({ vocabSize: 50, vocabMultiple: 8, contextLength: 8, nLayer: 2, nHead: 2, nEmbd: 8, ...opts.config });
  const model = new GPT(config, { dtype: opts.dtype ?? 'float64' });
  noGrad(() => {
    for (const p of model.namedParameters()) {
      // weights larger than init so that every path matters; LN γ around 1, β and biases non-zero
      tidy(() => {
        if (p.kind === 'layernorm' && p.name.endsWith('weight')) p.tensor.copy_(rand(p.tensor.shape, { dtype: p.tensor.dtype }).add(0.5));
        else p.tensor.copy_(randn(p.tensor.shape, { dtype: p.tensor.dtype }).mul(0.3));
      });
    }
  });
  const optimizer = new AdamW(model.namedParameters(), { betas: [0.9, 0.98], eps: 1e-8, weightDecay: 0, biasCorrection: false });
  for (const p of model.namedParameters()) {
    optimizer.setMoments(p.name, {
      expAvg: randn(p.tensor.shape, { dtype: optimizer.getMoments(p.name).expAvg.dtype }).mul_(1e-3),
      expAvgSq: rand(p.tensor.shape, { dtype: optimizer.getMoments(p.name).expAvg.dtype }).mul_(1e-6),
    });
  }
  optimizer.step = 7;
  const schedule = parseSchedule({ kind: 'linear', peak: 1e-3, warmup: 10, total: 1000 });
  const state = stateOf(model, optimizer, schedule, { step: 100, tokens: 12800, flops: 1e12, stage: 0, schedulePos: 100 });
  return { state, model, optimizer };
}

export function batch(seed = 3, B = 3, T = 8, vocab = 50): { x: Tensor; y: Tensor } {
  manualSeed(seed);
  return { x: randint(0, vocab, [B, T]), y: randint(0, vocab, [B, T]) };
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return tidy(() => a.sub(b).abs().max().item());
}

/** Gradients of the loss on one batch, by parameter name. */
export function gradients(model: GPT, x: Tensor, y: Tensor): Record<string, Tensor> {
  for (const p of model.parameters()) p.grad = null;
  tidy(() => model.loss(x, y).backward());
  const out: Record<string, Tensor> = {};
  for (const p of model.namedParameters()) out[p.name] = p.tensor.grad!;
  return out;
}
