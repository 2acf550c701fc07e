// The choice of the next token from its logits: temperature, top-k, then top-p (nucleus), drawn
// with a seeded generator so that the same seed gives the same text. Runs on the host once per token
// and sequence, over a whole vocabulary row (50,257 for GPT-2), so it never sorts the row: the k
// largest are selected with a heap and only they are sorted; top-p alone looks at the largest 64,
// 256, … until they hold p of the mass.
import type { Xoshiro128 } from '../data/rng';

export interface TokenChoice {
  /** Softmax temperature; 0 picks the most likely token. */
  temperature: number;
  /** Only the k most likely tokens (0: all). */
  topK: number;
  /** Only the most likely tokens whose probabilities sum to at least p (1: all). */
  topP: number;
}

/** Checks a choice's numbers, naming the first out of range. */
export function checkTokenChoice(c: TokenChoice, where: string): void {
  if (!(c.temperature >= 0) || !Number.isFinite(c.temperature))
    throw new RangeError(`${where}: temperature must be a finite number ≥ 0, got ${c.temperature}`);
  if (!Number.isSafeInteger(c.topK) || c.topK < 0) throw new RangeError(`${where}: topK must be an integer ≥ 0, got ${c.topK}`);
  if (!(c.topP > 0 && c.topP <= 1)) throw new RangeError(`${where}: topP must be in (0, 1], got ${c.topP}`);
}

type Row = ArrayLike<number>;

/** The token drawn from `logits` (one row of the real vocabulary) under `c`. */
export function chooseToken(logits: Row, c: TokenChoice, rng: Xoshiro128): number {
  if (c.temperature === 0) return argmax(logits);
  const V = logits.length;
  const max = finiteMax(logits);
  const weight = (i: number) => Math.exp((logits[i] - max) / c.temperature);
  const k = c.topK > 0 && c.topK < V ? c.topK : V;
  // every token's weight when every token is a candidate (computed once, read twice)
  const all = k === V ? new Float64Array(V) : null;
  let total = 0;
  if (all !== null) for (let i = 0; i < V; i++) total += all[i] = weight(i);
  if (all !== null && c.topP === 1) {
    // every token, in index order: no candidate list
    let u = uniform(rng) * total;
    let last = 0; // (the last token with any weight: where rounding may leave u)
    for (let i = 0; i < V; i++) {
      if (all[i] === 0) continue;
      last = i;
      if ((u -= all[i]) < 0) return i;
    }
    return last;
  }
  // candidates most likely first, with their weights: the k largest; for top-p alone, the m
  // largest for a growing m until they hold p of the mass (the nucleus is short unless the
  // distribution is flat)
  let order: Uint32Array;
  let weights: Float64Array;
  let threshold: number;
  if (all === null) {
    order = largest(logits, k);
    weights = Float64Array.from(order, weight);
    threshold = c.topP * weights.reduce((a, w) => a + w, 0);
  } else {
    threshold = c.topP * total;
    for (let m = 64; ; m *= 4) {
      order = largest(logits, Math.min(m, V));
      weights = Float64Array.from(order, (i) => all[i]);
      if (m >= V || weights.reduce((a, w) => a + w, 0) >= threshold) break;
    }
  }
  // the shortest prefix holding the threshold (all k for top-p 1)
  let n = 0;
  let mass = 0;
  while (n < order.length && (n === 0 || mass < threshold)) mass += weights[n++];
  let u = uniform(rng) * mass;
  for (let i = 0; i < n; i++) if ((u -= weights[i]) < 0) return order[i];
  return order[n - 1]; // (u within rounding of the mass; the prefix's last token has weight)
}

/** A uniform draw in [0, 1). */
function uniform(rng: Xoshiro128): number {
  return rng.nextUint32() / 2 ** 32;
}

/** The largest entry, refusing NaN and infinities (a diverged model). */
function finiteMax(row: Row): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const x = row[i];
    if (x > max) max = x;
    else if (x !== x) throw new Error(`the model's logits are not finite (NaN at ${i})`);
  }
  if (!Number.isFinite(max)) throw new Error(`the model's logits are not finite (largest ${max})`);
  return max;
}

function argmax(row: Row): number {
  const max = finiteMax(row);
  for (let i = 0; ; i++) if (row[i] === max) return i;
}

/**
 * The indices of the k largest entries, largest first (ties: the lower index first). A min-heap of
 * the best k so far: O(V log k), and about one comparison per entry once it holds the k.
 */
export function largest(row: Row, k: number): Uint32Array {
  const heap = new Uint32Array(k); // heap[0]: the worst kept
  let size = 0;
  // a before b in the result: larger, or equal and lower index
  const better = (a: number, b: number) => row[a] > row[b] || (row[a] === row[b] && a < b);
  const siftDown = (at: number) => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let worst = at;
      if (l < size && better(heap[worst], heap[l])) worst = l;
      if (r < size && better(heap[worst], heap[r])) worst = r;
      if (worst === at) return;
      [heap[at], heap[worst]] = [heap[worst], heap[at]];
      at = worst;
    }
  };
  for (let i = 0; i < row.length; i++) {
    if (size < k) {
      // sift up
      let at = size++;
      heap[at] = i;
      while (at > 0) {
        const parent = (at - 1) >> 1;
        if (!better(heap[parent], heap[at])) break;
        [heap[at], heap[parent]] = [heap[parent], heap[at]];
        at = parent;
      }
    } else if (better(i, heap[0])) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (better(a, b) ? -1 : 1));
}
