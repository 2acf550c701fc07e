// Where a step's time goes, by kind of work, from Chrome traces of libtorch's profiler: ours
// (`staged-lm bench --profile FILE`, one step) and PyTorch's (`python3 bench/profile-reference.py
// --trace FILE`, --steps of them), through one classifier (lib/train/trace-summary.ts). One JSON
// line per trace; given two, a last line with each kind's ms per step side by side and the ratio of
// the first to the second.
//   node dist/bench/trace-summary.js OURS.json[:STEPS] [PYTORCH.json[:STEPS]]   (STEPS default 1)
import { readTrace, summarizeTrace, type TraceSummary } from '../lib/train/trace-summary';

function parseArg(arg: string): { file: string; steps: number } {
  const m = /^(.*):(\d+)$/.exec(arg);
  if (m === null) return { file: arg, steps: 1 };
  const steps = Number(m[2]);
  if (steps < 1) throw new Error(`${arg}: the steps after ':' must be a positive integer`);
  return { file: m[1], steps };
}

function main(args: string[]): void {
  if (args.length < 1 || args.length > 2 || args.some((a) => a.startsWith('-'))) {
    process.stderr.write('usage: node dist/bench/trace-summary.js TRACE.json[:STEPS] [OTHER.json[:STEPS]]\n');
    process.exit(2);
  }
  const summaries: (TraceSummary & { trace: string })[] = args.map(parseArg).map(({ file, steps }) => ({
    trace: file,
    ...summarizeTrace(readTrace(file), steps),
  }));
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

try {
  main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`trace-summary: ${(e as Error).message}\n`);
  process.exit(1);
}
