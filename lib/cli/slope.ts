// `staged-lm slope`: the online growth trigger (../shared/spec/schedule.md, "Measuring σ online") replayed
// over a validation log — our metrics.jsonl, or a TensorBoard scalar CSV with --params and
// --tokens-per-step — as the trainer runs it (after each evaluation, on the curve so far, restarting at
// each growth, without end-of-session evaluations), printing where it first fires, S_target and the
// implied saving.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { parseValidationLog } from '../scaling/logs';
import { TRIGGER_THRESHOLDS, replayTrigger, type TriggerOp, type TriggerReplay } from '../scaling/trigger';
import { output, positiveInt } from './common';
import { fmtCount, loadLaw } from './plan';

interface SlopeFlags {
  log: string;
  op: TriggerOp;
  params?: number;
  tokensPerStep?: number;
  threshold?: number;
  finalSteps?: number;
  window: number;
  xSmoothing: 'mean' | 'none';
  law?: string;
  json?: boolean;
}

function op(v: string): TriggerOp {
  if (v !== 'width' && v !== 'depth' && v !== 'both') throw new InvalidArgumentError(`--op must be width, depth or both (got '${v}')`);
  return v;
}

function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number (got '${v}')`);
    return n;
  };
}

function negativeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n >= 0) throw new InvalidArgumentError(`${name} must be a negative number (got '${v}')`);
    return n;
  };
}

function xSmoothing(v: string): 'mean' | 'none' {
  if (v !== 'mean' && v !== 'none') throw new InvalidArgumentError(`--x-smoothing must be mean or none (got '${v}')`);
  return v;
}

const where = (step: number | null, index: number) => (step === null ? `point ${index}` : `step ${step}`);

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function formatTrigger(replay: TriggerReplay, points: number): string {
  const r = replay.result;
  const c = replay.dropCounts;
  const drops = [
    plural(c.spike, 'spike'),
    `${c['not-increasing-compute']} not after the previous point in compute`,
    `${c['non-positive']} non-positive or not finite`,
  ].join(', ');
  const off = replay.offInterval.length;
  const head = [
    `${r.op} (σ threshold ${r.threshold}): ${plural(points, 'validation point')}` +
      (off > 0 ? ` (${off} end-of-session evaluation${off === 1 ? '' : 's'} off the interval left out, as the trainer does)` : '') +
      `; dropped: ${drops}`,
  ];
  if (replay.segments > 1)
    head.push(
      `the log has ${replay.segments} stages; the trainer's curve restarts at each growth: ${replay.fired ? 'fired' : 'shown'} on stage ${replay.segment}'s curve (${plural(replay.curvePoints, 'point')})`,
    );
  const steepest =
    r.minSigma === null || r.minSigmaIndex === null
      ? ''
      : `steepest σ = ${r.minSigma.toFixed(4)} at ${where(r.slopes.find((s) => s.index === r.minSigmaIndex)?.step ?? null, r.minSigmaIndex)}`;
  if (!r.reached) return [...head, `not reached: ${r.reason}`, steepest].filter((l) => l !== '').join('\n');
  const lines = [
    ...head,
    `grow at ${where(r.step, r.index)}: val loss ${r.loss.toFixed(4)}, σ = ${r.sigma.toFixed(4)} (${steepest}); the first evaluation where the online trigger fires on the curve so far`,
  ];
  if (r.sPre !== null && r.sTarget !== null)
    lines.push(
      `S_target = S_pre / c_op = ${r.sPre} / ${r.cOp} = ${Math.round(r.sTarget)} (the grown model resumes the target schedule there)` +
        (r.step !== null && r.sPre !== r.step ? `; S_pre is the model's schedule position at step ${r.step} (a growth placed it)` : ''),
    );
  else lines.push(`S_target = S_pre / ${r.cOp} (the log has no steps)`);
  if (r.saving === null) {
    if (r.noSaving === 'target-past-schedule' && r.sOptOverSPre !== null)
      lines.push(
        `implied saving: none — S_target ${r.sTarget === null ? `= S_pre/${r.cOp}` : `= ${Math.round(r.sTarget)}`} is past S_opt ${r.sOpt === null ? `= ${r.sOptOverSPre.toFixed(3)}·S_pre` : `= ${Math.round(r.sOpt)}`}${r.savingBasis === 'final-steps' ? ' (given)' : ' (law)'}: ` +
          'the grown model would resume after the end of its own schedule, so (S_target − r·S_pre)/S_opt does not apply',
      );
    else lines.push('implied saving: unknown (σ outside the law’s range; give --final-steps)');
  } else
    lines.push(
      `implied saving ${(100 * r.saving).toFixed(1)}% = (S_target − S_pre/${r.growthFactor}) / S_opt, ` +
        (r.savingBasis === 'final-steps'
          ? `S_opt = ${r.sOpt} (given)`
          : `S_opt = ${(r.sOptOverSPre as number).toFixed(3)}·S_pre${r.sOpt === null ? '' : ` ≈ ${fmtCount(r.sOpt)}`} (law: the large model trained to its compute-optimal loss)`) +
        (r.lawSigma === 'threshold'
          ? `; the measured σ ${r.sigma.toFixed(4)} lies outside the law's range, so the law placed the point by the threshold ${r.threshold} instead: a rough figure (give --final-steps)`
          : ''),
    );
  return lines.join('\n');
}

