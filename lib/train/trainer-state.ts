// The trainer's records in a checkpoint's state.json (`extra`): checked before a resume uses any of
// them, so that a damaged or hand-edited state is refused naming the field, before anything in the
// run directory changes. (Unchecked, a progression.step of null restarted the run at step 0 with
// its tokens carried over and dropped its whole metrics.jsonl; one of 7 in a step-20 checkpoint
// dropped steps 8 … 20.) The run config, loader, schedule and loss scale are checked by their own
// parsers; here only that they are there.
import { z } from 'zod';
import type { Progression } from '../growth';
import type { LoaderState } from '../data/loader';
import type { GradScalerState } from '../optim/grad-scaler';
import type { Schedule } from '../optim/schedule';
import { formatIssues } from '../validate';
import type { CheckpointState } from './checkpoint';

const count = z.number().int().nonnegative();
const amount = z.number().nonnegative();
const record = z.record(z.string(), z.unknown());

const ProgressionSchema = z.object({ step: count, tokens: amount, flops: amount, stage: count, schedulePos: amount });

const TrainerExtraSchema = z.looseObject({
  run: record,
  loader: record,
  schedule: record,
  progression: ProgressionSchema,
  lastValLoss: z.number().nullable(),
  lastValStep: count.nullable().optional(),
  best: z.object({ step: count, valLoss: z.number() }).nullable().optional(),
  evalsSinceBest: count.optional(),
  intervalBest: z.number().nullable().optional(),
  valHistory: z.array(z.object({ step: count, flops: amount, compute: amount.optional(), loss: z.number() })).optional(),
  compute: amount.optional(),
  elapsed: amount.optional(),
  lossScale: record.optional(),
  skippedUpdates: count.optional(),
  skippedInARow: count.optional(),
});

export interface TrainerExtra {
  run: Record<string, unknown>;
  loader: LoaderState;
  schedule: Schedule;
  progression: Progression;
  lastValLoss: number | null;
  lastValStep?: number | null;
  best?: { step: number; valLoss: number } | null;
  evalsSinceBest?: number;
  intervalBest?: number | null;
  valHistory?: { step: number; flops: number; compute?: number; loss: number }[];
  compute?: number;
  elapsed?: number;
  lossScale?: GradScalerState;
  skippedUpdates?: number;
  skippedInARow?: number;
}

/**
 * The trainer's records of `state` (read from `path`), checked: their types, and that the
 * progression is the state's own step, tokens, FLOPs and stage, with no evaluation after it.
 */
export function parseTrainerExtra(state: CheckpointState, path: string): TrainerExtra {
  const extra = state.extra as Record<string, unknown> | undefined;
  // (what only a trainer writes: without it, a checkpoint `grow` or the API saved, say)
  for (const key of ['run', 'loader', 'schedule', 'progression'])
    if (typeof extra?.[key] !== 'object' || extra[key] === null)
      throw new Error(`${path}: extra.${key} is missing: not a trainer's checkpoint, or an edited one`);
  const parsed = TrainerExtraSchema.safeParse(extra);
  if (!parsed.success) throw new Error(`${path}: a damaged or edited checkpoint state (${formatIssues(parsed.error, 'extra', 'extra')})`);
  const x = parsed.data as unknown as TrainerExtra;
  const p = x.progression;
  for (const key of ['step', 'tokens', 'flops', 'stage'] as const)
    if (p[key] !== state[key])
      throw new Error(
        `${path}: extra.progression.${key} (${p[key]}) is not the checkpoint's ${key} (${state[key]}): a damaged or edited checkpoint state`,
      );
  const late = [
    ['extra.lastValStep', x.lastValStep],
    ['extra.best.step', x.best?.step],
    ...(x.valHistory ?? []).map((v, i) => [`extra.valHistory[${i}].step`, v.step] as const),
  ].find(([, step]) => typeof step === 'number' && step > p.step);
  if (late !== undefined)
    throw new Error(`${path}: ${late[0]} (${late[1]}) is after the checkpoint's step ${p.step}: a damaged or edited checkpoint state`);
  return x;
}
