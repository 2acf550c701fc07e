// An on-disk cache of tokenized train/validation splits, so that data tokenized once loads in
// milliseconds afterwards. One directory per key:
//
//   <cache dir>/<key>/val.bin     llm.c shard (shards.ts)
//   <cache dir>/<key>/train.bin   llm.c shard
//   <cache dir>/<key>/meta.json   { documents, bytes } of each split; written last, so its presence
//                                 marks a complete entry
//
// The key must change whenever the content would (source version, tokenizer version, split rule).
// Every file is written atomically, so concurrent builders (parallel test workers) and crashes leave
// either nothing or a complete entry. An unreadable or corrupt entry is rebuilt, never trusted.
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { makeDirectory, writeFileAtomic } from './atomic';
import { readShard, writeShard } from './shards';

export interface SplitCounts {
  train: number;
  val: number;
}

export interface Splits {
  train: Uint16Array;
  val: Uint16Array;
  /** Documents in each split. */
  documents: SplitCounts;
  /** UTF-8 bytes of text in each split (for bits per byte). */
  bytes: SplitCounts;
}

export interface CachedSplits extends Splits {
  /** 'cache' when read from disk, 'built' when built by this call. */
  source: 'cache' | 'built';
  /** The cache entry's directory, or null when no cache directory was writable. */
  cachePath: string | null;
}

/**
 * The default cache directory: $STAGED_LM_CACHE, else `node_modules/.cache/staged-lm` beside the
 * installed dependencies (the find-cache-dir convention), else a folder in the OS temp directory.
 */
export function defaultCacheDirs(anchorPackageJson: string): string[] {
  const env = process.env.STAGED_LM_CACHE;
  if (env) return [env];
  // <node_modules>/<scope>/<name>/package.json or <node_modules>/<name>/package.json
  let nodeModules = dirname(dirname(anchorPackageJson));
  if (!nodeModules.endsWith('node_modules')) nodeModules = dirname(nodeModules);
  return [join(nodeModules, '.cache', 'staged-lm'), join(tmpdir(), 'staged-lm-cache')];
}

/** The splits under `key` from the first usable directory of `dirs`, building and storing them on a miss. */
export function cachedSplits(dirs: readonly string[], key: string, build: () => Splits): CachedSplits {
  for (const dir of dirs) {
    const hit = readEntry(join(dir, key));
    if (hit !== null) return { ...hit, source: 'cache', cachePath: join(dir, key) };
  }
  const splits = build();
  for (const dir of dirs) {
    const path = join(dir, key);
    if (writeEntry(path, splits)) return { ...splits, source: 'built', cachePath: path };
  }
  return { ...splits, source: 'built', cachePath: null };
}

function readEntry(path: string): Splits | null {
  const metaPath = join(path, 'meta.json');
  if (!existsSync(metaPath)) return null;
  try {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Pick<Splits, 'documents' | 'bytes'>;
    if (!isCounts(meta.documents) || !isCounts(meta.bytes)) return null;
    return {
      train: readShard(join(path, 'train.bin')),
      val: readShard(join(path, 'val.bin')),
      documents: meta.documents,
      bytes: meta.bytes,
    };
  } catch {
    return null; // corrupt or half-deleted entry: rebuild it
  }
}

function writeEntry(path: string, s: Splits): boolean {
  try {
    makeDirectory(path);
    writeShard(join(path, 'val.bin'), s.val);
    writeShard(join(path, 'train.bin'), s.train);
    writeFileAtomic(join(path, 'meta.json'), [Buffer.from(JSON.stringify({ documents: s.documents, bytes: s.bytes }) + '\n')]);
    return true;
  } catch {
    return false; // read-only location: try the next one
  }
}

function isCounts(x: unknown): x is SplitCounts {
  const c = x as SplitCounts | null;
  return typeof c === 'object' && c !== null && Number.isInteger(c.train) && Number.isInteger(c.val);
}
