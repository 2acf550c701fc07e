// Helpers shared by the commands: option parsing with clear errors, JSON vs human output.
import { InvalidArgumentError } from 'commander';
import { distributedEnv } from '../distributed/process-group';

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    // (a safe integer: 1e20 is an integer to JavaScript, and no count or seed)
    if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer below 2^53 (got '${v}')`);
    return n;
  };
}

export function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer below 2^53 (got '${v}')`);
    return n;
  };
}

export function nonNegativeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number (got '${v}')`);
    return n;
  };
}

/** A dropout probability: 0 ≤ p < 1. */
export function probability(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`${name} must be a probability in [0, 1) (got '${v}')`);
    return n;
  };
}

export function device(v: string): string {
  if (!/^(cpu|cuda(:\d+)?)$/.test(v)) throw new InvalidArgumentError(`device must be cpu, cuda or cuda:N (got '${v}')`);
  return v;
}

/**
 * This process's rank when `staged-lm launch` or torchrun started it with others (they mark their
 * ranks: STAGED_LM_LAUNCHER_PID, TORCHELASTIC_RUN_ID); 0 otherwise — a process that only has RANK
 * in its environment (a Kubernetes worker pod, say) prints its own results — or when the
 * variables do not parse.
 */
export function launchedRank(): number {
  if (process.env.STAGED_LM_LAUNCHER_PID === undefined && process.env.TORCHELASTIC_RUN_ID === undefined) return 0;
  try {
    return distributedEnv()?.rank ?? 0;
  } catch {
    return 0;
  }
}

/**
 * A command's result on stdout: one JSON object, or its human form. Under launch or torchrun, rank
 * 0's alone (every rank computes the same; a pipe into jq reads one object).
 */
export function output(json: boolean | undefined, obj: unknown, human: () => string): void {
  if (launchedRank() > 0) return;
  process.stdout.write(json ? JSON.stringify(obj) + '\n' : human() + '\n');
}

export function fmtFlops(f: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
  let v = f;
  let i = 0;
  // (999.999e18 rounds to 1000.00: that is 1.00 of the next unit)
  while (Number(v.toFixed(2)) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return Number(v.toFixed(2)) >= 1000 ? `${f.toExponential(2)} FLOP` : `${v.toFixed(2)} ${units[i]}FLOP`;
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number (got '${v}')`);
    return n;
  };
}

/** A path or word as a shell reads it back in a command we suggest: quoted where it holds anything but safe characters. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
