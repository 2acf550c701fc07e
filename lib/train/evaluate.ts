// Held-out loss over consecutive windows (the same tokens every time; overlapping with a stride, each
// target scored once), in eval mode without autograd.
// Sharded (data parallel), a rank scores every W-th batch and returns its partial sums.
import { noGrad } from '../autograd';
import { evalBatches } from '../data/eval';
import type { Tokens } from '../data/file-tokens';
import type { Device } from '../dtype';
import type { GPT } from '../nn/gpt';
import { withAutocast } from '../runtime';
import { tidy } from '../scope';

export interface EvalResult {
  /** Mean next-token cross-entropy, nats. */
  loss: number;
  /** Targets scored. */
  tokens: number;
}

export function evaluate(
  model: GPT,
  tokens: Tokens,
  opts: {
    batchSize: number;
    seqLen: number;
    maxBatches?: number;
    /** Windows this many tokens apart, each scoring its last `stride` targets (default seqLen: no overlap). */
    stride?: number;
    /** Also score the targets after the last whole window (see evalBatches). */
    tail?: boolean;
    device: Device;
    autocast?: 'bfloat16' | 'float16' | null;
    /** Score only batches i with i mod worldSize = rank; the result may then cover 0 tokens (loss NaN). */
    shard?: { rank: number; worldSize: number };
  },
): EvalResult {
  const wasTraining = model.training;
  model.eval();
  let nats = 0;
  let count = 0;
  try {
    for (const b of evalBatches(tokens, {
      batchSize: opts.batchSize,
      seqLen: opts.seqLen,
      maxBatches: opts.maxBatches,
      stride: opts.stride,
      tail: opts.tail,
      device: opts.device,
      shard: opts.shard,
    })) {
      try {
        nats += tidy(() =>
          noGrad(() => {
            const forward = () => model.loss(b.x, b.y).item();
            return (opts.autocast ? withAutocast(opts.autocast, forward) : forward()) * b.tokens;
          }),
        );
      } finally {
        b.x.dispose(); // (made outside the scope: freed here whether the batch scored or threw)
        b.y.dispose();
      }
      count += b.tokens;
    }
  } finally {
    model.train(wasTraining);
  }
  if (count === 0) {
    if (opts.shard !== undefined) return { loss: NaN, tokens: 0 };
    throw new Error('evaluate: the validation data holds no complete window');
  }
  return { loss: nats / count, tokens: count };
}
