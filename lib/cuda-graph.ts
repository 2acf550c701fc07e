// CUDA graphs: record the kernels a function launches once, replay them with one launch each
// time after. For static shapes only: a replay reads and writes exactly the memory the capture
// used, so inputs are copied into tensors that live as long as the graph, and outputs are read
// from the tensors the captured function returned.
import { cudaIndex } from './dtype';
import { native } from './native';

export function cudaGraphsAvailable(): boolean {
  return native.hasCudaGraphs;
}

export class CudaGraph {
  private handle: unknown;

  private constructor(handle: unknown) {
    this.handle = handle;
  }

  /**
   * Runs fn once with every CUDA launch on `device` recorded instead of executed (nothing is
   * computed: the first replay is the first real run), on the process's capture stream. fn must
   * not synchronize with the host (no item(), no copies to the CPU), and no other thread may make
   * unsafe CUDA calls meanwhile (e.g. a pending toArrayAsync()). If fn throws, the capture is
   * dropped and its error rethrown; if CUDA invalidated the capture, the error says "capture
   * broke" and the process should not go on using CUDA (libtorch's allocator keeps the pool open).
   * Warm up first: run one real step inside CudaGraph.warmup(device, …).
   */
  static capture(device: string, fn: () => void): CudaGraph {
    // without CUDA graphs in the build the native function throws, saying why
    return new CudaGraph(native.cudaGraphCapture(deviceIndex(device), fn));
  }

  /**
   * Runs fn for real on the capture stream (libtorch sets up per-stream state, such as cuBLAS
   * workspaces, lazily: that must happen before a capture, not inside it).
   */
  static warmup<R>(device: string, fn: () => R): R {
    const index = deviceIndex(device);
    let result: R | undefined;
    native.cudaGraphWarmup(index, () => {
      result = fn();
    });
    return result as R;
  }

  /** Launches the captured kernels on the current stream (asynchronous, like any launch). */
  replay(): void {
    if (this.handle === null) throw new Error('CudaGraph: replay() after dispose()');
    native.cudaGraphReplay(this.handle);
  }

  /** Frees the graph and the memory pool its captured allocations came from. */
  dispose(): void {
    if (this.handle === null) return;
    native.cudaGraphReset(this.handle);
    this.handle = null;
  }
}

function deviceIndex(device: string): number {
  const index = cudaIndex(device);
  if (index === null) throw new Error(`CUDA graphs capture CUDA work: '${device}' is not a CUDA device`);
  return index;
}
