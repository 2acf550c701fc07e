// Validation logs for the trigger and the fit. Trigger: our metrics.jsonl (lib/train/metrics.ts: records with `valLoss`;
// cumulative compute = their `compute`, the spec's 6·N·tokens over stages, or `flops` in older logs) or a TensorBoard scalar CSV export (`Wall time,Step,Value`), whose
// compute is 6·N·T·step for N non-embedding parameters and T tokens per step. Fit: one run's
// metrics.jsonl with its size, or a points file.
import { z } from 'zod';
import { parseJsonLines } from '../io/jsonl';
import type { FitPoint } from './fit';
import type { ValPoint } from './trigger';
import { formatIssues } from '../validate';

export interface ValidationLogOptions {
  /** 'auto': a first line starting with '{' is metrics.jsonl, anything else a CSV. */
  format?: 'auto' | 'metrics' | 'csv';
  /** Non-embedding parameters N (CSV; metrics records without `flops`). */
  params?: number;
  /** Tokens per step T (CSV). */
  tokensPerStep?: number;
}

function parseMetrics(text: string, o: ValidationLogOptions): ValPoint[] {
  const out: ValPoint[] = [];
  let segment = 0;
  // schedule position − step: a growth places the grown model at R (its event's schedulePos)
  let offset = 0;
  for (const { value: rec, line } of parseJsonLines(text, 'metrics')) {
    if (typeof rec !== 'object' || rec === null) continue;
    const r = rec as Record<string, unknown>;
    // the trainer's trigger curve restarts at each growth
    if (r.event === 'growth') segment++;
    // (a resume records it too: a run grown by `staged-lm grow` has no growth in its log)
    if ((r.event === 'growth' || r.event === 'resume') && typeof r.schedulePos === 'number' && typeof r.step === 'number')
      offset = r.schedulePos - r.step;
    if ('event' in r || typeof r.valLoss !== 'number') continue;
    const step = typeof r.step === 'number' ? r.step : undefined;
    let compute: number;
    // the trainer's records carry the spec's compute (6·N·tokens over stages) beside its FLOPs
    if (typeof r.compute === 'number') compute = r.compute;
    else if (typeof r.flops === 'number') compute = r.flops;
    else if (typeof r.tokens === 'number' && o.params !== undefined) compute = 6 * o.params * r.tokens;
    else throw new Error(`metrics line ${line}: a valLoss record without 'flops' (give --params to use 6·N·tokens)`);
    const p: ValPoint = { compute, loss: r.valLoss, segment };
    if (step !== undefined) p.step = step;
    if (step !== undefined && offset !== 0) p.schedulePos = step + offset;
    // an evaluation at the end of a session, off eval.interval: not in the trainer's trigger curve
    if (r.valOffInterval === true) p.offInterval = true;
    out.push(p);
  }
  return out;
}

function parseCsv(text: string, o: ValidationLogOptions): ValPoint[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  const header = lines[0].split(',').map((h) => h.trim().replace(/^"|"$/g, '').toLowerCase());
  const stepCol = header.indexOf('step');
  const valueCol = header.indexOf('value');
  if (stepCol < 0 || valueCol < 0)
    throw new Error(`CSV header must name 'Step' and 'Value' columns (TensorBoard export: Wall time,Step,Value); got '${lines[0]}'`);
  if (o.params === undefined || o.tokensPerStep === undefined)
    throw new Error('a TensorBoard CSV has steps but no compute: give --params N (non-embedding parameters) and --tokens-per-step T');
  const { params, tokensPerStep } = o;
  return lines.slice(1).map((line, i) => {
    const cells = line.split(',');
    const step = Number(cells[stepCol]);
    const loss = Number(cells[valueCol]);
    if (!Number.isFinite(step) || !Number.isFinite(loss))
      throw new Error(`CSV line ${i + 2}: Step and Value must be numbers (got '${line}')`);
    return { compute: 6 * params * tokensPerStep * step, loss, step };
  });
}

/** Parses a validation log into trigger points (in file order). */
export function parseValidationLog(text: string, opts: ValidationLogOptions = {}): ValPoint[] {
  const format = opts.format ?? 'auto';
  const first = text.trimStart();
  const metrics = format === 'metrics' || (format === 'auto' && first.startsWith('{'));
  return metrics ? parseMetrics(text, opts) : parseCsv(text, opts);
}

/** A run's fit points and the tokens per step its records show. */
export interface RunFitPoints {
  points: FitPoint[];
  /** tokens/step of the run's records (one value for the whole run), or null when they have no tokens. */
  tokensPerStep: number | null;
}

