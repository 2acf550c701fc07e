// A timeline of a piece of code as a Chrome trace (open it in Perfetto or chrome://tracing): the
// CPU operators and, on CUDA, every kernel, copy and memset with its device time. Recorded by
// libtorch's Kineto profiler, the one behind torch.profiler, so our traces and PyTorch's read
// alike; bench/trace-summary.ts splits either by kernel kind.
import { renameSync, rmSync } from 'node:fs';
import { native } from './native';
import { synchronize } from './runtime';

/** Whether this libtorch can record profiles: built with Kineto, as pip's PyTorch is (Debian's libtorch is not). */
export function profilerAvailable(): boolean {
  return native.profilerAvailable();
}

/**
 * Runs fn under libtorch's profiler and writes the trace to `path` (Chrome trace JSON). With
 * `cuda` (default: false) the device's activity is recorded too, and the device is synchronized
 * before the recording stops so that the last kernels are in it. The file appears whole or not at
 * all (written beside it, then renamed); when fn throws, nothing is written. One profile at a time;
 * fn must be synchronous.
 */
export function profileToFile(path: string, fn: () => void, opts: { cuda?: boolean } = {}): void {
  if (typeof path !== 'string' || path === '') throw new TypeError('Expected a file path for the trace');
  const cuda = opts.cuda === true;
  native.startProfile(cuda);
  const partial = `${path}.partial-${process.pid}`;
  let ran = false;
  let written = false;
  try {
    const r: unknown = fn();
    if (r instanceof Promise) throw new TypeError('profileToFile() takes a synchronous function');
    if (cuda) synchronize();
    ran = true;
  } finally {
    try {
      native.stopProfile(partial); // stops recording even when fn threw
      written = ran;
    } finally {
      if (!written) rmSync(partial, { force: true });
    }
  }
  renameSync(partial, path);
}
