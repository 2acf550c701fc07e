// The multi-stage planner of ../shared/spec/schedule.md ("The planner"): given a target loss, choose the
// sizes N_1 ≤ … ≤ N_K and the steps ΔS_k of each stage that minimise Σ 6·N_k·B·ΔS_k, the final loss
// being the target. Perfect dynamics preservation is assumed: a stage of size N_k that starts at loss ℓ
// starts at the step where size N_k would reach ℓ from scratch, S_eff = 2·Sc/(ℓ − (Nc/N_k)^αN)^(1/αS),
// and ends at L(N_k, S_eff + ΔS_k).
//
// Decision variables: given the sizes, the plan is fixed by the losses ℓ_1 ≥ … ≥ ℓ_{K−1} at which the
// model grows (ℓ_K = L_target), since ΔS_k = S(N_k, ℓ_k) − S(N_k, ℓ_{k−1}). With B = Bcrit(L_target)
// the objective is separable in the ℓ_k, each term unimodal with a closed-form minimiser, and the ordering
// is enforced by pooling adjacent violators (see separableOptimum): exact, no search. With per-stage
// batches the growth losses are optimised by coordinate descent started from that solution — each
// coordinate by a grid scan plus golden-section search on log(ℓ_k − floor_k) inside its feasible interval
// [ℓ_{k+1}, ℓ_{k−1}] (tolerance 1e-12), then block moves of ℓ_1..ℓ_k together (ties), and a pattern
// move after each sweep. Sizes come from enumerating
// every sequence of the operators' growth factors ({2, 4, 8} by default), or, for factor ranges, from an
// outer coordinate descent over the log factors (the same 1-D search). The final size is the single-stage
// optimum by default, a given size, or free (one more outer variable, searched the same way).
import { z } from 'zod';
import {
  KAPLAN,
  ScalingLawSchema,
  criticalBatch,
  lossFloor,
  singleStageAt,
  singleStageOptimum,
  smallestSizeFor,
  stepsToLoss,
  toPfDays,
  type ScalingLaw,
  type SingleStageOptimum,
} from './kaplan';
import { minimize1d } from './optimize';
import { formatIssues } from '../validate';

const FactorsSchema = z.discriminatedUnion('kind', [
  /** Growth factors (in parameters) that the operators provide: depth 2, width 4, both 8. */
  z.object({ kind: z.literal('set'), values: z.array(z.number().gt(1).finite()).min(1) }).strict(),
  /** Any factor in [min, max] (min = 1 allows a stage to be skipped). */
  z
    .object({ kind: z.literal('range'), min: z.number().min(1).finite().default(1), max: z.number().gt(1).finite().default(1000) })
    .strict()
    .refine((r) => r.max > r.min, { message: 'max must exceed min', path: ['max'] }),
]);

export const PlanOptionsSchema = z
  .object({
    targetLoss: z.number().positive().finite(),
    /** Number of stages K (K − 1 growths). */
    stages: z.number().int().min(1).max(8).default(2),
    factors: FactorsSchema.default({ kind: 'set', values: [2, 4, 8] }),
    /** Size of the last stage: the single-stage optimum for the target loss, a given size, or optimised. */
    finalSize: z.union([z.literal('optimal'), z.literal('free'), z.number().positive().finite()]).default('optimal'),
    /**
     * Batch of each stage: 'target' charges every stage at B = Bcrit(L_target) (the spec's reference
     * accounting); 'per-stage' at B_k = Bcrit(end loss of stage k) (the largest critical batch the stage
     * sees). Per-stage batches reward raising the batch as the loss falls, so with a factor range that
     * includes 1 a plan may hold two consecutive stages of one size (a batch increase without growth).
     */
    batch: z.enum(['target', 'per-stage', 'fixed']).default('target'),
    /**
     * With batch 'fixed': the tokens per step of every stage, for a law whose S counts steps at that fixed
     * batch (fitted on one's own runs): tokens = S·batchTokens. The plan is the 'target' plan (one batch
     * for all stages: the same sizes, losses and steps), counted in those tokens.
     */
    batchTokens: z.number().positive().finite().optional(),
    law: ScalingLawSchema.default({ ...KAPLAN }),
  })
  .strict()
  .refine((o) => (o.batch === 'fixed') === (o.batchTokens !== undefined), {
    message: "batchTokens goes with batch 'fixed', and batch 'fixed' needs batchTokens",
    path: ['batchTokens'],
  });
