// A staged run against a from-scratch baseline (`report --baseline`): where the staged run, once
// grown, first reaches the baseline's final validation loss, and the compute saved there — in FLOPs
// as trained and in the spec's compute (6·N·tokens with N the non-embedding parameters, what the
// paper states its savings in). Also what makes such a comparison measure nothing: a baseline that
// grew, a run that reached the loss before it grew, validation losses taken differently.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { firstReach } from '../scaling/logs';
import type { RunCurves, ValPointRecord } from './report';

export interface BaselineComparison {
  /** The baseline's final validation loss, and where it got there. */
  baselineLoss: number;
  baselineStep: number;
  baselineFlops: number;
  /** The spec's compute at that point; null for a log without it. */
  baselineCompute: number | null;
  /** Where the run, after its first growth, first reaches baselineLoss (interpolated between evaluations); null where it does not. */
  stagedStep: number | null;
  stagedFlops: number | null;
  stagedCompute: number | null;
  /** 1 − staged / baseline, in FLOPs and in the spec's compute; null where the run does not reach the loss. */
  saving: number | null;
  computeSaving: number | null;
  /** The run reached the baseline's loss before it grew: the baseline is too short to tell (no staged-training saving). */
  smallReachedBaselineLoss: boolean;
  /** Why the numbers may not mean what they seem. */
  notes: string[];
}

/** The run settings that decide what a validation loss measures, from a run's checkpoint (where readable). */
function valSettings(dir: string): Record<string, unknown> | null {
  const path = join(dir, 'checkpoint', 'state.json');
  if (!existsSync(path)) return null;
  try {
    const state = JSON.parse(readFileSync(path, 'utf8')) as {
      rng?: { ranks?: unknown };
      extra?: { run?: Record<string, unknown>; loader?: Record<string, unknown> };
    };
    const run = state.extra?.run;
    if (run === undefined) return null;
    const evalBatches = (run.eval as { batches?: unknown } | undefined)?.batches;
    // the loader's values are the resolved ones (seqLen defaults to the model's context, batchSize
    // is per rank). An evaluation scores the first eval.batches × batchSize × ranks windows of
    // seqLen tokens (a data-parallel job's ranks split eval.batches batches of the global batch,
    // a data-parallel checkpoint keeps one generator state per rank): how they are batched does
    // not change the loss, so 8 batches of 8 and 4 of 8 on 2 ranks score the same windows
    const loader = state.extra?.loader ?? {};
    const batchSize = loader.batchSize ?? run.batchSize;
    const ranks = Array.isArray(state.rng?.ranks) ? state.rng.ranks.length : 1;
    const windows = typeof evalBatches === 'number' && typeof batchSize === 'number' ? evalBatches * batchSize * ranks : null;
    return {
      seqLen: loader.seqLen ?? run.seqLen,
      'windows (eval.batches × batchSize × ranks)': windows,
      data: run.data,
    };
  } catch {
    return null;
  }
}

/** Compares run (staged) with baseline (from scratch); the directories give their settings. */
export function compareWithBaseline(run: RunCurves, baseline: RunCurves, runDir: string, baselineDir: string): BaselineComparison | null {
  const last = baseline.val[baseline.val.length - 1];
  if (last === undefined) return null;
  const notes: string[] = [];
  if (baseline.growths.length > 0) notes.push(`the baseline grew (at step ${baseline.growths[0].step}): it is not a from-scratch run`);
  else if (baseline.stages[0].stage > 0)
    notes.push(`the baseline's log starts at stage ${baseline.stages[0].stage}, after a growth: it is not a from-scratch run`);
  if (baseline.earlyStop !== null) notes.push(`the baseline stopped early (step ${baseline.earlyStop}): its final loss is not its best`);
  if (baseline.initFrom !== null) notes.push(`the baseline is a fine-tune of ${baseline.initFrom}: its FLOPs leave out the pretraining`);
  // a log resumed into its directory after the run grew starts grown (its first stage is > 0)
  const grownAtStart = run.stages[0].stage > 0;
  const growStep = grownAtStart ? -Infinity : (run.growths[0]?.step ?? null);
  if (grownAtStart) notes.push(`the run's log starts at stage ${run.stages[0].stage}, after a growth: its counters carry what came before`);
  else if (growStep === null) notes.push('the run never grew: its curve is compared as it is, not as a staged run');
  const before = growStep === null ? [] : run.val.filter((v) => v.step <= growStep);
  // from an evaluation at the growth step on (growth keeps the function, so the crossing may lie
  // between it and the first evaluation after); one before the growth is the small model's curve
  const atGrowth = before.filter((v) => v.step === growStep);
  const after = growStep === null ? run.val : [...atGrowth, ...run.val.filter((v) => v.step > growStep)];
  const smallReached = before.some((v) => v.loss <= last.loss);
  if (smallReached)
    notes.push(
      "the run reached the baseline's final loss before it grew: the baseline is too short for its size to beat the small start, so this is no staged-training saving",
    );
  const a = valSettings(runDir);
  const b = valSettings(baselineDir);
  if (a !== null && b !== null) {
    const differ = Object.keys(a).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    if (differ.length > 0)
      notes.push(
        `the runs' validation losses are not taken alike (${differ.map((k) => `${k} ${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}`).join(', ')}): they do not compare`,
      );
  }
  const reach = (at: (p: ValPointRecord) => number) => firstReach(after, last.loss, at);
  const stagedStep = reach((p) => p.step);
  const stagedFlops = reach((p) => p.flops);
  const withCompute = after.every((p) => p.compute !== undefined) && last.compute !== undefined;
  const stagedCompute = withCompute ? reach((p) => p.compute as number) : null;
  return {
    baselineLoss: last.loss,
    baselineStep: last.step,
    baselineFlops: last.flops,
    baselineCompute: last.compute ?? null,
    stagedStep,
    stagedFlops,
    stagedCompute,
    saving: stagedFlops === null ? null : 1 - stagedFlops / last.flops,
    computeSaving: stagedCompute === null || last.compute === undefined ? null : 1 - stagedCompute / last.compute,
    smallReachedBaselineLoss: smallReached,
    notes,
  };
}

/** The comparison in a few lines (report's output). */
export function formatComparison(c: BaselineComparison): string {
  const saved = (x: number) => (x >= 0 ? `saving ${(100 * x).toFixed(1)}%` : `no saving: ${(-100 * x).toFixed(1)}% more`);
  const lines = [
    `baseline: val loss ${c.baselineLoss.toFixed(4)} at step ${c.baselineStep} (${c.baselineFlops.toExponential(3)} FLOPs${c.baselineCompute === null ? '' : `, compute 6·N·tokens ${c.baselineCompute.toExponential(3)}`})`,
    c.stagedFlops === null
      ? "the run does not reach the baseline's final loss after it grew: no saving to state"
      : `the run reaches it at step ${Math.round(c.stagedStep as number)} (${c.stagedFlops.toExponential(3)} FLOPs: ${saved(c.saving as number)}` +
        (c.computeSaving === null ? ')' : `; in 6·N·tokens, the paper's measure: ${saved(c.computeSaving)})`),
  ];
  for (const n of c.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
