// This process's place in a data-parallel job: libtorch's c10d process group (Gloo on CPU, NCCL
// on CUDA, native/distributed.cc) and the collectives the trainer uses. One group per process,
// created from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, …) or explicitly.
import { z } from 'zod';
import { native, type NativeGradientReducer } from '../native';
import { Tensor } from '../tensor';

export type DistributedBackend = 'gloo' | 'nccl';

/** Which c10d backends this build of the addon has. */
export function distributedSupport(): { gloo: boolean; nccl: boolean } {
  return native.distBackends();
}

/** Why this build cannot run data-parallel jobs at all, or null when it can. */
export function distributedUnavailableReason(): string | null {
  const s = distributedSupport();
  if (s.gloo || s.nccl) return null;
  return (
    'this build of staged-lm has no distributed backend: its libtorch ships no c10d Gloo/NCCL headers, ' +
    "or Gloo's headers are missing (Debian: apt install libgloo-dev, then npm run setup)"
  );
}

const intVar = (name: string) =>
  z
    .string({ error: `${name} is not set` })
    .regex(/^\d+$/, { error: `${name} must be a non-negative integer` })
    .transform(Number);

/** torchrun's environment contract. */
const EnvSchema = z.object({
  RANK: intVar('RANK'),
  WORLD_SIZE: intVar('WORLD_SIZE'),
  LOCAL_RANK: intVar('LOCAL_RANK').optional(),
  LOCAL_WORLD_SIZE: intVar('LOCAL_WORLD_SIZE').optional(),
  MASTER_ADDR: z.string({ error: 'MASTER_ADDR is not set' }).min(1),
  MASTER_PORT: intVar('MASTER_PORT'),
  TORCHELASTIC_USE_AGENT_STORE: z.string().optional(),
  TORCHELASTIC_RESTART_COUNT: intVar('TORCHELASTIC_RESTART_COUNT').optional(),
});

export interface DistributedEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  /**
   * torchrun's agent serves the rendezvous store on MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True):
   * every rank connects as a client, keys under this restart attempt's prefix. Null: rank 0 serves it.
   */
  agentStorePrefix: string | null;
}

/** The launcher's environment, or null when WORLD_SIZE is not set (a single-process run). */
export function distributedEnv(env: NodeJS.ProcessEnv = process.env): DistributedEnv | null {
  if (env.WORLD_SIZE === undefined) return null;
  const r = EnvSchema.safeParse(env);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`distributed environment: ${i.path.join('.')}: ${i.message} (set by staged-lm launch or torchrun)`);
  }
  const e = r.data;
  if (e.WORLD_SIZE < 1 || e.RANK >= e.WORLD_SIZE)
    throw new Error(`distributed environment: RANK ${e.RANK} is outside WORLD_SIZE ${e.WORLD_SIZE}`);
  if (e.MASTER_PORT < 1 || e.MASTER_PORT > 65535) throw new Error(`distributed environment: MASTER_PORT ${e.MASTER_PORT} is not a port`);
  return {
    rank: e.RANK,
    worldSize: e.WORLD_SIZE,
    localRank: e.LOCAL_RANK ?? e.RANK,
    localWorldSize: e.LOCAL_WORLD_SIZE ?? e.WORLD_SIZE,
    masterAddr: e.MASTER_ADDR,
    masterPort: e.MASTER_PORT,
    // (torch.distributed.rendezvous._create_c10d_store: the same test and the same prefix)
    agentStorePrefix: e.TORCHELASTIC_USE_AGENT_STORE === 'True' ? `/worker/attempt_${e.TORCHELASTIC_RESTART_COUNT ?? 0}` : null,
  };
}

export interface ProcessGroupInfo extends DistributedEnv {
  backend: DistributedBackend;
  timeoutMs: number;
}

let current: ProcessGroupInfo | null = null;

/** The process group of this process, or null outside a data-parallel job. */
export function processGroup(): ProcessGroupInfo | null {
  return current;
}

/** Rank 0, or a single-process run: the one that writes checkpoints, metrics and progress. */
export function isMainRank(): boolean {
  return current === null || current.rank === 0;
}

/**
 * Joins the job: rank 0 serves the rendezvous store at MASTER_ADDR:MASTER_PORT (torchrun's agent
 * does when it says so, see DistributedEnv.agentStorePrefix), every rank connects, then the backend (default: nccl for CUDA devices, gloo otherwise) links them.
 * Collectives fail with an error naming the rank when another rank dies or stays silent for
 * `timeoutMs` (default STAGED_LM_DIST_TIMEOUT seconds, else 300).
 */
