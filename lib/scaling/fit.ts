// Fitting one's own scaling law (../shared/spec/schedule.md, "Own scaling laws"): the constants
// (Nc, αN, Sc, αS) of L(N, S) = (Nc/N)^αN + (2·Sc/S)^αS by least squares on log L, from the validation
// curves of a few small from-scratch runs.
//
// Method: Levenberg–Marquardt (Marquardt's diagonal scaling, analytic Jacobian) over well-conditioned
// log-parameters θ = (log A, log αN, log Bs, log αS) of the equivalent form
// L = A·(N0/N)^αN + Bs·(S0/S)^αS, N0 and S0 being the geometric means of the data's sizes and steps
// (Nc = N0·A^(1/αN), Sc = S0·Bs^(1/αS)/2). Fitting log Nc directly is badly conditioned because
// log Nc and αN are almost collinear over a small range of N. Started from a grid of exponents
// (αN ∈ {0.03, 0.08, 0.2, 0.5}, αS ∈ {0.3, 0.6, 1.0, 1.5}) and split of the mean loss; the best fit wins.
// B* and αB cannot be identified from L(N, S); they are carried over (Kaplan's by default).
import { KAPLAN, type ScalingLaw } from './kaplan';
import { solveLinear } from './optimize';

/** One validation measurement: non-embedding size N, steps S (at the critical batch) or tokens, loss L. */
export interface FitPoint {
  N: number;
  /** Steps; or give `tokens` and the fit's `batchTokens` (S = tokens / B). */
  S?: number;
  tokens?: number;
  L: number;
  /** Where the point came from (e.g. `point 3 of --points p.json`), for errors; else its place in the list. */
  source?: string;
}

export interface FitOptions {
  /**
   * Tokens per step: converts points given in tokens (S = tokens/B), and says that the steps S are steps
   * at this fixed batch (recorded in the result, so that a plan counts tokens = S·B).
   */
  batchTokens?: number;
  /** B* and αB of the resulting law (not fitted). */
  Bstar?: number;
  alphaB?: number;
  maxIterations?: number;
}

export interface FitResult {
  law: ScalingLaw;
  /**
   * The fixed batch (tokens per step) of the steps S the law was fitted on, or null when unknown (S then
   * reads as steps at the critical batch, Kaplan's accounting, with B* and αB carried over).
   */
  batchTokens: number | null;
  /** RMS and maximum of |L_fit/L − 1| over the points. */
  rmsRelativeError: number;
  maxRelativeError: number;
  /** RMS of log(L_fit) − log(L), the minimised quantity. */
  rmsLogError: number;
  points: number;
  iterations: number;
  converged: boolean;
  /**
   * Exponents far outside what language-model runs show (Kaplan: αN 0.076, αS 0.76), which a fit
   * of too few, too short or too alike runs finds: a plan from such a law says little.
   */
  warnings: string[];
}

interface Prepared {
  lnN: Float64Array; // log(N0/N)
  lnS: Float64Array; // log(S0/S)
  lnL: Float64Array;
  N0: number;
  S0: number;
}

function prepare(points: readonly FitPoint[], opts: FitOptions): Prepared {
  if (points.length < 5) throw new Error(`fit: need at least 5 points (got ${points.length})`);
  const n = points.length;
  const N = new Float64Array(n);
  const S = new Float64Array(n);
  const L = new Float64Array(n);
  points.forEach((p, i) => {
    const steps = p.S ?? (p.tokens !== undefined && opts.batchTokens !== undefined ? p.tokens / opts.batchTokens : undefined);
    const which = p.source ?? `point ${i + 1}`;
    if (steps === undefined) throw new Error(`fit: ${which} has neither S nor tokens with a batch size`);
    for (const [name, v] of [
      ['N', p.N],
      ['S', steps],
      ['L', p.L],
    ] as const)
      if (!(v > 0) || !Number.isFinite(v)) throw new Error(`fit: ${which}: ${name} must be positive and finite (got ${v})`);
    N[i] = p.N;
    S[i] = steps;
    L[i] = p.L;
  });
  if (new Set(N).size < 2) throw new Error('fit: need runs of at least 2 different sizes');
  if (new Set(S).size < 3) throw new Error('fit: need at least 3 different step counts');
  const gmean = (a: Float64Array) => Math.exp(a.reduce((s, v) => s + Math.log(v), 0) / a.length);
  const N0 = gmean(N);
  const S0 = gmean(S);
  return { lnN: N.map((v) => Math.log(N0 / v)), lnS: S.map((v) => Math.log(S0 / v)), lnL: L.map(Math.log), N0, S0 };
}

/** Residuals log(model) − log(L) and (optionally) the Jacobian with respect to θ. */
function evaluate(d: Prepared, theta: readonly number[], J?: number[][]): Float64Array {
  const [lA, lan, lB, las] = theta;
  const A = Math.exp(lA);
  const an = Math.exp(lan);
  const Bs = Math.exp(lB);
  const as = Math.exp(las);
  const r = new Float64Array(d.lnL.length);
  for (let i = 0; i < r.length; i++) {
    const tN = A * Math.exp(an * d.lnN[i]);
    const tS = Bs * Math.exp(as * d.lnS[i]);
    const m = tN + tS;
    r[i] = Math.log(m) - d.lnL[i];
    if (J) J[i] = [tN / m, (tN * an * d.lnN[i]) / m, tS / m, (tS * as * d.lnS[i]) / m];
  }
  return r;
}

const sumSq = (r: Float64Array) => r.reduce((s, v) => s + v * v, 0);

