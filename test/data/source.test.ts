import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenFileError, loadTokenData, writeShard } from '../../lib/data';
import { tempDirs } from './tmp';

const tmp = tempDirs('source');
const ids = (a: Uint16Array): number[] => Array.from(a);

describe('loadTokenData', () => {
  test('a prepared directory: val_000000.bin is validation, train shards in index order', () => {
    const dir = tmp();
    writeShard(join(dir, 'val_000000.bin'), Uint16Array.of(1, 2));
    writeShard(join(dir, 'train_000002.bin'), Uint16Array.of(5, 6));
    writeShard(join(dir, 'train_000001.bin'), Uint16Array.of(3, 4));
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    const d = loadTokenData(dir);
    expect(ids(d.val)).toEqual([1, 2]);
    expect(ids(d.train)).toEqual([3, 4, 5, 6]);
    expect(d.files.train.map((f) => f.slice(dir.length + 1))).toEqual(['train_000001.bin', 'train_000002.bin']);
  });

  test('llm.c names without an index, and no shard named val (the first is validation)', () => {
    const named = tmp();
    writeShard(join(named, 'tiny_shakespeare_train.bin'), Uint16Array.of(7));
    writeShard(join(named, 'tiny_shakespeare_val.bin'), Uint16Array.of(8));
    expect(ids(loadTokenData(named).val)).toEqual([8]);
    const numbered = tmp();
    writeShard(join(numbered, 'shard_000001.bin'), Uint16Array.of(2));
    writeShard(join(numbered, 'shard_000000.bin'), Uint16Array.of(1));
    const d = loadTokenData(numbered);
    expect([ids(d.val), ids(d.train)]).toEqual([[1], [2]]);
  });

  test('a nanoGPT directory of headerless train.bin / val.bin', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'train.bin'), Buffer.from(Uint16Array.of(10, 11, 12).buffer));
    writeFileSync(join(dir, 'val.bin'), Buffer.from(Uint16Array.of(13).buffer));
    const d = loadTokenData(dir);
    expect([ids(d.train), ids(d.val)]).toEqual([[10, 11, 12], [13]]);
  });

  test('a shard that lost its magic in a prepared directory is an error, not headerless data', () => {
    const dir = tmp();
    writeShard(join(dir, 'val_000000.bin'), Uint16Array.of(1));
    const bad = join(dir, 'train_000001.bin');
    writeShard(bad, Uint16Array.of(2));
    const bytes = readFileSync(bad);
    bytes.writeInt32LE(7, 0);
    writeFileSync(bad, bytes);
    expect(() => loadTokenData(dir)).toThrow(`${bad}: wrong magic 7`);
  });

  test('directories without training data are errors naming the directory', () => {
    const empty = tmp();
    expect(() => loadTokenData(empty)).toThrow(TokenFileError);
    expect(() => loadTokenData(empty)).toThrow(`${empty}: no .bin token files`);
    const onlyVal = tmp();
    writeShard(join(onlyVal, 'val_000000.bin'), Uint16Array.of(1));
    expect(() => loadTokenData(onlyVal)).toThrow(/no training shards/);
  });

  test('a single file: its last 10% (or valFraction) is validation', () => {
    const path = join(tmp(), 'all.bin');
    writeShard(
      path,
      Uint16Array.from({ length: 100 }, (_, i) => i),
    );
    const d = loadTokenData(path);
    expect([d.train.length, d.val.length, d.val[0]]).toEqual([90, 10, 90]);
    expect(loadTokenData(path, { valFraction: 0 }).val.length).toBe(0);
    expect(() => loadTokenData(path, { valFraction: 1 })).toThrow(/valFraction but received 1/);
  });
});
