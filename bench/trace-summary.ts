// Where a step's time goes, by kind of work, from Chrome traces of libtorch's profiler: ours
// (`staged-lm bench --profile FILE`, one step) and PyTorch's (`python3 bench/profile-reference.py
// --trace FILE`, --steps of them), through one classifier (lib/train/trace-summary.ts). One JSON
// line per trace; given two, a last line with each kind's ms per step side by side and the ratio of
// the first to the second.
// With --markdown and two traces: that comparison as a table for the README instead.
//   node dist/bench/trace-summary.js [--markdown] OURS.json[:STEPS] [PYTORCH.json[:STEPS]]   (STEPS default 1)
import { readTrace, summarizeTrace, type TraceSummary } from '../lib/train/trace-summary';

function parseArg(arg: string): { file: string; steps: number } {
  const m = /^(.*):(\d+)$/.exec(arg);
  if (m === null) return { file: arg, steps: 1 };
  const steps = Number(m[2]);
  if (steps < 1) throw new Error(`${arg}: the steps after ':' must be a positive integer`);
  return { file: m[1], steps };
}

function main(argv: string[]): void {
  const markdown = argv.includes('--markdown');
  const args = argv.filter((a) => a !== '--markdown');
  if (args.length < 1 || args.length > 2 || args.some((a) => a.startsWith('-')) || (markdown && args.length !== 2)) {
    process.stderr.write(
      'usage: node dist/bench/trace-summary.js [--markdown] TRACE.json[:STEPS] [OTHER.json[:STEPS]] (--markdown: two traces)\n',
    );
    process.exit(2);
  }
  const summaries: (TraceSummary & { trace: string })[] = args.map(parseArg).map(({ file, steps }) => ({
    trace: file,
    ...summarizeTrace(readTrace(file), steps),
  }));
  if (markdown) {
    process.stdout.write(markdownTable(summaries[0], summaries[1]) + '\n');
    return;
  }
  for (const s of summaries) process.stdout.write(JSON.stringify(s) + '\n');
  if (summaries.length === 2) {
    const [a, b] = summaries;
    const side = Object.fromEntries(
      sideBySide(a, b).map(({ kind, first, second }) => [
        kind,
        { first, second, ratio: second > 0 ? Math.round((first / second) * 1000) / 1000 : null },
      ]),
    );
    process.stdout.write(
      JSON.stringify({
        compare: [a.trace, b.trace],
        measure: a.measure,
        ms_per_step: {
          first: a.ms_per_step,
          second: b.ms_per_step,
          ratio: b.ms_per_step > 0 ? Math.round((a.ms_per_step / b.ms_per_step) * 1000) / 1000 : null,
        },
        kernels_per_step: { first: a.kernels_per_step, second: b.kernels_per_step },
        by_kind_ms: side,
      }) + '\n',
    );
  }
}

/** Every kind either trace has, with each one's ms per step (0 where it has none). */
function sideBySide(a: TraceSummary, b: TraceSummary): { kind: string; first: number; second: number }[] {
  const kinds = [...new Set([...Object.keys(a.by_kind_ms), ...Object.keys(b.by_kind_ms)])];
  return kinds.map((kind) => ({ kind, first: a.by_kind_ms[kind] ?? 0, second: b.by_kind_ms[kind] ?? 0 }));
}

/** Kind by kind, ms per step of each and the ratio, the larger kinds first; totals and kernel counts last. */
export function markdownTable(a: TraceSummary, b: TraceSummary): string {
  const ratio = (x: number, y: number): string => (y > 0 ? (x / y).toFixed(2) : '–');
  const rows = sideBySide(a, b)
    .sort((x, y) => Math.max(y.first, y.second) - Math.max(x.first, x.second))
    .map(({ kind, first, second }) => `| ${kind} | ${first.toFixed(3)} | ${second.toFixed(3)} | ${ratio(first, second)} |`);
  return [
    `| kind of work (${a.measure}, ms/step) | staged-lm | PyTorch | ratio |`,
    '| --- | --- | --- | --- |',
    ...rows,
    `| **all** | **${a.ms_per_step.toFixed(3)}** | **${b.ms_per_step.toFixed(3)}** | **${ratio(a.ms_per_step, b.ms_per_step)}** |`,
    `| kernels per step | ${a.kernels_per_step} | ${b.kernels_per_step} | ${ratio(a.kernels_per_step, b.kernels_per_step)} |`,
  ].join('\n');
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`trace-summary: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
