// Tokenizing many documents on a pool of worker threads. The output is identical to
// encodeDocuments(docs) on the main thread (each document's ids, then EOT), whatever the pool size:
// batches are reassembled in input order, and documents longer than a batch are cut only where
// GPT-2's pre-tokenizer would cut anyway (see safeCuts), so no token changes.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { EOT, ORDINARY, concatTokens, encodeDocuments } from './tokenizer';

export interface TokenizeOptions {
  /** Worker threads (default: os.availableParallelism()); 1 tokenizes on the main thread. */
  workers?: number;
  /** Inputs below this many characters stay on the main thread (default 4 M), where a pool costs more than it saves. */
  parallelThreshold?: number;
  /** Characters per batch sent to a worker (default: the input split into ~16 batches per worker, 64 K … 1 M, for load balance). */
  batchChars?: number;
  /** Called with characters tokenized so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface TokenizeResult {
  tokens: Uint16Array;
  /** Threads that tokenized (1: the main thread). */
  workers: number;
}

/** A piece of text and whether EOT follows its ids (true for the last piece of a document). */
interface Piece {
  text: string;
  eot: boolean;
}

/** All documents' ids, each document followed by EOT; on worker threads when the input is large. */
export async function tokenizeDocuments(docs: readonly string[], opts: TokenizeOptions = {}): Promise<TokenizeResult> {
  const total = docs.reduce((n, d) => n + d.length, 0);
  const workers = opts.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) throw new TypeError(`Expected a positive integer for workers but received ${workers}`);
  if (workers === 1 || total < (opts.parallelThreshold ?? 4_000_000)) {
    return { tokens: tokenizeHere(docs, total, opts.onProgress), workers: 1 };
  }
  const batchChars = opts.batchChars ?? Math.min(1_000_000, Math.max(65_536, Math.ceil(total / (workers * 16))));
  const batches = makeBatches(docs, batchChars);
  const parts = await runPool(batches, Math.min(workers, batches.length), total, opts.onProgress);
  return { tokens: concatTokens(parts), workers: Math.min(workers, batches.length) };
}

function tokenizeHere(docs: readonly string[], total: number, onProgress: TokenizeOptions['onProgress']): Uint16Array {
  if (onProgress === undefined) return encodeDocuments(docs);
  const parts: Uint16Array[] = [];
  let done = 0;
  for (const doc of docs) {
    parts.push(encodeDocuments([doc]));
    done += doc.length;
    onProgress(done, total);
  }
  return concatTokens(parts);
}

/**
 * Positions where `text` may be cut without changing its tokens: a space between two letters. The
 * r50k pre-tokenizer ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
 * always ends a piece at a letter followed by a space, and starts the next piece at that space
 * (" ?\p{L}+"), so both halves split into the same pieces as the whole; BPE works within pieces.
 */
const SAFE_CUT = /(?<=\p{L}) (?=\p{L})/gu;

/** `text` in pieces of about `size` characters, each cut at a safe position. */
export function safeCuts(text: string, size: number): string[] {
  const out: string[] = [];
  let start = 0;
  while (text.length - start > size) {
    SAFE_CUT.lastIndex = start + size;
    const m = SAFE_CUT.exec(text);
    if (m === null) break;
    out.push(text.slice(start, m.index));
    start = m.index;
  }
  out.push(text.slice(start));
  return out;
}

/** Consecutive pieces grouped into batches of about `size` characters, in input order. */
function makeBatches(docs: readonly string[], size: number): Piece[][] {
  const batches: Piece[][] = [];
  let current: Piece[] = [];
  let chars = 0;
  for (const doc of docs) {
    const cuts = safeCuts(doc, size);
    cuts.forEach((text, i) => {
      current.push({ text, eot: i === cuts.length - 1 });
      chars += text.length;
      if (chars >= size) {
        batches.push(current);
        current = [];
        chars = 0;
      }
    });
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

// The worker is plain JavaScript evaluated from a string, so it runs the same from the TypeScript
// sources (tests) and from the compiled package. It loads the tokenizer by absolute path and gets
// the main thread's encode options (structured-cloned), so its ids are the main thread's.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { encode } = require(workerData.tokenizer);
parentPort.on('message', ({ id, pieces }) => {
  const ids = pieces.map((p) => encode(p.text, workerData.options));
  let n = 0;
  pieces.forEach((p, i) => { n += ids[i].length + (p.eot ? 1 : 0); });
  const out = new Uint16Array(n);
  let at = 0;
  pieces.forEach((p, i) => { out.set(ids[i], at); at += ids[i].length; if (p.eot) out[at++] = workerData.eot; });
  parentPort.postMessage({ id, tokens: out }, [out.buffer]);
});
`;

function runPool(batches: Piece[][], size: number, total: number, onProgress: TokenizeOptions['onProgress']): Promise<Uint16Array[]> {
  const tokenizer = require.resolve('gpt-tokenizer/cjs/encoding/r50k_base');
  const results: Uint16Array[] = new Array<Uint16Array>(batches.length);
  const pool = Array.from(
    { length: size },
    () => new Worker(WORKER_SOURCE, { eval: true, workerData: { tokenizer, eot: EOT, options: ORDINARY } }),
  );
  let next = 0;
  let finished = 0;
  let done = 0;
  return new Promise<Uint16Array[]>((resolve, reject) => {
    const send = (w: Worker): void => {
      if (next < batches.length) {
        w.postMessage({ id: next, pieces: batches[next] });
        next++;
      }
    };
    for (const w of pool) {
      w.on('message', ({ id, tokens }: { id: number; tokens: Uint16Array }) => {
        results[id] = tokens;
        done += batches[id].reduce((n, p) => n + p.text.length, 0);
        onProgress?.(done, total);
        if (++finished === batches.length) resolve(results);
        else send(w);
      });
      w.on('error', reject);
      w.on('exit', (code) => {
        if (finished < batches.length) reject(new Error(`a tokenizer worker exited with code ${code} before the work was done`));
      });
      send(w);
    }
  }).finally(() => Promise.all(pool.map((w) => w.terminate())));
}