export function registerSlope(program: Command): void {
  program
    .command('slope')
    .description(
      'measure σ = d log L / d log C on a validation log and find where the online trigger would grow: the first evaluation ' +
        'after which the trainer, checking the curve so far, fires (its curve restarts at each growth; end-of-session evaluations, valOffInterval, are left out)',
    )
    .requiredOption('--log <file>', 'metrics.jsonl of a run, or a TensorBoard scalar CSV (Wall time,Step,Value)')
    .option(
      '--op <op>',
      `growth operator: width | depth | both (thresholds ${Object.entries(TRIGGER_THRESHOLDS)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
      op,
      'depth',
    )
    .option('--params <N>', 'non-embedding parameters of the model (CSV: compute = 6·N·T·step)', positiveNumber('--params'))
    .option('--tokens-per-step <T>', 'tokens per optimizer step (CSV)', positiveNumber('--tokens-per-step'))
    .option('--threshold <sigma>', "σ threshold (default: the op's)", negativeNumber('--threshold'))
    .option(
      '--final-steps <S>',
      "S_opt for the saving: the large model's from-scratch steps to the final loss (default: from the law)",
      positiveNumber('--final-steps'),
    )
    .option('--window <n>', 'running-mean window of log10(val loss)', positiveInt('--window'), 5)
    .option(
      '--x-smoothing <mean|none>',
      'Δx of σ. mean (the default, as the trainer): log10 compute averaged over the window like log10 loss, so σ is the ' +
        "secant slope over the window, unbiased on unevenly spaced points; none: Δx = raw log10 compute step, the spec's literal recipe " +
        '(running mean of y over unsmoothed Δx), biased by about 1% for equal step intervals and about ×2 right after a dropped spike',
      xSmoothing,
      'mean',
    )
    .option('--law <kaplan|FILE>', 'law exponents for the implied saving', 'kaplan')
    .option('--json', 'print one JSON object')
    .action((f: SlopeFlags) => {
      let text: string;
      try {
        text = readFileSync(f.log, 'utf8');
      } catch (e) {
        throw new Error(`cannot read log '${f.log}': ${e instanceof Error ? e.message : String(e)}`);
      }
      const points = parseValidationLog(text, { params: f.params, tokensPerStep: f.tokensPerStep });
      if (points.length === 0) throw new Error(`no validation points in '${f.log}' (metrics records with valLoss, or CSV rows)`);
      const { law } = loadLaw(f.law);
      const replay = replayTrigger(points, {
        op: f.op,
        window: f.window,
        xSmoothing: f.xSmoothing,
        law,
        ...(f.threshold !== undefined ? { threshold: f.threshold } : {}),
        ...(f.finalSteps !== undefined ? { finalSteps: f.finalSteps } : {}),
      });
      const { result, ...rest } = replay;
      output(f.json, { ...result, points: points.length, replay: rest }, () => formatTrigger(replay, points.length));
    });
}
