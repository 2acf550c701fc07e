// The learning-rate schedule after growth (../shared/spec/growth.md): the grown state follows the
// TARGET model's schedule (its peak LR, warmup W, horizon T), placed at R = S_pre / c_op with a
// re-warmup of Wr steps: lr(t) = (t − R)/Wr · f(R + Wr) for R ≤ t < R + Wr, then f(t).
import { z } from 'zod';
import { kaplanParams, type GPTConfig } from '../nn/config';
import { kaplanPeakLr, parseSchedule, type Schedule } from '../optim/schedule';
import type { TrainState } from './state';
import { parseOrThrow } from '../validate';

export type GrowthOp = 'width' | 'depth' | 'both';

/** Reference step-ratio constants c_op (Shen et al. 2022). */
export const REFERENCE_C_OP: Readonly<Record<GrowthOp, number>> = { depth: 1.412, width: 1.776, both: 2.455 };
/**
 * The note for a growth by a factor other than 2 that takes its c_op from REFERENCE_C_OP (the
 * constants were measured for ×2), or null: the grown model's place on its schedule is then a
 * guess. `cOpGiven`: c_op was given or measured (alignTo).
 */
export function referenceCOpNote(op: string, factor: number | undefined, cOpGiven: boolean): string | null {
  if (cOpGiven || factor === undefined || factor === 2 || !(op in REFERENCE_C_OP)) return null;
  const c = REFERENCE_C_OP[op as GrowthOp];
  return `c_op ${c} is the reference constant of ${op} growth ×2: for ×${factor} the grown model's place on its schedule (R = S_pre / ${c}) is a guess`;
}

/** Reference re-warmup length. */
export const REFERENCE_REWARMUP = 150;

export const GrowthScheduleSchema = z
  .object({
    /** Peak LR of the grown model: a number, or 'kaplan' for lr(N) of its non-embedding size. */
    peak: z.union([z.number().positive(), z.literal('kaplan')]).default('kaplan'),
    /** Step-ratio constant: the grown model continues at R = S_pre / cOp of its schedule. */
    cOp: z.number().positive().optional(),
    /** Re-warmup steps after growth. */
    rewarmup: z.number().int().nonnegative().default(REFERENCE_REWARMUP),
    /** Warmup W and horizon T of the target schedule (default: the current schedule's). */
    warmup: z.number().int().nonnegative().optional(),
    total: z.number().int().positive().optional(),
  })
  .strict();
export type GrowthScheduleOptions = z.input<typeof GrowthScheduleSchema>;

/** The schedule and schedule position of a grown state. */
export function rescheduled(
  small: TrainState,
  grown: GPTConfig,
  op: GrowthOp | null,
  input: GrowthScheduleOptions = {},
): { schedule: Schedule; schedulePos: number } {
  const o = parseOrThrow(GrowthScheduleSchema, input, 'growth schedule');
  const cOp = o.cOp ?? (op === null ? undefined : REFERENCE_C_OP[op]);
  if (cOp === undefined) throw new Error('growth schedule: cOp is needed for this operator (no reference constant)');
  const old = small.schedule;
  const peak = o.peak === 'kaplan' ? kaplanPeakLr(kaplanParams(grown)) : o.peak;
  const R = Math.round(small.progression.schedulePos / cOp);
  const total = o.total ?? old.total;
  const warmup = o.warmup ?? old.warmup;
  // (wsd: the decay ends at the horizon and keeps its share of the steps after warmup)
  const share = old.decay === undefined ? 0 : old.decay / Math.max(1, old.total - old.warmup);
  const schedule = parseSchedule({
    kind: old.kind,
    peak,
    warmup,
    total,
    final: (old.final / old.peak) * peak,
    ...(old.decay === undefined ? {} : { decay: Math.min(Math.round(share * (total - warmup)), Math.max(0, total - warmup)) }),
    ...(old.decayShape === undefined ? {} : { decayShape: old.decayShape }),
    restart: { at: R, rewarmup: o.rewarmup },
  });
  return { schedule, schedulePos: R };
}
