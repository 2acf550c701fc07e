// Where a step's time goes, by kind of work, from a Chrome trace of libtorch's profiler: ours
// (profileToFile, `staged-lm bench --profile`) or PyTorch's (bench/profile-reference.py --trace).
// One classifier for both, so the two splits compare kind by kind.
import { readFileSync } from 'node:fs';

/**
 * Kinds of work, first match wins, on kernel names (CUDA) or operator names (CPU), lower-cased.
 * bench/profile-reference.py classifies its own step with the same table.
 */
const KINDS: [string, RegExp][] = [
  ['attention', /flash|fmha|attention|sdpa|efficient_attention/],
  ['gemm', /gemm|cutlass|sm\d+_xmma|ampere_|hopper_|nvjet|cublas|addmm|\bmm\b|::mm|matmul/],
  ['optimizer', /adam|multi_tensor_apply/],
  ['loss', /softmax|nll_loss|cross_?entropy|log_softmax/],
  ['normalization', /layer_norm|layernorm/],
  ['activation', /gelu/],
  ['embedding', /embedding|indexselect|index_select|radix|sort|segment|scan|unique/],
  ['reduction', /reduce|norm_kernel|sum|norm/],
  ['copy/cast', /copy|memset|cast|to_copy|fill|zero/],
  ['elementwise', /elementwise|vectorized|unrolled|add|mul|where/],
];

export function kindOf(name: string): string {
  const n = name.toLowerCase();
  return KINDS.find(([, pattern]) => pattern.test(n))?.[0] ?? 'other';
}

export interface TraceSummary {
  /** Device time of kernels, copies and memsets; or, in a trace without device activity, CPU time of top-level operators. */
  measure: 'GPU kernel time' | 'CPU time of top-level ops';
  ms_per_step: number;
  /** Device activities (or top-level operators) per step. */
  kernels_per_step: number;
  by_kind_ms: Record<string, number>;
  /** The most expensive names, ms per step. */
  top: [string, number][];
}

interface TraceEvent {
  ph?: string;
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
  pid?: number | string;
  tid?: number | string;
}

const DEVICE_CATEGORIES = new Set(['kernel', 'gpu_memcpy', 'gpu_memset']);

/** The events of a Chrome trace file (an object with traceEvents, or a bare array). */
export function readTrace(path: string): TraceEvent[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not a readable Chrome trace (${(e as Error).message})`);
  }
  const events = Array.isArray(parsed) ? parsed : (parsed as { traceEvents?: unknown }).traceEvents;
  if (!Array.isArray(events)) throw new Error(`${path}: not a Chrome trace (no traceEvents)`);
  return events as TraceEvent[];
}

/** Complete events ('X') with a name and a duration (µs). */
type CompleteEvent = TraceEvent & { name: string; ts: number; dur: number };

function complete(events: TraceEvent[]): CompleteEvent[] {
  return events.filter(
    (e): e is CompleteEvent => e.ph === 'X' && typeof e.name === 'string' && typeof e.ts === 'number' && typeof e.dur === 'number',
  );
}

/** CPU operators not inside another operator of the same thread (their children's time is theirs). */
function topLevelOps(events: TraceEvent[]): { name: string; dur: number }[] {
  const byThread = new Map<string, { name: string; ts: number; dur: number }[]>();
  for (const e of complete(events)) {
    if ((e.cat ?? '').toLowerCase() !== 'cpu_op') continue;
    const key = `${String(e.pid)}/${String(e.tid)}`;
    const list = byThread.get(key) ?? [];
    list.push(e);
    byThread.set(key, list);
  }
  const top: { name: string; dur: number }[] = [];
  for (const list of byThread.values()) {
    // earliest first, the longer (the parent) first among equal starts
    list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    let openUntil = -Infinity;
    for (const e of list) {
      if (e.ts >= openUntil) {
        top.push(e);
        openUntil = e.ts + e.dur;
      }
    }
  }
  return top;
}

/** Time per step by kind (ms), activities per step and the top names, from a trace of `steps` steps. */
export function summarizeTrace(events: TraceEvent[], steps: number, topN = 12): TraceSummary {
  if (!Number.isInteger(steps) || steps < 1) throw new TypeError(`Expected a positive integer for steps but received ${steps}`);
  const device = complete(events).filter((e) => DEVICE_CATEGORIES.has((e.cat ?? '').toLowerCase()));
  const counted = device.length > 0 ? device : topLevelOps(events);
  if (counted.length === 0) throw new Error('the trace holds neither device activity nor CPU operators');
  const byKind = new Map<string, number>();
  const byName = new Map<string, number>();
  for (const e of counted) {
    const kind = kindOf(e.name);
    byKind.set(kind, (byKind.get(kind) ?? 0) + e.dur);
    byName.set(e.name, (byName.get(e.name) ?? 0) + e.dur);
  }
  const perStep = (us: number): number => Math.round((us / steps / 1e3) * 1e3) / 1e3;
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    measure: device.length > 0 ? 'GPU kernel time' : 'CPU time of top-level ops',
    ms_per_step: perStep(counted.reduce((s, e) => s + e.dur, 0)),
    kernels_per_step: Math.round((counted.length / steps) * 10) / 10,
    by_kind_ms: Object.fromEntries(sorted(byKind).map(([k, us]) => [k, perStep(us)])),
    top: sorted(byName)
      .slice(0, topN)
      .map(([n, us]) => [n.slice(0, 90), perStep(us)]),
  };
}
