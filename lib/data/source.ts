// Token data from disk, split into training and validation:
//   a directory of shards, as `staged-lm prepare` or llm.c's scripts write them: the shards whose
//     name says `val` (val_000000.bin, fineweb_val_000000.bin, tiny_shakespeare_val.bin) are the
//     validation split, the others the training split; with no shard named so, the lowest-numbered
//     shard is validation. nanoGPT's train.bin/val.bin directories work the same way.
//   a single token file: its last `valFraction` (default 10%) is validation, the rest training.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { SHARD_MAGIC, TokenFileError, readTokens, type ReadTokensOptions } from './shards';
import { concatTokens } from './tokenizer';

export interface TokenData {
  name: string;
  train: Uint16Array;
  val: Uint16Array;
  /** The files each split was read from, in order. */
  files: { train: string[]; val: string[] };
}

export interface LoadTokenDataOptions {
  vocabSize?: number;
  /** For a single file: the share of tokens, from the end, held out for validation (default 0.1). */
  valFraction?: number;
}

/** Train and validation tokens from a directory of shards or a single token file. */
export function loadTokenData(path: string, opts: LoadTokenDataOptions = {}): TokenData {
  return statSync(path).isDirectory() ? loadDirectory(path, opts) : loadFile(path, opts);
}

function loadFile(path: string, opts: LoadTokenDataOptions): TokenData {
  const valFraction = opts.valFraction ?? 0.1;
  if (!(valFraction >= 0 && valFraction < 1))
    throw new TypeError(`Expected a number in [0, 1) for valFraction but received ${valFraction}`);
  const tokens = readTokens(path, { vocabSize: opts.vocabSize });
  const cut = tokens.length - Math.round(tokens.length * valFraction);
  if (cut < 1) throw new TokenFileError(path, `too few tokens (${tokens.length}) to hold out a validation split`);
  return { name: basename(path), train: tokens.subarray(0, cut), val: tokens.subarray(cut), files: { train: [path], val: [path] } };
}

const SHARD_INDEX = /(\d+)\.bin$/i;
const NAMED_VAL = /(^|[_.-])val(idation)?([_.-]|$)/i;

function loadDirectory(dir: string, opts: LoadTokenDataOptions): TokenData {
  const files = readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.bin'))
    .sort((a, b) => shardIndex(a) - shardIndex(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map((f) => join(dir, f));
  if (files.length === 0) throw new TokenFileError(dir, 'no .bin token files in this directory');
  let val = files.filter((f) => NAMED_VAL.test(basename(f)));
  if (val.length === 0) val = files.slice(0, 1);
  const train = files.filter((f) => !val.includes(f));
  if (train.length === 0)
    throw new TokenFileError(dir, `no training shards: the only token file(s) ${val.map((f) => basename(f)).join(', ')} are validation`);
  // one format for the whole directory: a prepared (llm.c) directory whose shard lost its magic is
  // an error, not silently read as headerless tokens
  const read: ReadTokensOptions = { vocabSize: opts.vocabSize, format: files.some(startsWithMagic) ? 'llmc' : 'raw' };
  return {
    name: basename(dir),
    train: concatTokens(train.map((f) => readTokens(f, read))),
    val: concatTokens(val.map((f) => readTokens(f, read))),
    files: { train, val },
  };
}

function shardIndex(name: string): number {
  const m = SHARD_INDEX.exec(name);
  return m === null ? -1 : Number(m[1]);
}

function startsWithMagic(file: string): boolean {
  const head = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    return readSync(fd, head, 0, 4, 0) === 4 && head.readInt32LE(0) === SHARD_MAGIC;
  } finally {
    closeSync(fd);
  }
}
