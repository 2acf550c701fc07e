// Small, dependable numerical tools for the scaling-law code: 1-D minimisation (golden section,
// optionally preceded by a grid scan that brackets the best cell so that a function with several
// local minima still ends in the best one), bisection for roots, and a dense linear solve for the
// normal equations of the least-squares fit. Everything is deterministic and allocation-light.

/** The result of a 1-D minimisation. */
export interface Minimum {
  x: number;
  fx: number;
  evaluations: number;
}

const INV_PHI = (Math.sqrt(5) - 1) / 2; // 0.618…

/** Maps NaN to +∞ so that comparisons order every value (an infeasible point is never the best). */
function finite(f: (x: number) => number): (x: number) => number {
  return (x) => {
    const v = f(x);
    return Number.isNaN(v) ? Infinity : v;
  };
}

/**
 * Golden-section search for a minimum of `f` on [a, b] (f unimodal there); stops when the bracket is
 * narrower than `tol` (absolute, in x) or after `maxIter` iterations. The end points are candidates too.
 */
export function goldenSection(f: (x: number) => number, a: number, b: number, tol = 1e-12, maxIter = 200): Minimum {
  const g = finite(f);
  if (!(b >= a)) throw new Error(`goldenSection: empty interval [${a}, ${b}]`);
  let lo = a;
  let hi = b;
  let x1 = hi - INV_PHI * (hi - lo);
  let x2 = lo + INV_PHI * (hi - lo);
  let f1 = g(x1);
  let f2 = g(x2);
  let evaluations = 2;
  for (let i = 0; i < maxIter && hi - lo > tol; i++) {
    if (f1 <= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - INV_PHI * (hi - lo);
      f1 = g(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + INV_PHI * (hi - lo);
      f2 = g(x2);
    }
    evaluations++;
  }
  let best: Minimum = f1 <= f2 ? { x: x1, fx: f1, evaluations } : { x: x2, fx: f2, evaluations };
  for (const x of [a, b]) {
    const fx = g(x);
    best.evaluations++;
    if (fx < best.fx) best = { x, fx, evaluations: best.evaluations };
  }
  return best;
}

export interface ScanOptions {
  /** Number of grid cells of the initial scan (grid + 1 points). */
  grid?: number;
  /** Absolute tolerance in x of the golden-section refinement. */
  tol?: number;
  maxIter?: number;
}

/**
 * Minimises `f` on [a, b]: a uniform grid scan finds the best grid point, then golden-section search
 * refines it inside the two neighbouring cells. Robust to a function that is not unimodal on the whole
 * interval as long as the grid resolves its basins; exact for unimodal ones.
 */
export function minimize1d(f: (x: number) => number, a: number, b: number, opts: ScanOptions = {}): Minimum {
  const g = finite(f);
  const grid = opts.grid ?? 24;
  if (!(b >= a)) throw new Error(`minimize1d: empty interval [${a}, ${b}]`);
  if (b === a) return { x: a, fx: g(a), evaluations: 1 };
  let bestI = 0;
  let bestF = Infinity;
  for (let i = 0; i <= grid; i++) {
    const fx = g(a + ((b - a) * i) / grid);
    if (fx < bestF) {
      bestF = fx;
      bestI = i;
    }
  }
  const lo = a + ((b - a) * Math.max(0, bestI - 1)) / grid;
  const hi = a + ((b - a) * Math.min(grid, bestI + 1)) / grid;
  const refined = goldenSection(g, lo, hi, opts.tol ?? 1e-12, opts.maxIter ?? 200);
  const evaluations = grid + 1 + refined.evaluations;
  const gridX = a + ((b - a) * bestI) / grid;
  return refined.fx <= bestF ? { ...refined, evaluations } : { x: gridX, fx: bestF, evaluations };
}

/**
 * A root of `f` on [a, b] by bisection; f(a) and f(b) must have opposite signs (or one be zero).
 * Converges to the last representable bracket (or `tol`).
 */
export function bisectRoot(f: (x: number) => number, a: number, b: number, tol = 0, maxIter = 400): number {
  let lo = a;
  let hi = b;
  let flo = f(lo);
  const fhi = f(hi);
  if (flo === 0) return lo;
  if (fhi === 0) return hi;
  if (!(Math.sign(flo) * Math.sign(fhi) < 0)) throw new Error(`bisectRoot: no sign change on [${a}, ${b}] (f = ${flo}, ${fhi})`);
  for (let i = 0; i < maxIter; i++) {
    const mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi || hi - lo <= tol) break;
    const fm = f(mid);
    if (fm === 0) return mid;
    if (Math.sign(fm) === Math.sign(flo)) {
      lo = mid;
      flo = fm;
    } else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** Solves A x = b (A square, dense) by Gaussian elimination with partial pivoting; throws if singular. */
export function solveLinear(A: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => {
    if (row.length !== n) throw new Error('solveLinear: matrix is not square');
    return [...row, b[i]];
  });
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    if (M[p][c] === 0 || !Number.isFinite(M[p][c])) throw new Error('solveLinear: singular matrix');
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < n; r++) {
      const k = M[r][c] / M[c][c];
      if (k === 0) continue;
      for (let j = c; j <= n; j++) M[r][j] -= k * M[c][j];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let j = r + 1; j < n; j++) s -= M[r][j] * x[j];
    x[r] = s / M[r][r];
  }
  return x;
}
