// `prepare`: text files → llm.c token shards. All documents of all inputs, in order, are tokenized
// (each followed by EOT) into one stream; its first documents, about `valTokens` tokens, become the
// validation shard DIR/val_000000.bin and the rest training shards DIR/train_000001.bin, … of at
// most `shardTokens` tokens each (llm.c's convention: shard 0 is validation).
//
// The inputs are read as a stream (documents.ts) and the shards written as the ids come (ShardSink),
// so neither a file nor the corpus needs to fit in memory. The shards replace the directory's
// earlier shard set as a whole (see replaceShards).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fsyncDirectory, makeDirectory, removeAbandoned } from './atomic';
import { inputSize } from './documents';
import { readInputPieces, type InputFormat } from './inputs';
import { tokenizePieces, type Piece } from './parallel';
import { writeShard } from './shards';
import { EOT } from './tokenizer';

export interface PrepareOptions {
  /** Text files (UTF-8) or JSON lines (`.jsonl`), each possibly compressed (`.gz`, `.br`). */
  inputs: string[];
  /** Every input's format (default: by its name; see inputs.ts). */
  format?: InputFormat;
  /** JSON lines: the field holding the text (default "text"). */
  textField?: string;
  outDir: string;
  /** Most tokens per shard (default 100 M, as llm.c's FineWeb shards). */
  shardTokens?: number;
  /**
   * Tokens in the validation shard (default: 10% of all tokens, at most `shardTokens`), moved up to
   * the end of the document they end in, so that no document is in both splits (see validationEnd).
   */
  valTokens?: number;
  /** Tokenizer threads (default: os.availableParallelism(); inputs under ~4 MB stay on the main thread). */
  workers?: number;
  /** Bytes of the input files (as stored) tokenized so far, and their total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Stops reading once aborted (Ctrl-C): prepare then rejects with PrepareInterruptedError, its
   * staging directory removed and the directory's earlier shard set left as it was.
   */
  signal?: AbortSignal;
}

export class PrepareInterruptedError extends Error {
  constructor(outDir: string) {
    super(`prepare interrupted: ${outDir} is as it was (its earlier shard set, if any, is complete)`);
    this.name = 'PrepareInterruptedError';
  }
}

export interface ShardInfo {
  path: string;
  split: 'val' | 'train';
  tokens: number;
}

export interface PrepareSummary {
  outDir: string;
  inputs: string[];
  documents: number;
  /** Characters (Unicode code points) of text read: an emoji is one. */
  characters: number;
  tokens: { train: number; val: number };
  files: ShardInfo[];
  /** Tokenizer threads used (1: the main thread). */
  workers: number;
  seconds: number;
}

export const DEFAULT_SHARD_TOKENS = 100_000_000;
const SHARD_NAME = /^(val|train)_\d{6}\.bin$/;

