// Process-wide runtime: seeds, threads, memory statistics, CUDA housekeeping, build facts.
import { checkDevice, checkInt, type Device } from './dtype';
import { native, type BuildInfo, type CpuBlockStats } from './native';
import { Tensor } from './tensor';

/** Seeds the CPU generator and every CUDA device's: random factories and dropout repeat. */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new TypeError(`Expected a non-negative integer for seed but received ${String(seed)}`);
  native.manualSeed(seed);
}

/** The state of a device's default generator (a uint8 tensor), for exact resume. */
export function getRngState(device: Device = 'cpu'): Tensor {
  return new Tensor(native.getRngState(checkDevice(device)));
}

export function setRngState(state: Tensor, device: Device = 'cpu'): void {
  if (!(state instanceof Tensor)) throw new TypeError('Expected a Tensor for state');
  native.setRngState(checkDevice(device), state.native);
}

export function setNumThreads(n: number): void {
  if (checkInt(n, 'threads') < 1) throw new TypeError('Expected a positive integer for threads');
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/**
 * Lets CUDA float32 matmuls run on TF32 tensor cores: inputs rounded to a 10-bit mantissa,
 * float32 accumulation, several times the throughput from Ampere on (PyTorch's
 * `torch.backends.cuda.matmul.allow_tf32`; off by default, as there). Process-wide. It changes
 * nothing under bf16/fp16 autocast, whose matmuls are not float32, nor on the CPU.
 */
export function setTF32(enabled: boolean): void {
  if (typeof enabled !== 'boolean') throw new TypeError(`Expected a boolean for enabled but received ${typeof enabled}`);
  native.setTF32(enabled);
}

/** Whether CUDA float32 matmuls may use TF32 (setTF32). */
export function tf32Enabled(): boolean {
  return native.tf32Enabled();
}

export interface MemoryStats {
  /** Tensor handles not yet disposed or collected. */
  liveTensors: number;
  /** Bytes those handles show (a view counts as much as it shows). */
  liveBytes: number;
  /** Handles created since the process started. */
  createdTotal: number;
  /** Process resident set size, bytes. */
  rss: number;
  /** Per CUDA device: caching-allocator bytes allocated, its peak, reserved, and free/total. */
  cuda: { device: number; allocated: number; peakAllocated: number; reserved: number; free?: number; total?: number }[];
  /**
   * CPU tensor blocks of 1 MiB and more, which staged-lm's allocator maps apart from the malloc heap
   * and keeps for reuse: bytes in use (`allocated`), their peak, bytes mapped (in use + cached:
   * `reserved`, never more than twice the most ever in use at once), and allocations served from the
   * cache (`hits`) or by a new mapping (`misses`). Null with STAGED_LM_DEFAULT_MALLOC=1 (libtorch's
   * default allocator: malloc).
   */
  cpu: CpuBlockStats | null;
}

export function memoryStats(): MemoryStats {
  return { ...native.memoryStats(), rss: process.memoryUsage.rss() };
}

/** Resets the peak-allocation counters (CUDA's and the CPU block cache's). */
export function resetPeakMemory(): void {
  native.resetPeakMemory();
}

/** Returns cached, unused blocks: CUDA's to the driver, the CPU block cache's to the system. */
export function emptyCache(): void {
  native.emptyCache();
}

/** Waits for all queued CUDA work (no-op without CUDA). For timing; never needed for correctness. */
export function synchronize(): void {
  native.synchronize();
}

/** What a CUDA call that makes the host wait for the device does: nothing, warn, or throw. */
export type SyncDebugMode = 'off' | 'warn' | 'error';

/**
 * The CUDA sync debug mode (process-wide): with a mode, sets it; returns the mode before the call.
 * In 'error', a read-back (item, toArray), a blocking copy or synchronize() throws — PyTorch's
 * torch.cuda.set_sync_debug_mode. A build without CUDA reports 'off' and refuses the other modes.
 */
export function cudaSyncDebugMode(mode?: SyncDebugMode): SyncDebugMode {
  if (mode !== undefined && mode !== 'off' && mode !== 'warn' && mode !== 'error')
    throw new TypeError(`cudaSyncDebugMode: mode must be 'off', 'warn' or 'error', got ${String(mode)}`);
  return native.cudaSyncDebugMode(mode);
}

/**
 * Runs fn with every host wait on the device an error (cudaSyncDebugMode 'error'), then restores
 * the mode: proof that fn only queues work — what a training step must do to keep a GPU busy.
 */
export function forbidHostSync<R>(fn: () => R): R {
  const prev = cudaSyncDebugMode('error');
  try {
    const out = fn();
    if (out instanceof Promise) throw new TypeError('forbidHostSync: fn must be synchronous (the mode is process-wide)');
    return out;
  } finally {
    cudaSyncDebugMode(prev);
  }
}

export function buildInfo(): BuildInfo {
  return native.buildInfo();
}

/** Watches the storage behind t: alive() turns false once libtorch has freed it (tests, leak hunts). */
export function watchStorage(t: Tensor): { alive(): boolean } {
  const w = native.watchStorage(t.native);
  return { alive: () => native.storageAlive(w) };
}

export { cudaAvailable, cudaDeviceCount } from './dtype';

/**
 * Runs fn with CUDA autocast in dtype (matmuls and attention in bf16/fp16, precision-sensitive ops
 * in float32; parameters stay float32), then clears autocast's cast cache.
 */
export function withAutocast<R>(dtype: 'bfloat16' | 'float16', fn: () => R): R {
  const prev = native.isAutocastEnabled();
  native.setAutocast(true, dtype);
  try {
    return fn();
  } finally {
    native.setAutocast(prev, dtype);
    if (!prev) native.clearAutocastCache();
  }
}
