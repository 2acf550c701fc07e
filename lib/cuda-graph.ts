// CUDA graphs: record the kernels a function launches once, replay them with one launch each
// time after. For static shapes only: a replay reads and writes exactly the memory the capture
// used, so inputs are copied into tensors that live as long as the graph, and outputs are read
// from the tensors the captured function returned.
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
   * computed: the first replay is the first real run). fn must not synchronize with the host
   * (no item(), no copies to the CPU); if it does, or throws, the capture fails with that error.
   */
  static capture(device: string, fn: () => void): CudaGraph {
    const m = /^cuda(?::(\d+))?$/.exec(device);
    if (m === null) throw new Error(`CUDA graphs capture CUDA work: '${device}' is not a CUDA device`);
    if (!native.hasCudaGraphs) native.cudaGraphCapture(0, fn); // throws: says why this build has none
    return new CudaGraph(native.cudaGraphCapture(Number(m[1] ?? 0), fn));
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