export type PlanOptionsInput = z.input<typeof PlanOptionsSchema>;
export type PlanOptions = z.infer<typeof PlanOptionsSchema>;

export interface PlanStage {
  /** 1-based. */
  index: number;
  /** Non-embedding parameters. */
  params: number;
  /** params / previous stage's params; null for the first stage. */
  factor: number | null;
  /** Loss at the start of the stage; null for the first (from scratch). */
  startLoss: number | null;
  endLoss: number;
  /** The stage's position on its own from-scratch curve (critical-batch steps): S_eff and S_eff + ΔS. */
  startStep: number;
  endStep: number;
  /** ΔS_k (0 for an empty stage: see `empty`). */
  steps: number;
  /** True for a stage that trains no step: the growths into and out of it are applied back to back. */
  empty: boolean;
  batchTokens: number;
  tokens: number;
  flops: number;
  pfDays: number;
}

export interface Plan {
  targetLoss: number;
  law: ScalingLaw;
  batch: PlanOptions['batch'];
  /** Tokens per step of every stage with batch 'fixed', else null. */
  batchTokens: number | null;
  /**
   * The stages: none folded away (an empty one stays, with `empty`), except that consecutive stages of one
   * size under one batch (×1, which a factor range from 1 allows) are merged into one stage.
   */
  stages: PlanStage[];
  /** What the plan's reader must know: empty stages, merged stages, a final size above the optimum. */
  notes: string[];
  totalSteps: number;
  totalTokens: number;
  totalFlops: number;
  totalPfDays: number;
  /** The compute-optimal single run for the target loss. */
  singleStage: SingleStageOptimum;
  /** totalFlops / singleStage.flops, and 1 minus it. */
  computeRatio: number;
  saving: number;
  /** One stage of the final size (equals singleStage when the final size is the optimum). */
  sameSizeSingleStage: SingleStageOptimum;
  /**
   * batch 'per-stage' with several stages: the saving of as many stages all of the final size (the
   * batch raised per stage, no growth), to set `saving` against: what growth adds beyond raising
   * the batch (it can be less, with factors that fit the target badly). Else null.
   */
  batchOnlySaving: number | null;
}

/**
 * The batch accounting of the searches: 'fixed' searches as 'target' (one batch for every stage: the
 * objective differs by a constant factor, so the optimum is the same).
 */
export type SearchBatch = 'target' | 'per-stage';

/** The compute of a plan (sizes, growth losses): ∞ when infeasible (a stage ending at or below its floor, losses out of order). */
export function planFlops(
  sizes: readonly number[],
  growthLosses: readonly number[],
  targetLoss: number,
  law: ScalingLaw,
  batch: SearchBatch,
): number {
  const K = sizes.length;
  const bTarget = criticalBatch(targetLoss, law);
  let prev = Infinity;
  let total = 0;
  for (let k = 0; k < K; k++) {
    const end = k < K - 1 ? growthLosses[k] : targetLoss;
    if (!(end <= prev) || (k > 0 && sizes[k] < sizes[k - 1])) return Infinity;
    const sEnd = stepsToLoss(sizes[k], end, law);
    if (!Number.isFinite(sEnd)) return Infinity;
    const sStart = prev === Infinity ? 0 : stepsToLoss(sizes[k], prev, law);
    const B = batch === 'target' ? bTarget : criticalBatch(end, law);
    total += 6 * sizes[k] * B * (sEnd - sStart);
    prev = end;
  }
  return total;
}

interface Inner {
  flops: number;
  losses: number[];
}

