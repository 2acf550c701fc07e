// Token data read from disk window by window: the same tokens, windows and batches as the data in
// memory, across shard boundaries and in ranges of one file; ids checked as they are read.
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchLoader, FileTokens, TokenFileError, evalBatches, loadTokenData, tokenFileSegment, writeShard } from '../../lib/data';
import { dispose } from '../../lib';
import { tempDirs } from './tmp';

const tmp = tempDirs('file-tokens');
const all = (t: { length: number; subarray(b: number, e: number): Uint16Array }) => Array.from(t.subarray(0, t.length));

/** A prepared-style directory: val_000000 and three train shards of uneven sizes (ids = positions). */
function shards(): { dir: string; train: number[]; val: number[] } {
  const dir = tmp();
  const val = Array.from({ length: 50 }, (_, i) => 1000 + i);
  writeShard(join(dir, 'val_000000.bin'), Uint16Array.from(val));
  const train: number[] = [];
  [37, 1, 90].forEach((n, s) => {
    const part = Array.from({ length: n }, (_, i) => 2000 + train.length + i);
    writeShard(join(dir, `train_00000${s + 1}.bin`), Uint16Array.from(part));
    train.push(...part);
  });
  return { dir, train, val };
}

describe('FileTokens', () => {
  test('past maxInMemoryBytes a split stays on disk and reads the same tokens, across shard boundaries', () => {
    const { dir, train, val } = shards();
    const inMemory = loadTokenData(dir);
    const onDisk = loadTokenData(dir, { maxInMemoryBytes: 0 });
    expect(inMemory.train).toBeInstanceOf(Uint16Array);
    expect(onDisk.train).toBeInstanceOf(FileTokens);
    expect(onDisk.val).toBeInstanceOf(FileTokens);
    expect(all(onDisk.train)).toEqual(train);
    expect(all(onDisk.val)).toEqual(val);
    // every window, including those spanning the 1-token shard and both boundaries around it
    for (let b = 0; b < train.length; b++)
      for (const n of [0, 1, 2, 3, 40]) {
        const e = Math.min(train.length, b + n);
        expect(Array.from(onDisk.train.subarray(b, e))).toEqual(train.slice(b, e));
      }
    expect(() => onDisk.train.subarray(5, train.length + 1)).toThrow(/tokens \[5, 129\) are outside 0…128/);
  });

  test('the loaders draw the same batches from disk as from memory', () => {
    const { dir } = shards();
    const mem = loadTokenData(dir);
    const disk = loadTokenData(dir, { maxInMemoryBytes: 0 });
    const a = new BatchLoader(mem.train, { batchSize: 4, seqLen: 16, seed: 3 });
    const b = new BatchLoader(disk.train, { batchSize: 4, seqLen: 16, seed: 3 });
    for (let i = 0; i < 5; i++) {
      const [x, y] = [a.next(), b.next()];
      expect(x.x.toArray()).toEqual(y.x.toArray());
      expect(x.y.toArray()).toEqual(y.y.toArray());
      dispose([x, y]);
    }
    expect(b.state().dataLength).toBe(a.state().dataLength);
    const e1 = [...evalBatches(mem.val, { batchSize: 2, seqLen: 8 })];
    const e2 = [...evalBatches(disk.val, { batchSize: 2, seqLen: 8 })];
    expect(e2.map((e) => e.x.toArray())).toEqual(e1.map((e) => e.x.toArray()));
    dispose([e1, e2]);
  });

  test('a single file: train and validation are ranges of it, on disk as in memory', () => {
    const path = join(tmp(), 'owt.bin'); // headerless, like nanoGPT's train.bin
    const ids = Array.from({ length: 1000 }, (_, i) => i % 50000);
    writeFileSync(path, Buffer.from(Uint16Array.from(ids).buffer));
    const d = loadTokenData(path, { maxInMemoryBytes: 100 });
    expect(d.train).toBeInstanceOf(FileTokens);
    expect(all(d.train)).toEqual(ids.slice(0, 900));
    expect(all(d.val)).toEqual(ids.slice(900));
    expect(Array.from(d.val.subarray(3, 6))).toEqual([903, 904, 905]);
  });

  test('a bad id is reported when read, naming the file and its position there', () => {
    const { dir } = shards();
    const bad = join(dir, 'train_000003.bin');
    const bytes = readFileSync(bad);
    bytes.writeUInt16LE(60000, 1024 + 2 * 7); // position 7 of that shard = 38 + 7 of the split
    writeFileSync(bad, bytes);
    const d = loadTokenData(dir, { maxInMemoryBytes: 0 });
    expect(Array.from(d.train.subarray(0, 40))).toHaveLength(40); // reads before it are fine
    expect(() => d.train.subarray(40, 50)).toThrow(TokenFileError);
    expect(() => d.train.subarray(40, 50)).toThrow(`${bad}: token id 60000 at position 7 is outside the vocabulary (size 50257)`);
    // in memory the same check runs once, at load
    expect(() => loadTokenData(dir)).toThrow(`${bad}: token id 60000 at position 7`);
  });

  test('headers are checked when it is made; a file cut short later is reported when read', () => {
    const { dir } = shards();
    const shard = join(dir, 'train_000003.bin');
    const d = loadTokenData(dir, { maxInMemoryBytes: 0 });
    truncateSync(shard, 1024 + 2 * 10);
    expect(() => d.train.subarray(30, 60)).toThrow(
      /train_000003\.bin: ended at byte \d+, before the \d+ bytes expected there: was it changed or truncated\?/,
    );
    expect(() => loadTokenData(dir, { maxInMemoryBytes: 0 })).toThrow(`${shard}: truncated: the header declares 90 tokens`);
    expect(() => tokenFileSegment(join(dir, 'missing.bin'), 'llmc')).toThrow(/missing\.bin: cannot open/);
  });
});
