// Autoregressive sampling over the real vocabulary (the padded rows are never drawn). The prompt is
// read once into a KV cache and each new token is a one-position forward against it; past the
// context length the window slides, as nanoGPT's does, so every token then reads the last
// contextLength tokens afresh. Several samples of one prompt are drawn side by side in one batch.
import { totalmem } from 'node:os';
import { noGrad } from '../autograd';
import { Xoshiro128 } from '../data/rng';
import { cudaIndex, DTYPE_BYTES } from '../dtype';
import { fromTypedArray } from '../factories';
import type { GPT } from '../nn/gpt';
import { KVCache } from '../nn/kv-cache';
import { memoryStats, withAutocast } from '../runtime';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';
import { checkTokenChoice, chooseToken, type TokenChoice } from './next-token';

export interface SampleOptions {
  maxNewTokens: number;
  /** Softmax temperature (default 0.8); 0 picks the most likely token. */
  temperature?: number;
  /** Draw only among the k most likely tokens (default 40; 0: all). */
  topK?: number;
  /** Then only among the most likely tokens holding this much probability (default 1: all). */
  topP?: number;
  /** Sample i draws with the generator seeded seed + i (default 0). */
  seed?: number;
  /** A sample ends after this token (e.g. end-of-text), which it includes. */
  stopToken?: number;
  /**
   * Draw only ids below this (default: the model's vocabSize). A model whose vocabulary is wider
   * than its tokenizer's — a Hugging Face config that keeps nanoGPT's padded 50304 — would
   * otherwise draw ids no text stands for: give the tokenizer's size (GPT-2's 50257).
   */
  vocab?: number;
  autocast?: 'bfloat16' | 'float16' | null;
  /**
   * Reuse each position's keys and values (default true). false recomputes the whole window for
   * every token: the same logits, far slower; kept as the reference the cache is checked against.
   */
  kvCache?: boolean;
  /**
   * Positions the model reads at most (default its contextLength): past them the window slides.
   * A model trained on shorter sequences than its context reads no further than it was trained.
   */
  context?: number;
  /** Called with each token as it is drawn, and the sample it belongs to. */
  onToken?: (token: number, sample: number) => void;
  /** Stops drawing (before the next token) once aborted: what was drawn is returned. */
  signal?: AbortSignal;
}

/**
 * Refuses a batch of samples that cannot fit (a mistyped --samples 100000 would otherwise be ended
 * by the kernel's OOM killer, without a word): an estimate of what it holds at once — each
 * sample's KV cache, its logits on the device and in JS (read back for the token choice), and the
 * widest activations of a forward over `window` positions (QKV, MLP, and on the CPU the attention
 * scores: CUDA's fused attention keeps none) — against the device's total memory. `window` is the
 * prompt's positions, or the context once the window slides or without a cache (each token then
 * reads the whole window again). The advice keeps half the device for everything else.
 */
function checkSampleMemory(model: GPT, samples: number, window: number, capacity: number, cached: boolean): void {
  const c = model.config;
  const weight = model.transformer.wte.weight;
  const device = weight.device;
  const cuda = device.startsWith('cuda');
  const total = cuda ? memoryStats().cuda.find((d) => d.device === cudaIndex(device))?.total : totalmem();
  if (total === undefined) return;
  const bytes = DTYPE_BYTES[weight.dtype];
  const vocab = weight.shape[0];
  const width = c.nHead * c.headSize; // (the keys' and values' width)
  const perSample =
    bytes * (cached ? 2 * c.nLayer * capacity * width : 0) +
    4 * 3 * vocab + // (float32: the logits read back, their copy in JS, the choice's weights)
    bytes * window * (4 * c.mlpWidth + 3 * width + (cuda ? 0 : 3 * c.nHead * window)); // (scores, mask, softmax)
  const need = samples * perSample;
  if (need > total) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
    throw new RangeError(
      `generate: ${samples} samples side by side need about ${gib(need)} at once (KV cache, logits, activations), ` +
        `more than this ${cuda ? 'GPU' : 'machine'} has (${gib(total)}): draw at most about ${Math.max(1, Math.floor(total / 2 / perSample))} at a time`,
    );
  }
}

/** Continues `prompt` (token ids, at least one) by up to maxNewTokens tokens; returns only the new ones. */
export function generate(model: GPT, prompt: number[], opts: SampleOptions): number[] {
  return generateSamples(model, prompt, 1, opts)[0];
}