export function initDistributed(
  opts: Partial<DistributedEnv> & { backend?: DistributedBackend; device?: string; timeoutMs?: number } = {},
): ProcessGroupInfo {
  if (current !== null) throw new Error('initDistributed: this process already joined a process group');
  const env = distributedEnv() ?? ({} as Partial<DistributedEnv>);
  const e = { ...env, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as Partial<DistributedEnv>;
  for (const k of ['rank', 'worldSize', 'masterAddr', 'masterPort'] as const) {
    if (e[k] === undefined) throw new Error(`initDistributed: ${k} is not given and the launcher's environment does not set it`);
  }
  const reason = distributedUnavailableReason();
  if (reason !== null) throw new Error(`initDistributed: ${reason}`);
  const backend: DistributedBackend = opts.backend ?? (opts.device?.startsWith('cuda') ? 'nccl' : 'gloo');
  if (!distributedSupport()[backend]) {
    throw new Error(
      `initDistributed: this build has no ${backend} backend (it has: ${
        Object.entries(distributedSupport())
          .filter(([, v]) => v)
          .map(([k]) => k)
          .join(', ') || 'none'
      })`,
    );
  }
  const envTimeout = Number(process.env.STAGED_LM_DIST_TIMEOUT);
  const timeoutMs = opts.timeoutMs ?? (Number.isFinite(envTimeout) && envTimeout > 0 ? envTimeout * 1000 : 300_000);
  try {
    native.distInit!(backend, e.rank!, e.worldSize!, e.masterAddr!, e.masterPort!, timeoutMs, e.agentStorePrefix ?? undefined);
  } catch (err) {
    throw new Error((err as Error).message.replace(/^distInit: (initDistributed: )?/, 'initDistributed: '));
  }
  current = {
    rank: e.rank!,
    worldSize: e.worldSize!,
    localRank: e.localRank ?? e.rank!,
    localWorldSize: e.localWorldSize ?? e.worldSize!,
    masterAddr: e.masterAddr!,
    masterPort: e.masterPort!,
    agentStorePrefix: e.agentStorePrefix ?? null,
    backend,
    timeoutMs,
  };
  return current;
}

/** Leaves the process group (frees the backend and the store connection). */
export function destroyDistributed(): void {
  if (current === null) return;
  native.distDestroy!();
  current = null;
}

function group(op: string): ProcessGroupInfo {
  if (current === null) throw new Error(`${op}: no process group (initDistributed() first)`);
  return current;
}

/** In place over all ranks: every tensor becomes the sum / mean / min / max of its copies. */
export function allReduce(tensors: Tensor[], op: 'sum' | 'mean' | 'min' | 'max' = 'sum'): void {
  group('allReduce');
  native.distAllReduce!(
    tensors.map((t) => t.native),
    op,
  );
}

/** In place: every rank's tensors take root's values. */
export function broadcast(tensors: Tensor[], root = 0): void {
  group('broadcast');
  native.distBroadcast!(
    tensors.map((t) => t.native),
    root,
  );
}

/** Waits until every rank has arrived. */
export function barrier(): void {
  group('barrier');
  native.distBarrier!();
}

/**
 * Gradient all-reduce for one parameter set: buckets of about `bucketBytes` (reverse parameter
 * order, as backward produces them) start all-reducing from autograd hooks as soon as their
 * gradients are complete, overlapping the rest of backward. Call prepare() before the backward
 * whose gradients should be averaged (the last micro-batch of a step) and finish() after it.
 * A new parameter set (after growth) needs a new reducer.
 */
export class GradientReducer {
  private handle: NativeGradientReducer | null;

  constructor(params: Tensor[], bucketBytes = 25 * 1024 * 1024) {
    group('GradientReducer');
    this.handle = new native.GradientReducer!(
      params.map((p) => p.native),
      bucketBytes,
    );
  }

  private h(): NativeGradientReducer {
    if (this.handle === null) throw new Error('GradientReducer: disposed');
    return this.handle;
  }

  prepare(): void {
    this.h().prepare();
  }

  /** Waits for every bucket and leaves the mean gradient over ranks in each .grad. */
  finish(): void {
    this.h().finish();
  }

  /** Parameter indices per bucket, in launch order. */
  buckets(): number[][] {
    return this.h().buckets();
  }

  /** Buckets whose all-reduce started from the hooks, during the last armed backward (the overlap). */
  launchedDuringBackward(): number {
    return this.h().launchedDuringBackward();
  }

  /** Removes the hooks. */
  dispose(): void {
    this.handle?.dispose();
    this.handle = null;
  }
}
