// `staged-lm launch -n N -- <command…>`: N data-parallel ranks on this machine (torchrun's
// environment); see lib/distributed/launch.ts.
import type { Command } from 'commander';
import { distributedUnavailableReason } from '../distributed/process-group';
import { launch, writeLost } from '../distributed/launch';
import { nonNegativeInt, positiveInt } from './common';

interface LaunchFlags {
  nproc: number;
  masterPort?: number;
  grace: number;
  tag: boolean;
  json?: boolean;
}

export function registerLaunch(program: Command): void {
  program
    .command('launch')
    .description(
      "run N data-parallel ranks of a command on this machine with torchrun's environment, e.g. staged-lm launch -n 2 -- staged-lm train --config run.json",
    )
    .requiredOption('-n, --nproc <n>', 'ranks (processes) to start', positiveInt('--nproc'))
    .option('--master-port <port>', 'rendezvous port on 127.0.0.1 (default: a free one)', positiveInt('--master-port'))
    .option(
      '--grace <seconds>',
      'after a rank fails, seconds the others get to exit before they are terminated',
      nonNegativeInt('--grace'),
      30,
    )
    .option('--no-tag', 'do not prefix output lines with [rank r]')
    .option('--json', "print one JSON object (every rank's exit) on stdout; the ranks' output goes to stderr")
    .argument('<command...>', 'the command each rank runs (after --)')
    .passThroughOptions()
    .action(async (command: string[], f: LaunchFlags) => {
      const reason = distributedUnavailableReason();
      if (reason !== null) throw new Error(`launch: ${reason}`);
      const r = await launch({
        nproc: f.nproc,
        command,
        masterPort: f.masterPort,
        graceSeconds: f.grace,
        tagOutput: f.tag && f.nproc > 1,
        stdout: f.json ? process.stderr : process.stdout,
      });
      if (f.json) writeLost(process.stdout, JSON.stringify(r) + '\n');
      if (r.firstFailure !== null) {
        const first = r.ranks[r.firstFailure];
        const all = r.ranks.map((x) => `rank ${x.rank}: ${x.signal ?? x.code}`).join(', ');
        // every rank stopped by Ctrl-C or a termination request, each with its checkpoint: no failure
        const stopped = r.ranks.every((x) => x.code === 130 || x.code === 143 || x.signal === 'SIGINT' || x.signal === 'SIGTERM');
        writeLost(
          process.stderr,
          stopped
            ? `staged-lm launch: interrupted; ${all}\n`
            : `staged-lm launch: rank ${r.firstFailure} failed first (${first.signal ?? `exit code ${first.code}`}); ${all}\n`,
        );
      }
      process.exitCode = r.code;
    });
}
