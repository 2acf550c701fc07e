#!/usr/bin/env node
// The `staged-lm` command line. Each command takes --json for one machine-readable object on stdout;
// human-readable output and progress go to stderr/stdout as each command documents.
import { Command, CommanderError } from 'commander';
import { registerBench } from './bench';
import { registerDemo } from './demo';
import { doctorReport, formatDoctor } from './doctor';
import { registerEval } from './eval';
import { registerGrow } from './grow';
import { registerLaunch } from './launch';
import { registerPrepare } from './prepare';
import { registerFit, registerPlan } from './plan';
import { registerReport } from './report';
import { registerSlope } from './slope';
import { registerSample } from './sample';
import { registerTrain } from './train';
import { packageVersion } from './version';

export function buildProgram(): Command {
  const program = new Command();
  program.name('staged-lm').description('Staged training of GPT-style language models over libtorch').version(packageVersion());
  // `launch` passes everything after its own options to the ranks' command
  program.enablePositionalOptions();
  registerTrain(program);
  registerEval(program);
  registerSample(program);
  registerGrow(program);
  registerReport(program);
  registerPlan(program);
  registerSlope(program);
  registerFit(program);
  registerPrepare(program);
  registerBench(program);
  registerDemo(program);
  registerLaunch(program);
  program
    .command('doctor')
    .description('libtorch version and source, build type, CUDA availability, device names and memory')
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean }) => {
      const report = doctorReport();
      process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : formatDoctor(report) + '\n');
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    // an action may have set an exit code (130 after Ctrl-C, 3 after divergence)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    process.stderr.write(`staged-lm: ${e instanceof Error ? e.message : String(e)}\n`);
    // an action that failed may have chosen its code (3: training diverged)
    return typeof process.exitCode === 'number' && process.exitCode !== 0 ? process.exitCode : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
