// Tokenizing many documents on a pool of worker threads. The output is identical to
// encodeDocuments(docs) on the main thread (each document's ids, then EOT), whatever the pool size:
// batches are reassembled in input order, and text is cut only where the main thread's encode cuts
// it too (splitLongRuns) or where GPT-2's pre-tokenizer would cut anyway (safeCuts), so no token
// changes. The documents may come as they are read (documents.ts); they are read only as fast as
// the workers take them, so the text in memory stays a few batches long.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { EOT, ORDINARY, concatTokens, encode, safeCuts, splitLongRuns } from './tokenizer';

export { safeCuts } from './tokenizer';

const EMPTY = new Uint16Array(0);

export interface TokenizeOptions {
  /** Worker threads (default: os.availableParallelism()); 1 tokenizes on the main thread. */
  workers?: number;
  /** Work below this (the `total`: characters for tokenizeDocuments) stays on the main thread (default 4 M), where a pool costs more than it saves. */
  parallelThreshold?: number;
  /** Characters per batch sent to a worker (default: the input split into ~16 batches per worker, 64 K … 1 M, for load balance). */
  batchChars?: number;
  /** Called with the work done so far and the total (characters for tokenizeDocuments). */
  onProgress?: (done: number, total: number) => void;
  /**
   * Receives the ids in order, a chunk at a time, as they are made; they are then not collected
   * (the result's tokens are empty), so a corpus need not fit in memory.
   */
  onTokens?: (tokens: Uint16Array) => void;
}

export interface TokenizeResult {
  tokens: Uint16Array;
  /** Threads that tokenized (1: the main thread). */
  workers: number;
}

/** A piece of a document's text; EOT follows its ids when `eot` (the document's last piece). */
export interface Piece {
  text: string;
  eot: boolean;
  /** The work that tokenizing it completes, for progress (default: its characters). */
  units?: number;
}

/** All documents' ids, each document followed by EOT; on worker threads when the input is large. */
export function tokenizeDocuments(docs: readonly string[], opts: TokenizeOptions = {}): Promise<TokenizeResult> {
  const total = docs.reduce((n, d) => n + d.length, 0);
  return tokenizePieces(
    docs.map((text) => ({ text, eot: true })),
    total,
    opts,
  );
}

/**
 * The ids of pieces of documents, in order, with EOT after each document's last piece. `total` is
 * the work of all pieces (the sum of their `units`): the progress total, and what decides between
 * the main thread and the pool.
 */
export async function tokenizePieces(
  pieces: Iterable<Piece> | AsyncIterable<Piece>,
  total: number,
  opts: TokenizeOptions = {},
): Promise<TokenizeResult> {
  const workers = opts.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) throw new TypeError(`Expected a positive integer for workers but received ${workers}`);
  if (workers === 1 || total < (opts.parallelThreshold ?? 4_000_000)) {
    return { tokens: await tokenizeHere(pieces, total, opts.onProgress, opts.onTokens), workers: 1 };
  }
  const batchChars = opts.batchChars ?? Math.min(1_000_000, Math.max(65_536, Math.ceil(total / (workers * 16))));
  return tokenizeOnPool(pieces, total, workers, batchChars, opts.onProgress, opts.onTokens);
}

async function tokenizeHere(
  pieces: Iterable<Piece> | AsyncIterable<Piece>,
  total: number,
  onProgress: TokenizeOptions['onProgress'],
  onTokens: TokenizeOptions['onTokens'],
): Promise<Uint16Array> {
  const parts: Uint16Array[] = [];
  const emit = (chunk: Uint16Array) => (onTokens === undefined ? parts.push(chunk) : onTokens(chunk));
  let ids: number[] = [];
  let done = 0;
  for await (const piece of pieces) {
    for (const id of encode(piece.text)) ids.push(id);
    if (piece.eot) ids.push(EOT);
    // (many small documents: a typed array per ~1 M ids rather than one per document)
    if (ids.length >= 1 << 20) {
      emit(Uint16Array.from(ids));
      ids = [];
    }
    done += piece.units ?? piece.text.length;
    onProgress?.(done, total);
  }
  if (ids.length > 0) emit(Uint16Array.from(ids));
  return concatTokens(parts);
}

