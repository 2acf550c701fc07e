// Token files on disk: llm.c shards (read and written) and nanoGPT's headerless .bin (read).
//
// llm.c shard (karpathy/llm.c, dev/data/data_common.py `write_datafile`, llmc/dataloader.h):
//
//   offset  size      content
//   0       256 × 4   header, 256 little-endian int32:
//                       [0] magic   20240520
//                       [1] version 1 (tokens are uint16)
//                       [2] N, the number of tokens
//                       [3..255] zero
//   1024    N × 2     the tokens, little-endian uint16
//
//   The file is exactly 1024 + 2·N bytes; anything else is a truncated or corrupt shard.
//
// nanoGPT `train.bin` / `val.bin` (data/*/prepare.py): no header; the whole file is little-endian
// uint16 tokens, so its length must be even.
//
// Every id read is checked against the vocabulary, so a corrupt file fails here, naming the file,
// rather than as an index error deep inside an embedding lookup.
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { extname } from 'node:path';
import { writeFileAtomic } from './atomic';
import { GPT2_VOCAB } from './tokenizer';

export const SHARD_MAGIC = 20240520;
export const SHARD_VERSION = 1;
export const SHARD_HEADER_INTS = 256;
export const SHARD_HEADER_BYTES = SHARD_HEADER_INTS * 4;

/** 'llmc': an llm.c shard; 'raw': headerless uint16; 'auto': llm.c if the file starts with the magic, else raw for `.bin`. */
export type TokenFileFormat = 'auto' | 'llmc' | 'raw';

export interface ReadTokensOptions {
  /** Ids must be below this (default GPT-2's 50257); 65536 accepts any uint16. */
  vocabSize?: number;
  format?: TokenFileFormat;
}

/** A token file that cannot be used; `file` is its path and the message names it too. */
export class TokenFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'TokenFileError';
  }
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** Writes `tokens` as an llm.c shard, atomically (temp file + rename). */
export function writeShard(path: string, tokens: Uint16Array): void {
  if (!(tokens instanceof Uint16Array)) throw new TypeError(`writeShard: expected a Uint16Array for tokens`);
  if (tokens.length > 0x7fffffff) throw new RangeError(`writeShard: ${tokens.length} tokens exceed the int32 count of the header`);
  const header = Buffer.alloc(SHARD_HEADER_BYTES);
  header.writeInt32LE(SHARD_MAGIC, 0);
  header.writeInt32LE(SHARD_VERSION, 4);
  header.writeInt32LE(tokens.length, 8);
  writeFileAtomic(path, [header, toLittleEndian(tokens)]);
}

/** The tokens of an llm.c shard; throws a TokenFileError on a wrong magic or version, truncation, or an id out of the vocabulary. */
export function readShard(path: string, opts: Omit<ReadTokensOptions, 'format'> = {}): Uint16Array {
  return readTokens(path, { ...opts, format: 'llmc' });
}

/**
 * The tokens of a token file. With format 'auto' (the default) a file that starts with the llm.c
 * magic is read as a shard, any other `.bin` file as headerless uint16, and anything else is
 * rejected as an llm.c shard with a wrong magic.
 */
export function readTokens(path: string, opts: ReadTokensOptions = {}): Uint16Array {
  const vocabSize = checkVocabSize(opts.vocabSize ?? GPT2_VOCAB);
  const bytes = readFileSync(path);
  const format = opts.format ?? 'auto';
  const raw = format === 'raw' || (format === 'auto' && !startsWithMagic(bytes) && extname(path).toLowerCase() === '.bin');
  const tokens = raw ? parseRaw(path, bytes) : parseShard(path, bytes, format === 'auto');
  checkVocabulary(path, tokens, vocabSize);
  return tokens;
}

function startsWithMagic(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes.readInt32LE(0) === SHARD_MAGIC;
}

function parseShard(path: string, bytes: Buffer, auto: boolean): Uint16Array {
  return copyTokens(bytes, SHARD_HEADER_BYTES, shardTokenCount(path, bytes, bytes.length, auto));
}

/**
 * The token count of an llm.c shard of `fileBytes` bytes, from its header (`head`: at least its
 * first 1024 bytes, or the whole file if shorter); throws a TokenFileError on a wrong magic or
 * version, or a size that disagrees with the header.
 */
export function shardTokenCount(path: string, head: Buffer, fileBytes: number, auto = false): number {
  // the magic first: for a file of another kind it is the more telling complaint
  if (head.length >= 4 && head.readInt32LE(0) !== SHARD_MAGIC) {
    const hint = auto ? '; a headerless uint16 token file needs a .bin name or format "raw"' : '';
    throw new TokenFileError(path, `wrong magic ${head.readInt32LE(0)}: not an llm.c token shard (expected magic ${SHARD_MAGIC})${hint}`);
  }
  if (fileBytes < SHARD_HEADER_BYTES) {
    throw new TokenFileError(path, `truncated header: the file has ${fileBytes} bytes, an llm.c shard header needs ${SHARD_HEADER_BYTES}`);
  }
  const version = head.readInt32LE(4);
  if (version !== SHARD_VERSION) {
    throw new TokenFileError(path, `unsupported shard version ${version} (only version ${SHARD_VERSION}, uint16 tokens, is supported)`);
  }
  const count = head.readInt32LE(8);
  if (count < 0) throw new TokenFileError(path, `corrupt header: negative token count ${count}`);
  const expected = SHARD_HEADER_BYTES + 2 * count;
  if (fileBytes < expected) {
    throw new TokenFileError(
      path,
      `truncated: the header declares ${count} tokens (${expected} bytes) but the file has ${fileBytes} bytes`,
    );
  }
  if (fileBytes > expected) {
    throw new TokenFileError(path, `corrupt: ${fileBytes - expected} bytes follow the ${count} tokens the header declares`);
  }
  return count;
}

function parseRaw(path: string, bytes: Buffer): Uint16Array {
  return copyTokens(bytes, 0, rawTokenCount(path, bytes.length));
}

/** The token count of a headerless uint16 file of `fileBytes` bytes (an odd size is refused). */
export function rawTokenCount(path: string, fileBytes: number): number {
  if (fileBytes % 2 !== 0) {
    throw new TokenFileError(path, `odd byte length ${fileBytes}: a headerless token file holds uint16 tokens (2 bytes each)`);
  }
  return fileBytes / 2;
}

/** A fresh, aligned Uint16Array (a Buffer's byteOffset need not be even). */
function copyTokens(bytes: Buffer, offset: number, count: number): Uint16Array {
  const out = new Uint16Array(count);
  const view = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  view.set(bytes.subarray(offset, offset + 2 * count));
  if (!LITTLE_ENDIAN) view.swap16();
  return out;
}

function toLittleEndian(tokens: Uint16Array): Uint16Array {
  if (LITTLE_ENDIAN) return tokens;
  const copy = tokens.slice();
  Buffer.from(copy.buffer, copy.byteOffset, copy.byteLength).swap16();
  return copy;
}

export function checkVocabSize(vocabSize: number): number {
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > 65536) {
    throw new TypeError(`Expected an integer in 1..65536 for vocabSize but received ${vocabSize}`);
  }
  return vocabSize;
}

/** Throws naming the file and position (`first`: the position of tokens[0] in the file) of an id ≥ vocabSize. */
export function checkVocabulary(path: string, tokens: Uint16Array, vocabSize: number, first = 0): void {
  if (vocabSize === 65536) return;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] >= vocabSize) {
      throw new TokenFileError(path, `token id ${tokens[i]} at position ${first + i} is outside the vocabulary (size ${vocabSize})`);
    }
  }
}