/**
 * With one batch for every stage the objective is Σ_k g_k(ℓ_k) + const with
 * g_k(ℓ) = N_k·S(N_k, ℓ) − N_{k+1}·S(N_{k+1}, ℓ), and g_k' = 0 where
 * (ℓ − u_k)/(ℓ − u_{k+1}) = ρ_k = (N_k/N_{k+1})^(αS/(1+αS)), i.e. ℓ_k = (u_k − ρ_k·u_{k+1})/(1 − ρ_k)
 * (u = the size's floor); g_k decreases before that point and increases after it. The losses must not
 * increase with k and the last is at least L_target; where two neighbouring minimisers are out of order the
 * optimum gives them one common loss (the stage between them has zero length), and the pooled term
 * telescopes to N_a·S(N_a, ℓ) − N_{b+1}·S(N_{b+1}, ℓ), of the same form: so pool-adjacent-violators with
 * this closed form solves the problem exactly (checked against the search in the tests).
 */
function separableOptimum(sizes: readonly number[], targetLoss: number, law: ScalingLaw): number[] {
  const K = sizes.length;
  const e = law.alphaS / (1 + law.alphaS);
  /** The minimiser for growths a..b sharing one loss; `right` is the loss of the block after them. */
  const value = (a: number, b: number, right: number): number => {
    const rho = Math.pow(sizes[a] / sizes[b + 1], e);
    if (rho >= 1 - 1e-14) return right; // no growth across the block: any loss does, keep the order
    const l = (lossFloor(sizes[a], law) - rho * lossFloor(sizes[b + 1], law)) / (1 - rho);
    return b === K - 2 ? Math.max(targetLoss, l) : l;
  };
  const blocks: { a: number; b: number; v: number }[] = []; // the last element is the leftmost block
  for (let k = K - 2; k >= 0; k--) {
    let block = { a: k, b: k, v: value(k, k, blocks.length > 0 ? blocks[blocks.length - 1].v : targetLoss) };
    while (blocks.length > 0 && block.v < blocks[blocks.length - 1].v) {
      const right = blocks.pop() as { a: number; b: number; v: number };
      const b = right.b;
      block = { a: k, b, v: value(k, b, blocks.length > 0 ? blocks[blocks.length - 1].v : targetLoss) };
    }
    blocks.push(block);
  }
  const losses = new Array<number>(K - 1);
  for (const blk of blocks) for (let k = blk.a; k <= blk.b; k++) losses[k] = blk.v;
  return losses;
}

export interface GrowthLossOptions {
  /**
   * Use the closed form: as the answer for B = Bcrit(L_target), as the start of the search for per-stage
   * batches (default true; false searches from just above the floors, to check the closed form).
   */
  closedForm?: boolean;
}