/** `samples` continuations of one prompt, drawn in one batch; sample i is seeded seed + i. */
export function generateSamples(model: GPT, prompt: number[], samples: number, opts: SampleOptions): number[][] {
  if (prompt.length === 0) throw new Error('generate: the prompt must hold at least one token');
  if (!Number.isSafeInteger(samples) || samples < 1) throw new RangeError(`generate: samples must be a positive integer, got ${samples}`);
  if (!Number.isSafeInteger(opts.maxNewTokens) || opts.maxNewTokens < 0)
    throw new RangeError(`generate: maxNewTokens must be an integer ≥ 0, got ${opts.maxNewTokens}`);
  const choice: TokenChoice = { temperature: opts.temperature ?? 0.8, topK: opts.topK ?? 40, topP: opts.topP ?? 1 };
  checkTokenChoice(choice, 'generate');
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER - (samples - 1))
    throw new RangeError(`generate: seed must be an integer ≥ 0 with seed + samples − 1 a safe integer, got ${seed} (${samples} samples)`);
  const V = opts.vocab ?? model.config.vocabSize;
  if (!Number.isSafeInteger(V) || V < 1 || V > model.config.vocabSize)
    throw new RangeError(`generate: vocab must be an integer from 1 to the model's vocabSize (${model.config.vocabSize}), got ${V}`);
  const bad = prompt.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= V);
  if (bad >= 0)
    throw new RangeError(`generate: prompt token ${bad} is ${prompt[bad]}, not an id of this model's vocabulary (0 … ${V - 1})`);
  const ctx = opts.context ?? model.config.contextLength;
  if (!Number.isInteger(ctx) || ctx < 1 || ctx > model.config.contextLength)
    throw new RangeError(
      `generate: context must be an integer from 1 to the model's contextLength (${model.config.contextLength}), got ${ctx}`,
    );
  const device = model.parameters()[0].device;
  const slides = opts.kvCache === false || prompt.length + opts.maxNewTokens > ctx; // (a forward over the whole window per token)
  checkSampleMemory(
    model,
    samples,
    slides ? ctx : Math.min(ctx, prompt.length),
    Math.min(ctx, prompt.length + opts.maxNewTokens),
    opts.kvCache !== false,
  );
  const rngs = Array.from({ length: samples }, (_, i) => Xoshiro128.fromSeed(seed + i));
  const sequences = Array.from({ length: samples }, () => [...prompt]);
  const done = new Array<boolean>(samples).fill(false);
  // (room for the whole generation; past the context the window slides within contextLength)
  const cache = opts.kvCache === false ? null : new KVCache(model.config, samples, Math.min(ctx, prompt.length + opts.maxNewTokens));
  const forward = (ids: number[][]): Tensor => {
    const T = ids[0].length;
    const flat = new Int32Array(samples * T);
    ids.forEach((row, i) => flat.set(row, i * T));
    const x = fromTypedArray(flat, [samples, T], { dtype: 'int64', device });
    const run = () => (cache === null ? model.logits(x).select(1, T - 1) : model.nextLogits(x, cache)); // (samples, Vpad)
    return opts.autocast ? withAutocast(opts.autocast, run) : run();
  };
  const wasTraining = model.training;
  model.eval();
  try {
    for (let n = 0; n < opts.maxNewTokens && done.includes(false) && !(opts.signal?.aborted ?? false); n++) {
      // what this step reads: everything new to the cache, or the last ctx tokens afresh
      let ids: number[][];
      if (cache !== null && n > 0 && cache.free > 0) ids = sequences.map((s) => s.slice(-1));
      else {
        cache?.reset();
        ids = sequences.map((s) => s.slice(-ctx));
      }
      const logits = tidy(() => noGrad(() => forward(ids).narrow(1, 0, V).float().toArray() as Float32Array)); // real vocab
      for (let i = 0; i < samples; i++) {
        // a finished sample's row is still computed (the batch stays rectangular) but not drawn
        const next = done[i] ? (opts.stopToken ?? 0) : chooseToken(logits.subarray(i * V, (i + 1) * V), choice, rngs[i]);
        sequences[i].push(next);
        if (done[i]) continue;
        opts.onToken?.(next, i);
        if (next === opts.stopToken) done[i] = true;
      }
    }
  } finally {
    cache?.dispose();
    model.train(wasTraining);
  }
  // each sample's tokens up to and including its stop token
  return sequences.map((s) => {
    const out = s.slice(prompt.length);
    const stop = opts.stopToken === undefined ? -1 : out.indexOf(opts.stopToken);
    return stop < 0 ? out : out.slice(0, stop + 1);
  });
}
