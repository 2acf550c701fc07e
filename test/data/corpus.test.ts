import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EOT, GPT2_VOCAB, decode, embeddedDocuments, loadEmbeddedCorpus } from '../../lib/data';
import { defaultCacheDirs } from '../../lib/data/cache';
import { tempDirs } from './tmp';

const tmp = tempDirs('corpus');

const count = (a: Uint16Array, id: number): number => a.reduce((n, t) => n + (t === id ? 1 : 0), 0);

describe('embedded corpus (Moby-Dick)', () => {
  const cacheDir = tmp();
  const first = loadEmbeddedCorpus({ cacheDir });

  test('loads both splits, non-empty, every id in the GPT-2 vocabulary', () => {
    expect(first.name).toBe('moby-dick');
    expect(first.source).toBe('built');
    expect(first.train.length).toBeGreaterThan(200_000);
    expect(first.val.length).toBeGreaterThan(10_000);
    for (const split of [first.train, first.val]) expect(split.every((t) => t < GPT2_VOCAB)).toBe(true);
  });

  test('every 10th section is validation, each document ends with EOT', () => {
    expect(first.documents).toEqual({ train: 126, val: 13 });
    expect(count(first.train, EOT)).toBe(126);
    expect(count(first.val, EOT)).toBe(13);
    expect(first.val[first.val.length - 1]).toBe(EOT);
    const docs = embeddedDocuments();
    expect(decode(first.val.subarray(0, first.val.indexOf(EOT)))).toBe(docs.val[0]);
    expect(first.bytes.val).toBe(docs.val.reduce((n, d) => n + Buffer.byteLength(d), 0));
  });

  test('the second load reads the cache, fast, with identical ids', () => {
    const t0 = performance.now();
    const second = loadEmbeddedCorpus({ cacheDir });
    const ms = performance.now() - t0;
    expect(second.source).toBe('cache');
    expect(second.cachePath).toBe(first.cachePath);
    expect(ms).toBeLessThan(250);
    expect(Buffer.compare(Buffer.from(second.train.buffer), Buffer.from(first.train.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(second.val.buffer), Buffer.from(first.val.buffer))).toBe(0);
    expect(second.documents).toEqual(first.documents);
    expect(second.bytes).toEqual(first.bytes);
  });

  test('a corrupt cache entry is rebuilt, not trusted', () => {
    const dir = tmp();
    const built = loadEmbeddedCorpus({ cacheDir: dir });
    writeFileSync(join(built.cachePath as string, 'train.bin'), Buffer.from('garbage'));
    const again = loadEmbeddedCorpus({ cacheDir: dir });
    expect(again.source).toBe('built');
    expect(again.train.length).toBe(first.train.length);
    expect(loadEmbeddedCorpus({ cacheDir: dir }).source).toBe('cache');
  });

  test('cache location: $STAGED_LM_CACHE, else node_modules/.cache/staged-lm, else the temp directory', () => {
    const saved = process.env.STAGED_LM_CACHE;
    try {
      delete process.env.STAGED_LM_CACHE;
      const dirs = defaultCacheDirs('/p/node_modules/@scope/pkg/package.json');
      expect(dirs[0]).toBe('/p/node_modules/.cache/staged-lm');
      expect(defaultCacheDirs('/p/node_modules/pkg/package.json')[0]).toBe('/p/node_modules/.cache/staged-lm');
      expect(dirs).toHaveLength(2);
      process.env.STAGED_LM_CACHE = '/somewhere';
      expect(defaultCacheDirs('/p/node_modules/pkg/package.json')).toEqual(['/somewhere']);
    } finally {
      if (saved === undefined) delete process.env.STAGED_LM_CACHE;
      else process.env.STAGED_LM_CACHE = saved;
    }
  });
});
