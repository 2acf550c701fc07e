// `staged-lm plan`: the multi-stage plan for a target loss under a scaling law (Kaplan's or fitted
// constants), per ../shared/spec/schedule.md "The planner"; and `staged-lm fit`: fitting the law's
// constants to the validation curves of a few small runs, written as a law file for `plan --law FILE`.
import { readFileSync, writeFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { fitScalingLaw, lawWarnings, type FitPoint } from '../scaling/fit';
import { KAPLAN, lawFromJson, type ScalingLaw } from '../scaling/kaplan';
import { fitPointsFromMetrics, parseFitPoints } from '../scaling/logs';
import { planStages, type Plan, type PlanOptionsInput } from '../scaling/planner';
import { fmtFlops, output, positiveInt, positiveNumber } from './common';

/**
 * 'kaplan' or a JSON file with the constants (or a fit result holding them under `law`); `batchTokens`:
 * the fixed batch (tokens per step) of the steps the law was fitted on, where the file records one (a
 * `staged-lm fit` result: its top-level `batchTokens`), else null.
 */
export function loadLaw(spec: string | undefined): { law: ScalingLaw; source: string; batchTokens: number | null } {
  if (spec === undefined || spec === 'kaplan') return { law: { ...KAPLAN }, source: 'kaplan', batchTokens: null };
  let text: string;
  try {
    text = readFileSync(spec, 'utf8');
  } catch (e) {
    throw new Error(`cannot read law file '${spec}': ${e instanceof Error ? e.message : String(e)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`law file '${spec}' is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const law = lawFromJson(value);
  for (const w of lawWarnings(law)) process.stderr.write(`staged-lm: note: law file '${spec}': ${w}: a plan from it says little\n`);
  if (typeof value === 'object' && value !== null && (value as { converged?: unknown }).converged === false)
    process.stderr.write(
      `staged-lm: note: law file '${spec}' is a fit that did not converge: its constants may be far from the data's best fit (refit with more points)\n`,
    );
  const b = typeof value === 'object' && value !== null && 'law' in value ? (value as { batchTokens?: unknown }).batchTokens : undefined;
  if (b !== undefined && b !== null && !(typeof b === 'number' && b > 0 && Number.isFinite(b)))
    throw new Error(`law file '${spec}': batchTokens must be a positive number or null (got ${JSON.stringify(b)})`);
  return { law, source: spec, batchTokens: typeof b === 'number' ? b : null };
}

function factorList(v: string): number[] {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 1))
    throw new InvalidArgumentError(`--factors must be a comma-separated list of numbers > 1 (got '${v}')`);
  return xs;
}

function factorRange(v: string): { min: number; max: number } {
  const m = /^\s*([0-9.eE+]+)\s*:\s*([0-9.eE+]+)\s*$/.exec(v);
  const min = m ? Number(m[1]) : NaN;
  const max = m ? Number(m[2]) : NaN;
  if (!(min >= 1) || !(max > min) || !Number.isFinite(max))
    throw new InvalidArgumentError(`--factor-range must be MIN:MAX with 1 ≤ MIN < MAX (got '${v}')`);
  return { min, max };
}

function finalSize(v: string): 'optimal' | 'free' | number {
  if (v === 'optimal' || v === 'free') return v;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`--final-size must be 'optimal', 'free' or a parameter count (got '${v}')`);
  return n;
}

function stagesArg(v: string): number {
  const n = positiveInt('--stages')(v);
  if (n > 8) throw new InvalidArgumentError(`--stages must be at most 8 (got '${v}')`);
  return n;
}

function batchMode(v: string): 'target' | 'per-stage' {
  if (v !== 'target' && v !== 'per-stage') throw new InvalidArgumentError(`--batch must be 'target' or 'per-stage' (got '${v}')`);
  return v;
}

