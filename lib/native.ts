// The compiled addon (native/), loaded once. Everything here is internal: the public API is the
// typed layer in tensor.ts and friends, which validates arguments before they cross into C++.
import bindings from 'bindings';
import { availableParallelism } from 'node:os';

/** An opaque handle owning one libtorch tensor (native/tensor.h): read it with native.tensor*(). */
export type NativeTensor = { readonly __brand: 'NativeTensor' };

export interface BuildInfo {
  torchVersion: string;
  libtorchSource: string;
  libtorchPrefix: string;
  buildType: string;
  cudaBuild: boolean;
  cudaAvailable: boolean;
  cxx11Abi: boolean;
  numThreads: number;
  parallelInfo: string;
  devices: { index: number; name: string; totalMemory: number; computeCapability: string; multiProcessors: number }[];
}

export interface NativeMemoryStats {
  liveTensors: number;
  liveBytes: number;
  createdTotal: number;
  cuda: { device: number; allocated: number; peakAllocated: number; reserved: number; free?: number; total?: number }[];
  cpu: CpuBlockStats | null;
}

/** The CPU block cache's figures (native/cpu_allocator.cc), bytes and counts. */
export interface CpuBlockStats {
  allocated: number;
  peakAllocated: number;
  reserved: number;
  hits: number;
  misses: number;
}

type T = NativeTensor;
type Operand = T | number;

