// The choice of the next token from its logits: temperature, top-k, then top-p (nucleus), drawn
// with a seeded generator so that the same seed gives the same text. Runs on the host once per token
// and sequence, over a whole vocabulary row (50,257 for GPT-2), so it avoids sorting the row: the k
// largest are selected in one pass, and only they (or, for top-p without top-k, the row) are sorted.
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
  // candidates, most likely first when their order matters (top-k, top-p); index order otherwise
  let order: ArrayLike<number>;
  if (c.topK > 0 && c.topK < V) order = largest(logits, c.topK);
  else if (c.topP < 1) order = Uint32Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  else order = Uint32Array.from({ length: V }, (_, i) => i);
  let max = -Infinity;
  for (let k = 0; k < order.length; k++) max = Math.max(max, logits[order[k]]);
  if (!Number.isFinite(max)) throw new Error(`the model's logits are not finite (largest ${max})`);
  const weights = new Float64Array(order.length);
  let total = 0;
  for (let k = 0; k < order.length; k++) total += weights[k] = Math.exp((logits[order[k]] - max) / c.temperature);
  let n = order.length;
  if (c.topP < 1) {
    // the shortest prefix (most likely first) holding at least p of the mass
    let mass = 0;
    for (n = 0; n < order.length && mass < c.topP * total; n++) mass += weights[n];
    total = mass;
  }
  let u = (rng.nextUint32() / 2 ** 32) * total;
  for (let k = 0; k < n; k++) {
    u -= weights[k];
    if (u < 0) return order[k];
  }
  return order[n - 1]; // (u within rounding of the total)
}

function argmax(row: Row): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  if (!Number.isFinite(row[best])) throw new Error(`the model's logits are not finite (largest ${row[best]})`);
  return best;
}

/** The indices of the k largest entries, largest first (ties: the lower index first). */
export function largest(row: Row, k: number): Uint32Array {
  // a sorted window of the best k so far, smallest last: one comparison per entry once it is full
  const top = new Uint32Array(k);
  let size = 0;
  const better = (i: number, j: number) => row[i] > row[j] || (row[i] === row[j] && i < j);
  for (let i = 0; i < row.length; i++) {
    if (size === k && !better(i, top[k - 1])) continue;
    let at = size < k ? size++ : k - 1;
    while (at > 0 && better(i, top[at - 1])) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = i;
  }
  return top;
}
