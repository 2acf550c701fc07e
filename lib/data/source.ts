// Token data from disk, split into training and validation:
//   a directory of shards, as `staged-lm prepare` or llm.c's scripts write them: the shards whose
//     name says `val`, `valid` or `validation` (val_000000.bin, fineweb_val_000000.bin,
//     wiki.valid.bin) are the validation split; those that say `test` are held out of both (a test
//     split is for the end, not for training); the others are the training split. With no shard
//     named val, the lowest-numbered shard is validation — and with no numbers either, nothing says
//     which file is validation, and the directory is refused. nanoGPT's train.bin/val.bin
//     directories work the same way.
//   a single token file: its last `valFraction` (default 10%) is validation, the rest training.
// A split of up to `maxInMemoryBytes` is read into memory (every id checked); a larger one stays on
// disk and is read window by window (./file-tokens.ts).
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  FileTokens,
  detectTokenFile,
  sliceSegment,
  startsWithMagic,
  tokenFileSegment,
  type TokenSegment,
  type Tokens,
} from './file-tokens';
import { TokenFileError } from './shards';
import { GPT2_VOCAB } from './tokenizer';

export interface TokenData {
  name: string;
  /** In memory (a Uint16Array), or read from disk as needed (a FileTokens) when larger than maxInMemoryBytes. */
  train: Tokens;
  val: Tokens;
  /** The files each split was read from, in order; `heldOut`: files named test, in neither split. */
  files: { train: string[]; val: string[]; heldOut: string[] };
}

export interface LoadTokenDataOptions {
  vocabSize?: number;
  /** For a single file: the share of tokens, from the end, held out for validation (default 0.1). */
  valFraction?: number;
  /** A split larger than this many bytes of tokens is read from disk as needed (default 1 GiB). */
  maxInMemoryBytes?: number;
}

export const DEFAULT_MAX_IN_MEMORY_BYTES = 2 ** 30;

/** Train and validation tokens from a directory of shards or a single token file. */
export function loadTokenData(path: string, opts: LoadTokenDataOptions = {}): TokenData {
  let dir: boolean;
  try {
    dir = statSync(path).isDirectory();
  } catch (e) {
    throw new TokenFileError(path, `cannot read the token data: ${(e as Error).message}`);
  }
  try {
    return dir ? loadDirectory(path, opts) : loadFile(path, opts);
  } catch (e) {
    // (the hint is for text where tokens are read: not for a token file's own fault in a directory)
    if (!(e instanceof TokenFileError) || (dir && e.file !== path)) throw e;
    const hint = prepareHint(path, dir);
    if (hint === null) throw e;
    // (a text file's wrong magic and the raw-format advice would only mislead)
    throw new TokenFileError(e.file, dir ? `${e.message.slice(e.file.length + 2)}; ${hint}` : hint);
  }
}

/** Names of text a run cannot read as tokens (what prepare reads), plain or compressed. */
const TEXT_NAME = /\.(txt|text|md|jsonl|ndjson|json|csv|tsv|html?)(\.(gz|br|zst|xz|bz2))?$/i;

/** For text given where tokens are read (a file, or a directory of them): what to run first. */
function prepareHint(path: string, dir: boolean): string | null {
  const texts = dir ? readdirSync(path).filter((f) => TEXT_NAME.test(f)) : TEXT_NAME.test(path) ? [basename(path)] : [];
  if (texts.length === 0) return null;
  const what = dir ? `it holds text (${texts.slice(0, 3).join(', ')}${texts.length > 3 ? ', …' : ''})` : 'text, not token ids';
  const input = dir ? join(path, '*') : path;
  return `${what}, which a run reads once tokenized: staged-lm prepare --text ${input} --out DIR, then --data DIR`;
}

/** The split in memory when it is small enough, else on disk. */
function split(segments: TokenSegment[], opts: LoadTokenDataOptions): Tokens {
  const onDisk = new FileTokens(segments, opts.vocabSize ?? GPT2_VOCAB);
  return onDisk.byteLength <= (opts.maxInMemoryBytes ?? DEFAULT_MAX_IN_MEMORY_BYTES) ? onDisk.subarray(0, onDisk.length) : onDisk;
}

function loadFile(path: string, opts: LoadTokenDataOptions): TokenData {
  const valFraction = opts.valFraction ?? 0.1;
  if (!(valFraction >= 0 && valFraction < 1))
    throw new TypeError(`Expected a number in [0, 1) for valFraction but received ${valFraction}`);
  const all = detectTokenFile(path);
  const cut = all.count - Math.round(all.count * valFraction);
  if (cut < 1) throw new TokenFileError(path, `too few tokens (${all.count}) to hold out a validation split`);
  return {
    name: basename(path),
    train: split([sliceSegment(all, 0, cut)], opts),
    val: split([sliceSegment(all, cut, all.count - cut)], opts),
    files: { train: [path], val: [path], heldOut: [] },
  };
}

const SHARD_INDEX = /(\d+)\.bin$/i;
const NAMED_VAL = /(^|[_.-])val(id|idation)?([_.-]|$)/i;
const NAMED_TEST = /(^|[_.-])test([_.-]|$)/i;

function loadDirectory(dir: string, opts: LoadTokenDataOptions): TokenData {
  const files = readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.bin'))
    .sort((a, b) => shardIndex(a) - shardIndex(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map((f) => join(dir, f));
  if (files.length === 0) throw new TokenFileError(dir, 'no .bin token files in this directory');
  const heldOut = files.filter((f) => NAMED_TEST.test(basename(f)) && !NAMED_VAL.test(basename(f)));
  const candidates = files.filter((f) => !heldOut.includes(f));
  let val = candidates.filter((f) => NAMED_VAL.test(basename(f)));
  if (val.length === 0) {
    const numbered = candidates.filter((f) => shardIndex(basename(f)) >= 0);
    if (numbered.length === 0 && candidates.length > 1)
      throw new TokenFileError(
        dir,
        `no file is named as validation (val, valid or validation) and none is numbered: which of ${candidates.map((f) => basename(f)).join(', ')} is validation? Rename it`,
      );
    val = (numbered.length > 0 ? numbered : candidates).slice(0, 1);
  }
  const train = candidates.filter((f) => !val.includes(f));
  if (train.length === 0)
    throw new TokenFileError(dir, `no training shards: the only token file(s) ${val.map((f) => basename(f)).join(', ')} are validation`);
  // one format for the whole directory: a prepared (llm.c) directory whose shard lost its magic is
  // an error, not silently read as headerless tokens
  const format = files.some(startsWithMagic) ? 'llmc' : 'raw';
  return {
    name: basename(dir),
    train: split(
      train.map((f) => tokenFileSegment(f, format)),
      opts,
    ),
    val: split(
      val.map((f) => tokenFileSegment(f, format)),
      opts,
    ),
    files: { train, val, heldOut },
  };
}

function shardIndex(name: string): number {
  const m = SHARD_INDEX.exec(name);
  return m === null ? -1 : Number(m[1]);
}