/** The best growth losses for given sizes (closed form or coordinate descent; see the file comment). */
export function optimiseGrowthLosses(
  sizes: readonly number[],
  targetLoss: number,
  law: ScalingLaw,
  batch: SearchBatch,
  opts: GrowthLossOptions = {},
): Inner {
  const K = sizes.length;
  if (lossFloor(sizes[K - 1], law) >= targetLoss) return { flops: Infinity, losses: [] };
  if (K === 1) return { flops: planFlops(sizes, [], targetLoss, law, batch), losses: [] };
  if (batch === 'target' && (opts.closedForm ?? true)) {
    const closed = separableOptimum(sizes, targetLoss, law);
    return { flops: planFlops(sizes, closed, targetLoss, law, batch), losses: closed };
  }
  const floors = sizes.map((N) => lossFloor(N, law));
  const lMax = 100 * Math.max(targetLoss, floors[0]);
  // start from the fixed-batch optimum (a good start for per-stage batches), or, without the closed
  // form, just above each floor
  let losses =
    (opts.closedForm ?? true)
      ? separableOptimum(sizes, targetLoss, law)
      : floors.slice(0, K - 1).map((u) => Math.max(targetLoss, 1.05 * u));
  for (let k = K - 3; k >= 0; k--) losses[k] = Math.max(losses[k], losses[k + 1]);
  let flops = planFlops(sizes, losses, targetLoss, law, batch);
  // first sweep: a grid scan of each coordinate's whole feasible interval; later sweeps: golden section in
  // a bracket of ±0.5 in log(ℓ − floor) around the current value, then a line search along the sweep's
  // total move (a pattern move, against the zig-zag of coordinate descent along a valley)
  for (let sweep = 0; sweep < 500; sweep++) {
    const before = losses.slice();
    const flopsBefore = flops;
    for (let k = 0; k < K - 1; k++) {
      const u = floors[k];
      const lower = k === K - 2 ? targetLoss : losses[k + 1];
      const upper = k === 0 ? lMax : losses[k - 1];
      let tLo = lower > u ? Math.log(lower - u) : Math.log(u * 1e-12);
      let tHi = Math.max(tLo, Math.log(upper - u));
      if (sweep > 0 && losses[k] > u) {
        const t = Math.log(losses[k] - u);
        tLo = Math.max(tLo, t - 0.5);
        tHi = Math.max(tLo, Math.min(tHi, t + 0.5));
      }
      const trial = losses.slice();
      const f = (t: number) => {
        trial[k] = Math.min(upper, Math.max(lower, u + Math.exp(t)));
        return planFlops(sizes, trial, targetLoss, law, batch);
      };
      const m = minimize1d(f, tLo, tHi, { grid: sweep === 0 ? 20 : 2, tol: 1e-12 });
      if (m.fx < flops) {
        losses[k] = Math.min(upper, Math.max(lower, u + Math.exp(m.x)));
        flops = m.fx;
      }
    }
    // block moves: shift ℓ_0..ℓ_k together, so that growth losses tied by the order (a zero-length stage
    // between them) can move as one — single coordinates are stuck there
    for (let k = 0; k < K - 1; k++) {
      const lower = k === K - 2 ? targetLoss : losses[k + 1];
      let lo = lower - losses[k];
      for (let j = 0; j <= k; j++) lo = Math.max(lo, (floors[j] - losses[j]) * (1 - 1e-12));
      const hi = Math.max(lo, Math.min(lMax - losses[0], targetLoss));
      const trial = losses.slice();
      const f = (delta: number) => {
        for (let j = 0; j <= k; j++) trial[j] = losses[j] + delta;
        if (k < K - 2) trial[k] = Math.max(trial[k], losses[k + 1]);
        return planFlops(sizes, trial, targetLoss, law, batch);
      };
      const m = minimize1d(f, lo, hi, { grid: 20, tol: 1e-13 });
      if (m.fx < flops) {
        f(m.x);
        losses = trial.slice();
        flops = m.fx;
      }
    }
    // stop when a sweep gains less than 1e-14 relative: the minimum is flat at the level of rounding
    if (sweep > 0 && flopsBefore - flops <= 1e-14 * flopsBefore) break;
    const d = losses.map((l, k) => l - before[k]);
    if (sweep > 0 && d.some((v) => v !== 0)) {
      const at = (alpha: number) => before.map((l, k) => l + alpha * d[k]);
      const m = minimize1d((alpha) => planFlops(sizes, at(alpha), targetLoss, law, batch), 1, 16, { grid: 15, tol: 1e-9 });
      if (m.fx < flops) {
        losses = at(m.x);
        flops = m.fx;
      }
    }
  }
  return { flops, losses };
}

function sizesFrom(finalSize: number, logFactors: readonly number[]): number[] {
  const sizes = [finalSize];
  for (let j = logFactors.length - 1; j >= 0; j--) sizes.unshift(sizes[0] / Math.exp(logFactors[j]));
  return sizes;
}

interface Best extends Inner {
  sizes: number[];
}

/** Every sequence of K − 1 factors from the set, for a fixed final size. */
function bestOverSet(values: readonly number[], K: number, finalSize: number, o: PlanOptions): Best {
  let best: Best = { flops: Infinity, losses: [], sizes: [finalSize] };
  const seq: number[] = [];
  const visit = (depth: number) => {
    if (depth === K - 1) {
      const sizes = sizesFrom(finalSize, seq.map(Math.log));
      const r = optimiseGrowthLosses(sizes, o.targetLoss, o.law, searchBatch(o));
      if (r.flops < best.flops) best = { ...r, sizes };
      return;
    }
    for (const v of values) {
      seq.push(v);
      visit(depth + 1);
      seq.pop();
    }
  };
  visit(0);
  return best;
}