function levenbergMarquardt(
  d: Prepared,
  start: number[],
  maxIterations: number,
): { theta: number[]; sse: number; iterations: number; converged: boolean } {
  let theta = start.slice();
  const J: number[][] = [];
  let r = evaluate(d, theta, J);
  let sse = sumSq(r);
  let lambda = 1e-3;
  let converged = false;
  let it = 0;
  for (; it < maxIterations && Number.isFinite(sse); it++) {
    const JtJ = [0, 1, 2, 3].map((a) => [0, 1, 2, 3].map((b) => J.reduce((s, row) => s + row[a] * row[b], 0)));
    const Jtr = [0, 1, 2, 3].map((a) => J.reduce((s, row, i) => s + row[a] * r[i], 0));
    let improved = false;
    while (lambda < 1e12) {
      const M = JtJ.map((row, a) => row.map((v, b) => (a === b ? v + lambda * Math.max(v, 1e-12) : v)));
      let step: number[];
      try {
        step = solveLinear(
          M,
          Jtr.map((v) => -v),
        );
      } catch {
        lambda *= 10;
        continue;
      }
      const next = theta.map((v, a) => v + step[a]);
      const rNext = evaluate(d, next);
      const sseNext = sumSq(rNext);
      if (Number.isFinite(sseNext) && sseNext < sse) {
        const small = sse - sseNext <= 1e-14 * sse + 1e-30 || step.every((s) => Math.abs(s) < 1e-12);
        theta = next;
        r = evaluate(d, theta, J);
        sse = sseNext;
        lambda = Math.max(lambda / 3, 1e-12);
        improved = true;
        if (small) converged = true;
        break;
      }
      lambda *= 4;
    }
    if (!improved) {
      converged = true; // no descent direction left at any damping: a (local) minimum
      break;
    }
    if (converged) break;
  }
  return { theta, sse, iterations: it, converged };
}

/** Fits (Nc, αN, Sc, αS) to validation points; reports the fitted law and its errors. */
export function fitScalingLaw(points: readonly FitPoint[], opts: FitOptions = {}): FitResult {
  const d = prepare(points, opts);
  const meanL = Math.exp(d.lnL.reduce((s, v) => s + v, 0) / d.lnL.length);
  let best: ReturnType<typeof levenbergMarquardt> | null = null;
  for (const an of [0.03, 0.08, 0.2, 0.5])
    for (const as of [0.3, 0.6, 1.0, 1.5])
      for (const split of [0.5, 0.8]) {
        const start = [Math.log(split * meanL), Math.log(an), Math.log((1 - split) * meanL), Math.log(as)];
        const r = levenbergMarquardt(d, start, opts.maxIterations ?? 300);
        if (best === null || r.sse < best.sse) best = r;
      }
  if (best === null || !Number.isFinite(best.sse)) throw new Error('fit: no finite fit found');
  const [A, alphaN, Bs, alphaS] = best.theta.map(Math.exp);
  const law: ScalingLaw = {
    Nc: d.N0 * Math.pow(A, 1 / alphaN),
    alphaN,
    Sc: (d.S0 * Math.pow(Bs, 1 / alphaS)) / 2,
    alphaS,
    Bstar: opts.Bstar ?? KAPLAN.Bstar,
    alphaB: opts.alphaB ?? KAPLAN.alphaB,
  };
  // runs that hardly differ in size (or in length) cannot pin the power law down: the fit sends its
  // exponent to 0 and the constant to infinity, a law nothing can be planned with
  const degenerate = (['Nc', 'alphaN', 'Sc', 'alphaS'] as const).filter((k) => !(Number.isFinite(law[k]) && law[k] > 0));
  if (degenerate.length > 0 || law.alphaN < 1e-3 || law.alphaS < 1e-3) {
    const spread = (a: Float64Array) => Math.exp(Math.max(...a) - Math.min(...a));
    throw new Error(
      `fit: these points do not determine the law (Nc = ${law.Nc.toPrecision(3)}, αN = ${law.alphaN.toPrecision(3)}, ` +
        `Sc = ${law.Sc.toPrecision(3)}, αS = ${law.alphaS.toPrecision(3)}): the runs span a factor ${spread(d.lnN).toPrecision(3)} ` +
        `in size and ${spread(d.lnS).toPrecision(3)} in steps; the law needs a loss that falls with size and with steps, ` +
        'over runs whose sizes differ by several times',
    );
  }
  const r = evaluate(d, best.theta);
  const rel = Array.from(r, (v) => Math.abs(Math.expm1(v)));
  return {
    law,
    batchTokens: opts.batchTokens ?? null,
    rmsRelativeError: Math.sqrt(rel.reduce((s, v) => s + v * v, 0) / rel.length),
    maxRelativeError: Math.max(...rel),
    rmsLogError: Math.sqrt(best.sse / r.length),
    points: r.length,
    iterations: best.iterations,
    converged: best.converged,
    warnings: lawWarnings(law),
  };
}

/** Exponents a language model's runs do not show (see FitResult.warnings). */
export function lawWarnings(law: ScalingLaw): string[] {
  const out: string[] = [];
  if (law.alphaN < 0.02)
    out.push(
      `αN = ${law.alphaN.toPrecision(3)} (Nc = ${law.Nc.toPrecision(3)}): the loss barely depends on size in this fit (Kaplan: 0.076); the runs may be too short or too alike in size`,
    );
  if (law.alphaS < 0.1 || law.alphaS > 3)
    out.push(
      `αS = ${law.alphaS.toPrecision(3)}: far from the usual (Kaplan: 0.76); the runs may be too short or their curves dominated by warmup`,
    );
  return out;
}
