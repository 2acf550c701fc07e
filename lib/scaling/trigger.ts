// The online growth trigger of ../shared/spec/schedule.md ("Measuring σ online"): from a validation-loss
// log, drop spikes (a point more than 1% above the last kept point); x = log10 of cumulative compute,
// y = running mean (trailing window of 5 kept points) of log10(val loss); σ_i = Δy/Δx between consecutive
// smoothed points. Find the most negative σ, then the first later point whose σ reaches the operator's
// threshold (σ ≥ threshold): grow there. The grown model resumes the target schedule at
// S_target = S_pre / c_op.
// findGrowthPoint analyses one curve as a whole; the trainer runs it after every evaluation on its curve so
// far and grows at the first firing — replayTrigger does the same on a whole log (`staged-lm slope`).
//
// Δx: by default x is averaged over the same window as y, so σ_i = Δȳ/Δx̄ = (y_i − y_{i−w})/(x_i − x_{i−w}),
// the secant slope over the window. Taken literally (Δȳ over the raw Δx = x_i − x_{i−1}, option
// `xSmoothing: 'none'`) the slope is biased whenever points are unevenly spaced in log compute: by about
// 1% for evaluations at equal step intervals, and by a factor of about 2 right after a dropped spike
// (Δȳ then spans w + gap intervals, Δx only the gap), which makes the trigger fire at the first dropped
// spike of a steep curve. The two agree on evenly spaced points.
//
// Implied saving ("Savings accounting"): saving = (S_target − r·S_pre)/S_opt, r = N_small/N_large, S_opt =
// the large model's from-scratch steps to the final loss of the run (the staged run ends at the same
// step of the target schedule, hence at the same loss). S_opt is either given (`finalSteps`: the length of
// the target model's schedule) or derived from the law's exponents, assuming:
//  - the large model is trained to its compute-optimal point — the loss for which N_large is the
//    single-stage optimum, where its σ is the optimality slope (−0.052 for Kaplan's exponents);
//  - the trigger point lies on the small model's law curve where the law's σ (compute counted at the
//    critical batch of the current loss, the definition behind the spec's thresholds and its −0.052)
//    equals the σ measured there (or the threshold when the measured value is outside the law's range).
// Then S_opt/S_pre = ((L_pre − u_small)/(L_opt − u_large))^(1/αS) = ((x − 1)·R^αN/(αN/αS))^(1/αS) with
// x = L_pre/u_small, u = (Nc/N)^αN the floors, R = N_large/N_small: independent of N, Nc, Sc and of the
// step units, so it needs no model size.
import { z } from 'zod';
import { OP_PARAM_FACTOR } from './growth-point';
import { KAPLAN, ScalingLawSchema, type ScalingLaw } from './kaplan';

export type TriggerOp = 'depth' | 'width' | 'both';

/** Default σ thresholds of the pre-growth point (the reference's; 'both' hand-tuned there). */
export const TRIGGER_THRESHOLDS: Readonly<Record<TriggerOp, number>> = Object.freeze({ depth: -0.0575, width: -0.0475, both: -0.03 });
/** Reference step-ratio constants c_op (equal to lib/growth's REFERENCE_C_OP). */
export const STEP_RATIO_C_OP: Readonly<Record<TriggerOp, number>> = Object.freeze({ depth: 1.412, width: 1.776, both: 2.455 });

/** One validation measurement: cumulative compute (FLOPs, all stages), val loss, and the step if known. */
export interface ValPoint {
  compute: number;
  loss: number;
  step?: number;
  /**
   * For replayTrigger: true for an evaluation off the eval interval (a session's last one, logged with
   * `valOffInterval`), which the trainer keeps out of its trigger's curve.
   */
  offInterval?: boolean;
  /** For replayTrigger: the number of growths before the point (the trainer's curve restarts at each). */
  segment?: number;
  /**
   * The position on the current model's schedule (where a growth placed it, R = S_pre / c_op, plus
   * the steps since) when it differs from `step`: S_pre of a growth from a grown model. Default: step.
   */
  schedulePos?: number;
}

export const TriggerOptionsSchema = z
  .object({
    op: z.enum(['depth', 'width', 'both']).default('depth'),
    /** σ threshold (default: the op's reference value). */
    threshold: z.number().negative().optional(),
    /** Running-mean window of log10(loss), in kept points. */
    window: z.number().int().min(1).default(5),
    /** 'mean': x averaged over the window like y (default); 'none': raw x (see the file comment). */
    xSmoothing: z.enum(['mean', 'none']).default('mean'),
    /** A point more than this fraction above the last kept point is a spike and dropped. */
    spikeTolerance: z.number().nonnegative().default(0.01),
    /** Step-ratio constant (default: the op's reference value). */
    cOp: z.number().positive().optional(),
    /** N_large/N_small (default: 2 depth, 4 width, 8 both). */
    growthFactor: z.number().gt(1).optional(),
    /** S_opt: the large model's from-scratch steps to the final loss (e.g. its schedule's length). */
    finalSteps: z.number().positive().optional(),
    /** Exponents for the law-derived S_opt (only αN, αS, αB matter). */
    law: ScalingLawSchema.default({ ...KAPLAN }),
  })
  .strict();
