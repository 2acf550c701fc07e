// The README's GPU table from bench/gpu-vs-torch.sh's JSON lines, so that a GPU session pastes
// measured numbers rather than retyping them: one row per shape with PyTorch eager's ms/step, ours
// eager and as a replayed CUDA graph (ms/step and tokens/s ratio to PyTorch eager), and the
// memory ratios (eager: peak allocated against PyTorch's; graph: reserved against PyTorch's peak
// allocated, an upper bound).
//   node dist/bench/gpu-table.js BENCH.jsonl      (or the lines on stdin)
import { readFileSync } from 'node:fs';

/** One JSON line of `staged-lm bench` or torch_reference.py (the fields the table uses). */
export interface BenchRow {
  impl: string;
  model: string;
  batch: number;
  seq: number;
  ms_per_step: number;
  tokens_per_s: number;
  peak_mem_gib: number | null;
  device?: string;
  torch?: string;
  failed?: boolean;
}

const SHAPE_NAMES: Record<string, string> = { '124M': 'GPT-2 124M', '350M': '350M', tiny: 'tiny 4×256' };

function ratio(a: number | null | undefined, b: number | null | undefined, digits: number): string | null {
  return a == null || b == null || b === 0 ? null : (a / b).toFixed(digits);
}

/** Markdown table (header, rule, one row per shape PyTorch eager ran) from the bench lines. */
export function formatGpuTable(rows: BenchRow[]): string {
  const key = (r: BenchRow): string => `${r.model} ${r.batch}×${r.seq}`;
  const measured = rows.filter((r) => r.failed !== true && typeof r.ms_per_step === 'number');
  const refs = measured.filter((r) => r.impl === 'pytorch-eager');
  const lines = [
    '| shape | PyTorch eager ms/step | staged-lm eager ms/step (ratio tokens/s) | staged-lm CUDA graph ms/step (ratio) | peak memory ours/PyTorch: eager (graph, reserved) |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const ref of refs) {
    const find = (impl: string): BenchRow | undefined => measured.find((r) => r.impl === impl && key(r) === key(ref));
    const cell = (r: BenchRow | undefined): string =>
      r === undefined ? 'failed or not run' : `${r.ms_per_step.toFixed(2)} (${ratio(r.tokens_per_s, ref.tokens_per_s, 3)}×)`;
    const eager = find('staged-lm');
    const graph = find('staged-lm-cuda-graph');
    const mem = (r: BenchRow | undefined): string => ratio(r?.peak_mem_gib, ref.peak_mem_gib, 2) ?? '–';
    const name = `${SHAPE_NAMES[ref.model] ?? ref.model}, ${ref.batch}×${ref.seq}`;
    lines.push(`| ${name} | ${ref.ms_per_step.toFixed(2)} | ${cell(eager)} | ${cell(graph)} | ${mem(eager)} (${mem(graph)}) |`);
  }
  const device = refs.find((r) => r.device)?.device;
  const torch = refs.find((r) => r.torch)?.torch;
  if (device !== undefined)
    lines.unshift(
      `Measured ${new Date().toISOString().slice(0, 10)} on one ${device}${torch === undefined ? '' : ` (PyTorch ${torch})`}:`,
      '',
    );
  return lines.join('\n');
}

/** JSON lines (others, such as gpu-vs-torch.sh's ratio lines, are skipped when they lack `impl`). */
export function parseBenchLines(text: string): BenchRow[] {
  return text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Partial<BenchRow>)
    .filter((r): r is BenchRow => typeof r.impl === 'string' && typeof r.model === 'string');
}

if (require.main === module) {
  const file = process.argv[2];
  const text = readFileSync(file === undefined || file === '-' ? 0 : file, 'utf8');
  process.stdout.write(formatGpuTable(parseBenchLines(text)) + '\n');
}
