// A pre-LN transformer block: h ← h + Attn(LN1(h)); h ← h + MLP(LN2(h)).
import type { TensorOptions } from '../factories';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';
import { CausalSelfAttention } from './attention';
import type { GPTConfig } from './config';
import type { AttentionCache } from './kv-cache';
import { LayerNorm } from './layers';
import { MLP } from './mlp';
import { Module } from './module';

export class Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln2: LayerNorm;
  readonly mlp: MLP;

  constructor(config: GPTConfig, opts: TensorOptions) {
    super();
    const ln = { bias: config.bias, ...opts };
    this.ln1 = this.registerModule('ln_1', new LayerNorm(config.nEmbd, config.layerNormEps, ln));
    this.attn = this.registerModule('attn', new CausalSelfAttention(config, opts));
    this.ln2 = this.registerModule('ln_2', new LayerNorm(config.nEmbd, config.layerNormEps, ln));
    this.mlp = this.registerModule('mlp', new MLP(config, opts));
  }

  /** The block on its own: h + Attn(LN1(h)), then + MLP(LN2(·)). */
  forward(h: Tensor): Tensor {
    return tidy(() => {
      const { residual, branch } = this.forwardPending(h, null);
      return residual.add(branch);
    });
  }

  /**
   * The block as GPT chains it: its input is the residual stream h with the previous block's MLP
   * output still to be added (`pending`; null for the first block), its output the stream after
   * attention and this block's MLP output, not yet added. Every residual add then meets the
   * LayerNorm after it in one op (addLayerNorm: with the fused kernels, one pass over the stream
   * where the add, the LayerNorm and its cast for the next matmul take three). Intermediates are
   * released as soon as the block is done (autograd keeps what it saved). With `cache`, h holds the
   * positions after the cached ones (see CausalSelfAttention.forward).
   */
  forwardPending(h: Tensor, pending: Tensor | null, cache?: AttentionCache): { residual: Tensor; branch: Tensor } {
    return tidy(() => {
      const [x, z1] = pending === null ? [h, this.ln1.forward(h)] : this.ln1.addForward(h, pending);
      const [a, z2] = this.ln2.addForward(x, this.attn.forward(z1, cache));
      return { residual: a, branch: this.mlp.forward(z2) };
    });
  }
}