/** Coordinate descent over the log factors in [log min, log max], for a fixed final size. */
function bestOverRange(min: number, max: number, K: number, finalSize: number, o: PlanOptions): Best {
  const lo = Math.log(min);
  const hi = Math.log(max);
  const z = new Array<number>(K - 1).fill(Math.min(hi, Math.max(lo, Math.log(4))));
  const solve = (zz: readonly number[]) => optimiseGrowthLosses(sizesFrom(finalSize, zz), o.targetLoss, o.law, searchBatch(o));
  let cur = solve(z);
  // as in optimiseGrowthLosses: a full scan first, then local brackets and a pattern move per sweep
  for (let sweep = 0; sweep < 200 && K > 1; sweep++) {
    const before = z.slice();
    const flopsBefore = cur.flops;
    for (let j = 0; j < K - 1; j++) {
      const trial = z.slice();
      const a = sweep === 0 ? lo : Math.max(lo, z[j] - 0.5);
      const b = sweep === 0 ? hi : Math.min(hi, z[j] + 0.5);
      const m = minimize1d(
        (t) => {
          trial[j] = t;
          return solve(trial).flops;
        },
        a,
        Math.max(a, b),
        { grid: sweep === 0 ? 16 : 2, tol: 1e-10 },
      );
      if (m.fx < cur.flops) {
        z[j] = m.x;
        cur = solve(z);
      }
    }
    if (sweep > 0 && flopsBefore - cur.flops <= 1e-13 * flopsBefore) break;
    const d = z.map((v, j) => v - before[j]);
    if (sweep > 0 && d.some((v) => v !== 0)) {
      const at = (alpha: number) => before.map((v, j) => Math.min(hi, Math.max(lo, v + alpha * d[j])));
      const m = minimize1d((alpha) => solve(at(alpha)).flops, 1, 16, { grid: 15, tol: 1e-9 });
      if (m.fx < cur.flops) {
        z.splice(0, z.length, ...at(m.x));
        cur = solve(z);
      }
    }
  }
  return { ...cur, sizes: sizesFrom(finalSize, z) };
}

const searchBatch = (o: PlanOptions): SearchBatch => (o.batch === 'per-stage' ? 'per-stage' : 'target');

function bestForFinalSize(finalSize: number, o: PlanOptions): Best {
  return o.factors.kind === 'set'
    ? bestOverSet(o.factors.values, o.stages, finalSize, o)
    : bestOverRange(o.factors.min, o.factors.max, o.stages, finalSize, o);
}

/** Tokens per step of a stage ending at loss `end`. */
function stageBatch(end: number, o: PlanOptions): number {
  if (o.batch === 'fixed') return o.batchTokens as number;
  return criticalBatch(o.batch === 'target' ? o.targetLoss : end, o.law);
}

/** Relative size change below which a "growth" is no growth (×1), and relative steps below which a stage is empty. */
const SAME_SIZE = 1e-6;
const EMPTY_STAGE = 1e-6;

const fmtFactor = (f: number) => `×${Number(f.toPrecision(4))}`;