export type TriggerOptionsInput = z.input<typeof TriggerOptionsSchema>;

/** A kept point with its smoothed value and slope (σ is null for the first `window` kept points). */
export interface SlopePoint {
  /** Index into the input array. */
  index: number;
  step: number | null;
  /** The schedule position (ValPoint.schedulePos, else step). */
  schedulePos: number | null;
  compute: number;
  loss: number;
  x: number;
  y: number | null;
  sigma: number | null;
}

interface TriggerCommon {
  op: TriggerOp;
  threshold: number;
  /** Input indices of dropped points, with the reason. */
  dropped: { index: number; reason: 'spike' | 'not-increasing-compute' | 'non-positive' }[];
  slopes: SlopePoint[];
  minSigma: number | null;
  /** Input index of the most negative σ. */
  minSigmaIndex: number | null;
}

export interface TriggerReached extends TriggerCommon {
  reached: true;
  /** Input index, step (null when the log has none), compute and loss of the point where to grow. */
  index: number;
  step: number | null;
  compute: number;
  loss: number;
  sigma: number;
  cOp: number;
  growthFactor: number;
  /** The small model's step count at the point: its schedule position (step, before any growth). */
  sPre: number | null;
  /** S_pre / c_op. */
  sTarget: number | null;
  /**
   * (S_target − r·S_pre)/S_opt, and where S_opt came from ('final-steps' when given and the log has steps;
   * else 'law'); null when neither the measured σ nor the threshold lies in the law's σ range.
   */
  saving: number | null;
  savingBasis: 'final-steps' | 'law' | null;
  /**
   * With savingBasis 'law': the σ the law placed the point by — the measured one, or the threshold
   * where the measured σ lies outside the law's range (noise can make it positive). Else null.
   */
  lawSigma: 'measured' | 'threshold' | null;
  /**
   * Why `saving` is null: 'sigma-outside-law' (no S_opt: neither σ nor the threshold lies in the law's
   * σ range, and no finalSteps), or 'target-past-schedule' (S_target > S_opt: the grown model would
   * resume past the end of its own schedule, where the formula does not apply).
   */
  noSaving: 'sigma-outside-law' | 'target-past-schedule' | null;
  sOpt: number | null;
  /** S_opt / S_pre. */
  sOptOverSPre: number | null;
}

export interface TriggerNotReached extends TriggerCommon {
  reached: false;
  reason: string;
  lastSigma: number | null;
}

export type TriggerResult = TriggerReached | TriggerNotReached;

/** The law's σ range: σ = −1/(1/αB + x/(αS(x − 1))) for x = L/floor ∈ (1, ∞) covers (−1/(1/αB + 1/αS), 0). */
function lawPositionFromSigma(sigma: number, law: ScalingLaw): number | null {
  const q = (-1 / sigma - 1 / law.alphaB) * law.alphaS; // = x/(x − 1)
  return sigma < 0 && q > 1 ? q / (q - 1) : null;
}

/** S_opt / S_pre under the law (see the file comment); null when σ cannot be placed on the law's curve. */
export function lawFinalStepRatio(sigmaPre: number, growthFactor: number, law: ScalingLaw = KAPLAN): number | null {
  const x = lawPositionFromSigma(sigmaPre, law);
  if (x === null) return null;
  const yMinus1 = law.alphaN / law.alphaS;
  return Math.pow(((x - 1) * Math.pow(growthFactor, law.alphaN)) / yMinus1, 1 / law.alphaS);
}

