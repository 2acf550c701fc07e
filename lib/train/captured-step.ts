// A whole training step — forward, backward, gradient clipping, AdamW — captured once as a CUDA
// graph and replayed each step. A small model's eager step is bound by launching ~400 kernels
// from the host; a replay is one launch. Static shapes only: the batch is copied into the input
// tensors the graph was captured with, the loss is read from the tensor it wrote.
import { CudaGraph } from '../cuda-graph';
import type { GPT } from '../nn/gpt';
import type { AdamW } from '../optim/adamw';
import { withAutocast } from '../runtime';
import { keep, tidy } from '../scope';
import type { Tensor } from '../tensor';

export interface CapturedStepOptions {
  /** Clip gradients to this global L2 norm (Infinity: no clipping). */
  clip: number;
  /** Autocast inside the step (its dtype), or none. */
  autocast: 'bfloat16' | 'float16' | null;
}

export class CapturedTrainStep {
  private constructor(
    private readonly graph: CudaGraph,
    private readonly opt: AdamW,
    private readonly x: Tensor,
    private readonly y: Tensor,
    /** The loss of the last replayed step (overwritten by each replay). */
    readonly loss: Tensor,
    /** The gradient norm before clipping of the last replayed step (null without clipping). */
    readonly gradNorm: Tensor | null,
    /** Lets the optimizer change again (see AdamW.holdForGraph). */
    private readonly releaseOptimizer: () => void,
  ) {}

  /** Replays done so far. */
  replays = 0;

  /**
   * Captures one step of `model` on inputs shaped like x and y (copied: the caller keeps its
   * tensors). Run a few eager steps first, the last inside CudaGraph.warmup (lazy set-up inside
   * libtorch must not happen during capture). Gradients are dropped first; afterwards they live in
   * the graph's memory and each replay overwrites them. The optimizer is held (its parameters,
   * moments and lr scales cannot change) until dispose(): growth needs a new capture.
   */
  static capture(model: GPT, opt: AdamW, x: Tensor, y: Tensor, o: CapturedStepOptions): CapturedTrainStep {
    const staticX = keep(x.clone());
    const staticY = keep(y.clone());
    opt.zeroGrad();
    opt.prepareStagedUpdate(); // rate and step tensors must exist before capture
    let out: { loss: Tensor; norm: Tensor | null } | null = null;
    try {
      const graph = CudaGraph.capture(x.device, () => {
        out = tidy(() => {
          const dtype = o.autocast;
          const l = dtype !== null ? withAutocast(dtype, () => model.loss(staticX, staticY)) : model.loss(staticX, staticY);
          l.backward();
          let norm: Tensor | null = null;
          if (Number.isFinite(o.clip) && o.clip > 0) norm = opt.clipAndApplyStagedUpdate(o.clip);
          else opt.applyStagedUpdate();
          return { loss: keep(l.detach()), norm: norm === null ? null : keep(norm) };
        });
      });
      const { loss, norm } = out!;
      return new CapturedTrainStep(graph, opt, staticX, staticY, loss, norm, opt.holdForGraph());
    } catch (e) {
      staticX.dispose();
      staticY.dispose();
      const partial = out as { loss: Tensor; norm: Tensor | null } | null;
      partial?.loss.dispose();
      partial?.norm?.dispose();
      opt.zeroGrad(); // gradients from a failed capture hold no values
      throw e;
    }
  }

  /** One training step at learning rate lr, on x/y if given (same shapes), else the last inputs. */
  run(lr: number, x?: Tensor, y?: Tensor): Tensor {
    for (const [label, given, own] of [
      ['x', x, this.x],
      ['y', y, this.y],
    ] as const) {
      if (given === undefined) continue;
      // copy_ would broadcast a smaller batch silently: the graph's shapes are fixed
      if (given.shape.join() !== own.shape.join() || given.dtype !== own.dtype)
        throw new Error(
          `CapturedTrainStep: ${label} is ${given.dtype} [${given.shape}] but the step was captured with ${own.dtype} [${own.shape}]`,
        );
      own.copy_(given);
    }
    this.opt.stageUpdate(lr);
    try {
      this.graph.replay();
    } catch (e) {
      this.opt.step -= 1; // the update staged above did not happen
      throw e;
    }
    this.replays += 1;
    return this.loss;
  }

  /** Frees the graph, its memory and the gradients it owned. */
  dispose(): void {
    this.releaseOptimizer();
    this.graph.dispose();
    this.x.dispose();
    this.y.dispose();
    this.loss.dispose();
    this.gradNorm?.dispose();
    this.opt.zeroGrad();
  }
}
