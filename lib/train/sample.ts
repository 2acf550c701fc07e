// Autoregressive sampling: temperature and top-k over the real vocabulary (the padded rows are
// never drawn), with a seeded generator so the same seed gives the same text.
import { noGrad } from '../autograd';
import { Xoshiro128 } from '../data/rng';
import { fromTypedArray } from '../factories';
import type { GPT } from '../nn/gpt';
import { withAutocast } from '../runtime';
import { tidy } from '../scope';

export interface SampleOptions {
  maxNewTokens: number;
  /** Softmax temperature; 0 picks the most likely token. */
  temperature?: number;
  /** Draw only among the k most likely tokens (0: all). */
  topK?: number;
  seed?: number;
  /** Stop at this token (e.g. end-of-text). */
  stopToken?: number;
  autocast?: 'bfloat16' | null;
}

/** Continues `prompt` (token ids, at least one) by up to maxNewTokens tokens; returns only the new ones. */
export function generate(model: GPT, prompt: number[], opts: SampleOptions): number[] {
  if (prompt.length === 0) throw new Error('generate: the prompt must hold at least one token');
  const { maxNewTokens, temperature = 0.8, topK = 40, seed = 0 } = opts;
  if (!(temperature >= 0)) throw new RangeError(`generate: temperature must be ≥ 0, got ${temperature}`);
  const rng = Xoshiro128.fromSeed(seed);
  const V = model.config.vocabSize;
  const ctx = model.config.contextLength;
  const ids = [...prompt];
  const device = model.parameters()[0].device;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let n = 0; n < maxNewTokens; n++) {
      const window = ids.slice(-ctx);
      const logits = tidy(() =>
        noGrad(() => {
          const x = fromTypedArray(Int32Array.from(window), [1, window.length], { dtype: 'int64', device });
          const forward = () => model.logits(x);
          const all = opts.autocast ? withAutocast(opts.autocast, forward) : forward(); // (1, T, Vpad)
          return all
            .select(1, window.length - 1)
            .narrow(1, 0, V)
            .float()
            .toNumberArray(); // last position, real vocab
        }),
      );
      const next = pick(logits, temperature, topK, rng);
      ids.push(next);
      if (next === opts.stopToken) break;
    }
  } finally {
    model.train(wasTraining);
  }
  return ids.slice(prompt.length);
}

function pick(logits: number[], temperature: number, topK: number, rng: Xoshiro128): number {
  if (temperature === 0) return logits.reduce((best, v, i) => (v > logits[best] ? i : best), 0);
  let order = logits.map((_, i) => i);
  if (topK > 0 && topK < logits.length) order = order.sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  const max = Math.max(...order.map((i) => logits[i]));
  const weights = order.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = (rng.nextUint32() / 2 ** 32) * total;
  for (let k = 0; k < order.length; k++) {
    u -= weights[k];
    if (u <= 0) return order[k];
  }
  return order[order.length - 1];
}
