// `staged-lm launch -n N -- <command…>`: N ranks of a data-parallel job on this machine, with
// torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
// Like torchrun: when a rank fails the others get a grace period to fail on their own (their
// collectives report the dead peer), then are terminated; the launcher exits with the first
// failure's code. The ranks run in process groups of their own, and the launcher forwards the
// signals it gets to them, as torchrun does: Ctrl-C, SIGTERM (a scheduler's stop; SIGHUP as
// SIGTERM) reach every rank exactly once whether they were sent to the terminal's group or to the
// launcher alone, and a second one quits the ranks at once. Ranks whose launcher is gone (killed
// with SIGKILL) stop on their own with a checkpoint (watchLauncher).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism, constants } from 'node:os';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { handleStops } from '../cli/stop-signals';
import { createInterface } from 'node:readline';

export interface LaunchOptions {
  /** Ranks to start. */
  nproc: number;
  /** The command each rank runs; `staged-lm` as its first word runs this package's CLI. */
  command: string[];
  /** Rendezvous port on 127.0.0.1 (default: a free one). */
  masterPort?: number;
  /** Seconds the other ranks get to exit on their own after one failed (default 30). */
  graceSeconds?: number;
  /** Prefix each output line with [rank r] (default true when nproc > 1). */
  tagOutput?: boolean;
  /** Extra environment for every rank. */
  env?: NodeJS.ProcessEnv;
  /** Where the ranks' stdout goes (default process.stdout). */
  stdout?: NodeJS.WritableStream;
}

export interface LaunchResult {
  /** 0 when every rank succeeded, else the first failing rank's exit code (128+signal if killed). */
  code: number;
  ranks: { rank: number; code: number | null; signal: NodeJS.Signals | null }[];
  /** The rank that failed first, or null. */
  firstFailure: number | null;
  masterPort: number;
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

const CLI = resolve(__dirname, '..', 'cli', 'main.js');

/**
 * Signals a rank still running: its whole process group (the rank leads one of its own), so that a
 * rank started through a wrapper (`-- bash -c '…'`, `-- npx staged-lm …`) gets it as well.
 */
function signalRank(c: ChildProcess, signal: NodeJS.Signals): void {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  try {
    process.kill(-c.pid, signal);
  } catch {
    c.kill(signal); // (its group is gone: the rank alone)
  }
}

/**
 * Whether a process of this pid is running: signal 0 checks without sending (EPERM: it exists),
 * and on Linux a zombie — dead, not yet reaped by its parent — counts as gone.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // (no /proc: the signal's answer stands)
  }
}

/** Set in every rank's environment: the launcher's pid (watchLauncher). */
export const LAUNCHER_PID_ENV = 'STAGED_LM_LAUNCHER_PID';

/**
 * In a rank that launch started: when the launcher is gone (killed with SIGKILL, so that it could
 * not forward a stop), the rank stops as on SIGTERM — a checkpoint, then exit — instead of training
 * on unseen, and its output to the launcher's closed pipes is dropped rather than crashing it.
 * Checked every `everyMs`; nothing to do outside launch.
 */
export function watchLauncher(isStopping: () => boolean = () => false, everyMs = 2000): void {
  const launcher = Number(process.env[LAUNCHER_PID_ENV]);
  if (!Number.isInteger(launcher) || launcher <= 0) return;
  // (a closed pipe, or a terminal hung up under --no-tag: the output is lost, the rank goes on)
  ignoreLostOutput();
  // a launcher this process cannot see (another pid namespace: unshare, a container) is not watched
  if (process.ppid !== launcher && !alive(launcher)) return;
  const timer = setInterval(() => {
    // (the launcher need not be the parent: `launch -- npx staged-lm …` puts npx in between)
    if (process.ppid === launcher || alive(launcher)) return;
    clearInterval(timer);
    // (a rank already stopping — the launcher forwarded a stop, then was killed — is not asked again)
    if (!isStopping()) process.kill(process.pid, 'SIGTERM');
  }, everyMs);
  timer.unref();
}

/** The argv of one rank: `staged-lm …` runs this package's CLI with this Node. */
export function rankArgv(command: string[]): [string, string[]] {
  if (command.length === 0) throw new Error('launch: no command to run (staged-lm launch -n N -- staged-lm train …)');
  if (command[0] === 'staged-lm') return [process.execPath, [CLI, ...command.slice(1)]];
  return [command[0], command.slice(1)];
}

/**
 * A write that a terminal which hung up (EIO) or a closed pipe (EPIPE) loses instead of failing:
 * the launcher still has ranks to wait for. (A terminal's write fails at once, not as an event.)
 */
export function writeLost(out: NodeJS.WritableStream, text: string): void {
  try {
    out.write(text);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EIO' && code !== 'EPIPE') throw e;
  }
}

let lostOutputIgnored = false;

/**
 * Output lost instead of fatal: writes to a closed pipe (EPIPE) or a terminal that hung up (EIO)
 * fail as 'error' events on process.stdout/stderr, even after the last write; the process has work
 * left (a rank training, a launcher waiting for its ranks). Installed once.
 */
function ignoreLostOutput(): void {
  if (lostOutputIgnored) return;
  lostOutputIgnored = true;
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'EIO') throw e;
    });
}

