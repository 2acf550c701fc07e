// bench/gpu-vs-torch.sh's comparison of its JSON lines: one ratio line per run of ours against
// PyTorch eager on the same shape (--json, what the script prints), or the README's GPU table, so
// that a GPU session pastes measured numbers rather than retyping them: one row per shape with
// PyTorch eager's ms/step, ours eager and as a replayed CUDA graph (ms/step and tokens/s ratio to
// PyTorch eager), and the memory ratios to PyTorch's peak allocated bytes (each of ours as its
// `peak_mem_kind` says: eager rows count peak allocated bytes, graph rows all reserved bytes, an
// upper bound); with runs of staged-lm's fused kernels, two columns per combination too.
//   node dist/bench/gpu-table.js BENCH.jsonl [DATE]      (or the lines on stdin: -)
//   node dist/bench/gpu-table.js --json BENCH.jsonl
import { readFileSync } from 'node:fs';

/** One JSON line of `staged-lm bench` or torch_reference.py (the fields the table uses). */
export interface BenchRow {
  impl: string;
  model: string;
  batch: number;
  seq: number;
  ms_per_step: number;
  tokens_per_s?: number;
  peak_mem_gib?: number | null;
  peak_mem_kind?: 'allocated' | 'reserved';
  final_loss?: number;
  device?: string;
  torch?: string;
  failed?: boolean;
}

/** The runs that measured something, and PyTorch eager's run of a row's shape. */
function measuredRuns(rows: BenchRow[]): { measured: BenchRow[]; refs: BenchRow[]; refFor: (r: BenchRow) => BenchRow | undefined } {
  const key = (r: BenchRow): string => `${r.model} ${r.batch}×${r.seq}`;
  const measured = rows.filter((r) => r.failed !== true && typeof r.ms_per_step === 'number');
  const refs = measured.filter((r) => r.impl === 'pytorch-eager');
  return { measured, refs, refFor: (r) => refs.find((ref) => key(ref) === key(r)) };
}

/** One line per run of ours: tokens/s and peak-memory ratios to PyTorch eager's run of that shape. */
export function ratioLines(rows: BenchRow[]): object[] {
  const { measured, refFor } = measuredRuns(rows);
  return measured.flatMap((ours) => {
    const ref = refFor(ours);
    if (!ours.impl.startsWith('staged-lm') || ref === undefined) return [];
    return [
      {
        shape: `${ours.model} b${ours.batch}x${ours.seq}`,
        impl: ours.impl,
        tokens_per_s_ratio: ours.tokens_per_s && ref.tokens_per_s ? +(ours.tokens_per_s / ref.tokens_per_s).toFixed(3) : null,
        ms_per_step: { ours: ours.ms_per_step, pytorch: ref.ms_per_step },
        peak_mem_ratio: ours.peak_mem_gib != null && ref.peak_mem_gib ? +(ours.peak_mem_gib / ref.peak_mem_gib).toFixed(3) : null,
        final_loss: { ours: ours.final_loss, pytorch: ref.final_loss },
        device: ref.device,
      },
    ];
  });
}

const SHAPE_NAMES: Record<string, string> = { '124M': 'GPT-2 124M', '350M': '350M', tiny: 'tiny 4×256' };

function ratio(a: number | null | undefined, b: number | null | undefined, digits: number): string {
  return a == null || b == null || b === 0 ? '–' : (a / b).toFixed(digits);
}

const times = (x: string): string => (x === '–' ? x : `${x}×`);

/** Markdown: a line naming the GPU, then the table (one row per shape PyTorch eager ran). */
export function formatGpuTable(rows: BenchRow[], date: string): string {
  const { measured, refs, refFor } = measuredRuns(rows);
  // runs with staged-lm's fused kernels (impl suffixes '+fused-loss', '+fused-norm') get two more
  // columns per combination that ran: eager and CUDA graph, each with its memory ratio
  const suffixes = [
    ...new Set(measured.map((r) => /^staged-lm(-cuda-graph)?(\+.+)$/.exec(r.impl)?.[2]).filter((x): x is string => x !== undefined)),
  ];
  const label = (suffix: string): string => 'fused ' + suffix.split('+fused-').filter(Boolean).join(' + ');
  const lines = [
    '| shape | PyTorch eager ms/step | staged-lm eager ms/step (ratio tokens/s) | staged-lm CUDA graph ms/step (ratio) | memory ours/PyTorch peak: eager (graph) |' +
      suffixes.map((x) => ` eager, ${label(x)}: ms/step (ratio; memory) | CUDA graph, ${label(x)} |`).join(''),
    '| --- | --- | --- | --- | --- |' + suffixes.map(() => ' --- | --- |').join(''),
  ];
  for (const ref of refs) {
    const find = (impl: string): BenchRow | undefined => measured.find((r) => r.impl === impl && refFor(r) === ref);
    const time = (r: BenchRow | undefined): string =>
      r === undefined ? 'failed or not run' : `${r.ms_per_step.toFixed(2)} (${times(ratio(r.tokens_per_s, ref.tokens_per_s, 3))})`;
    const memory = (r: BenchRow | undefined): string => {
      const x = ratio(r?.peak_mem_gib, ref.peak_mem_gib, 2);
      return r?.peak_mem_kind === 'reserved' && x !== '–' ? `${x} reserved` : x;
    };
    const eager = find('staged-lm');
    const graph = find('staged-lm-cuda-graph');
    const name = `${SHAPE_NAMES[ref.model] ?? ref.model}, ${ref.batch}×${ref.seq}`;
    let row = `| ${name} | ${ref.ms_per_step.toFixed(2)} | ${time(eager)} | ${time(graph)} | ${memory(eager)} (${memory(graph)}) |`;
    const withMemory = (r: BenchRow | undefined): string => (r === undefined ? time(r) : time(r).replace(/\)$/, `; ${memory(r)})`));
    for (const x of suffixes) row += ` ${withMemory(find(`staged-lm${x}`))} | ${withMemory(find(`staged-lm-cuda-graph${x}`))} |`;
    lines.push(row);
  }
  const device = refs.find((r) => r.device)?.device;
  const torch = refs.find((r) => r.torch)?.torch;
  const where = device === undefined ? '' : ` on one **${device}**${torch === undefined ? '' : ` (PyTorch ${torch})`}`;
  return [`Measured ${date}${where}, same run for all columns (\`bash bench/gpu-vs-torch.sh\`):`, '', ...lines].join('\n');
}

/**
 * The bench rows among the lines: JSON objects with `impl` and `model` (gpu-vs-torch.sh's ratio
 * lines have no `model`); other lines, and a line cut short (a run stopped by a time limit), are
 * skipped.
 */
export function parseBenchLines(text: string): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    let r: Partial<BenchRow>;
    try {
      r = JSON.parse(line) as Partial<BenchRow>;
    } catch {
      continue;
    }
    if (typeof r.impl === 'string' && typeof r.model === 'string') rows.push(r as BenchRow);
  }
  return rows;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const json = args[0] === '--json';
  const [file, date = new Date().toISOString().slice(0, 10)] = json ? args.slice(1) : args;
  const rows = parseBenchLines(readFileSync(file === undefined || file === '-' ? 0 : file, 'utf8'));
  const out = json ? ratioLines(rows).map((l) => JSON.stringify(l)) : [formatGpuTable(rows, date)];
  process.stdout.write(out.join('\n') + '\n');
}
