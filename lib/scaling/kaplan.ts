// The Kaplan et al. (2020) scaling laws as used by ../shared/spec/schedule.md: loss as a function of
// non-embedding parameters N and optimizer steps S, the critical batch, compute, the compute-efficient
// frontier, the compute (and steps) for size N to reach a loss, and the single-stage optimum (the size
// that reaches a target loss with the least compute).
//
// Units: N = non-embedding parameters (12·L·d²); S = optimizer steps at the critical batch unless a
// function says otherwise; B = tokens per step; C = FLOPs (6·N·B·S); loss in nats/token.
import { z } from 'zod';
import { bisectRoot, minimize1d } from './optimize';
import { formatIssues } from '../validate';

/** FLOPs in one PF-day (1e15 FLOP/s for 86 400 s). */
export const PF_DAY = 8.64e19;

const positive = z.number().positive().finite();

/** The constants of L(N, S) and of the critical batch. Bstar/alphaB default to Kaplan's (a fit of L(N, S) cannot determine them). */
export const ScalingLawSchema = z
  .object({
    Nc: positive,
    alphaN: positive,
    Sc: positive,
    alphaS: positive,
    /** B* of Bcrit(L) = B* / L^(1/αB), in tokens. */
    Bstar: positive.default(2.1e8),
    alphaB: positive.default(0.21),
  })
  .strict();
export type ScalingLawInput = z.input<typeof ScalingLawSchema>;
export type ScalingLaw = z.infer<typeof ScalingLawSchema>;

/** Kaplan et al. (2020), WebText2 with GPT-2's tokenizer. */
export const KAPLAN: Readonly<ScalingLaw> = Object.freeze({
  Nc: 8.8e13,
  alphaN: 0.076,
  Sc: 2.1e3,
  alphaS: 0.76,
  Bstar: 2.1e8,
  alphaB: 0.21,
});

/** Validates law constants (errors name the field) and fills in Bstar/alphaB. */
export function parseScalingLaw(input: unknown): ScalingLaw {
  const r = ScalingLawSchema.safeParse(input);
  if (!r.success) {
    throw new Error(`invalid scaling-law constants: ${formatIssues(r.error, '(law)')}`);
  }
  return r.data;
}

/** The compute-efficient frontier L(Cmin) = (Cc / Cmin[PF-days])^αC. */
export interface Frontier {
  Cc: number;
  alphaC: number;
}
export const KAPLAN_FRONTIER: Readonly<Frontier> = Object.freeze({ Cc: 2.3e8, alphaC: 0.05 });

function checkPositive(name: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw new Error(`${name} must be a positive finite number (got ${v})`);
}

/** The size term (Nc/N)^αN: the loss that size N approaches with unlimited steps. */
export function lossFloor(N: number, law: ScalingLaw = KAPLAN): number {
  checkPositive('N', N);
  return Math.pow(law.Nc / N, law.alphaN);
}

/** Bcrit(L) = B* / L^(1/αB), tokens per step. */
export function criticalBatch(L: number, law: ScalingLaw = KAPLAN): number {
  checkPositive('loss', L);
  return law.Bstar / Math.pow(L, 1 / law.alphaB);
}

/** L(N, S) at B = Bcrit: (Nc/N)^αN + (2·Sc/S)^αS. */
export function lossAt(N: number, S: number, law: ScalingLaw = KAPLAN): number {
  checkPositive('S', S);
  return lossFloor(N, law) + Math.pow((2 * law.Sc) / S, law.alphaS);
}

/**
 * L(N, S) when training with batch B tokens: (Nc/N)^αN + (Sc/Smin)^αS with Smin = S/(1 + Bcrit(L)/B).
 * Bcrit depends on the loss itself, so this solves the implicit equation (its left side minus right side
 * is increasing in L: a unique root, found by bisection). At B = Bcrit(L) it equals lossAt(N, S).
 */