/** The stage table of a plan, and its notes (see Plan.stages). */
function stagesOf(sizes: readonly number[], losses: readonly number[], o: PlanOptions): { stages: PlanStage[]; notes: string[] } {
  const notes: string[] = [];
  let raw: PlanStage[] = [];
  let prev: number | null = null;
  for (let k = 0; k < sizes.length; k++) {
    const N = sizes[k];
    const end = k < sizes.length - 1 ? losses[k] : o.targetLoss;
    const startStep = prev === null ? 0 : stepsToLoss(N, prev, o.law);
    const endStep = stepsToLoss(N, end, o.law);
    const batchTokens = stageBatch(end, o);
    const steps = endStep - startStep;
    const flops = 6 * N * batchTokens * steps;
    raw.push({
      index: k + 1,
      params: N,
      factor: k === 0 ? null : N / sizes[k - 1],
      startLoss: prev,
      endLoss: end,
      startStep,
      endStep,
      steps,
      empty: false,
      batchTokens,
      tokens: batchTokens * steps,
      flops,
      pfDays: toPfDays(flops),
    });
    prev = end;
  }
  // ×1 under one batch for every stage: the same model trained on — one stage
  if (o.batch !== 'per-stage') {
    const merged: PlanStage[] = [];
    const groups: number[][] = [];
    for (const r of raw) {
      const last = merged[merged.length - 1];
      if (last !== undefined && r.params <= last.params * (1 + SAME_SIZE)) {
        const flops = last.flops + r.flops;
        merged[merged.length - 1] = {
          ...last,
          params: r.params,
          endLoss: r.endLoss,
          endStep: last.endStep + r.steps,
          steps: last.steps + r.steps,
          tokens: last.tokens + r.tokens,
          flops,
          pfDays: toPfDays(flops),
        };
        groups[groups.length - 1].push(r.index);
      } else {
        merged.push(r);
        groups.push([r.index]);
      }
    }
    for (const g of groups)
      if (g.length > 1)
        notes.push(
          `stages ${g[0]}–${g[g.length - 1]} of the ${raw.length}-stage search have one size (growth ×1 is no growth): shown as one stage; the best plan has fewer stages`,
        );
    raw = merged.map((r, i) => ({ ...r, index: i + 1, factor: i === 0 ? null : r.params / merged[i - 1].params }));
  } else
    raw.forEach((r) => {
      if (r.factor !== null && r.factor <= 1 + SAME_SIZE)
        notes.push(`stage ${r.index} keeps the size of stage ${r.index - 1} (×1): a batch increase without growth`);
    });
  const totalSteps = raw.reduce((s, r) => s + r.steps, 0);
  const stages = raw.map((r) => {
    if (!(r.steps <= EMPTY_STAGE * totalSteps)) return r;
    return { ...r, startStep: r.endStep, steps: 0, empty: true, tokens: 0, flops: 0, pfDays: 0 };
  });
  stages.forEach((r, i) => {
    if (!r.empty || i === stages.length - 1) return;
    const into = r.factor === null ? null : fmtFactor(r.factor);
    const out = fmtFactor(stages[i + 1].factor as number);
    notes.push(
      into === null
        ? `stage 1 trains 0 steps: the plan starts at stage 2's size (${stages[i + 1].params.toExponential(3)})`
        : `stage ${r.index} trains 0 steps: the growths ${into} and ${out} are applied back to back (${fmtFactor((r.factor as number) * (stages[i + 1].factor as number))} in all)`,
    );
  });
  return { stages, notes };
}

/**
 * Plans the stages for a target loss (../shared/spec/schedule.md, "The planner"). One stage recovers the
 * single-stage optimum. Throws if no plan can reach the target (e.g. a given final size whose floor is at
 * or above it).
 */
export function planStages(input: PlanOptionsInput): Plan {
  const plan = planOnce(input);
  if (plan.batch !== 'per-stage' || plan.stages.length < 2) return plan;
  // per-stage batches charge each stage at Bcrit of its end loss, the single stage at
  // Bcrit(L_target): raising the batch alone saves compute too. The same stages at one size (the
  // final one) tell how much of the saving is growth's.
  // (one size for every stage: only the losses where the batch steps up are searched)
  const finalN = plan.stages[plan.stages.length - 1].params;
  const sizes = plan.stages.map(() => finalN);
  const batchOnlySaving = 1 - optimiseGrowthLosses(sizes, plan.targetLoss, plan.law, 'per-stage').flops / plan.singleStage.flops;
  return {
    ...plan,
    batchOnlySaving,
    notes: [
      ...plan.notes,
      `per-stage batches save by raising the batch as the loss falls, growth or not: ${plan.stages.length} stages of the final size, raising the batch alone, save ${(100 * batchOnlySaving).toFixed(1)}% (this plan ${(100 * plan.saving).toFixed(1)}%)`,
    ],
  };
}