/** 23.2k, 1.50M, 26.1B: three significant digits, the unit chosen after rounding (999.9k → 1.00M). */
export function fmtCount(x: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  if (x === 0 || !Number.isFinite(x)) return String(x);
  if (Math.abs(Number((x / 1e12).toPrecision(3))) >= 1000) return x.toExponential(2);
  for (const [v, u] of units) {
    const r = (x / v).toPrecision(3);
    if (Math.abs(Number(r)) >= 1) return `${r}${u}`;
  }
  return x.toPrecision(3);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** The plan as a table. batchSource: where a fixed batch came from (the law file's record, or --batch-tokens). */
export function formatPlan(plan: Plan, lawSource: string, batchSource: 'law' | 'flag' = 'law'): string {
  const rows = [
    ['stage', 'params', 'growth', 'loss start → end', 'steps', 'tokens', 'FLOPs', 'PF-days'],
    ...plan.stages.map((s) => [
      String(s.index),
      s.params.toExponential(3),
      s.factor === null ? '—' : `×${Number(s.factor.toPrecision(4))}`,
      `${s.startLoss === null ? 'scratch' : s.startLoss.toFixed(4)} → ${s.endLoss.toFixed(4)}`,
      s.empty ? '0 (empty)' : fmtCount(s.steps),
      fmtCount(s.tokens),
      fmtFlops(s.flops),
      s.pfDays.toPrecision(4),
    ]),
    [
      'total',
      '',
      '',
      '',
      fmtCount(plan.totalSteps),
      fmtCount(plan.totalTokens),
      fmtFlops(plan.totalFlops),
      plan.totalPfDays.toPrecision(4),
    ],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const one = plan.singleStage;
  const batch =
    plan.batch === 'fixed'
      ? `B = ${fmtCount(plan.batchTokens as number)} tokens per step (fixed, ${batchSource === 'law' ? 'the batch the law was fitted at' : "the batch given for the law's steps"}); steps are steps at that batch, tokens = steps·B`
      : `${
          plan.batch === 'target'
            ? `B = Bcrit(L_target) = ${fmtCount(plan.stages[plan.stages.length - 1].batchTokens)} tokens`
            : 'B = Bcrit(end loss) per stage'
        }; steps are critical-batch steps`;
  const lines = [
    `target loss ${plan.targetLoss} (law: ${lawSource}), ${plan.stages.length} stage${plan.stages.length === 1 ? '' : 's'}, ${batch}`,
    ...rows.map((r) => r.map((c, i) => pad(c, widths[i])).join('  ')),
    `single stage: N = ${one.params.toExponential(3)}, ${fmtCount(one.steps)} steps, ${fmtCount(one.tokens)} tokens, ${fmtFlops(one.flops)}, ${one.pfDays.toPrecision(4)} PF-days`,
    `staged / single stage = ${plan.computeRatio.toFixed(4)}: saving ${(100 * plan.saving).toFixed(1)}%`,
  ];
  if (Math.abs(plan.sameSizeSingleStage.params - one.params) > 1e-9 * one.params)
    lines.push(
      `(versus one stage of the final size ${plan.sameSizeSingleStage.params.toExponential(3)}: ${(plan.totalFlops / plan.sameSizeSingleStage.flops).toFixed(4)})`,
    );
  for (const n of plan.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

interface PlanFlags {
  targetLoss: number;
  stages: number;
  law?: string;
  factors?: number[];
  factorRange?: { min: number; max: number };
  freeFactors?: boolean;
  finalSize: 'optimal' | 'free' | number;
  batch?: 'target' | 'per-stage';
  batchTokens?: number;
  json?: boolean;
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('plan the stages (sizes, steps, tokens, FLOPs) that reach a target loss with the least compute, under a scaling law')
    .requiredOption('--target-loss <L>', 'target validation loss (nats/token)', positiveNumber('--target-loss'))
    .option('--stages <K>', 'number of stages (K − 1 growths), 1 to 8', stagesArg, 2)
    .option(
      '--law <kaplan|FILE>',
      "law constants: 'kaplan' or a JSON file ({Nc, alphaN, Sc, alphaS[, Bstar, alphaB]}, or a `staged-lm fit` result)",
      'kaplan',
    )
    .option('--factors <list>', 'growth factors in parameters the operators provide (depth 2, width 4, both 8)', factorList)
    .option('--factor-range <min:max>', 'any growth factor in [min, max] instead of a set', factorRange)
    .option('--free-factors', 'any growth factor (the range 1:1000)')
    .option(
      '--final-size <N|optimal|free>',
      "size of the last stage: 'optimal' (the single-stage optimum), 'free', or a parameter count",
      finalSize,
      'optimal',
    )
    .option(
      '--batch <target|per-stage>',
      'batch of every stage: Bcrit(L_target) (the default), or Bcrit of each stage’s end loss (critical-batch laws: not for a law fitted at a fixed batch)',
      batchMode,
    )
    .option(
      '--batch-tokens <B>',
      "the batch, in tokens per step, at which a law file's steps were counted (tokens = steps·B): for a law file that does not record it (a `staged-lm fit` file does); not for kaplan, whose steps are critical-batch steps",
      positiveNumber('--batch-tokens'),
    )
    .option('--json', 'print one JSON object')
    .action((f: PlanFlags) => {
      const chosen = [f.factors !== undefined, f.factorRange !== undefined, f.freeFactors === true].filter(Boolean).length;
      if (chosen > 1) throw new Error('give only one of --factors, --factor-range, --free-factors');
      const { law, source, batchTokens: lawBatch } = loadLaw(f.law);
      if (f.batch !== undefined && f.batchTokens !== undefined) throw new Error('give only one of --batch, --batch-tokens');
      if (f.batch !== undefined && lawBatch !== null)
        throw new Error(
          `law file '${source}' was fitted on steps at a fixed batch of ${lawBatch} tokens: its steps are not critical-batch steps, so --batch ${f.batch} does not apply (the plan counts tokens = steps·${lawBatch}; a plan at another batch needs a law fitted there)`,
        );
      // a law's steps are counted at one batch: Kaplan's at the critical batch (steps at another
      // batch B are S_min·(1 + Bcrit/B), not what its L(N, S) counts), a fitted law's at the batch
      // it was fitted at. --batch-tokens only says at which batch a law's steps were counted.
      if (f.batchTokens !== undefined && source === 'kaplan')
        throw new Error(
          "Kaplan's law counts steps at the critical batch: --batch-tokens does not apply to it (at another batch B it takes S_min·(1 + Bcrit/B) steps, which its L(N, S) does not count); plan with --batch target or per-stage, or with a law fitted at your batch (staged-lm fit)",
        );
      if (f.batchTokens !== undefined && lawBatch !== null && f.batchTokens !== lawBatch)
        throw new Error(
          `law file '${source}' was fitted on steps at a batch of ${lawBatch} tokens: its steps say nothing about a batch of ${f.batchTokens} (fit runs at that batch for a law of its own)`,
        );
      const fixed = f.batchTokens ?? lawBatch;
      const factors: PlanOptionsInput['factors'] = f.freeFactors
        ? { kind: 'range', min: 1, max: 1000 }
        : f.factorRange
          ? { kind: 'range', ...f.factorRange }
          : { kind: 'set', values: f.factors ?? [2, 4, 8] };
      const plan = planStages({
        targetLoss: f.targetLoss,
        stages: f.stages,
        factors,
        finalSize: f.finalSize,
        ...(fixed !== null ? { batch: 'fixed', batchTokens: fixed } : { batch: f.batch ?? 'target' }),
        law,
      });
      output(f.json, { ...plan, lawSource: source }, () =>
        formatPlan(plan, source, f.batchTokens !== undefined && lawBatch === null ? 'flag' : 'law'),
      );
    });
}

interface FitFlags {
  points?: string;
  run: string[];
  batchTokens?: number;
  minSteps?: number;
  out?: string;
  json?: boolean;
}

function collectRun(v: string, prev: string[]): string[] {
  const i = v.lastIndexOf(':');
  if (i <= 0 || i === v.length - 1)
    throw new InvalidArgumentError(`--run must be FILE:N (metrics.jsonl and its non-embedding parameter count; got '${v}')`);
  const n = Number(v.slice(i + 1));
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`--run '${v}': N must be a positive number of non-embedding parameters (got '${v.slice(i + 1)}')`);
  return [...prev, v];
}

export function registerFit(program: Command): void {
  program
    .command('fit')
    .description('fit L(N, S) = (Nc/N)^αN + (2·Sc/S)^αS to validation curves of small runs; --out writes a law file for `plan --law`')
    .option('--points <file>', 'a JSON array, {"points": [...]} or JSON lines of {N, S | tokens, L}')
    .option(
      '--run <file:N>',
      "a from-scratch run's metrics.jsonl and its non-embedding parameter count (repeatable); S = step, every valLoss record " +
        '(the end-of-session ones too); a staged run (a log with a growth event, or resumed past one) is refused: its points after a growth belong to another size',
      collectRun,
      [],
    )
    .option(
      '--batch-tokens <B>',
      "tokens per step: converts points given in tokens, and records that the steps are at this fixed batch (default: the runs' tokens per step, which must agree)",
      positiveNumber('--batch-tokens'),
    )
    .option(
      '--min-steps <S>',
      'leave out points before step S (the warmup and the first drop, where L(N, S) does not hold yet)',
      positiveNumber('--min-steps'),
    )
    .option('--out <file>', 'write the fit (constants under `law`, the fixed batch as `batchTokens`, errors) as JSON')
    .option('--json', 'print one JSON object')
    .action((f: FitFlags) => {
      const points: FitPoint[] = [];
      const read = (file: string, what: string) => {
        try {
          return readFileSync(file, 'utf8');
        } catch (e) {
          throw new Error(`fit: cannot read ${what} '${file}': ${e instanceof Error ? e.message : String(e)}`);
        }
      };
      if (f.points !== undefined)
        points.push(
          ...parseFitPoints(read(f.points, '--points')).map((p, k) => ({ ...p, source: `point ${k + 1} of --points ${f.points}` })),
        );
      // the batch of the runs' steps: one for all (and --batch-tokens', when given), so that S is one unit
      const batches: { run: string; tokensPerStep: number }[] = [];
      for (const r of f.run) {
        const i = r.lastIndexOf(':');
        const file = r.slice(0, i);
        const run = fitPointsFromMetrics(read(file, '--run'), Number(r.slice(i + 1)), file);
        points.push(...run.points.map((p) => ({ ...p, source: `the evaluation at step ${p.S} of --run ${r}` })));
        if (run.tokensPerStep !== null) batches.push({ run: r, tokensPerStep: run.tokensPerStep });
      }
      if (points.length === 0) throw new Error('fit: give --points FILE and/or --run FILE:N');
      const agreed = f.batchTokens ?? batches[0]?.tokensPerStep;
      const other = batches.find((b) => agreed !== undefined && Math.abs(b.tokensPerStep / agreed - 1) > 1e-9);
      if (other !== undefined)
        throw new Error(
          `fit: --run ${other.run} trains ${other.tokensPerStep} tokens per step, but ${f.batchTokens !== undefined ? `--batch-tokens is ${f.batchTokens}` : `--run ${batches[0].run} ${agreed}`}: ` +
            'the steps S of one fit must be steps at one batch (give the points in tokens instead)',
        );
      // (a point's step: S, or its tokens at the agreed batch)
      const stepOf = (p: FitPoint) => p.S ?? (p.tokens !== undefined && agreed !== undefined ? p.tokens / agreed : undefined);
      const kept = f.minSteps === undefined ? points : points.filter((p) => (stepOf(p) ?? Infinity) >= f.minSteps!);
      const leftOut = points.length - kept.length;
      if (leftOut > 0 && kept.length < 5)
        throw new Error(`fit: --min-steps ${f.minSteps} leaves ${kept.length} of the ${points.length} points: the fit needs at least 5`);
      const result = { ...fitScalingLaw(kept, agreed === undefined ? {} : { batchTokens: agreed }), leftOut };
      if (f.out !== undefined) writeFileSync(f.out, JSON.stringify(result, null, 2) + '\n');
      const l = result.law;
      output(f.json, result, () =>
        [
          `fitted on ${result.points} points${leftOut > 0 ? ` (${leftOut} before step ${f.minSteps} left out)` : ''}: Nc = ${l.Nc.toExponential(4)}, αN = ${l.alphaN.toFixed(4)}, Sc = ${l.Sc.toExponential(4)}, αS = ${l.alphaS.toFixed(4)} (B* = ${l.Bstar.toExponential(3)}, αB = ${l.alphaB} kept)`,
          `error: RMS ${(100 * result.rmsRelativeError).toFixed(2)}%, max ${(100 * result.maxRelativeError).toFixed(2)}% (relative loss)${result.converged ? '' : '; did not converge'}` +
            // four constants from n points: with few to spare the error says little about the law
            (result.points - 4 < 4
              ? ` — ${result.points} points for 4 constants: ${result.points - 4} to spare, so a small error proves little`
              : ''),
          result.batchTokens !== null
            ? `steps are at a fixed batch of ${result.batchTokens} tokens (${f.batchTokens !== undefined ? '--batch-tokens' : "the runs' logs"}): a plan from this law counts tokens = steps·${result.batchTokens}`
            : "steps of unknown batch: a plan reads them as critical-batch steps (Kaplan's B*); give --batch-tokens B if they are steps at a fixed batch",
          ...result.warnings.map((w) => `note: ${w}: a plan from this law says little`),
          ...(f.out !== undefined ? [`written to ${f.out} (use: staged-lm plan --law ${f.out} --target-loss L)`] : []),
        ].join('\n'),
      );
    });
}