export interface NativeModule {
  tensorDispose(t: T): void;
  tensorIsDisposed(t: T): boolean;
  tensorShape(t: T): number[];
  tensorDtype(t: T): string;
  tensorDevice(t: T): string;
  hasFlashAttention: boolean;
  // creation
  zeros(shape: number[], dtype: string, device: string): T;
  ones(shape: number[], dtype: string, device: string): T;
  empty(shape: number[], dtype: string, device: string): T;
  full(shape: number[], value: number, dtype: string, device: string): T;
  arange(start: number, end: number, step: number, dtype: string, device: string): T;
  eye(n: number, dtype: string, device: string): T;
  randn(shape: number[], dtype: string, device: string): T;
  rand(shape: number[], dtype: string, device: string): T;
  randint(low: number, high: number, shape: number[], dtype: string, device: string): T;
  randperm(n: number, dtype: string, device: string): T;
  // data
  fromTypedArray(data: ArrayBufferView, shape: number[], dtype: string, device: string): T;
  toTypedArray(t: T): Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
  toTypedArrayAsync(t: T): Promise<Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array>;
  item(t: T): number | boolean;
  // shape
  view(t: T, shape: number[]): T;
  reshape(t: T, shape: number[]): T;
  transpose(t: T, dim0: number, dim1: number): T;
  permute(t: T, dims: number[]): T;
  contiguous(t: T): T;
  unsqueeze(t: T, dim: number): T;
  squeeze(t: T, dim?: number): T;
  expand(t: T, shape: number[]): T;
  flatten(t: T, startDim: number, endDim: number): T;
  cat(ts: T[], dim: number): T;
  stack(ts: T[], dim: number): T;
  split(t: T, sizeOrSizes: number | number[], dim: number): T[];
  chunk(t: T, chunks: number, dim: number): T[];
  narrow(t: T, dim: number, start: number, length: number): T;
  slice(t: T, dim: number, start: number, end: number, step: number): T;
  select(t: T, dim: number, index: number): T;
  indexSelect(t: T, dim: number, index: T): T;
  to(t: T, device: string, dtype: string, nonBlocking?: boolean): T;
  pinMemory(t: T): T;
  clone(t: T): T;
  alias(t: T): T;
  stride(t: T): number[];
  isContiguous(t: T): boolean;
  // math
  add(a: T, b: Operand, alpha?: number): T;
  sub(a: T, b: Operand, alpha?: number): T;
  mul(a: T, b: Operand): T;
  div(a: T, b: Operand): T;
  pow(a: T, b: Operand): T;
  eq(a: T, b: Operand): T;
  ne(a: T, b: Operand): T;
  lt(a: T, b: Operand): T;
  le(a: T, b: Operand): T;
  gt(a: T, b: Operand): T;
  ge(a: T, b: Operand): T;
  maximum(a: T, b: Operand): T;
  minimum(a: T, b: Operand): T;
  add_(a: T, b: Operand, alpha?: number): void;
  sub_(a: T, b: Operand, alpha?: number): void;
  mul_(a: T, b: Operand): void;
  div_(a: T, b: Operand): void;
  pow_(a: T, b: Operand): void;
  copy_(a: T, b: Operand): void;
  zero_(a: T): void;
  fill_(a: T, value: number): void;
  sqrt_(a: T): void;
  addcmul_(a: T, t1: T, t2: T, value: number): void;
  addcdiv_(a: T, t1: T, t2: T, value: number): void;
  lerp_(a: T, end: T, weight: number): void;
  maskedFill_(a: T, mask: T, value: number): void;
  neg(t: T): T;
  abs(t: T): T;
  sqrt(t: T): T;
  rsqrt(t: T): T;
  exp(t: T): T;
  log(t: T): T;
  tanh(t: T): T;
  sigmoid(t: T): T;
  relu(t: T): T;
  square(t: T): T;
  reciprocal(t: T): T;
  sign(t: T): T;
  isFinite(t: T): T;
  isNan(t: T): T;
  logicalNot(t: T): T;
  clamp(t: T, min: number | null, max: number | null): T;
  where(cond: T, a: Operand, b: Operand): T;
  maskedFill(t: T, mask: T, value: number): T;
  triu(t: T, diagonal: number): T;
  tril(t: T, diagonal: number): T;
  sum(t: T, dims: number[] | null, keepdim: boolean): T;
  mean(t: T, dims: number[] | null, keepdim: boolean): T;
  norm(t: T, p: number, dims: number[] | null, keepdim: boolean): T;
  max(t: T): T;
  min(t: T): T;
  maxDim(t: T, dim: number, keepdim: boolean): [T, T];
  minDim(t: T, dim: number, keepdim: boolean): [T, T];
  argmax(t: T, dim: number | null, keepdim: boolean): T;
  all(t: T): T;
  any(t: T): T;
  matmul(a: T, b: T): T;
  mm(a: T, b: T): T;
  bmm(a: T, b: T): T;
  outer(a: T, b: T): T;
  addmm(bias: T, a: T, b: T, beta: number, alpha: number): T;
  linear(x: T, w: T, b: T | null): T;
  // nn
  gelu(t: T, approximate: string): T;
  softmax(t: T, dim: number): T;
  logSoftmax(t: T, dim: number): T;
  layerNorm(x: T, normalizedShape: number[], weight: T | null, bias: T | null, eps: number): T;
  embedding(weight: T, indices: T): T;
  dropout(t: T, p: number, train: boolean): T;
  scaledDotProductAttention(q: T, k: T, v: T, mask: T | null, dropoutP: number, isCausal: boolean): T;
  conv1d(x: T, weight: T, bias: T | null): T;
  splitHeads(qkv: T, heads: number): T[];
  mergeHeads(y: T): T;
  crossEntropy(logits: T, targets: T, ignoreIndex: number, reduction: string, labelSmoothing: number): T;
  float32CrossEntropy(logits: T, targets: T, ignoreIndex: number, chunkElements: number, kernel: 'default' | 'aten' | 'fused'): T;
  setLossKernel(kernel: 'aten' | 'fused'): void;
  lossKernelInfo(): { default: 'aten' | 'fused'; available: boolean };
  addLayerNorm(h: T, y: T, weight: T, bias: T | null, eps: number, kernel: 'default' | 'aten' | 'fused'): [T, T];
  setNormKernel(kernel: 'aten' | 'fused'): void;
  normKernelInfo(): { default: 'aten' | 'fused'; available: boolean };
  // autograd
  setRequiresGrad(t: T, flag: boolean): void;
  requiresGrad(t: T): boolean;
  isLeaf(t: T): boolean;
  grad(t: T): T | null;
  setGrad(t: T, g: T | null): void;
  backward(t: T, gradient: T | null, retainGraph: boolean): void;
  detach(t: T): T;
  retainGrad(t: T): void;
  isGradEnabled(): boolean;
  setGradEnabled(enabled: boolean): void;
  setData(t: T, src: T): void;
  // runtime
  buildInfo(): BuildInfo;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  memoryStats(): NativeMemoryStats;
  /** Frees many tensors in one call (skips disposed ones). */
  disposeMany(tensors: T[]): void;
  resetPeakMemory(): void;
  emptyCache(): void;
  synchronize(): void;
  cudaSyncDebugMode(mode?: 'off' | 'warn' | 'error'): 'off' | 'warn' | 'error';
  manualSeed(seed: number): void;
  getRngState(device: string): T;
  setRngState(device: string, state: T): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  setTF32(enabled: boolean): void;
  startOpCount(): void;
  profilerAvailable(): boolean;
  startProfile(cuda: boolean): void;
  stopProfile(path: string): void;
  stopOpCount(): Record<string, number>;
  tf32Enabled(): boolean;
  watchStorage(t: T): unknown;
  storageAlive(watcher: unknown): boolean;
  /** Whether two tensors share any element's memory. */
  memoryOverlaps(a: T, b: T): boolean;
  setAutocast(enabled: boolean, dtype: string): void;
  isAutocastEnabled(): boolean;
  clearAutocastCache(): void;
  // optimizer
  hasFusedAdamW: boolean;
  hasFusedAdamWCpu: boolean;
  adamwStep(
    params: T[],
    expAvgs: T[],
    expAvgSqs: T[],
    stepTensor: T | null,
    hyper: AdamWHyper,
    lrTensor?: T | null,
    gradScale?: T | null,
    foundInf?: T | null,
  ): number;
  /** Clips at once and returns the norm; deferred: returns [norm, divisor for adamwStep's gradScale | null] and leaves the gradients. */
  clipGradNorm(params: T[], maxNorm: number): T;
  clipGradNorm(params: T[], maxNorm: number, deferred: true): [T, T | null];
  /** Under loss scaling: [unscaled norm, lossScale × clipping divisor, foundInf (1: inf/NaN gradients)]. */
  clipGradNorm(params: T[], maxNorm: number, deferred: true, lossScale: T): [T, T, T];
  zeroGrad(params: T[]): void;
  /** Dynamic loss scaling's update of scale (float32) and growth tracker (int32), in place on the device. */
  ampUpdateScale(scale: T, growthTracker: T, foundInf: T, growthFactor: number, backoffFactor: number, growthInterval: number): void;
  // CUDA graphs (native/cuda_graph.cc): the functions throw where hasCudaGraphs is false
  hasCudaGraphs: boolean;
  cudaGraphWarmup(device: number, fn: () => void): void;
  cudaGraphCapture(device: number, fn: () => void): unknown;
  cudaGraphReplay(graph: unknown): void;
  cudaGraphReset(graph: unknown): void;
  // io
  writeTensorFile(path: string, prefix: Uint8Array, tensors: T[]): void;
  readTensorFile(path: string, entries: [offset: number, dtype: string, shape: number[]][], device: string): T[];
  // distributed (c10d): present only when the build has a backend (distBackends() says which)
  distBackends(): { gloo: boolean; nccl: boolean };
  distInit?(
    backend: string,
    rank: number,
    worldSize: number,
    masterAddr: string,
    masterPort: number,
    timeoutMs: number,
    agentStorePrefix?: string,
  ): void;
  distDestroy?(): void;
  distAllReduce?(tensors: T[], op: 'sum' | 'mean' | 'min' | 'max'): void;
  distBroadcast?(tensors: T[], root: number): void;
  distBarrier?(): void;
  GradientReducer?: new (params: T[], bucketBytes: number) => NativeGradientReducer;
}

