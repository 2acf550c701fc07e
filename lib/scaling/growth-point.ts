// The optimal growth point between a small model of size N and a large one of size r·N
// (../shared/spec/schedule.md, "The three points of a growth"): the loss at which the small model's
// dL/dC equals the large model's dL/dC at the same loss, each on its own from-scratch curve.
//
// Which compute? With C(N, L) = 6·N·Bcrit(L)·S(N, L) — the batch following the critical batch of the
// current loss, i.e. the spec's C(N, L) (up to its constant factor 2, which cancels) — the condition gives
// exactly the spec's numbers: ×2 σ_pre = −0.0598, S_pre/S_target = 1.580; ×4 σ_pre = −0.0519, 2.493
// (and ×8: −0.0444, 3.924). With one fixed batch for the whole curve (C = 6·N·B·S) the same condition
// gives ×2 σ_pre = −0.0974, ratio 1.483 — the growth points of the planner, which charges every stage at
// B = Bcrit(L_target). So 'critical' is the default here and 'fixed' the option.
//
// Scale-free: with x = L/(Nc/N)^αN the condition only involves x, r, αN, αS, αB, so σ_pre and the step
// ratio do not depend on N (nor on Nc, Sc, B*).
import {
  type BatchAccounting,
  KAPLAN,
  computeToLoss,
  curveSlope,
  logComputePerLogLoss,
  lossFloor,
  stepsToLoss,
  type ScalingLaw,
} from './kaplan';
import { bisectRoot } from './optimize';

/** Parameter-count factor of each growth operator: depth ×2 layers, width ×2 (×4 params), both (×8). */
export const OP_PARAM_FACTOR = Object.freeze({ depth: 2, width: 4, both: 8 } as const);

export interface GrowthPointOptions {
  law?: ScalingLaw;
  /** How compute is counted along each curve (default 'critical': see the file comment). */
  batch?: BatchAccounting;
}

export interface GrowthPoint {
  nSmall: number;
  nLarge: number;
  /** nLarge / nSmall. */
  factor: number;
  batch: BatchAccounting;
  /** The loss at the optimal growth point. */
  loss: number;
  /** loss / (Nc/nSmall)^αN: where on the small curve the point lies, independent of N. */
  lossOverFloor: number;
  /** d log L / d log C on the small model's curve at the point. */
  sigmaPre: number;
  /** The same slope on the large model's from-scratch curve at the same loss. */
  sigmaTarget: number;
  /** Steps (critical batch) of the small model to the point, and of the large model to the same loss. */
  sPre: number;
  sTarget: number;
  /** S_pre / S_target (the continuous counterpart of c_op). */
  stepRatio: number;
  /** Compute of each model to the point at B = Bcrit(loss): 6·N·Bcrit(loss)·S. */
  flopsPre: number;
  flopsTarget: number;
}

/** log(−dC/dL) of size N at loss L up to a constant common to all sizes (the constant cancels in the condition). */
function logSlopeMagnitude(N: number, L: number, law: ScalingLaw, batch: BatchAccounting): number {
  const dlogC = logComputePerLogLoss(N, L, law, batch); // d log C / d log L < 0
  const gap = L - lossFloor(N, law);
  // log C up to constants: log N − (1/αS) log(L − u) [− (1/αB) log L with the critical batch]
  const logC = Math.log(N) - Math.log(gap) / law.alphaS - (batch === 'critical' ? Math.log(L) / law.alphaB : 0);
  return logC + Math.log(-dlogC) - Math.log(L);
}

/**
 * The optimal growth point from size nSmall to factor·nSmall. The condition
 * h(L) = log|dC/dL|_small − log|dC/dL|_large = 0 has h → +∞ at the small model's floor and h → −log r as
 * L → ∞; it is solved by bisection on log(L/u_small − 1).
 */
export function optimalGrowthPoint(nSmall: number, factor: number, opts: GrowthPointOptions = {}): GrowthPoint {
  const law = opts.law ?? KAPLAN;
  const batch = opts.batch ?? 'critical';
  if (!(factor > 1) || !Number.isFinite(factor)) throw new Error(`growth factor must be > 1 (got ${factor})`);
  const nLarge = factor * nSmall;
  const u = lossFloor(nSmall, law);
  const h = (t: number) => {
    const L = u * (1 + Math.exp(t));
    return logSlopeMagnitude(nSmall, L, law, batch) - logSlopeMagnitude(nLarge, L, law, batch);
  };
  let lo = -40;
  let hi = 10;
  while (h(hi) > 0 && hi < 200) hi += 10;
  while (h(lo) < 0 && lo > -700) lo -= 10;
  const t = bisectRoot(h, lo, hi);
  const loss = u * (1 + Math.exp(t));
  const sPre = stepsToLoss(nSmall, loss, law);
  const sTarget = stepsToLoss(nLarge, loss, law);
  return {
    nSmall,
    nLarge,
    factor,
    batch,
    loss,
    lossOverFloor: loss / u,
    sigmaPre: curveSlope(nSmall, loss, law, batch),
    sigmaTarget: curveSlope(nLarge, loss, law, batch),
    sPre,
    sTarget,
    stepRatio: sPre / sTarget,
    flopsPre: computeToLoss(nSmall, loss, law),
    flopsTarget: computeToLoss(nLarge, loss, law),
  };
}
