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
    const state = JSON.parse(readFileSync(path, 'utf8')) as { extra?: { run?: Record<string, unknown> } };
    const run = state.extra?.run;
    if (run === undefined) return null;
    const evalBatches = (run.eval as { batches?: unknown } | undefined)?.batches;
    return { seqLen: run.seqLen, data: run.data, 'eval.batches': evalBatches, batchSize: run.batchSize };
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
  const growStep = run.growths[0]?.step ?? null;
  if (growStep === null) notes.push('the run never grew: its curve is compared as it is, not as a staged run');
  const before = growStep === null ? [] : run.val.filter((v) => v.step <= growStep);
  const after = growStep === null ? run.val : run.val.filter((v) => v.step > growStep);
  const smallReached = before.some((v) => v.loss <= last.loss);
  if (smallReached)
    notes.push(
      "the run reached the baseline's final loss before it grew: the baseline is too short for its size to beat the small start, so this is no staged-training saving",
    );
  const a = valSettings(runDir);
  const b = valSettings(baselineDir);
  if (a !== null && b !== null) {
    const differ = Object.keys(a).filter((k) => k !== 'batchSize' && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
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
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `baseline: val loss ${c.baselineLoss.toFixed(4)} at step ${c.baselineStep} (${c.baselineFlops.toExponential(3)} FLOPs${c.baselineCompute === null ? '' : `, compute 6·N·tokens ${c.baselineCompute.toExponential(3)}`})`,
    c.stagedFlops === null
      ? "the run does not reach the baseline's final loss after it grew: no saving to state"
      : `the run reaches it at step ${Math.round(c.stagedStep as number)} (${c.stagedFlops.toExponential(3)} FLOPs: saving ${pct(c.saving as number)}` +
        (c.computeSaving === null ? ')' : `; in 6·N·tokens, the paper's measure: ${pct(c.computeSaving)})`),
  ];
  for (const n of c.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