function pipeTagged(stream: NodeJS.ReadableStream | null, out: NodeJS.WritableStream, tag: string): void {
  if (stream === null) return;
  // progress bars redraw with \r: keep them per line so tags stay readable
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => writeLost(out, `${tag}${line}\n`));
}

export async function launch(opts: LaunchOptions): Promise<LaunchResult> {
  const { nproc } = opts;
  if (!Number.isInteger(nproc) || nproc < 1) throw new Error(`launch: -n must be a positive integer (got ${nproc})`);
  const port = opts.masterPort ?? (await freePort());
  const [file, args] = rankArgv(opts.command);
  const tag = opts.tagOutput ?? nproc > 1;
  // torchrun's default: split the cores between the ranks unless the user chose
  const threads = String(Math.max(1, Math.floor(availableParallelism() / nproc)));
  const children: ChildProcess[] = [];
  const ranks: LaunchResult['ranks'] = [];
  let firstFailure: number | null = null;
  let firstCode = 0;
  let killTimer: NodeJS.Timeout | null = null;
  /** After SIGTERM, how long a rank may take to exit before it is killed (as torchrun does). */
  const KILL_AFTER_TERM_MS = 10_000;

  const exited = Array.from({ length: nproc }, (_, rank) => {
    const child = spawn(file, args, {
      // (no stdin: ranks in a process group of their own must not read the terminal)
      stdio: ['ignore', tag || opts.stdout !== undefined ? 'pipe' : 'inherit', tag ? 'pipe' : 'inherit'],
      // (its own process group: a terminal's Ctrl-C reaches it once, through the launcher)
      detached: true,
      env: {
        ...process.env,
        OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? threads,
        ...opts.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(nproc),
        LOCAL_WORLD_SIZE: String(nproc),
        GROUP_RANK: '0',
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        [LAUNCHER_PID_ENV]: String(process.pid),
      },
    });
    children.push(child);
    const prefix = tag ? `[rank ${rank}] ` : '';
    // a command asked for --json prints one JSON object from rank 0, the job's result: it stays
    // untagged so that it parses (its progress, on stderr, is still tagged)
    const stdoutPrefix = rank === 0 && opts.command.includes('--json') ? '' : prefix;
    if (tag || opts.stdout !== undefined) pipeTagged(child.stdout, opts.stdout ?? process.stdout, stdoutPrefix);
    if (tag) pipeTagged(child.stderr, process.stderr, prefix);
    return new Promise<void>((res) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        ranks[rank] = { rank, code, signal };
        if ((code !== 0 || signal !== null) && firstFailure === null) {
          firstFailure = rank;
          firstCode = code ?? 128 + (signal === null ? 1 : (constants.signals[signal] ?? 1));
          const grace = (opts.graceSeconds ?? 30) * 1000;
          // SIGTERM (a rank saves what it can), then SIGKILL for one still blocked on the dead rank
          killTimer = setTimeout(() => {
            for (const c of children) signalRank(c, 'SIGTERM');
            killTimer = setTimeout(() => {
              for (const c of children) signalRank(c, 'SIGKILL');
            }, KILL_AFTER_TERM_MS);
          }, grace);
        }
        res();
      };
      child.on('error', (e) => {
        writeLost(process.stderr, `launch: rank ${rank} could not start ${file}: ${e.message}\n`);
        done(127, null);
      });
      child.on('exit', done);
    });
  });
  // the signals the launcher gets go to every rank still running; it waits for their checkpoints.
  // The same stop twice (npm wrapping the launcher forwards what the terminal already sent) is
  // forwarded once: the ranks would take a second one as "quit at once" (handleStops).
  // (a write to a terminal that hung up fails: the launcher still has ranks to wait for)
  const say = (text: string) => writeLost(process.stderr, text);
  // (a rank saves and exits on SIGINT or SIGTERM, and quits at once on a later second one)
  const forward = (signal: NodeJS.Signals) => {
    for (const c of children) signalRank(c, signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
  };
  const removeStops = handleStops(
    (signal) => {
      say(
        `launch: ${signal === 'SIGINT' ? 'interrupted' : `asked to stop (${signal})`} — waiting for the ranks to save and exit (again to quit at once)\n`,
      );
      forward(signal);
    },
    (signal) => {
      say('launch: the ranks quit at once\n');
      forward(signal);
    },
    ['SIGINT', 'SIGTERM', 'SIGHUP'],
  );
  ignoreLostOutput();
  // Ctrl-Z pauses the ranks with the launcher (they are not in the terminal's process group)
  const pause = () => {
    for (const c of children) signalRank(c, 'SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  };
  const resume = () => {
    for (const c of children) signalRank(c, 'SIGCONT');
  };
  process.on('SIGTSTP', pause);
  process.on('SIGCONT', resume);
  try {
    await Promise.all(exited);
  } finally {
    removeStops();
    process.off('SIGTSTP', pause);
    process.off('SIGCONT', resume);
    if (killTimer !== null) clearTimeout(killTimer);
  }
  return { code: firstFailure === null ? 0 : firstCode, ranks, firstFailure, masterPort: port };
}
