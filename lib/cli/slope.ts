// `staged-lm slope`: the online growth trigger (../shared/spec/schedule.md, "Measuring σ online") run
// over a validation log — our metrics.jsonl, or a TensorBoard scalar CSV with --params and
// --tokens-per-step — printing where it would grow, S_target and the implied saving.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { parseValidationLog } from '../scaling/logs';
import { TRIGGER_THRESHOLDS, findGrowthPoint, type TriggerOp, type TriggerResult } from '../scaling/trigger';
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

export function formatTrigger(r: TriggerResult, points: number): string {
  const head = `${r.op} (σ threshold ${r.threshold}): ${points} validation points, ${r.dropped.filter((d) => d.reason === 'spike').length} spikes dropped`;
  const steepest =
    r.minSigma === null || r.minSigmaIndex === null
      ? ''
      : `steepest σ = ${r.minSigma.toFixed(4)} at ${where(r.slopes.find((s) => s.index === r.minSigmaIndex)?.step ?? null, r.minSigmaIndex)}`;
  if (!r.reached) return [head, `not reached: ${r.reason}`, steepest].filter((l) => l !== '').join('\n');
  const lines = [head, `grow at ${where(r.step, r.index)}: val loss ${r.loss.toFixed(4)}, σ = ${r.sigma.toFixed(4)} (${steepest})`];
  if (r.sPre !== null && r.sTarget !== null)
    lines.push(
      `S_target = S_pre / c_op = ${r.sPre} / ${r.cOp} = ${Math.round(r.sTarget)} (the grown model resumes the target schedule there)`,
    );
  else lines.push(`S_target = S_pre / ${r.cOp} (the log has no steps)`);
  if (r.saving === null) lines.push('implied saving: unknown (σ outside the law’s range; give --final-steps)');
  else
    lines.push(
      `implied saving ${(100 * r.saving).toFixed(1)}% = (S_target − S_pre/${r.growthFactor}) / S_opt, ` +
        (r.savingBasis === 'final-steps'
          ? `S_opt = ${r.sOpt} (given)`
          : `S_opt = ${(r.sOptOverSPre as number).toFixed(3)}·S_pre${r.sOpt === null ? '' : ` ≈ ${fmtCount(r.sOpt)}`} (law: the large model trained to its compute-optimal loss)`),
    );
  return lines.join('\n');
}

export function registerSlope(program: Command): void {
  program
    .command('slope')
    .description('measure σ = d log L / d log C on a validation log and find where to grow (the online trigger)')
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
      'Δx of σ: log10 compute averaged over the window like the loss (default), or raw',
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
      const result = findGrowthPoint(points, {
        op: f.op,
        window: f.window,
        xSmoothing: f.xSmoothing,
        law,
        ...(f.threshold !== undefined ? { threshold: f.threshold } : {}),
        ...(f.finalSteps !== undefined ? { finalSteps: f.finalSteps } : {}),
      });
      output(f.json, { ...result, points: points.length }, () => formatTrigger(result, points.length));
    });
}
