import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenFileError, loadTokenData, writeShard } from '../../lib/data';
import type { Tokens } from '../../lib/data/file-tokens';
import { tempDirs } from './tmp';

const tmp = tempDirs('source');
const ids = (a: Tokens): number[] => Array.from(a.subarray(0, a.length));

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

  test('valid names validation; test files are held out of both splits; unnamed, unnumbered files are refused', () => {
    const wiki = tmp();
    writeFileSync(join(wiki, 'wiki.train.bin'), Buffer.from(Uint16Array.of(1, 2, 3).buffer));
    writeFileSync(join(wiki, 'wiki.valid.bin'), Buffer.from(Uint16Array.of(4).buffer));
    writeFileSync(join(wiki, 'wiki.test.bin'), Buffer.from(Uint16Array.of(5).buffer));
    const d = loadTokenData(wiki);
    expect([ids(d.train), ids(d.val)]).toEqual([[1, 2, 3], [4]]);
    expect(d.files.heldOut).toEqual([join(wiki, 'wiki.test.bin')]);
    const nano = tmp();
    writeFileSync(join(nano, 'train.bin'), Buffer.from(Uint16Array.of(1, 2).buffer));
    writeFileSync(join(nano, 'test.bin'), Buffer.from(Uint16Array.of(3).buffer));
    writeFileSync(join(nano, 'val.bin'), Buffer.from(Uint16Array.of(4).buffer));
    expect([ids(loadTokenData(nano).train), ids(loadTokenData(nano).val)]).toEqual([[1, 2], [4]]);
    const unnamed = tmp();
    writeFileSync(join(unnamed, 'a.bin'), Buffer.from(Uint16Array.of(1).buffer));
    writeFileSync(join(unnamed, 'b.bin'), Buffer.from(Uint16Array.of(2).buffer));
    expect(() => loadTokenData(unnamed)).toThrow(
      /no file is named as validation \(val, valid or validation\) and none is numbered: which of a\.bin, b\.bin is validation/,
    );
  });

  test('a missing path is an error naming it', () => {
    const missing = join(tmp(), 'nope');
    expect(() => loadTokenData(missing)).toThrow(`${missing}: cannot read the token data`);
  });

  test('directories without training data are errors naming the directory', () => {
    const empty = tmp();
    expect(() => loadTokenData(empty)).toThrow(TokenFileError);
    expect(() => loadTokenData(empty)).toThrow(`${empty}: no .bin token files`);
    const onlyVal = tmp();
    writeShard(join(onlyVal, 'val_000000.bin'), Uint16Array.of(1));
    expect(() => loadTokenData(onlyVal)).toThrow(/no training shards/);
  });

  test('text where tokens are read (a file, a directory of them) points to prepare', () => {
    const d = tmp();
    writeFileSync(join(d, 'book.txt'), 'Call me Ishmael.\n');
    writeFileSync(join(d, 'web.jsonl.gz'), 'x');
    expect(() => loadTokenData(join(d, 'book.txt'))).toThrow(
      `${join(d, 'book.txt')}: text, not token ids, which a run reads once tokenized: staged-lm prepare --text ${join(d, 'book.txt')} --out DIR, then --data DIR`,
    );
    expect(() => loadTokenData(d)).toThrow(
      `${d}: no .bin token files in this directory; it holds text (book.txt, web.jsonl.gz), which a run reads once tokenized: staged-lm prepare --text ${join(d, '*')} --out DIR`,
    );
    // a token file's own fault in a directory that also holds text (a README): no hint
    const shards = tmp();
    writeFileSync(join(shards, 'README.md'), 'prepared from …');
    writeShard(join(shards, 'val_000000.bin'), Uint16Array.of(1, 2, 3));
    writeFileSync(join(shards, 'train_000001.bin'), 'not a shard');
    expect(() => loadTokenData(shards)).toThrow(/train_000001\.bin: /);
    expect(() => loadTokenData(shards)).not.toThrow(/staged-lm prepare/);
    // a file that is neither: the token reader's own words
    writeFileSync(join(d, 'weights.pt'), 'not tokens at all');
    expect(() => loadTokenData(join(d, 'weights.pt'))).toThrow(/wrong magic .*a headerless uint16 token file needs a \.bin name/);
  });

  test('a single file: its last 10% (or valFraction) is validation', () => {
    const path = join(tmp(), 'all.bin');
    writeShard(
      path,
      Uint16Array.from({ length: 100 }, (_, i) => i),
    );
    const d = loadTokenData(path);
    expect([d.train.length, d.val.length, d.val.subarray(0, 1)[0]]).toEqual([90, 10, 90]);
    expect(loadTokenData(path, { valFraction: 0 }).val.length).toBe(0);
    expect(() => loadTokenData(path, { valFraction: 1 })).toThrow(/valFraction but received 1/);
  });
});
