#!/usr/bin/env node
// The `staged-lm` command line. Each command takes --json for one machine-readable object on stdout
// (its result, or `{ error }` when it fails); human-readable output and progress go to stderr/stdout
// as each command documents.
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
import { TrainingDivergedError } from '../train/trainer';
import { watchLauncher } from '../distributed/launch';
import { launchedRank } from './common';
import { stopRequested } from './stop-signals';
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

/**
 * Whether the command asked for --json: its parsed options once an action began, else (a usage
 * error) the command's own words — those before `--`, and for `launch` those before the ranks'
 * command, which has its own --json.
 */
function jsonRequested(argv: string[], actionOpts: Record<string, unknown> | undefined): boolean {
  if (actionOpts !== undefined) return actionOpts.json === true;
  const dashes = argv.indexOf('--');
  const own = dashes < 0 ? argv : argv.slice(0, dashes);
  if (own[0] !== 'launch' || dashes >= 0) return own.includes('--json');
  // launch without `--`: its own options end at the ranks' command, its first positional word
  const takesValue = new Set(['-n', '--nproc', '--master-port', '--grace']);
  for (let i = 1; i < own.length; i++) {
    if (own[i] === '--json') return true;
    if (!own[i].startsWith('-')) return false;
    if (takesValue.has(own[i])) i++;
  }
  return false;
}

/**
 * A failed --json command's one object on stdout: `{ error: { message, exitCode, ... } }`, with a
 * divergence's step, what went non-finite and its value, so that a script reads why it failed
 * without parsing stderr (which carries the same message).
 */
export function errorObject(e: unknown, exitCode: number): { error: Record<string, unknown> } {
  const error: Record<string, unknown> = { message: e instanceof Error ? e.message : String(e), exitCode };
  if (e instanceof CommanderError) error.code = e.code;
  if (e instanceof TrainingDivergedError)
    error.diverged = {
      step: e.step,
      what: e.what,
      // NaN and ±Infinity have no JSON number
      value: Number.isFinite(e.value) ? e.value : String(e.value),
    };
  return { error };
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // commander's errors as exceptions, not process.exit: a subcommand does not inherit this from
  // its parent once created, so each gets it
  const overrideExits = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(overrideExits);
  };
  overrideExits(program);
  let actionOpts: Record<string, unknown> | undefined;
  program.hook('preAction', (_program, action) => {
    actionOpts = action.opts();
  });
  const fail = (e: unknown, code: number): number => {
    // (data parallel: rank 0's object only, as a result is rank 0's; every rank's message is on stderr)
    if (code !== 0 && jsonRequested(argv, actionOpts) && launchedRank() === 0)
      process.stdout.write(JSON.stringify(errorObject(e, code)) + '\n');
    return code;
  };
  try {
    await program.parseAsync(argv, { from: 'user' });
    // an action may have set an exit code (130 after Ctrl-C, 3 after divergence)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    // commander has written its message to stderr (and --help / --version exit 0)
    if (e instanceof CommanderError) return fail(e, e.exitCode);
    process.stderr.write(`staged-lm: ${e instanceof Error ? e.message : String(e)}\n`);
    // an action that failed may have chosen its code (3: training diverged)
    return fail(e, typeof process.exitCode === 'number' && process.exitCode !== 0 ? process.exitCode : 1);
  }
}

if (require.main === module) {
  watchLauncher(stopRequested); // (a rank of `launch`: stop with a checkpoint should the launcher die)
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
