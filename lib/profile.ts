// A timeline of a piece of code as a Chrome trace (open it in Perfetto or chrome://tracing): the
// CPU operators and, on CUDA, every kernel, copy and memset with its device time. Recorded by
// libtorch's Kineto profiler, the one behind torch.profiler, so our traces and PyTorch's read
// alike; bench/trace-summary.ts splits either by kernel kind.
import { accessSync, constants, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { native } from './native';
import { synchronize } from './runtime';

/** Whether this libtorch can record profiles: built with Kineto, as pip's PyTorch is (Debian's libtorch is not). */
export function profilerAvailable(): boolean {
  return native.profilerAvailable();
}

/**
 * Refuses, naming `what`, a trace path that cannot be written: empty, a directory, or in a
 * directory that is missing or not writable. Checked before recording, not after.
 */
export function checkTracePath(path: string, what = 'profileToFile'): void {
  if (typeof path !== 'string' || path === '') throw new TypeError(`${what}: expected a file path for the trace`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`${what}: ${path} is a directory, not a file`);
  const dir = dirname(resolve(path));
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new Error(`${what}: cannot write the trace in ${dir} (missing or not writable)`);
  }
}

/**
 * Refuses, naming `what`, what would make a profile fail after the work it records: a libtorch
 * without Kineto, or a trace path that cannot be written (checkTracePath).
 */
export function checkProfiling(path: string, what: string): void {
  if (!profilerAvailable())
    throw new Error(`${what}: this libtorch was built without Kineto, libtorch's profiler (pip's PyTorch has it: LIBTORCH_USE_PYTORCH=1)`);
  checkTracePath(path, what);
}

/** The file being written and Kineto's own temporary beside it. */
function removePartial(partial: string): void {
  rmSync(partial, { force: true });
  rmSync(`${partial}.tmp`, { force: true });
}

/**
 * A recording in progress (one at a time, process-wide): `Profiler.start(path)`, then `stop()` to
 * write the trace or `discard()` to drop it. For code that is not one synchronous function, such
 * as a few steps of a training loop; otherwise profileToFile.
 */
export class Profiler {
  private open = true;
  /** Where the trace is written before it is renamed into place. */
  private readonly partial: string;

  private constructor(
    /** Where stop() writes the trace. */
    readonly path: string,
    private readonly cuda: boolean,
  ) {
    this.partial = `${path}.partial-${process.pid}`;
  }

  /**
   * Starts recording CPU operators and, with `cuda`, the device's activity. The path is checked
   * first: a path that cannot be written is refused before anything is recorded.
   */
  static start(path: string, opts: { cuda?: boolean } = {}): Profiler {
    checkTracePath(path);
    native.startProfile(opts.cuda === true);
    return new Profiler(path, opts.cuda === true);
  }

  /**
   * Stops recording (after synchronizing the device, so that its last kernels are in) and writes
   * the trace beside `path`, then renames it into place: `path` holds a whole trace or is left as
   * it was, and nothing is left behind when writing fails.
   */
  stop(): void {
    if (!this.open) throw new Error('this profile was already stopped');
    const { partial } = this;
    let written = false;
    try {
      if (this.cuda) synchronize();
    } finally {
      this.open = false;
      try {
        native.stopProfile(partial);
        written = true;
      } finally {
        if (!written) removePartial(partial);
      }
    }
    // Kineto reports a failed write in its log rather than as an error
    if (!existsSync(partial)) {
      removePartial(partial);
      throw new Error(`libtorch's profiler wrote no trace for ${this.path} (its log above says why)`);
    }
    try {
      renameSync(partial, this.path);
    } catch (e) {
      removePartial(partial);
      throw e;
    }
  }

  /** Stops recording and writes nothing (a failed or interrupted stretch). Does nothing once stopped. */
  discard(): void {
    if (!this.open) return;
    this.open = false;
    try {
      native.stopProfile(this.partial);
    } finally {
      removePartial(this.partial);
    }
  }
}

/**
 * Runs fn under libtorch's profiler and writes the trace to `path` (Chrome trace JSON), as
 * Profiler.stop() does: whole or not at all. With `cuda` (default: false) the device's activity is
 * recorded too. When fn throws, nothing is written. fn must be synchronous.
 */
export function profileToFile(path: string, fn: () => void, opts: { cuda?: boolean } = {}): void {
  const recording = Profiler.start(path, opts);
  try {
    const r: unknown = fn();
    if (r instanceof Promise) {
      r.catch(() => undefined); // its rejection is not ours to report: the TypeError is
      throw new TypeError('profileToFile() takes a synchronous function');
    }
  } catch (e) {
    recording.discard();
    throw e;
  }
  recording.stop();
}
