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
  /** bf16 autocast inside the step. */
  autocast: boolean;
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
  ) {}

  /**
   * Captures one step of `model` on inputs shaped like x and y (copied: the caller keeps its
   * tensors). Run a few eager steps first (lazy set-up inside libtorch must not happen during
   * capture). Gradients are dropped first; afterwards they live in the graph's memory and each
   * replay overwrites them. The optimizer's parameters and lr scales must stay as they are while
   * the step is in use (growth needs a new capture).
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
          const l = o.autocast ? withAutocast('bfloat16', () => model.loss(staticX, staticY)) : model.loss(staticX, staticY);
          l.backward();
          const norm = Number.isFinite(o.clip) && o.clip > 0 ? opt.clipGradNorm(o.clip) : null;
          opt.applyStagedUpdate();
          return { loss: keep(l.detach()), norm: norm === null ? null : keep(norm) };
        });
      });
      const { loss, norm } = out!;
      return new CapturedTrainStep(graph, opt, staticX, staticY, loss, norm);
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
    if (x !== undefined) this.x.copy_(x);
    if (y !== undefined) this.y.copy_(y);
    this.opt.stageUpdate(lr);
    this.graph.replay();
    return this.loss;
  }

  /** Frees the graph, its memory and the gradients it owned. */
  dispose(): void {
    this.graph.dispose();
    this.x.dispose();
    this.y.dispose();
    this.loss.dispose();
    this.gradNorm?.dispose();
    this.opt.zeroGrad();
  }
}
