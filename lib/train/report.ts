// A run report: loss against cumulative FLOPs with the growth points marked, as an SVG next to
// metrics.jsonl, and a small per-stage table. With a baseline run (e.g. the final size from
// scratch) its curve is overlaid. The SVG is written directly: the plotting libraries on npm that
// render without a browser are ESM-only (vega) or need a native canvas.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parseJsonLines } from '../io/jsonl';
import { compareWithBaseline, type BaselineComparison } from './compare';

// what readRun uses of each kind of record (other fields pass): a line that lacks it is named
const Size = z.object({ nLayer: z.number(), nEmbd: z.number() });
const ResumeRecord = z.object({
  event: z.literal('resume'),
  step: z.number(),
  stage: z.number(),
  tokens: z.number(),
  flops: z.number(),
  size: Size.optional(),
  initFrom: z.string().optional(),
});
const InitRecord = z.object({ event: z.literal('init'), step: z.number(), from: z.string() });
const GrowthRecord = z.object({ event: z.literal('growth'), step: z.number(), stage: z.number(), op: z.string(), from: Size, to: Size });
const StepRecordShape = z.object({ step: z.number(), tokens: z.number(), flops: z.number() });

function checked<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.join('.') || '(record)'}: ${i.message}`).join('; ');
  throw new Error(`${where}: not a record this log's writer makes (${issues})`);
}

interface Point {
  flops: number;
  loss: number;
}

/** A validation point: also its step and the spec's compute (6·N·tokens over stages; absent in older logs). */
export interface ValPointRecord extends Point {
  step: number;
  compute?: number;
}

/** A stage as read from the log: its counters are the run's cumulative ones at the stage's end. */
export interface StageRow {
  stage: number;
  fromStep: number;
  toStep: number;
  size: string;
  /** Cumulative tokens and FLOPs at the end of the stage (see stageRows for the stage's own). */
  tokens: number;
  flops: number;
  finalLoss: number | null;
  finalValLoss: number | null;
}

export interface RunCurves {
  train: Point[];
  val: ValPointRecord[];
  growths: { step: number; flops: number; op: string; to: string }[];
  stages: StageRow[];
  /** Tokens and FLOPs before the log's first step: 0, or a resumed run's counters (its `resume` event). */
  origin: { tokens: number; flops: number };
  /** The step of the run's `early-stop` event (eval.patience), null where it has none or went on past it. */
  earlyStop: number | null;
  /** Updates skipped under loss scaling (records with skipped: true). */
  skippedUpdates: number;
  /** Where a fine-tune's weights came from (its `init` event, or a resume event's initFrom); null from scratch. */
  initFrom: string | null;
}

/** Reads metrics.jsonl into curves, growth points and per-stage rows. */
export function readRun(dir: string): RunCurves {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) throw new Error(`${dir}: no metrics.jsonl`);
  const train: Point[] = [];
  const val: ValPointRecord[] = [];
  const growths: RunCurves['growths'] = [];
  const stages: StageRow[] = [];
  let current: StageRow = { stage: 0, fromStep: 0, toStep: 0, size: '', tokens: 0, flops: 0, finalLoss: null, finalValLoss: null };
  let origin = { tokens: 0, flops: 0 };
  let seen = false; // a step record or a growth: a resume event after one is a resume in place
  let earlyStop: number | null = null;
  let skippedUpdates = 0;
  let initFrom: string | null = null;
  for (const { value, line } of parseJsonLines(readFileSync(path, 'utf8'), path)) {
    const where = `${path} line ${line}`;
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new Error(`${where}: not a record this log's writer makes (a JSON object)`);
    const r = value as Record<string, unknown>;
    if (r.event === 'resume') checked(ResumeRecord, r, where);
    else if (r.event === 'growth') checked(GrowthRecord, r, where);
    else if (r.event === 'init') initFrom = checked(InitRecord, r, where).from;
    else if (r.event === undefined && r.step !== undefined) checked(StepRecordShape, r, where);
    if (r.event === 'resume' && typeof r.initFrom === 'string') initFrom = r.initFrom;
    if (r.event === 'resume' && !seen) {
      // the log of a run resumed into this directory starts mid-run: its first stage starts here
      const size = r.size as { nLayer: number; nEmbd: number } | undefined;
      origin = { tokens: r.tokens as number, flops: r.flops as number };
      current = {
        ...current,
        stage: r.stage as number,
        fromStep: r.step as number,
        toStep: r.step as number,
        size: size === undefined ? '' : `${size.nLayer}×${size.nEmbd}`,
        ...origin,
      };
      continue;
    }
    if (r.event === 'growth' || (typeof r.step === 'number' && r.event === undefined)) seen = true;
    if (r.event === 'growth') {
      const to = r.to as { nLayer: number; nEmbd: number };
      const from = r.from as { nLayer: number; nEmbd: number };
      if (current.size === '') current.size = `${from.nLayer}×${from.nEmbd}`;
      stages.push(current);
      const flops = train.length ? train[train.length - 1].flops : 0;
      growths.push({ step: r.step as number, flops, op: r.op as string, to: `${to.nLayer}×${to.nEmbd}` });
      current = {
        stage: r.stage as number,
        fromStep: r.step as number,
        toStep: r.step as number,
        size: `${to.nLayer}×${to.nEmbd}`,
        tokens: current.tokens,
        flops: current.flops,
        finalLoss: null,
        finalValLoss: null,
      };
      continue;
    }
    if (r.event === 'early-stop' && typeof r.step === 'number') earlyStop = r.step;
    if (typeof r.step !== 'number' || r.event !== undefined) continue;
    if (r.skipped === true) skippedUpdates += 1;
    if (earlyStop !== null && r.step > earlyStop) earlyStop = null; // (resumed past it)
    const flops = r.flops as number;
    if (typeof r.loss === 'number') train.push({ flops, loss: r.loss });
    if (typeof r.valLoss === 'number') {
      val.push({ flops, loss: r.valLoss, step: r.step, ...(typeof r.compute === 'number' ? { compute: r.compute } : {}) });
      current.finalValLoss = r.valLoss;
    }
    current.toStep = r.step;
    current.tokens = r.tokens as number;
    current.flops = flops;
    current.finalLoss = typeof r.loss === 'number' ? r.loss : null;
  }
  // the last stage's size where no growth event names it (a run that never grew): its checkpoint's
  if (current.size === '') current.size = checkpointSize(dir);
  stages.push(current);
  return { train, val, growths, stages, origin, earlyStop, skippedUpdates, initFrom };
}