/** native/distributed.cc: bucketed gradient all-reduce started from autograd hooks. */
export interface NativeGradientReducer {
  prepare(): void;
  finish(): void;
  buckets(): number[][];
  launchedDuringBackward(): number;
  dispose(): void;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** The step this update makes (1 on the first). */
  step: number;
  /** The step is the step tensor's value instead (updates were skipped under loss scaling: the count lives on the device). */
  stepOnDevice?: boolean;
  biasCorrection: boolean;
  /** Use the fused CUDA kernel where available. */
  fused: boolean;
}

// OpenMP threads that spin while waiting fight OpenBLAS's own threads (and anything else on the
// machine) for the cores: passive waiting is much faster on small machines. libgomp reads this
// when the addon loads it, so it must be set before.
process.env.OMP_WAIT_POLICY ??= 'passive';

function load(): NativeModule {
  try {
    return bindings('staged_lm') as NativeModule;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(
      `staged-lm: the native addon is not built or cannot load (${why}). ` +
        'Run `npm run setup` (installs libtorch if missing and builds the addon).',
    );
  }
}

export const native: NativeModule = load();

// libtorch's CPU pool defaults to one OpenMP thread here; use every core unless the user chose.
if (!process.env.OMP_NUM_THREADS) {
  native.setNumThreads(availableParallelism());
}
