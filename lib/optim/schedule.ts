// Learning-rate schedules as pure functions of the step, plus the Kaplan peak-LR formula and the
// restart-with-rewarmup form that places a grown model inside the target model's schedule
// (../shared/spec/growth.md, "Learning-rate schedule after growth").
import { z } from 'zod';
import { parseOrThrow } from '../validate';

export const ScheduleSchema = z
  .object({
    /**
     * linear / cosine: decay from the end of warmup to `total`. constant: the peak after warmup.
     * wsd (warmup–stable–decay): the peak until the last `decay` steps before `total`, then a
     * decay to `final` (Hu et al. 2024, MiniCPM; Hägele et al. 2024). Its stable phase is flat, so
     * the decay can be moved to a run's end (wsdEndingAt) until it has begun.
     */
    kind: z.enum(['linear', 'cosine', 'constant', 'wsd']).default('linear'),
    /** Peak learning rate, reached at the end of warmup. */
    peak: z.number().positive(),
    /** Linear warmup from 0 over this many steps. */
    warmup: z.number().int().nonnegative().default(0),
    /** Decay horizon: the LR reaches `final` at this step (linear / cosine). */
    total: z.number().int().positive(),
    /** LR at and after `total`, absolute (at most `peak`; a run config gives it as lr.finalFraction of the peak). */
    final: z.number().nonnegative().default(0),
    /** wsd: the decay's length in steps, ending at `total`. */
    decay: z.number().int().nonnegative().optional(),
    /** wsd: the decay's shape over its progress p ∈ [0, 1]: 1 − p, or 1 − √p (the default; Hägele et al.'s better cooldown). */
    decayShape: z.enum(['linear', '1-sqrt']).optional(),
    /** Restart inside this schedule (after growth): start at step `at` with a re-warmup of `rewarmup` steps. */
    restart: z.object({ at: z.number().int().nonnegative(), rewarmup: z.number().int().nonnegative() }).optional(),
  })
  .strict()
  .refine((s) => s.kind === 'constant' || s.total >= s.warmup, { message: 'total must be at least warmup', path: ['total'] })
  // (final is a rate, not a run config's finalFraction: 0.1 with a peak of 1e-3 rose 100× to its end)
  .refine((s) => s.final <= s.peak, {
    message: 'final is the rate at the end (absolute), at most peak; a fraction of the peak is final = fraction × peak',
    path: ['final'],
  })
  .refine((s) => s.kind !== 'wsd' || s.decay !== undefined, { message: "a 'wsd' schedule needs its decay length", path: ['decay'] })
  .refine((s) => s.kind === 'wsd' || (s.decay === undefined && s.decayShape === undefined), {
    message: "decay and decayShape belong to a 'wsd' schedule",
    path: ['kind'],
  })
  .refine((s) => s.kind !== 'wsd' || s.decay === undefined || s.warmup + s.decay <= s.total, {
    message: 'warmup + decay must fit in total',
    path: ['decay'],
  });

export type Schedule = z.infer<typeof ScheduleSchema>;
export type ScheduleInput = z.input<typeof ScheduleSchema>;

/** The base schedule f(t), without restart. */
function base(s: Schedule, t: number): number {
  if (s.warmup > 0 && t < s.warmup) return (s.peak * t) / s.warmup;
  if (s.kind === 'constant') return s.peak;
  if (t >= s.total) return s.final;
  if (s.kind === 'wsd') {
    const decay = s.decay ?? 0;
    const start = s.total - decay;
    if (t < start) return s.peak;
    const p = (t - start) / decay; // (decay > 0 here: t < total)
    return s.final + (s.peak - s.final) * (s.decayShape === 'linear' ? 1 - p : 1 - Math.sqrt(p));
  }
  const span = s.total - s.warmup;
  const progress = span === 0 ? 1 : (t - s.warmup) / span;
  if (s.kind === 'linear') return s.final + (s.peak - s.final) * (1 - progress);
  return s.final + 0.5 * (s.peak - s.final) * (1 + Math.cos(Math.PI * progress));
}

/**
 * The learning rate at step t. With a restart at R and re-warmup Wr:
 *   lr(t) = (t − R)/Wr · f(R + Wr) for R ≤ t < R + Wr, then f(t).
 */
export function learningRate(s: Schedule, t: number): number {
  if (s.restart !== undefined) {
    const { at: R, rewarmup: Wr } = s.restart;
    if (t < R) throw new RangeError(`step ${t} lies before the restart point ${R} of this schedule`);
    if (Wr > 0 && t < R + Wr) return ((t - R) / Wr) * base(s, R + Wr);
  }
  return base(s, t);
}

/**
 * What positions first..last (a session's steps, as learningRate numbers them) do past the decay
 * horizon (positions after `total`; the schedule's own last step, at `total`, is at the final rate
 * by design): how many train at the final rate, and how many are still in a re-warmup that runs
 * past the horizon (rising towards the final rate, never decaying). Zero both for a constant schedule.
 */
export function pastHorizon(s: Schedule, first: number, last: number): { atFinal: number; rewarming: number } {
  if (s.kind === 'constant' || last <= s.total) return { atFinal: 0, rewarming: 0 };
  const rampEnd = s.restart === undefined ? 0 : s.restart.at + s.restart.rewarmup; // first position past the re-warmup
  const flatFrom = Math.max(first, s.total + 1, rampEnd);
  const rampFrom = Math.max(first, s.total + 1, s.restart?.at ?? 0);
  return { atFinal: Math.max(0, last - flatFrom + 1), rewarming: Math.max(0, Math.min(last + 1, rampEnd) - rampFrom) };
}

/**
 * The note for a growth's re-warmup that ends at or past the decay horizon (the rate then never
 * decays), or null when it ends before it (or the schedule is constant, or restarts past it).
 */
export function rewarmupPastHorizonNote(s: Schedule): string | null {
  const r = s.restart;
  if (r === undefined || s.kind === 'constant' || r.at >= s.total || r.at + r.rewarmup < s.total) return null;
  return `the re-warmup (${r.rewarmup} steps from position ${r.at}) ends at or past the schedule's horizon ${s.total}: the rate never decays`;
}

/**
 * A wsd schedule whose decay ends at position `end` instead of at `total` (the stable phase is flat:
 * nothing else changes), so that a run that grew, or was extended, still cools down at its last
 * step. The decay keeps its length where it fits after `pos` (and after warmup), else is shortened
 * to what is left. Null where nothing changes: not wsd, already ending at `end`, or the decay has
 * begun at `pos` (moving it then would jump the rate).
 */
export function wsdEndingAt(s: Schedule, pos: number, end: number): Schedule | null {
  if (s.kind !== 'wsd' || end === s.total || !(end > pos)) return null;
  const decay = s.decay ?? 0;
  if (pos >= s.total - decay) return null;
  return parseSchedule({ ...s, total: end, decay: Math.max(0, Math.min(decay, end - pos, end - s.warmup)) });
}

export function parseSchedule(input: ScheduleInput): Schedule {
  return parseOrThrow(ScheduleSchema, input, 'schedule');
}

/**
 * Kaplan et al. (2020), App. D.6: the peak LR of a model with N non-embedding parameters,
 * lr(N) = 0.003239 − 0.0001395·log10(N).
 */
export function kaplanPeakLr(nonEmbeddingParams: number): number {
  if (!(nonEmbeddingParams > 0)) throw new RangeError(`parameter count must be positive, got ${nonEmbeddingParams}`);
  return 0.003239 - 0.0001395 * Math.log10(nonEmbeddingParams);
}
