// Which ATen operators a piece of code dispatches, and how often: the measure of a launch-bound
// step. On a GPU nearly every operator that is not a view launches a kernel; on the CPU the same
// count compares our step with PyTorch's op for op (bench/host-vs-torch.sh with OPS=1).
import { native } from './native';

export interface OpCounts {
  /** Operators dispatched in all. */
  total: number;
  /** By libtorch's name ("aten::addmm"), most frequent first. */
  byName: Record<string, number>;
}

/**
 * Runs fn and counts the ATen operators it dispatches, on every thread (autograd's included),
 * through libtorch's RecordFunction hooks, the ones PyTorch's profiler reads. Composite operators
 * count as well as the operators they call (aten::linear and its aten::addmm), as in PyTorch's
 * profiler. One count at a time; fn must be synchronous. Counting costs host time: count a step,
 * do not time it.
 */
export function countOps(fn: () => void): OpCounts {
  native.startOpCount();
  let counts: Record<string, number>;
  try {
    const r: unknown = fn();
    if (r instanceof Promise) {
      r.catch(() => undefined); // its rejection is not ours to report: the TypeError is
      throw new TypeError('countOps() takes a synchronous function');
    }
  } finally {
    counts = native.stopOpCount();
  }
  return sorted(new Map(Object.entries(counts)));
}

/** Several counts as one (by name, most frequent first). */
export function mergeCounts(counts: OpCounts[]): OpCounts {
  const byName = new Map<string, number>();
  for (const c of counts) for (const [name, n] of Object.entries(c.byName)) byName.set(name, (byName.get(name) ?? 0) + n);
  return sorted(byName);
}

function sorted(byName: Map<string, number>): OpCounts {
  const entries = [...byName.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return { total: entries.reduce((s, [, n]) => s + n, 0), byName: Object.fromEntries(entries) };
}