/** Consecutive pieces grouped into batches of about `size` characters, in input order, cut as the main thread's encode cuts. */
async function* makeBatches(
  pieces: Iterable<Piece> | AsyncIterable<Piece>,
  size: number,
): AsyncGenerator<{ pieces: Piece[]; units: number }> {
  let current: Piece[] = [];
  let chars = 0;
  let units = 0;
  for await (const piece of pieces) {
    units += piece.units ?? piece.text.length;
    // the workers call gpt-tokenizer's encode, so the long runs that encode() cuts are cut here
    const cuts = safeCuts(piece.text, size).flatMap((text) => splitLongRuns(text));
    for (let i = 0; i < cuts.length; i++) {
      current.push({ text: cuts[i], eot: piece.eot && i === cuts.length - 1 });
      chars += cuts[i].length;
      if (chars >= size) {
        yield { pieces: current, units };
        [current, chars, units] = [[], 0, 0];
      }
    }
  }
  if (current.length > 0 || units > 0) yield { pieces: current, units };
}

// The worker is plain JavaScript evaluated from a string, so it runs the same from the TypeScript
// sources (tests) and from the compiled package. It loads the tokenizer by absolute path and gets
// the main thread's encode options (structured-cloned), so its ids are the main thread's.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { encode } = require(workerData.tokenizer);
parentPort.on('message', (pieces) => {
  const ids = pieces.map((p) => encode(p.text, workerData.options));
  let n = 0;
  pieces.forEach((p, i) => { n += ids[i].length + (p.eot ? 1 : 0); });
  const out = new Uint16Array(n);
  let at = 0;
  pieces.forEach((p, i) => { out.set(ids[i], at); at += ids[i].length; if (p.eot) out[at++] = workerData.eot; });
  parentPort.postMessage(out, [out.buffer]);
});
`;

interface PoolWorker {
  /** The ids of a batch (one batch at a time). */
  run(pieces: Piece[]): Promise<Uint16Array>;
  terminate(): Promise<number>;
}

function startWorker(tokenizer: string): PoolWorker {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { tokenizer, eot: EOT, options: ORDINARY } });
  let current: { resolve: (tokens: Uint16Array) => void; reject: (e: Error) => void } | undefined;
  let dead: Error | undefined;
  const fail = (e: Error): void => {
    dead ??= e;
    current?.reject(e);
    current = undefined;
  };
  worker.on('message', (tokens: Uint16Array) => {
    const c = current;
    current = undefined;
    c?.resolve(tokens);
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`a tokenizer worker exited with code ${code} before the work was done`)));
  return {
    run: (pieces) =>
      new Promise<Uint16Array>((resolve, reject) => {
        if (dead !== undefined) return reject(dead);
        current = { resolve, reject };
        worker.postMessage(pieces.map((p) => ({ text: p.text, eot: p.eot })));
      }),
    terminate: () => worker.terminate(),
  };
}

/** Batches to free workers as they are read; workers start as the batches need them, up to `size`. */
async function tokenizeOnPool(
  pieces: Iterable<Piece> | AsyncIterable<Piece>,
  total: number,
  size: number,
  batchChars: number,
  onProgress: TokenizeOptions['onProgress'],
  onTokens: TokenizeOptions['onTokens'],
): Promise<TokenizeResult> {
  const tokenizer = require.resolve('gpt-tokenizer/cjs/encoding/r50k_base');
  const pool: PoolWorker[] = [];
  const idle: PoolWorker[] = [];
  // each batch's ids by its index (undefined: not back yet); with onTokens, handed on in order as
  // soon as every earlier batch is back, and dropped
  const results: (Uint16Array | undefined)[] = [];
  let handedOn = 0;
  const handOn = () => {
    if (onTokens === undefined) return;
    for (; handedOn < results.length && results[handedOn] !== undefined; handedOn++) {
      onTokens(results[handedOn]!);
      results[handedOn] = EMPTY;
    }
  };
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let done = 0;
  try {
    for await (const batch of makeBatches(pieces, batchChars)) {
      let worker = idle.pop();
      if (worker === undefined && pool.length < size) pool.push((worker = startWorker(tokenizer)));
      while (worker === undefined && failure === undefined) {
        await Promise.race(running);
        worker = idle.pop();
      }
      if (worker === undefined) break; // (a batch failed)
      const w = worker;
      const id = results.push(undefined) - 1;
      const task: Promise<void> = w
        .run(batch.pieces)
        .then((tokens) => {
          results[id] = tokens;
          idle.push(w);
          done += batch.units;
          handOn();
          onProgress?.(done, total);
        })
        .catch((e: unknown) => {
          failure ??= { error: e };
        })
        .finally(() => running.delete(task));
      running.add(task);
    }
    await Promise.all(running);
    if (failure !== undefined) throw failure.error;
    return { tokens: onTokens === undefined ? concatTokens(results as Uint16Array[]) : EMPTY, workers: pool.length };
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}