/** `L×d` of the run's checkpoint (config.json in HF's names), or '' without a readable one. */
function checkpointSize(dir: string): string {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'checkpoint', 'config.json'), 'utf8')) as { n_layer?: unknown; n_embd?: unknown };
    return typeof c.n_layer === 'number' && typeof c.n_embd === 'number' ? `${c.n_layer}×${c.n_embd}` : '';
  } catch {
    return '';
  }
}

/** A row of the stage table: the stage's own tokens and FLOPs, and the run's totals at its end. */
export interface StageTableRow {
  stage: number;
  fromStep: number;
  toStep: number;
  size: string;
  /** Tokens and FLOPs of this stage alone (what the table shows). */
  tokens: number;
  flops: number;
  /** The run's cumulative tokens and FLOPs at the end of the stage (a resumed run's counters included). */
  cumulativeTokens: number;
  cumulativeFlops: number;
  finalLoss: number | null;
  finalValLoss: number | null;
}

/** The stage table's rows: tokens and FLOPs per stage (the counters are cumulative in the log). */
export function stageRows(run: RunCurves): StageTableRow[] {
  let prevTokens = run.origin.tokens;
  let prevFlops = run.origin.flops;
  return run.stages.map((s) => {
    const row: StageTableRow = {
      stage: s.stage,
      fromStep: s.fromStep,
      toStep: s.toStep,
      size: s.size,
      tokens: s.tokens - prevTokens,
      flops: s.flops - prevFlops,
      cumulativeTokens: s.tokens,
      cumulativeFlops: s.flops,
      finalLoss: s.finalLoss,
      finalValLoss: s.finalValLoss,
    };
    prevTokens = s.tokens;
    prevFlops = s.flops;
    return row;
  });
}

/** The stage table: tokens and FLOPs per stage (stageRows). */
export function stageTable(run: RunCurves): string {
  const rows = run.initFrom === null ? [] : [`initialized from ${run.initFrom} (a fine-tune)`];
  rows.push('stage  steps          size        tokens       FLOPs      loss  val loss');
  for (const s of stageRows(run))
    rows.push(
      `${String(s.stage).padStart(5)}  ${`${s.fromStep}–${s.toStep}`.padEnd(13)}  ${s.size.padEnd(9)}  ${String(s.tokens).padStart(10)}  ${s.flops.toExponential(2).padStart(10)}  ${s.finalLoss === null ? '     -' : s.finalLoss.toFixed(3).padStart(8)}  ${s.finalValLoss === null ? '       -' : s.finalValLoss.toFixed(3).padStart(8)}`,
    );
  if (run.earlyStop !== null) rows.push(`stopped early at step ${run.earlyStop} (eval.patience)`);
  if (run.skippedUpdates > 0) rows.push(`${run.skippedUpdates} update(s) skipped under loss scaling (gradients overflowed)`);
  return rows.join('\n');
}

