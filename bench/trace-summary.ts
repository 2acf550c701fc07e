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
    const kinds = [...new Set([...Object.keys(a.by_kind_ms), ...Object.keys(b.by_kind_ms)])];
    const side = Object.fromEntries(
      kinds.map((k) => {
        const x = a.by_kind_ms[k] ?? 0;
        const y = b.by_kind_ms[k] ?? 0;
        return [k, { first: x, second: y, ratio: y > 0 ? Math.round((x / y) * 1000) / 1000 : null }];
      }),
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

/** Kind by kind, ms per step of each and the ratio, the larger kinds first; totals and kernel counts last. */
export function markdownTable(a: TraceSummary, b: TraceSummary): string {
  const kinds = [...new Set([...Object.keys(a.by_kind_ms), ...Object.keys(b.by_kind_ms)])].sort(
    (x, y) => Math.max(b.by_kind_ms[y] ?? 0, a.by_kind_ms[y] ?? 0) - Math.max(b.by_kind_ms[x] ?? 0, a.by_kind_ms[x] ?? 0),
  );
  const ratio = (x: number, y: number): string => (y > 0 ? (x / y).toFixed(2) : '–');
  const rows = kinds.map((k) => {
    const x = a.by_kind_ms[k] ?? 0;
    const y = b.by_kind_ms[k] ?? 0;
    return `| ${k} | ${x.toFixed(3)} | ${y.toFixed(3)} | ${ratio(x, y)} |`;
  });
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
