// `staged-lm report`: loss against cumulative FLOPs with growth points (SVG) and the stage table.
import type { Command } from 'commander';
import { writeReport } from '../train/report';
import { output } from './common';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('plot loss against cumulative FLOPs with the growth points marked (report.svg) and print the stage table')
    .requiredOption('--run <dir>', 'run directory (with metrics.jsonl)')
    .option('--baseline <dir>', 'a from-scratch run to overlay')
    .option(
      '--json',
      "print one JSON object: svg, and stages as the table shows them (tokens and flops: the stage's own; cumulativeTokens and cumulativeFlops: the run's totals at the stage's end), earlyStop, skippedUpdates, initFrom (a fine-tune's starting weights)",
    )
    .action((f: { run: string; baseline?: string; json?: boolean }) => {
      const r = writeReport(f.run, f.baseline);
      output(
        f.json,
        { svg: r.svg, stages: r.stages, earlyStop: r.earlyStop, skippedUpdates: r.skippedUpdates, initFrom: r.initFrom },
        () => `${r.table}\nplot: ${r.svg}`,
      );
    });
}
