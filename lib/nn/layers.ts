// The leaf layers of a GPT, in Hugging Face GPT-2's parameter layout.
import { addLayerNorm, conv1d, dropout, embedding as embeddingOp, layerNorm } from '../functional';
import { ones, randn, zeros, type TensorOptions } from '../factories';
import type { Tensor } from '../tensor';
import { Module } from './module';

/**
 * y = x·W + b with W stored (in, out): HF's Conv1D layout, so checkpoints load in transformers'
 * GPT2LMHeadModel unchanged and the growth spec's `y = xW + b` reads off the storage directly.
 */
export class Conv1D extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly nIn: number,
    readonly nOut: number,
    opts: { bias: boolean; std: number } & TensorOptions,
  ) {
    super();
    const o = { dtype: opts.dtype, device: opts.device };
    this.weight = this.registerParameter('weight', randn([nIn, nOut], o).mul_(opts.std), 'weight');
    this.bias = opts.bias ? this.registerParameter('bias', zeros([nOut], o), 'bias') : null;
  }

  /** x (..., in) → (..., out), one GEMM (bias fused by addmm) in one native call. */
  forward(x: Tensor): Tensor {
    return conv1d(x, this.weight, this.bias);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(rows: number, dim: number, opts: { std: number } & TensorOptions) {
    super();
    this.weight = this.registerParameter(
      'weight',
      randn([rows, dim], { dtype: opts.dtype, device: opts.device }).mul_(opts.std),
      'embedding',
    );
  }

  forward(indices: Tensor): Tensor {
    return embeddingOp(this.weight, indices);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly dim: number,
    readonly eps: number,
    opts: { bias: boolean } & TensorOptions,
  ) {
    super();
    const o = { dtype: opts.dtype, device: opts.device };
    this.weight = this.registerParameter('weight', ones([dim], o), 'layernorm');
    this.bias = opts.bias ? this.registerParameter('bias', zeros([dim], o), 'layernorm') : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
  }

  /** The residual add before this LayerNorm with it, as one op: [a = h + y, LayerNorm(a)] (see addLayerNorm). */
  addForward(h: Tensor, y: Tensor): [Tensor, Tensor] {
    return addLayerNorm(h, y, this.weight, this.bias, { eps: this.eps });
  }
}

/**
 * Dropout as the model applies it: x itself (no native call, no new handle) when it would change
 * nothing (p = 0, or evaluation), which is every step of the usual dropout-free pre-training.
 */
export function modelDropout(x: Tensor, p: number, training: boolean): Tensor {
  return p > 0 && training ? dropout(x, p, true) : x;
}
