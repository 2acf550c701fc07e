// Shared test helpers: reading tensors into plain numbers, close comparisons with explicit
// precision, a deterministic JS random source, and a central finite-difference gradient check.
import { fromTypedArray, noGrad, tidy, type Tensor } from '../lib';

/** The elements of t as plain JS numbers (row-major); int64 comes back through Number(). */
export function flat(t: Tensor): number[] {
  return Array.from(t.toArray() as ArrayLike<number | bigint>, (v) => Number(v));
}

/** Asserts every element of actual is close to expected (same length), to `digits` decimals. */
export function expectAllClose(actual: ArrayLike<number> | Tensor, expected: ArrayLike<number>, digits = 5): void {
  const a = isTensor(actual) ? flat(actual) : Array.from(actual);
  expect(a.length).toBe(expected.length);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i] - expected[i]) >= 10 ** -digits / 2) {
      // a message naming the index makes failures readable
      throw new Error(`element ${i}: expected ${expected[i]} but received ${a[i]} (to ${digits} digits)\nall: ${a.join(', ')}`);
    }
  }
}

/**
 * Asserts |actual[i] − expected[i]| ≤ rel·|expected[i]| + abs for every element (same length): the
 * check for values whose precision is relative (a float rounded to a narrower type).
 */
export function expectRelClose(actual: number[], expected: number[], rel: number, abs = 1e-30, what = 'element'): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    if (!(Math.abs(a - expected[i]) <= rel * Math.abs(expected[i]) + abs))
      throw new Error(`${what} ${i}: ${a} vs expected ${expected[i]} (relative tolerance ${rel}, absolute ${abs})`);
  });
}

function isTensor(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && 'native' in x && typeof (x as Tensor).toArray === 'function';
}

/** mulberry32: a tiny deterministic PRNG, independent of libtorch's generator. */
export function jsRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi) from a seeded JS generator. */
export function jsUniform(n: number, seed: number, lo = -1, hi = 1): number[] {
  const r = jsRandom(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

export interface GradInput {
  shape: number[];
  data: number[];
}

export interface GradCheckResult {
  analytic: number[][];
  numeric: number[][];
  /** ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖), over all inputs together */
  relError: number;
}

/**
 * Compares the autograd gradient of a scalar function of float64 inputs with central finite
 * differences (step h). fn receives one float64 tensor per input and returns a one-element tensor.
 */
export function gradCheck(inputs: GradInput[], fn: (xs: Tensor[]) => Tensor, h = 1e-6): GradCheckResult {
  const analytic = tidy(() => {
    const xs = inputs.map((i) => fromTypedArray(Float64Array.from(i.data), i.shape, { requiresGrad: true }));
    const out = fn(xs);
    expect(out.numel).toBe(1);
    expect(out.dtype).toBe('float64');
    out.backward();
    return xs.map((x, k) => {
      const g = x.grad;
      if (g === null) throw new Error(`input ${k} received no gradient`);
      return Array.from(g.toArray() as Float64Array);
    });
  });
  const evalAt = (vals: Float64Array[]): number =>
    tidy(() => noGrad(() => fn(vals.map((v, k) => fromTypedArray(v, inputs[k].shape))).item()));
  const base = inputs.map((i) => Float64Array.from(i.data));
  const numeric = inputs.map((inp, k) =>
    inp.data.map((x0, j) => {
      base[k][j] = x0 + h;
      const up = evalAt(base);
      base[k][j] = x0 - h;
      const down = evalAt(base);
      base[k][j] = x0;
      return (up - down) / (2 * h);
    }),
  );
  let diff = 0;
  let na = 0;
  let nn = 0;
  analytic.forEach((ga, k) =>
    ga.forEach((a, j) => {
      const n = numeric[k][j];
      diff += (a - n) ** 2;
      na += a * a;
      nn += n * n;
    }),
  );
  const relError = Math.sqrt(diff) / Math.max(Math.sqrt(na), Math.sqrt(nn), 1e-12);
  return { analytic, numeric, relError };
}

export type TypedKind = 'Float32Array' | 'Float64Array' | 'BigInt64Array' | 'Int32Array' | 'Uint8Array';

/**
 * Asserts a typed array's kind and exact elements. The addon creates typed arrays in Node's main
 * realm while Jest runs tests in a vm context, so instanceof and toEqual against `new
 * Float32Array(...)` from the test would compare constructors of different realms; the
 * toStringTag and the elements are realm-independent.
 */
export function expectTyped(actual: unknown, kind: TypedKind, values: (number | bigint)[]): void {
  expect(Object.prototype.toString.call(actual)).toBe(`[object ${kind}]`);
  expect(Array.from(actual as ArrayLike<number | bigint>)).toEqual(values);
}

/**
 * Runs fn with what is written to stderr captured into `lines` (a chunk per write, not printed);
 * stderr is put back when fn returns or throws.
 */
export async function withStderr<T>(fn: (lines: string[]) => T | Promise<T>): Promise<T> {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    return await fn(lines);
  } finally {
    spy.mockRestore();
  }
}

/** A test whose tensors are all freed when it returns. */
export function itT(name: string, fn: () => void): void {
  it(name, () => {
    tidy(fn);
  });
}

/**
 * `it` when the condition holds; otherwise the test is reported as skipped with the reason in its
 * title (e.g. no CUDA device here). The only way tests here are skipped: always on a stated condition.
 */
export function itWhen(condition: boolean, reason: string): (name: string, fn: jest.ProvidesCallback, timeout?: number) => void {
  return condition
    ? (name, fn, timeout) => it(name, fn, timeout)
    : (name, fn, timeout) => it.skip(`${name} [skipped: ${reason}]`, fn, timeout);
}

/**
 * The cross-entropy formulas in float64 over logits x (rows × cols, row-major; rows = targets'
 * length): the mean over counted rows of logsumexp(x) − x_t, and its gradient times an upstream g,
 * (softmax(x) − onehot(t)) · g / n, 0 for ignored rows.
 */
export function crossEntropyReference(
  x: number[],
  cols: number,
  targets: number[],
  ignoreIndex: number,
  g: number,
): { loss: number; grad: number[] } {
  const rows = targets.length;
  const grad = new Array<number>(rows * cols).fill(0);
  const counted = targets.filter((t) => t !== ignoreIndex).length;
  let sum = 0;
  for (let i = 0; i < rows; i++) {
    if (targets[i] === ignoreIndex) continue;
    const row = x.slice(i * cols, (i + 1) * cols);
    const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    sum += lse - row[targets[i]];
    for (let j = 0; j < cols; j++) grad[i * cols + j] = ((Math.exp(row[j] - lse) - (j === targets[i] ? 1 : 0)) * g) / counted;
  }
  return { loss: sum / counted, grad };
}
