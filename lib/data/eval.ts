// Deterministic evaluation batches: consecutive windows of T tokens from the start of the data (each
// with its T next-token targets), so every evaluation scores the same tokens; and the UTF-8 bytes
// those tokens stand for, the denominator of bits per byte. Windows do not overlap by default; with
// a stride S < T they start S apart and each scores only its last S targets (the first window all
// T), the T − S before them serving as context — Hugging Face's sliding-window perplexity: every
// target is scored once, with at least T − S tokens before it (the first window's excepted).
// With `tail`, the targets after the last such window (fewer than S) are scored too, by one more
// window that ends with the data — every target of the data then counts, as in Hugging Face's
// recipe, and with a full window of context (its last window is shorter).
import type { Device } from '../dtype';
import { checkWindow, resolveDevice, toBatch, type Batch } from './batch';
import type { Tokens } from './file-tokens';
import { tokenByteLengths } from './tokenizer';

export interface EvalOptions {
  batchSize: number;
  seqLen: number;
  /** Stop after this many batches (default: all windows). */
  maxBatches?: number;
  /** Tokens between window starts, 1 … seqLen (default seqLen: no overlap); see the file comment. */
  stride?: number;
  /** Also score the targets after the last whole window, with a window ending at the data's end (default false). */
  tail?: boolean;
  device?: Device;
  /** Only batches i with i mod worldSize = rank (data parallel: the ranks split the same batches). */
  shard?: { rank: number; worldSize: number };
}

export interface EvalBatch extends Batch {
  /** 0-based index of this batch. */
  index: number;
  /** Targets scored in this batch: rows × T without a stride (the last batch may have fewer rows than B); see `stride`. */
  tokens: number;
}

/**
 * Windows of T tokens that fit, S = stride apart: window w covers tokens [wS, wS + T] (T inputs and
 * the next-token target of each).
 */
export function evalWindowCount(dataLength: number, seqLen: number, stride = seqLen): number {
  return dataLength < seqLen + 1 ? 0 : Math.floor((dataLength - 1 - seqLen) / stride) + 1;
}

/** Targets the first `windows` windows score: T, then S more each (tokens[1 … 1 + that], contiguous). */
export function evalScoredTokens(windows: number, seqLen: number, stride = seqLen): number {
  return windows === 0 ? 0 : seqLen + (windows - 1) * stride;
}

/**
 * Targets after the last whole window (0 … S − 1): what a `tail` window scores, the last ones of
 * the data. 0 where no window fits.
 */
export function evalTailTokens(dataLength: number, seqLen: number, stride = seqLen): number {
  const windows = evalWindowCount(dataLength, seqLen, stride);
  return windows === 0 ? 0 : dataLength - 1 - evalScoredTokens(windows, seqLen, stride);
}

/** Windows evalBatches scores (before maxBatches): the whole ones, and the tail's where it has targets. */
function windowCount(dataLength: number, opts: Pick<EvalOptions, 'seqLen' | 'stride' | 'tail'>): number {
  const tail = opts.tail === true && evalTailTokens(dataLength, opts.seqLen, opts.stride) > 0 ? 1 : 0;
  return evalWindowCount(dataLength, opts.seqLen, opts.stride) + tail;
}

/** Batches evalBatches yields for these options. */
export function evalBatchCount(dataLength: number, opts: Omit<EvalOptions, 'device'>): number {
  const all = Math.ceil(windowCount(dataLength, opts) / opts.batchSize);
  return opts.maxBatches === undefined ? all : Math.min(all, opts.maxBatches);
}

/**
 * The evaluation batches in order. Arguments are checked now; each batch's tensors are made when
 * the iteration reaches it, so stopping early allocates nothing more.
 */
export function evalBatches(tokens: Tokens, opts: EvalOptions): Generator<EvalBatch, void, undefined> {
  checkWindow(tokens, opts.batchSize, opts.seqLen, 'evalBatches');
  if (opts.maxBatches !== undefined && (!Number.isInteger(opts.maxBatches) || opts.maxBatches < 0)) {
    throw new TypeError(`evalBatches: expected a non-negative integer for maxBatches but received ${opts.maxBatches}`);
  }
  if (opts.stride !== undefined && !(Number.isInteger(opts.stride) && opts.stride >= 1 && opts.stride <= opts.seqLen)) {
    throw new RangeError(`evalBatches: stride must be an integer from 1 to seqLen (${opts.seqLen}), got ${opts.stride}`);
  }
  const sh = opts.shard;
  if (
    sh !== undefined &&
    !(Number.isInteger(sh.worldSize) && sh.worldSize >= 1 && Number.isInteger(sh.rank) && sh.rank >= 0 && sh.rank < sh.worldSize)
  ) {
    throw new RangeError(`evalBatches: shard rank ${sh.rank} is outside a world of size ${sh.worldSize}`);
  }
  return generate(tokens, opts, resolveDevice(opts.device, 'evalBatches'));
}

function* generate(tokens: Tokens, opts: EvalOptions, device: Device): Generator<EvalBatch, void, undefined> {
  const { batchSize: B, seqLen: T } = opts;
  const S = opts.stride ?? T;
  const whole = evalWindowCount(tokens.length, T, S);
  const windows = windowCount(tokens.length, opts);
  const batches = evalBatchCount(tokens.length, opts);
  const { rank, worldSize } = opts.shard ?? { rank: 0, worldSize: 1 };
  for (let index = rank; index < batches; index += worldSize) {
    const first = index * B;
    const rows = Math.min(B, windows - first);
    const x = new Int32Array(rows * T);
    const y = new Int32Array(rows * T);
    let scored = 0;
    for (let r = 0; r < rows; r++) {
      const w = first + r;
      // the tail window ends with the data
      const start = w < whole ? w * S : tokens.length - 1 - T;
      const window = tokens.subarray(start, start + T + 1); // (one read for data on disk)
      x.set(window.subarray(0, T), r * T);
      y.set(window.subarray(1), r * T);
      // a later window's first targets were scored by the windows before it (T − S of them; the
      // tail's all but the last few): ignored here (the loss's ignore index), so that every target
      // counts once
      const context = w === 0 ? 0 : w < whole ? T - S : T - evalTailTokens(tokens.length, T, S);
      y.fill(IGNORED, r * T, r * T + context);
      scored += T - context;
    }
    yield { ...toBatch(x, y, rows, T, device), index, tokens: scored };
  }
}

/** The loss's ignore index (float32CrossEntropy's default): targets a window does not score. */
const IGNORED = -100;

let lengths: Uint16Array | undefined;

/** Bytes of each ordinary GPT-2 id (0 … 50255). */
function byteLengths(): Uint16Array {
  return (lengths ??= tokenByteLengths());
}

/**
 * UTF-8 bytes of the text `ids` stand for: the sum of each id's bytes. Special tokens (EOT, and any id
 * past the tokenizer's ordinary vocabulary, such as a padded vocabulary's spare rows) are not text and
 * count 0 — decode() renders EOT as the 13 characters "<|endoftext|>", which would inflate the count.
 * Counted per token, not by decoding, so a window that starts or ends inside a multi-byte character
 * counts exactly the bytes of its own tokens.
 */
export function textBytes(ids: ArrayLike<number>): number {
  const lengths = byteLengths();
  let bytes = 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < lengths.length) bytes += lengths[ids[i]]; // (EOT = 50256 is the first id past the table)
  }
  return bytes;
}