export function lossAtBatch(N: number, S: number, B: number, law: ScalingLaw = KAPLAN): number {
  checkPositive('S', S);
  checkPositive('B', B);
  const u = lossFloor(N, law);
  const g = (L: number) => L - u - Math.pow((law.Sc * (1 + criticalBatch(L, law) / B)) / S, law.alphaS);
  const hi = u + Math.pow((law.Sc * (1 + criticalBatch(u, law) / B)) / S, law.alphaS);
  return bisectRoot(g, u, hi);
}

/** Steps at the critical batch for size N to reach loss L from scratch: 2·Sc/(L − (Nc/N)^αN)^(1/αS); ∞ at or below the floor. */
export function stepsToLoss(N: number, L: number, law: ScalingLaw = KAPLAN): number {
  const gap = L - lossFloor(N, law);
  if (!(gap > 0)) return Infinity;
  return (2 * law.Sc) / Math.pow(gap, 1 / law.alphaS);
}

/** Steps at batch B for size N to reach loss L: Smin·(1 + Bcrit(L)/B) with Smin = Sc/(L − (Nc/N)^αN)^(1/αS). */
export function stepsToLossAtBatch(N: number, L: number, B: number, law: ScalingLaw = KAPLAN): number {
  checkPositive('B', B);
  const gap = L - lossFloor(N, law);
  if (!(gap > 0)) return Infinity;
  return (law.Sc / Math.pow(gap, 1 / law.alphaS)) * (1 + criticalBatch(L, law) / B);
}

/** Training compute C = 6·N·B·S FLOPs. */
export function trainingFlops(N: number, B: number, S: number): number {
  return 6 * N * B * S;
}

/** FLOPs → PF-days. */
export function toPfDays(flops: number): number {
  return flops / PF_DAY;
}

/**
 * Compute for size N to reach loss L training at the critical batch of that loss:
 * 6·N·Bcrit(L)·S(N, L) = 6·N·B*·2·Sc / L^(1/αB) · (L − (Nc/N)^αN)^(−1/αS).
 * This is the accounting of the spec's reference numbers (0.294 PF-days at L = 3.0); it is twice
 * `minimalCompute` (Kaplan's Cmin, the limit of small batches).
 */
export function computeToLoss(N: number, L: number, law: ScalingLaw = KAPLAN): number {
  return trainingFlops(N, criticalBatch(L, law), stepsToLoss(N, L, law));
}

/** The spec's C(N, L) = 6·B*·Sc·N / L^(1/αB) · (L − (Nc/N)^αN)^(−1/αS): Kaplan's Cmin, half of computeToLoss. */
export function minimalCompute(N: number, L: number, law: ScalingLaw = KAPLAN): number {
  return computeToLoss(N, L, law) / 2;
}

/** L(Cmin) = (Cc / Cmin[PF-days])^αC. */
export function frontierLoss(cminPfDays: number, frontier: Frontier = KAPLAN_FRONTIER): number {
  checkPositive('Cmin', cminPfDays);
  return Math.pow(frontier.Cc / cminPfDays, frontier.alphaC);
}

/** The inverse of frontierLoss: Cmin in PF-days = Cc / L^(1/αC). */
export function frontierCompute(L: number, frontier: Frontier = KAPLAN_FRONTIER): number {
  checkPositive('loss', L);
  return frontier.Cc / Math.pow(L, 1 / frontier.alphaC);
}

/**
 * How compute is counted along one model's from-scratch curve when taking slopes σ = d log L / d log C:
 * - 'critical': C(N, L) = 6·N·Bcrit(L)·S(N, L), the batch following the critical batch of the current
 *   loss (the spec's C(N, L); this is the definition that gives its growth-point numbers and the
 *   optimality slope −0.052);
 * - 'fixed': C = 6·N·B·S with one batch B for the whole curve.
 */
export type BatchAccounting = 'critical' | 'fixed';