export async function prepare(opts: PrepareOptions): Promise<PrepareSummary> {
  const t0 = performance.now();
  const shardTokens = positiveInt(opts.shardTokens ?? DEFAULT_SHARD_TOKENS, 'shardTokens');
  const askedVal = opts.valTokens === undefined ? undefined : positiveInt(opts.valTokens, 'valTokens');
  if (askedVal !== undefined && askedVal > shardTokens)
    throw new RangeError(`prepare: valTokens (${askedVal}) exceeds shardTokens (${shardTokens}); the validation split is one shard`);
  if (opts.inputs.length === 0) throw new TypeError('prepare: no input files');
  // every input is looked at before any is read: a missing one fails now, not after the others
  const inputBytes = opts.inputs.reduce((n, file) => n + inputSize(file), 0);

  let documents = 0;
  let characters = 0;
  const inputs = opts.inputs;
  async function* pieces(): AsyncGenerator<Piece> {
    for (const file of inputs) {
      for await (const p of readInputPieces(file, { format: opts.format, textField: opts.textField })) {
        if (opts.signal?.aborted) throw new PrepareInterruptedError(opts.outDir);
        characters += codePoints(p.text);
        if (p.eot) documents++;
        yield { text: p.text, eot: p.eot, units: p.bytes };
      }
    }
  }
  let workers = 1;
  let sink: ShardSink | undefined;
  const files = await replaceShards(opts.outDir, async (staging) => {
    // the shards are written as the ids come: a corpus need not fit in memory
    sink = new ShardSink(staging, opts.outDir, shardTokens, askedVal);
    const s = sink;
    workers = (
      await tokenizePieces(pieces(), inputBytes, { workers: opts.workers, onProgress: opts.onProgress, onTokens: (t) => s.push(t) })
    ).workers;
    // (an abort after the last piece was read: the new set is not put in place either)
    if (opts.signal?.aborted) throw new PrepareInterruptedError(opts.outDir);
    return s.finish();
  });
  const val = files[0].tokens;
  return {
    outDir: opts.outDir,
    inputs: opts.inputs,
    documents,
    characters,
    tokens: { train: sink!.total - val, val },
    files,
    workers,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * Ids in, shards out (into `staging`), in order: the validation shard first, then training shards
 * of `shardTokens` as they fill. Until the validation split is decided the ids are held: with
 * `valTokens` given, until one shard and a token more have come (enough to move its end to a
 * document's end); by default (10% of all ids, at most one shard), until ten shards' worth have
 * come, or the input ends. Memory is at most that much (2 GB at the default 100 M-token shards),
 * however large the corpus.
 */
export class ShardSink {
  readonly files: ShardInfo[] = [];
  total = 0;
  private chunks: Uint16Array[] = [];
  private buffered = 0;
  private decided = false;

  constructor(
    private readonly staging: string,
    private readonly outDir: string,
    private readonly shardTokens: number,
    private readonly valTokens: number | undefined,
  ) {}

  /** Ids held, not yet written. */
  get held(): number {
    return this.buffered;
  }

  push(tokens: Uint16Array): void {
    if (tokens.length === 0) return;
    this.chunks.push(tokens);
    this.buffered += tokens.length;
    this.total += tokens.length;
    const decideAt = this.valTokens !== undefined ? this.shardTokens + 1 : 10 * this.shardTokens + 1;
    // (by default, past ten shards 10% of the whole is at least one shard: the split is one shard)
    if (!this.decided && this.buffered >= decideAt) this.writeValidation(this.valTokens ?? this.shardTokens);
    if (this.decided) this.writeFullShards();
  }

  /** Writes what is held; the shard set's files in order. */
  finish(): ShardInfo[] {
    if (!this.decided) {
      const valTokens = this.valTokens ?? defaultValTokens(this.total, this.shardTokens);
      if (valTokens >= this.total)
        throw new RangeError(
          `prepare: the inputs hold ${this.total} tokens, too few for ${valTokens} validation tokens and a training split`,
        );
      this.writeValidation(valTokens);
    }
    this.writeFullShards();
    if (this.buffered > 0) this.write('train', this.take(this.buffered));
    return this.files;
  }

  /** The validation shard: `valTokens` ids moved up to a document's end (validationEnd). */
  private writeValidation(valTokens: number): void {
    // what validationEnd looks at: the next shard and one id, or what is held where the input
    // ended with less (a copy of all that is held, up to ten shards, doubled the peak memory)
    const head = this.peek(Math.min(this.buffered, this.shardTokens + 1));
    this.write('val', this.take(validationEnd(head, valTokens, this.shardTokens)));
    this.decided = true;
  }

  private writeFullShards(): void {
    while (this.buffered >= this.shardTokens) this.write('train', this.take(this.shardTokens));
  }

  private write(split: 'val' | 'train', tokens: Uint16Array): void {
    const name = shardName(split, this.files.length);
    writeShard(join(this.staging, name), tokens);
    this.files.push({ path: join(this.outDir, name), split, tokens: tokens.length });
  }

  /** The first n held ids, still held. */
  private peek(n: number): Uint16Array {
    const out = new Uint16Array(n);
    let at = 0;
    for (const c of this.chunks) {
      if (at === n) break;
      const part = c.subarray(0, Math.min(c.length, n - at));
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** The first n held ids, no longer held. */
  private take(n: number): Uint16Array {
    const out = this.peek(n);
    let left = n;
    while (left > 0) {
      const c = this.chunks[0];
      if (c.length <= left) {
        this.chunks.shift();
        left -= c.length;
      } else {
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
    return out;
  }
}

/** Code points of a string: its UTF-16 units less the second half of each surrogate pair. */
function codePoints(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    if (u >= 0xdc00 && u <= 0xdfff && i > 0 && text.charCodeAt(i - 1) >= 0xd800 && text.charCodeAt(i - 1) <= 0xdbff) n--;
  }
  return n;
}

function shardName(split: 'val' | 'train', index: number): string {
  return `${split}_${String(index).padStart(6, '0')}.bin`;
}

function defaultValTokens(total: number, shardTokens: number): number {
  return Math.min(shardTokens, Math.max(1, Math.round(total * 0.1)));
}

/**
 * Where the validation split ends: at a document's end near `valTokens` tokens (just past its
 * EOT), so that no document is in both splits — the end of the document that token is in, where
 * that keeps the split within twice the size asked for (and within one shard, `shardTokens`, and
 * before the last token, which training needs), else the end of the last document before it, where
 * that keeps at least half; failing both (one long document), the cut stays at `valTokens`, inside
 * a document. (Without the bound, a first input file of one long document became the whole
 * validation split.)
 */
export function validationEnd(tokens: Uint16Array, valTokens: number, shardTokens: number): number {
  const limit = Math.min(shardTokens, tokens.length - 1, 2 * valTokens);
  for (let i = valTokens - 1; i < limit; i++) if (tokens[i] === EOT) return i + 1;
  for (let i = valTokens - 2; i + 1 >= Math.ceil(valTokens / 2); i--) if (tokens[i] === EOT) return i + 1;
  return valTokens;
}

// The shard set of a directory is its files named like val_000000.bin and train_000001.bin; other
// files are left alone. A new set is staged in a hidden directory inside it, named with the
// writer's process id, which the loader does not read (it reads only *.bin files).
const STAGING_PREFIX = '.staged-lm-prepare-';
const STAGING_NAME = /^\.staged-lm-prepare-(\d+)-[0-9a-f]+$/;

/**
 * Makes the shard set `produce` writes into a staging directory the shard set of `dir` (the
 * files it returns), replacing the earlier set as a whole, so that a failed prepare never leaves old and new shards mixed (which would load
 * as one valid but wrong dataset) nor a shard half-written:
 *
 *   1. The new shards are written into the staging directory. This is where the time goes and
 *      where writes fail (a full disk): a failure, or the process being killed, leaves the OLD SET
 *      COMPLETE (a killed run's staging directory is removed by the next prepare into `dir`).
 *   2. The old set is removed, then the new shards are renamed into `dir`: no data is copied, it
 *      takes milliseconds. A failure here (the directory was writable a moment ago, so this is
 *      rare) removes every shard: it leaves NO SHARD SET, never a part of one.
 *
 * What is not covered: the process killed (or the machine losing power) within step 2's few
 * renames can leave part of a set, which the loader cannot tell from a whole one; closing that
 * window needs the loader to read a manifest written last (lib/data/source.ts).
 */
async function replaceShards(dir: string, produce: (staging: string) => Promise<ShardInfo[]>): Promise<ShardInfo[]> {
  const created = !existsSync(dir);
  try {
    makeDirectory(dir);
  } catch (e) {
    throw new Error(`${dir}: cannot create the output directory (${(e as Error).message})`);
  }
  // the loader reads every .bin in a directory: token files of another kind would be mixed in
  const foreign = readdirSync(dir).filter((name) => name.endsWith('.bin') && !SHARD_NAME.test(name));
  if (foreign.length > 0)
    throw new Error(
      `${dir} holds token files prepare does not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}): ` +
        'a run reads every .bin file there, so they would be mixed with the new shards: choose another --out, or move them',
    );
  removeAbandoned(dir, STAGING_NAME); // (staging directories of prepares that were killed)
  const staging = join(dir, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  let done = false;
  try {
    mkdirSync(staging);
    const files = await produce(staging);
    try {
      for (const name of readdirSync(dir)) if (SHARD_NAME.test(name)) rmSync(join(dir, name), { force: true });
      for (const f of files) renameSync(join(staging, basename(f.path)), f.path);
    } catch (e) {
      removeShardSet(dir);
      throw e;
    }
    fsyncDirectory(dir); // (the renames reach the disk: a power loss now keeps the new set)
    done = true;
    return files;
  } finally {
    rmSync(staging, { recursive: true, force: true });
    if (!done && created) removeIfEmpty(dir);
  }
}

/** Removes every shard in `dir`, as far as it can: it runs while another error is on its way out. */
function removeShardSet(dir: string): void {
  try {
    for (const name of readdirSync(dir)) if (SHARD_NAME.test(name)) rmSync(join(dir, name), { force: true });
  } catch {
    // (the error that brought us here is the one to report)
  }
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir); // (fails, and keeps it, when not empty)
  } catch {
    // (kept)
  }
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`prepare: expected a positive integer for ${name} but received ${v}`);
  return v;
}
