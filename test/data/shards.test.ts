import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SHARD_HEADER_BYTES, SHARD_MAGIC, TokenFileError, readShard, readTokens, writeShard } from '../../lib/data';
import { tempDirs } from './tmp';

const tmp = tempDirs('shards');

/** An llm.c header with the given fields (the rest zero). */
function header(magic: number, version: number, count: number): Buffer {
  const h = Buffer.alloc(SHARD_HEADER_BYTES);
  h.writeInt32LE(magic, 0);
  h.writeInt32LE(version, 4);
  h.writeInt32LE(count, 8);
  return h;
}

function u16(...ids: number[]): Buffer {
  return Buffer.from(Uint16Array.from(ids).buffer);
}

/** Expects fn to throw a TokenFileError naming the file and matching the problem. */
function expectFileError(fn: () => unknown, file: string, problem: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(TokenFileError);
  const err = caught as TokenFileError;
  expect(err.file).toBe(file);
  expect(err.message).toContain(file);
  expect(err.message).toMatch(problem);
}

describe('llm.c shards', () => {
  test('round trip: header fields, exact size, no temp file left behind', () => {
    const dir = tmp();
    const path = join(dir, 'val_000000.bin');
    const tokens = Uint16Array.from({ length: 1000 }, (_, i) => (i * 7919) % 50257);
    writeShard(path, tokens);
    const bytes = readFileSync(path);
    expect(bytes.length).toBe(SHARD_HEADER_BYTES + 2 * tokens.length);
    expect([bytes.readInt32LE(0), bytes.readInt32LE(4), bytes.readInt32LE(8), bytes.readInt32LE(12)]).toEqual([20240520, 1, 1000, 0]);
    expect(Array.from(readShard(path))).toEqual(Array.from(tokens));
    expect(readdirSync(dir)).toEqual(['val_000000.bin']);
  });

  test('an empty shard and overwriting an existing shard', () => {
    const path = join(tmp(), 'x.bin');
    writeShard(path, new Uint16Array(0));
    expect(readShard(path).length).toBe(0);
    writeShard(path, Uint16Array.of(5, 6));
    expect(Array.from(readShard(path))).toEqual([5, 6]);
    expect(statSync(path).size).toBe(SHARD_HEADER_BYTES + 4);
  });

  test('wrong magic', () => {
    const path = join(tmp(), 'bad.bin');
    writeFileSync(path, Buffer.concat([header(1234, 1, 2), u16(1, 2)]));
    expectFileError(() => readShard(path), path, /wrong magic 1234/);
  });

  test('unsupported version', () => {
    const path = join(tmp(), 'v2.bin');
    writeFileSync(path, Buffer.concat([header(SHARD_MAGIC, 2, 1), u16(1)]));
    expectFileError(() => readShard(path), path, /unsupported shard version 2/);
  });

  test('file shorter than the header', () => {
    const path = join(tmp(), 'short.bin');
    writeFileSync(path, header(SHARD_MAGIC, 1, 0).subarray(0, 100));
    expectFileError(() => readShard(path), path, /truncated header: the file has 100 bytes/);
  });

  test('body shorter than the declared count', () => {
    const path = join(tmp(), 'trunc.bin');
    writeFileSync(path, Buffer.concat([header(SHARD_MAGIC, 1, 10), u16(1, 2, 3)]));
    expectFileError(() => readShard(path), path, /truncated: the header declares 10 tokens/);
  });

  test('bytes after the declared tokens', () => {
    const path = join(tmp(), 'long.bin');
    writeFileSync(path, Buffer.concat([header(SHARD_MAGIC, 1, 1), u16(1, 2)]));
    expectFileError(() => readShard(path), path, /2 bytes follow the 1 tokens/);
  });

  test('token id outside the vocabulary; a larger vocabSize accepts it', () => {
    const path = join(tmp(), 'vocab.bin');
    writeShard(path, Uint16Array.of(1, 50256, 50257, 3));
    expectFileError(() => readShard(path), path, /token id 50257 at position 2 is outside the vocabulary \(size 50257\)/);
    expect(Array.from(readShard(path, { vocabSize: 65536 }))).toEqual([1, 50256, 50257, 3]);
    expect(() => readShard(path, { vocabSize: 0 })).toThrow(/vocabSize but received 0/);
  });

  test('a missing file names the path', () => {
    const path = join(tmp(), 'missing.bin');
    expect(() => readShard(path)).toThrow(path);
  });
});

describe('headerless uint16 .bin files (nanoGPT)', () => {
  test('read by extension and by option', () => {
    const dir = tmp();
    const bin = join(dir, 'train.bin');
    writeFileSync(bin, u16(10, 20, 50256));
    expect(Array.from(readTokens(bin))).toEqual([10, 20, 50256]);
    const other = join(dir, 'tokens.u16');
    writeFileSync(other, u16(7, 8));
    expect(Array.from(readTokens(other, { format: 'raw' }))).toEqual([7, 8]);
    // without the option a non-.bin file must be an llm.c shard
    expectFileError(() => readTokens(other), other, /wrong magic/);
  });

  test('auto format reads an llm.c shard with a .bin name as a shard', () => {
    const path = join(tmp(), 'val_000000.bin');
    writeShard(path, Uint16Array.of(3, 4));
    expect(Array.from(readTokens(path))).toEqual([3, 4]);
  });

  test('odd byte length', () => {
    const path = join(tmp(), 'odd.bin');
    writeFileSync(path, Buffer.from([1, 0, 2]));
    expectFileError(() => readTokens(path), path, /odd byte length 3/);
  });

  test('token id outside the vocabulary', () => {
    const path = join(tmp(), 'big.bin');
    writeFileSync(path, u16(1, 60000));
    expectFileError(() => readTokens(path), path, /token id 60000 at position 1 is outside the vocabulary/);
  });
});