/** Drops spikes and non-increasing compute, smooths log10(loss) (and log10 compute) and takes slopes. */
export function measureSlopes(
  points: readonly ValPoint[],
  window = 5,
  spikeTolerance = 0.01,
  xSmoothing: 'mean' | 'none' = 'mean',
): { slopes: SlopePoint[]; dropped: TriggerCommon['dropped'] } {
  const dropped: TriggerCommon['dropped'] = [];
  const kept: SlopePoint[] = [];
  points.forEach((p, index) => {
    if (!(p.compute > 0) || !(p.loss > 0) || !Number.isFinite(p.compute) || !Number.isFinite(p.loss)) {
      dropped.push({ index, reason: 'non-positive' });
      return;
    }
    const last = kept[kept.length - 1];
    if (last && p.compute <= last.compute) {
      dropped.push({ index, reason: 'not-increasing-compute' });
      return;
    }
    if (last && p.loss > last.loss * (1 + spikeTolerance)) {
      dropped.push({ index, reason: 'spike' });
      return;
    }
    const step = p.step ?? null;
    kept.push({
      index,
      step,
      schedulePos: p.schedulePos ?? step,
      compute: p.compute,
      loss: p.loss,
      x: Math.log10(p.compute),
      y: null,
      sigma: null,
    });
  });
  let sumY = 0;
  let sumX = 0;
  let prevX = 0;
  for (let j = 0; j < kept.length; j++) {
    sumY += Math.log10(kept[j].loss);
    sumX += kept[j].x;
    if (j >= window) {
      sumY -= Math.log10(kept[j - window].loss);
      sumX -= kept[j - window].x;
    }
    const xj = xSmoothing === 'mean' ? sumX / window : kept[j].x;
    if (j >= window - 1) kept[j].y = sumY / window;
    if (j >= window) kept[j].sigma = ((kept[j].y as number) - (kept[j - 1].y as number)) / (xj - prevX);
    prevX = xj;
  }
  return { slopes: kept, dropped };
}

function parseTriggerOptions(input: TriggerOptionsInput): z.infer<typeof TriggerOptionsSchema> {
  const r = TriggerOptionsSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ');
    throw new Error(`invalid trigger options: ${issues}`);
  }
  return r.data;
}

/** Where to grow, from a validation log (see the file comment). */
export function findGrowthPoint(points: readonly ValPoint[], input: TriggerOptionsInput = {}): TriggerResult {
  const o = parseTriggerOptions(input);
  const threshold = o.threshold ?? TRIGGER_THRESHOLDS[o.op];
  const { slopes, dropped } = measureSlopes(points, o.window, o.spikeTolerance, o.xSmoothing);
  let m = -1;
  slopes.forEach((s, j) => {
    if (s.sigma !== null && (m < 0 || s.sigma < (slopes[m].sigma as number))) m = j;
  });
  const common: TriggerCommon = {
    op: o.op,
    threshold,
    dropped,
    slopes,
    minSigma: m < 0 ? null : slopes[m].sigma,
    minSigmaIndex: m < 0 ? null : slopes[m].index,
  };
  const lastSigma = slopes.length > 0 ? slopes[slopes.length - 1].sigma : null;
  if (m < 0)
    return {
      ...common,
      reached: false,
      lastSigma,
      reason: `too few points for a slope: ${slopes.length} kept, need at least ${o.window + 1}`,
    };
  if ((slopes[m].sigma as number) >= threshold)
    return {
      ...common,
      reached: false,
      lastSigma,
      reason: `σ never fell below the threshold ${threshold} (steepest ${(slopes[m].sigma as number).toFixed(4)})`,
    };
  const j = slopes.findIndex((s, i) => i > m && s.sigma !== null && s.sigma >= threshold);
  if (j < 0)
    return {
      ...common,
      reached: false,
      lastSigma,
      reason: `σ = ${(lastSigma as number).toFixed(4)} at the last point, still below the threshold ${threshold}`,
    };
  const p = slopes[j];
  const sigma = p.sigma as number;
  const cOp = o.cOp ?? STEP_RATIO_C_OP[o.op];
  const growthFactor = o.growthFactor ?? OP_PARAM_FACTOR[o.op];
  // the small model's own step count: its schedule position (a model grown before resumed its
  // schedule at R), as the trainer's R = schedulePos / c_op
  const sPre = p.schedulePos;
  const sTarget = sPre === null ? null : sPre / cOp;
  const measuredRatio = lawFinalStepRatio(sigma, growthFactor, o.law);
  const lawRatio = measuredRatio ?? lawFinalStepRatio(threshold, growthFactor, o.law);
  const explicit = o.finalSteps !== undefined && sPre !== null && sPre > 0;
  const sOptOverSPre = explicit ? (o.finalSteps as number) / (sPre as number) : lawRatio;
  // S_target > S_opt: the grown model would start past the end of the target schedule (it would not
  // train at all), so (S_target − r·S_pre)/S_opt measures nothing
  const pastSchedule = sOptOverSPre !== null && 1 / cOp > sOptOverSPre;
  return {
    ...common,
    reached: true,
    index: p.index,
    step: p.step,
    compute: p.compute,
    loss: p.loss,
    sigma,
    cOp,
    growthFactor,
    sPre,
    sTarget,
    saving: sOptOverSPre === null || pastSchedule ? null : (1 / cOp - 1 / growthFactor) / sOptOverSPre,
    noSaving: sOptOverSPre === null ? 'sigma-outside-law' : pastSchedule ? 'target-past-schedule' : null,
    savingBasis: explicit ? 'final-steps' : sOptOverSPre === null ? null : 'law',
    lawSigma: explicit || sOptOverSPre === null ? null : measuredRatio !== null ? 'measured' : 'threshold',
    sOpt: explicit ? (o.finalSteps as number) : sPre === null || sOptOverSPre === null ? null : sPre * sOptOverSPre,
    sOptOverSPre,
  };
}