/** d log C / d log L along the from-scratch curve of size N at loss L (negative). */
export function logComputePerLogLoss(N: number, L: number, law: ScalingLaw = KAPLAN, batch: BatchAccounting = 'critical'): number {
  const gap = L - lossFloor(N, law);
  if (!(gap > 0)) return -Infinity;
  const steps = -L / (law.alphaS * gap);
  return batch === 'critical' ? steps - 1 / law.alphaB : steps;
}

/** The slope σ = d log L / d log C of size N's from-scratch curve at loss L (0 at the floor). */
export function curveSlope(N: number, L: number, law: ScalingLaw = KAPLAN, batch: BatchAccounting = 'critical'): number {
  return 1 / logComputePerLogLoss(N, L, law, batch);
}

/** A compute-optimal single run. */
export interface SingleStageOptimum {
  targetLoss: number;
  params: number;
  /** Steps at the critical batch of the target loss. */
  steps: number;
  batchTokens: number;
  tokens: number;
  flops: number;
  pfDays: number;
  /** Kaplan's Cmin (the spec's C(N, L)), half of `flops`. */
  minimalFlops: number;
}

/** The size minimising C(N, L) in closed form: (Nc/N)^αN = L/(1 + αN/αS). Used to check the search. */
export function optimalSizeClosedForm(L: number, law: ScalingLaw = KAPLAN): number {
  checkPositive('loss', L);
  return law.Nc / Math.pow(L / (1 + law.alphaN / law.alphaS), 1 / law.alphaN);
}

/** The smallest size that can reach loss L at all ((Nc/N)^αN = L). */
export function smallestSizeFor(L: number, law: ScalingLaw = KAPLAN): number {
  checkPositive('loss', L);
  return law.Nc / Math.pow(L, 1 / law.alphaN);
}

/** log C(N, L) as a function of log N (for the searches over sizes). */
function logComputeOfLogSize(L: number, law: ScalingLaw): (logN: number) => number {
  return (logN) => Math.log(computeToLoss(Math.exp(logN), L, law));
}

/**
 * The single-stage optimum for a target loss: minimises C(N, L) over N by a grid scan and golden-section
 * search on log N (C is unimodal in log N: infinite at the smallest size that can reach L, linear in N for
 * large N). At the optimum the run trains at B = Bcrit(L) for S(N, L) steps.
 */
export function singleStageOptimum(targetLoss: number, law: ScalingLaw = KAPLAN): SingleStageOptimum {
  const lo = Math.log(smallestSizeFor(targetLoss, law));
  const m = minimize1d(logComputeOfLogSize(targetLoss, law), lo, lo + 40, { grid: 80, tol: 1e-13 });
  return singleStageAt(Math.exp(m.x), targetLoss, law);
}

/** One run of size N to the target loss at B = Bcrit(target). */
export function singleStageAt(N: number, targetLoss: number, law: ScalingLaw = KAPLAN): SingleStageOptimum {
  const steps = stepsToLoss(N, targetLoss, law);
  if (!Number.isFinite(steps))
    throw new Error(`size ${N.toExponential(3)} cannot reach loss ${targetLoss} (its floor is ${lossFloor(N, law).toFixed(4)})`);
  const batchTokens = criticalBatch(targetLoss, law);
  const flops = trainingFlops(N, batchTokens, steps);
  return {
    targetLoss,
    params: N,
    steps,
    batchTokens,
    tokens: batchTokens * steps,
    flops,
    pfDays: toPfDays(flops),
    minimalFlops: flops / 2,
  };
}

/**
 * Law constants from a JSON value: the constants themselves ({Nc, alphaN, Sc, alphaS[, Bstar, alphaB]}) or
 * an object with them under `law` (as a fit result is written).
 */
export function lawFromJson(value: unknown): ScalingLaw {
  const inner = typeof value === 'object' && value !== null && 'law' in value ? (value as { law: unknown }).law : value;
  return parseScalingLaw(inner);
}