/** Smooths a noisy training curve for plotting (running mean). */
function smooth(points: Point[], window: number): Point[] {
  return points.map((p, i) => {
    const from = Math.max(0, i - window + 1);
    const slice = points.slice(from, i + 1);
    return { flops: p.flops, loss: slice.reduce((a, q) => a + q.loss, 0) / slice.length };
  });
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** The SVG: log10 FLOPs on x, loss on y; train (smoothed) and validation; growth markers; optional baseline. */
export function renderSvg(run: RunCurves, baseline: RunCurves | null, title: string): string {
  const W = 720;
  const H = 420;
  const m = { l: 60, r: 20, t: 40, b: 50 };
  const series: { name: string; points: Point[]; color: string; dash?: string; width: number }[] = [
    { name: 'train (smoothed)', points: smooth(run.train, 20), color: '#9ecae1', width: 1.5 },
    { name: 'validation', points: run.val, color: '#08519c', width: 2.5 },
  ];
  if (baseline) {
    series.push({ name: 'baseline train (smoothed)', points: smooth(baseline.train, 20), color: '#fdae6b', width: 1.5 });
    series.push({ name: 'baseline validation', points: baseline.val, color: '#d94801', width: 2.5, dash: '6 3' });
  }
  const all = series.flatMap((s) => s.points).filter((p) => p.flops > 0 && Number.isFinite(p.loss));
  if (all.length === 0)
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="20" y="40">no data</text></svg>`;
  const x0 = Math.log10(Math.min(...all.map((p) => p.flops)));
  const x1 = Math.log10(Math.max(...all.map((p) => p.flops)));
  const y0 = Math.min(...all.map((p) => p.loss));
  const y1 = Math.max(...all.map((p) => p.loss));
  const X = (f: number) => m.l + ((Math.log10(f) - x0) / Math.max(x1 - x0, 1e-9)) * (W - m.l - m.r);
  const Y = (l: number) => m.t + ((y1 - l) / Math.max(y1 - y0, 1e-9)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">cumulative training FLOPs (log scale)</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">loss (nats/token)</text>`,
  ];
  for (let e = Math.ceil(x0); e <= Math.floor(x1); e++) {
    const x = X(10 ** e);
    out.push(
      `<line x1="${x}" y1="${H - m.b}" x2="${x}" y2="${H - m.b + 5}" stroke="black"/><text x="${x}" y="${H - m.b + 18}" text-anchor="middle">1e${e}</text>`,
    );
  }
  for (let k = 0; k <= 5; k++) {
    const l = y0 + ((y1 - y0) * k) / 5;
    out.push(
      `<line x1="${m.l - 5}" y1="${Y(l)}" x2="${m.l}" y2="${Y(l)}" stroke="black"/><text x="${m.l - 8}" y="${Y(l) + 4}" text-anchor="end">${l.toFixed(2)}</text>`,
    );
  }
  run.growths.forEach((g, i) => {
    if (g.flops <= 0) return;
    const x = X(g.flops);
    // labels stacked so that close growth points stay readable
    out.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${H - m.b}" stroke="#31a354" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${x - 4}" y="${m.t + 12 + 14 * i}" text-anchor="end" fill="#31a354">${esc(`${g.op} → ${g.to} @${g.step}`)}</text>`);
  });
  for (const s of series) {
    const pts = s.points.filter((p) => p.flops > 0 && Number.isFinite(p.loss));
    if (pts.length === 0) continue;
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${X(p.flops).toFixed(1)},${Y(p.loss).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
  }
  // legend in the lower left, where loss curves of training runs rarely go
  series.forEach((s, i) => {
    const y = H - m.b - 12 - 16 * (series.length - 1 - i);
    const x = m.l + 12;
    out.push(
      `<line x1="${x}" y1="${y}" x2="${x + 20}" y2="${y}" stroke="${s.color}" stroke-width="${s.width}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/><text x="${x + 26}" y="${y + 4}">${esc(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Writes DIR/report.svg and returns its path, the stage table and its rows. */
export function writeReport(
  dir: string,
  baselineDir?: string,
): {
  svg: string;
  table: string;
  stages: StageTableRow[];
  earlyStop: number | null;
  skippedUpdates: number;
  initFrom: string | null;
  /** With a baseline: where the run reaches its final loss, and the compute saved (see compare.ts); else null. */
  comparison: BaselineComparison | null;
} {
  const run = readRun(dir);
  const baseline = baselineDir === undefined ? null : readRun(baselineDir);
  const svg = join(dir, 'report.svg');
  writeFileSync(svg, renderSvg(run, baseline, baseline ? 'staged run vs baseline' : 'loss vs compute'));
  return {
    svg,
    table: stageTable(run),
    stages: stageRows(run),
    earlyStop: run.earlyStop,
    skippedUpdates: run.skippedUpdates,
    initFrom: run.initFrom,
    comparison: baseline === null ? null : compareWithBaseline(run, baseline, dir, baselineDir as string),
  };
}
