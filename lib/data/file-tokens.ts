// Token data read from disk on demand. The loaders only ever take windows of T+1 tokens, so a split
// need not be in memory: FileTokens presents a run of token files (llm.c shards, headerless uint16
// files, or a range of one) as one sequence and reads each window with positioned reads. That is
// what makes corpora larger than memory, or than one JS buffer (2 GiB), usable — nanoGPT's
// OpenWebText train.bin (17 GB), llm.c's FineWeb shards — and lets data-parallel ranks share the OS
// page cache instead of each holding a copy. Headers and sizes are checked when it is made; ids are
// checked against the vocabulary as they are read, naming the file and position of a bad one.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { extname } from 'node:path';
import { SHARD_HEADER_BYTES, SHARD_MAGIC, TokenFileError, checkVocabSize, checkVocabulary, rawTokenCount, shardTokenCount } from './shards';

/** What the loaders read: a Uint16Array, or data on disk with the same two members. */
export interface Tokens {
  readonly length: number;
  /** Tokens [begin, end): a view for an array in memory, a fresh read for data on disk. */
  subarray(begin: number, end: number): Uint16Array;
}

/** Where a file's tokens lie: `count` tokens from byte `byteOffset`. */
export interface TokenSegment {
  path: string;
  byteOffset: number;
  /** Index in the file of the segment's first token (for messages). */
  firstToken: number;
  count: number;
}

/** A token file's layout: all of its tokens, after its header for an llm.c shard. */
export function tokenFileSegment(path: string, format: 'llmc' | 'raw'): TokenSegment {
  const fd = openFile(path);
  try {
    const size = fstatSync(fd).size;
    if (format === 'raw') return { path, byteOffset: 0, firstToken: 0, count: rawTokenCount(path, size) };
    const head = Buffer.alloc(Math.min(size, SHARD_HEADER_BYTES));
    readFully(fd, path, head, 0);
    return { path, byteOffset: SHARD_HEADER_BYTES, firstToken: 0, count: shardTokenCount(path, head, size) };
  } finally {
    closeSync(fd);
  }
}

/**
 * A token file's layout, its kind told by its content: a file that starts with the llm.c magic is a
 * shard; any other .bin file headerless uint16; anything else is read as a shard, whose wrong magic
 * then says what was expected.
 */
export function detectTokenFile(path: string): TokenSegment {
  if (!startsWithMagic(path) && extname(path).toLowerCase() === '.bin') return tokenFileSegment(path, 'raw');
  try {
    return tokenFileSegment(path, 'llmc');
  } catch (e) {
    if (e instanceof TokenFileError && /wrong magic/.test(e.message))
      throw new TokenFileError(
        path,
        e.message.slice(path.length + 2) + '; a headerless uint16 token file needs a .bin name or format "raw"',
      );
    throw e;
  }
}

/** Whether a file starts with the llm.c shard magic. */
export function startsWithMagic(path: string): boolean {
  const fd = openFile(path);
  try {
    const head = Buffer.alloc(4);
    return readSync(fd, head, 0, 4, 0) === 4 && head.readInt32LE(0) === SHARD_MAGIC;
  } finally {
    closeSync(fd);
  }
}

/** Tokens [from, from + count) of a segment, as a segment. */
export function sliceSegment(s: TokenSegment, from: number, count: number): TokenSegment {
  if (from < 0 || count < 0 || from + count > s.count)
    throw new RangeError(`sliceSegment: [${from}, ${from + count}) is outside 0…${s.count}`);
  return { ...s, byteOffset: s.byteOffset + 2 * from, firstToken: s.firstToken + from, count };
}

const LITTLE_ENDIAN = endianness() === 'LE';

export class FileTokens implements Tokens {
  readonly length: number;
  /** Index of each segment's first token in the whole sequence, ascending. */
  private readonly starts: number[];

  constructor(
    readonly segments: readonly TokenSegment[],
    /** Ids must be below this (65536 accepts any uint16). */
    readonly vocabSize: number,
  ) {
    checkVocabSize(vocabSize);
    this.starts = [];
    let n = 0;
    for (const s of segments) {
      this.starts.push(n);
      n += s.count;
    }
    this.length = n;
  }

  /** Bytes of token data it spans. */
  get byteLength(): number {
    return 2 * this.length;
  }

  subarray(begin: number, end: number): Uint16Array {
    if (!(Number.isInteger(begin) && Number.isInteger(end) && 0 <= begin && begin <= end && end <= this.length))
      throw new RangeError(`FileTokens: tokens [${begin}, ${end}) are outside 0…${this.length}`);
    const out = new Uint16Array(end - begin);
    let pos = begin;
    for (let i = this.segmentAt(begin); pos < end; i++) {
      const s = this.segments[i];
      const from = pos - this.starts[i];
      const n = Math.min(s.count - from, end - pos);
      if (n > 0) {
        const part = out.subarray(pos - begin, pos - begin + n);
        this.readInto(s, from, part);
        checkVocabulary(s.path, part, this.vocabSize, s.firstToken + from);
        pos += n;
      }
    }
    return out;
  }

  /** The segment holding token `pos` (the last of equal starts: empty segments are skipped). */
  private segmentAt(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private readInto(s: TokenSegment, from: number, into: Uint16Array): void {
    const fd = openFile(s.path);
    try {
      const bytes = Buffer.from(into.buffer, into.byteOffset, into.byteLength);
      readFully(fd, s.path, bytes, s.byteOffset + 2 * from);
      if (!LITTLE_ENDIAN) bytes.swap16();
    } finally {
      closeSync(fd);
    }
  }
}

function openFile(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new TokenFileError(path, `cannot open: ${(e as Error).message}`);
  }
}

/** Fills `into` from byte `position`; a short read means the file shrank since it was checked. */
function readFully(fd: number, path: string, into: Buffer, position: number): void {
  // (one read is at most 2 GiB − 1 bytes)
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, Math.min(CHUNK, into.length - done), position + done);
    if (n === 0)
      throw new TokenFileError(
        path,
        `ended at byte ${position + done}, before the ${into.length} bytes expected there: was it changed or truncated?`,
      );
    done += n;
  }
}
