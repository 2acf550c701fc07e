// Random training batches: B windows of T+1 consecutive tokens at uniformly random offsets
// (nanoGPT's get_batch), drawn from a seeded generator whose state is saved in checkpoints, so a
// resumed run sees exactly the batches the uninterrupted run would have seen. Sharded over the W
// ranks of a data-parallel job, every rank draws the same W·B windows and keeps its B: together
// the ranks see exactly the batches one process with batch W·B would see.
import { z } from 'zod';
import type { Device } from '../dtype';
import { checkWindow, resolveDevice, toBatch, type Batch } from './batch';
import type { Tokens } from './file-tokens';
import { Xoshiro128 } from './rng';

export interface BatchLoaderOptions {
  /** B, windows per batch. */
  batchSize: number;
  /** T, tokens per window. */
  seqLen: number;
  /** Seed of the window offsets (default 0). */
  seed?: number;
  /** Where x and y are placed (default 'cpu'); CUDA batches are staged in pinned memory. */
  device?: Device;
  /** This rank's share of a data-parallel batch of worldSize·batchSize windows. */
  shard?: { rank: number; worldSize: number };
}

const LoaderStateSchema = z
  .object({
    version: z.literal(1),
    batchSize: z.number().int().positive(),
    seqLen: z.number().int().positive(),
    /** Ranks sharing each batch (1 without data parallelism). */
    worldSize: z.number().int().positive().optional(),
    /** Length of the data the state belongs to: offsets drawn for other data would differ. */
    dataLength: z.number().int().nonnegative(),
    /** A hash of samples of that data (dataFingerprint): other data of the same length is told apart. */
    dataFingerprint: z.string().optional(),
    /** Batches drawn so far. */
    batches: z.number().int().nonnegative(),
    rng: z.object({
      algorithm: z.literal('xoshiro128**'),
      s: z.tuple([z.number(), z.number(), z.number(), z.number()]),
    }),
  })
  .strict();

/** Everything a BatchLoader needs to continue where it stopped; plain JSON. */
export type LoaderState = z.infer<typeof LoaderStateSchema>;

export class BatchLoader {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly device: Device;
  readonly shard: { rank: number; worldSize: number };
  private readonly tokens: Tokens;
  private rng: Xoshiro128;
  private drawn = 0;

  constructor(tokens: Tokens, opts: BatchLoaderOptions) {
    checkWindow(tokens, opts.batchSize, opts.seqLen, 'BatchLoader');
    this.tokens = tokens;
    this.batchSize = opts.batchSize;
    this.seqLen = opts.seqLen;
    this.device = resolveDevice(opts.device, 'BatchLoader');
    this.rng = Xoshiro128.fromSeed(opts.seed ?? 0);
    this.shard = opts.shard ?? { rank: 0, worldSize: 1 };
    const { rank, worldSize } = this.shard;
    if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
      throw new RangeError(`BatchLoader: shard rank ${rank} is outside a world of size ${worldSize}`);
    }
  }

  /** Batches drawn so far (since the seed, across restore()). */
  get batches(): number {
    return this.drawn;
  }

  /** The next batch: x int64 [B, T] and y = x shifted left by one token. */
  next(): Batch {
    const { batchSize: B, seqLen: T, tokens } = this;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    const offsets = tokens.length - T; // window starts 0 … N−T−1 keep the last target inside the data
    const { rank, worldSize } = this.shard;
    for (let w = 0; w < worldSize * B; w++) {
      const start = this.rng.nextInt(offsets);
      const b = w - rank * B;
      if (b < 0 || b >= B) continue; // another rank's window
      const window = tokens.subarray(start, start + T + 1); // (one read for data on disk)
      x.set(window.subarray(0, T), b * T);
      y.set(window.subarray(1), b * T);
    }
    this.drawn++;
    return toBatch(x, y, B, T, this.device);
  }

  state(): LoaderState {
    return {
      version: 1,
      batchSize: this.batchSize,
      seqLen: this.seqLen,
      ...(this.shard.worldSize > 1 ? { worldSize: this.shard.worldSize } : {}),
      dataLength: this.tokens.length,
      dataFingerprint: dataFingerprint(this.tokens),
      batches: this.drawn,
      rng: this.rng.state(),
    };
  }

  /** Continues from a saved state(); throws if the state is malformed or belongs to other data or sizes. */
  restore(state: unknown): void {
    const parsed = LoaderStateSchema.safeParse(state);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TypeError(`BatchLoader.restore: invalid loader state at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    const s = parsed.data;
    const mismatch = (['batchSize', 'seqLen'] as const).find((k) => s[k] !== this[k]);
    if (mismatch !== undefined) {
      throw new RangeError(`BatchLoader.restore: the state has ${mismatch} ${s[mismatch]} but this loader has ${this[mismatch]}`);
    }
    if ((s.worldSize ?? 1) !== this.shard.worldSize) {
      throw new LoaderMismatchError(
        'worldSize',
        `the state was saved by a run of ${s.worldSize ?? 1} rank(s) but this one has ${this.shard.worldSize}`,
        s.worldSize ?? 1,
        this.shard.worldSize,
      );
    }
    if (s.dataLength !== this.tokens.length) {
      throw new LoaderMismatchError(
        'data',
        `the state was saved for data of ${s.dataLength} tokens but this loader has ${this.tokens.length}`,
        s.dataLength,
        this.tokens.length,
      );
    }
    // (states from before the fingerprint have none: their length check is all there is)
    if (s.dataFingerprint !== undefined && s.dataFingerprint !== dataFingerprint(this.tokens)) {
      throw new LoaderMismatchError(
        'data',
        `the state was saved for other data of the same length (${s.dataLength} tokens, different contents)`,
        s.dataLength,
        this.tokens.length,
      );
    }
    this.rng = Xoshiro128.fromState(s.rng);
    this.drawn = s.batches;
  }
}

/**
 * A loader state that belongs to another run shape: `what` differs (the world size, or the data),
 * `saved` against `current` (ranks, or tokens). `problem` is the message's own part, without the
 * op's prefix and its consequence.
 */
export class LoaderMismatchError extends RangeError {
  constructor(
    readonly what: 'worldSize' | 'data',
    readonly problem: string,
    readonly saved: number,
    readonly current: number,
  ) {
    super(`BatchLoader.restore: ${problem}; the batches would differ`);
    this.name = 'LoaderMismatchError';
  }
}

/**
 * A hash (FNV-1a, 32 bits, hex) of the length and of 16 samples of 32 tokens spread evenly over the
 * data, read at once even from disk: a different corpus of the same length — another tokenization,
 * another shard order — is all but certain to differ in one of them.
 */
export function dataFingerprint(tokens: Tokens): string {
  const n = tokens.length;
  const SAMPLES = 16;
  const LEN = 32;
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    h ^= v & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  mix(n % 65536);
  mix(Math.floor(n / 65536) % 65536);
  for (let i = 0; i < SAMPLES; i++) {
    const start = n <= LEN ? 0 : Math.floor((i * (n - LEN)) / (SAMPLES - 1));
    for (const t of tokens.subarray(start, Math.min(n, start + LEN))) mix(t);
    if (n <= LEN) break;
  }
  return h.toString(16).padStart(8, '0');
}
