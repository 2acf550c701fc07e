// `staged-lm report`: loss against cumulative FLOPs with growth points (SVG) and the stage table.
import type { Command } from 'commander';
import { formatComparison } from '../train/compare';
import { writeReport } from '../train/report';
import { output } from './common';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('plot loss against cumulative FLOPs with the growth points marked (report.svg) and print the stage table')
    .requiredOption('--run <dir>', 'run directory (with metrics.jsonl)')
    .option(
      '--baseline <dir>',
      "a from-scratch run to overlay and compare with: where the run, once grown, reaches the baseline's final loss, and the compute saved",
    )
    .option(
      '--json',
      "print one JSON object: svg, table, and stages as the table shows them (tokens and flops: the stage's own; cumulativeTokens and cumulativeFlops: the run's totals at the stage's end), earlyStop, skippedUpdates, initFrom (a fine-tune's starting weights), comparison (with --baseline)",
    )
    .action((f: { run: string; baseline?: string; json?: boolean }) => {
      const r = writeReport(f.run, f.baseline);
      output(
        f.json,
        {
          svg: r.svg,
          table: r.table,
          stages: r.stages,
          earlyStop: r.earlyStop,
          skippedUpdates: r.skippedUpdates,
          initFrom: r.initFrom,
          ...(f.baseline === undefined ? {} : { comparison: r.comparison }),
        },
        () =>
          [
            r.table,
            ...(f.baseline === undefined
              ? []
              : [r.comparison === null ? 'baseline: no validation loss in its log to compare with' : formatComparison(r.comparison)]),
            `plot: ${r.svg}`,
          ].join('\n'),
      );
    });
}