/**
 * Fit points from one run's metrics.jsonl: {N, S = step, L = valLoss} for every record with valLoss and
 * step > 0 — off-interval evaluations included (valid measurements of the loss at their step). A staged
 * run is refused: after a growth the points belong to another size, and its steps resume another
 * model's schedule; the fit needs from-scratch runs. `name` names the log in errors.
 */
export function fitPointsFromMetrics(text: string, params: number, name = 'metrics'): RunFitPoints {
  const points: FitPoint[] = [];
  const ratios = new Set<number>();
  for (const { value: rec, line } of parseJsonLines(text, name)) {
    if (typeof rec !== 'object' || rec === null) continue;
    const r = rec as Record<string, unknown>;
    if (r.event === 'growth')
      throw new Error(
        `${name} line ${line}: a growth at step ${String(r.step)}: this is a staged run; fit needs from-scratch runs (one size each)`,
      );
    // a run resumed past a growth (a checkpoint `staged-lm grow` wrote, say): its log holds no growth
    if (r.event === 'resume' && typeof r.stage === 'number' && r.stage > 0)
      throw new Error(
        `${name} line ${line}: resumed at step ${String(r.step)} in stage ${r.stage}, after a growth: this is a staged run; fit needs from-scratch runs (one size each)`,
      );
    // a fine-tune: its losses start from trained weights, not from the size's own curve
    const initFrom = r.event === 'init' ? r.from : r.event === 'resume' ? r.initFrom : undefined;
    if (typeof initFrom === 'string')
      throw new Error(
        `${name} line ${line}: a fine-tune of ${initFrom} (initFrom): its losses start from trained weights; fit needs from-scratch runs (one size each)`,
      );
    if ('event' in r) continue;
    if (typeof r.step === 'number' && r.step > 0 && typeof r.tokens === 'number' && r.tokens > 0)
      ratios.add(Number((r.tokens / r.step).toPrecision(12)));
    if (typeof r.valLoss === 'number' && typeof r.step === 'number' && r.step > 0) points.push({ N: params, S: r.step, L: r.valLoss });
  }
  if (ratios.size > 1)
    throw new Error(
      `${name}: tokens per step change within the run (${[...ratios].slice(0, 3).join(', ')}…): its steps are not one unit for the fit`,
    );
  return { points, tokensPerStep: ratios.size === 1 ? [...ratios][0] : null };
}

const FitPointSchema = z
  .object({
    N: z.number().positive(),
    S: z.number().positive().optional(),
    tokens: z.number().positive().optional(),
    L: z.number().positive(),
  })
  .strict()
  .refine((p) => p.S !== undefined || p.tokens !== undefined, { message: 'give S or tokens' });

/**
 * Fit points from JSON (an array, or {points: [...]}, pretty-printed or not) or JSON lines, each
 * {N, S | tokens, L}. The whole text is tried as one JSON value first; failing that, as JSON lines.
 * Points are numbered from 1 in errors.
 */
export function parseFitPoints(text: string): FitPoint[] {
  const t = text.trim();
  let raw: unknown[];
  let whole: unknown;
  let wholeError: string | null = null;
  try {
    whole = JSON.parse(t);
  } catch (e) {
    wholeError = e instanceof Error ? e.message : String(e);
  }
  if (wholeError === null) {
    raw = Array.isArray(whole)
      ? whole
      : typeof whole === 'object' && whole !== null && 'points' in whole
        ? (() => {
            const v = (whole as { points: unknown }).points;
            if (!Array.isArray(v)) throw new Error(`points: 'points' must be an array (got ${typeof v})`);
            return v as unknown[];
          })()
        : [whole];
  } else if (t.startsWith('[')) {
    throw new Error(`points: not JSON (${wholeError})`);
  } else
    raw = t
      .split(/\r?\n/)
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          return JSON.parse(l) as unknown;
        } catch (e) {
          throw new Error(
            `points line ${i + 1}: not JSON (${e instanceof Error ? e.message : String(e)}); the file is neither one JSON value (${wholeError}) nor JSON lines`,
          );
        }
      });
  return raw.map((p, i) => {
    const r = FitPointSchema.safeParse(p);
    if (!r.success) throw new Error(`point ${i + 1}: ${formatIssues(r.error, '(point)')}`);
    return r.data;
  });
}

/**
 * Where a validation curve first reaches `loss`, on the axis `at` reads off each point (step,
 * compute, …), interpolated linearly between evaluations; null when it never gets there.
 */
export function firstReach<P extends { loss: number }>(curve: P[], loss: number, at: (p: P) => number): number | null {
  const i = curve.findIndex((v) => v.loss <= loss);
  if (i < 0) return null;
  if (i === 0) return at(curve[0]);
  const p = curve[i - 1];
  const q = curve[i];
  return at(p) + ((p.loss - loss) / (p.loss - q.loss)) * (at(q) - at(p));
}