/** Counts of dropped points per reason. */
export type DropCounts = Record<TriggerCommon['dropped'][number]['reason'], number>;

/** What the trainer's online trigger does on a log (see replayTrigger). */
export interface TriggerReplay {
  /**
   * findGrowthPoint on the curve the trainer held when the trigger first fired (its indices are input
   * indices); when it never fired, on the whole curve of the last stage (the curve since the last growth).
   */
  result: TriggerResult;
  /** Whether the trigger fired after some evaluation (then result.reached). */
  fired: boolean;
  /** The stage (number of growths before it) of the curve `result` comes from, and how many the log has. */
  segment: number;
  segments: number;
  /** Points in that curve up to where it fired (or in all of it), off-interval ones left out. */
  curvePoints: number;
  /** Input indices of the off-interval evaluations left out of every curve. */
  offInterval: number[];
  /** Dropped points of the whole log (every stage's whole curve), per reason. */
  dropCounts: DropCounts;
}

function remap(r: TriggerResult, map: readonly number[]): TriggerResult {
  const slopes = r.slopes.map((s) => ({ ...s, index: map[s.index] }));
  const dropped = r.dropped.map((d) => ({ ...d, index: map[d.index] }));
  const minSigmaIndex = r.minSigmaIndex === null ? null : map[r.minSigmaIndex];
  return r.reached ? { ...r, slopes, dropped, minSigmaIndex, index: map[r.index] } : { ...r, slopes, dropped, minSigmaIndex };
}

/**
 * The online trigger replayed on a log: the trainer runs findGrowthPoint on its curve so far after every
 * evaluation on the interval and grows at the first one where it fires; its curve restarts at each
 * growth and leaves out off-interval evaluations (`offInterval`). So: the same, point by point, stage by
 * stage (`segment`), up to the first firing. (measureSlopes is causal — a point's σ depends on earlier
 * points only — so a new firing can only happen at a kept point whose own σ reaches the threshold: only
 * those prefixes are tried.)
 */
export function replayTrigger(points: readonly ValPoint[], input: TriggerOptionsInput = {}): TriggerReplay {
  const o = parseTriggerOptions(input);
  const threshold = o.threshold ?? TRIGGER_THRESHOLDS[o.op];
  const offInterval: number[] = [];
  const segments: { segment: number; map: number[] }[] = [];
  points.forEach((p, i) => {
    if (p.offInterval === true) {
      offInterval.push(i);
      return;
    }
    const seg = p.segment ?? 0;
    if (segments.length === 0 || segments[segments.length - 1].segment !== seg) segments.push({ segment: seg, map: [] });
    segments[segments.length - 1].map.push(i);
  });
  const dropCounts: DropCounts = { spike: 0, 'not-increasing-compute': 0, 'non-positive': 0 };
  let fired: { result: TriggerResult; segment: number; curvePoints: number } | null = null;
  for (const { segment, map } of segments) {
    const curve = map.map((i) => points[i]);
    const whole = measureSlopes(curve, o.window, o.spikeTolerance, o.xSmoothing);
    for (const d of whole.dropped) dropCounts[d.reason]++;
    if (fired !== null) continue;
    for (const s of whole.slopes) {
      if (s.sigma === null || s.sigma < threshold) continue;
      const at = findGrowthPoint(curve.slice(0, s.index + 1), input);
      if (at.reached) {
        fired = { result: remap(at, map), segment, curvePoints: s.index + 1 };
        break;
      }
    }
  }
  const segmentCount = segments.length === 0 ? 0 : segments[segments.length - 1].segment + 1;
  if (fired !== null) return { ...fired, fired: true, segments: segmentCount, offInterval, dropCounts };
  const last = segments[segments.length - 1] ?? { segment: 0, map: [] };
  return {
    result: remap(
      findGrowthPoint(
        last.map.map((i) => points[i]),
        input,
      ),
      last.map,
    ),
    fired: false,
    segment: last.segment,
    segments: segmentCount,
    curvePoints: last.map.length,
    offInterval,
    dropCounts,
  };
}
