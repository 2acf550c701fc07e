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

/** The file being written and Kineto's own temporary beside it. */
function removePartial(partial: string): void {
  rmSync(partial, { force: true });
  rmSync(`${partial}.tmp`, { force: true });
}

/**
 * Runs fn under libtorch's profiler and writes the trace to `path` (Chrome trace JSON). With
 * `cuda` (default: false) the device's activity is recorded too, and the device is synchronized
 * before the recording stops so that the last kernels are in it. The trace is written beside
 * `path` and renamed into place, so `path` holds a whole trace or is left as it was; when fn or
 * the writing fails, nothing is left behind. One profile at a time; fn must be synchronous.
 */
export function profileToFile(path: string, fn: () => void, opts: { cuda?: boolean } = {}): void {
  checkTracePath(path);
  const cuda = opts.cuda === true;
  native.startProfile(cuda);
  const partial = `${path}.partial-${process.pid}`;
  let ran = false;
  try {
    const r: unknown = fn();
    if (r instanceof Promise) {
      r.catch(() => undefined); // its rejection is not ours to report: the TypeError is
      throw new TypeError('profileToFile() takes a synchronous function');
    }
    if (cuda) synchronize();
    ran = true;
  } finally {
    let written = false;
    try {
      native.stopProfile(partial); // stops recording even when fn threw
      written = true;
    } finally {
      if (!ran || !written) removePartial(partial);
    }
  }
  // Kineto reports a failed write in its log rather than as an error
  if (!existsSync(partial)) {
    removePartial(partial);
    throw new Error(`profileToFile: libtorch's profiler wrote no trace for ${path} (its log above says why)`);
  }
  try {
    renameSync(partial, path);
  } catch (e) {
    removePartial(partial);
    throw e;
  }
}