function planOnce(input: PlanOptionsInput): Plan {
  const r = PlanOptionsSchema.safeParse(input);
  if (!r.success) {
    throw new Error(`invalid plan options: ${formatIssues(r.error, '(options)')}`);
  }
  const o = r.data;
  const single = singleStageOptimum(o.targetLoss, o.law);
  // the law has no floor: any loss maps to some size, most of them meaningless
  if (!(single.params >= 1e3 && single.params <= 1e14))
    throw new Error(
      `target loss ${o.targetLoss} asks for a ${single.params.toExponential(2)}-parameter model under this law: ` +
        `outside the 1e3–1e14 parameters where a plan means anything (a lower target asks for a larger model)`,
    );
  let best: Best;
  if (o.finalSize === 'free') {
    const lo = Math.log(smallestSizeFor(o.targetLoss, o.law)) + 1e-9;
    let found: Best = { flops: Infinity, losses: [], sizes: [] };
    minimize1d(
      (logN) => {
        const b = bestForFinalSize(Math.exp(logN), o);
        if (b.flops < found.flops) found = b;
        return b.flops;
      },
      lo,
      Math.log(single.params) + Math.log(1e3),
      { grid: 24, tol: 1e-10 },
    );
    best = found;
  } else {
    const finalSize = o.finalSize === 'optimal' ? single.params : o.finalSize;
    if (lossFloor(finalSize, o.law) >= o.targetLoss)
      throw new Error(
        `final size ${finalSize.toExponential(3)} cannot reach loss ${o.targetLoss} (its floor is ${lossFloor(finalSize, o.law).toFixed(4)})`,
      );
    best = bestForFinalSize(finalSize, o);
  }
  if (!Number.isFinite(best.flops)) throw new Error(`no feasible ${o.stages}-stage plan reaches loss ${o.targetLoss}`);
  const { stages, notes } = stagesOf(best.sizes, best.losses, o);
  // a free final size: an empty final stage means that the last growths do not pay (the objective is
  // flat in the size they grow to): the plan is the stages before them
  if (o.finalSize === 'free' && stages[stages.length - 1].empty) {
    const before = stages.length;
    while (stages.length > 1 && stages[stages.length - 1].empty) stages.pop();
    for (let i = notes.length - 1; i >= 0; i--) if (/^stage \d+ trains 0 steps/.test(notes[i])) notes.splice(i, 1);
    notes.push(
      `the best plan has ${stages.length} stage${stages.length === 1 ? '' : 's'}, not ${before}: a further growth would train 0 steps (more stages do not help here)`,
    );
  }
  const last = stages[stages.length - 1];
  const finalN = last.params;
  if (last.empty) {
    const above = finalN > single.params * (1 + SAME_SIZE);
    throw new Error(
      `no useful ${o.stages}-stage plan with final size ${finalN.toExponential(3)}: the cheapest plan reaches loss ${o.targetLoss} ` +
        `before it grows to that size, so the final stage would train 0 steps (a comparison with it measures nothing)` +
        (above
          ? `; the size is above the one-stage optimum ${single.params.toExponential(3)} for this loss: give a final size at most that, or 'optimal' or 'free'`
          : `; give fewer stages or another final size`),
    );
  }
  if (finalN > single.params * (1 + 1e-3))
    notes.push(
      `the final size ${finalN.toExponential(3)} is above the one-stage optimum ${single.params.toExponential(3)} for loss ${o.targetLoss}: ` +
        `the saving is against one stage of the optimum`,
    );
  const atBatch = (one: SingleStageOptimum): SingleStageOptimum => {
    if (o.batch !== 'fixed') return one;
    const B = o.batchTokens as number;
    const flops = 6 * one.params * B * one.steps;
    // (no critical-batch accounting here: Kaplan's Cmin does not apply; the compute at the fixed batch)
    return { ...one, batchTokens: B, tokens: B * one.steps, flops, pfDays: toPfDays(flops), minimalFlops: flops };
  };
  const one = atBatch(single);
  const totalFlops = stages.reduce((s, st) => s + st.flops, 0);
  return {
    targetLoss: o.targetLoss,
    law: o.law,
    batch: o.batch,
    batchTokens: o.batch === 'fixed' ? (o.batchTokens as number) : null,
    stages,
    notes,
    totalSteps: stages.reduce((s, st) => s + st.steps, 0),
    totalTokens: stages.reduce((s, st) => s + st.tokens, 0),
    totalFlops,
    totalPfDays: toPfDays(totalFlops),
    singleStage: one,
    computeRatio: totalFlops / one.flops,
    saving: 1 - totalFlops / one.flops,
    sameSizeSingleStage: atBatch(singleStageAt(finalN, o.targetLoss, o.law)),
    batchOnlySaving: null,
  };
}
