// `prepare`: text files → llm.c token shards. All documents of all inputs, in order, are tokenized
// (each followed by EOT) into one stream; its first `valTokens` tokens become the validation shard
// DIR/val_000000.bin and the rest training shards DIR/train_000001.bin, … of at most `shardTokens`
// tokens each (llm.c's convention: shard 0 is validation).
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readDocuments } from './documents';
import { tokenizeDocuments } from './parallel';
import { writeShard } from './shards';

export interface PrepareOptions {
  /** Text files (UTF-8, or Brotli-compressed with a `.br` name). */
  inputs: string[];
  outDir: string;
  /** Most tokens per shard (default 100 M, as llm.c's FineWeb shards). */
  shardTokens?: number;
  /** Tokens in the validation shard (default: 10% of all tokens, at most one shard). */
  valTokens?: number;
  /** Tokenizer threads (default: os.availableParallelism(); inputs under ~4 MB stay on the main thread). */
  workers?: number;
  /** Characters tokenized so far and the total. */
  onProgress?: (done: number, total: number) => void;
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
  /** Characters of text read. */
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
  if (opts.inputs.length === 0) throw new TypeError('prepare: no input files');
  const docs = opts.inputs.flatMap((file) => readDocuments(file));
  const { tokens, workers } = await tokenizeDocuments(docs, { workers: opts.workers, onProgress: opts.onProgress });
  const valTokens = opts.valTokens === undefined ? defaultValTokens(tokens.length, shardTokens) : positiveInt(opts.valTokens, 'valTokens');
  if (valTokens > shardTokens)
    throw new RangeError(`prepare: valTokens (${valTokens}) exceeds shardTokens (${shardTokens}); the validation split is one shard`);
  if (valTokens >= tokens.length) {
    throw new RangeError(
      `prepare: the inputs hold ${tokens.length} tokens, too few for ${valTokens} validation tokens and a training split`,
    );
  }

  mkdirSync(opts.outDir, { recursive: true });
  const files: ShardInfo[] = [{ path: join(opts.outDir, shardName('val', 0)), split: 'val', tokens: valTokens }];
  for (let start = valTokens; start < tokens.length; start += shardTokens) {
    files.push({
      path: join(opts.outDir, shardName('train', files.length)),
      split: 'train',
      tokens: Math.min(shardTokens, tokens.length - start),
    });
  }
  let at = 0;
  for (const f of files) {
    writeShard(f.path, tokens.subarray(at, at + f.tokens));
    at += f.tokens;
  }
  removeStaleShards(opts.outDir, files);

  return {
    outDir: opts.outDir,
    inputs: opts.inputs,
    documents: docs.length,
    characters: docs.reduce((n, d) => n + d.length, 0),
    tokens: { train: tokens.length - valTokens, val: valTokens },
    files,
    workers,
    seconds: (performance.now() - t0) / 1000,
  };
}

function shardName(split: 'val' | 'train', index: number): string {
  return `${split}_${String(index).padStart(6, '0')}.bin`;
}

function defaultValTokens(total: number, shardTokens: number): number {
  return Math.min(shardTokens, Math.max(1, Math.round(total * 0.1)));
}

/** Shards of an earlier, larger run would otherwise be read as part of this one. */
function removeStaleShards(dir: string, written: ShardInfo[]): void {
  const keep = new Set(written.map((f) => basename(f.path)));
  for (const name of readdirSync(dir)) {
    if (SHARD_NAME.test(name) && !keep.has(name)) rmSync(join(dir, name), { force: true });
  }
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`prepare: expected a positive integer for ${name} but received ${v}`);
  return v;
}
