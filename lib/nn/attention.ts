// Causal multi-head self-attention with a fused QKV projection (HF: attn.c_attn, attn.c_proj).
import { mergeHeads, scaledDotProductAttention, splitHeads } from '../functional';
import type { TensorOptions } from '../factories';
import type { Tensor } from '../tensor';
import { attentionWidth, type GPTConfig } from './config';
import { Conv1D, modelDropout } from './layers';
import { Module } from './module';

export class CausalSelfAttention extends Module {
  readonly cAttn: Conv1D;
  readonly cProj: Conv1D;

  constructor(
    readonly config: GPTConfig,
    opts: TensorOptions,
  ) {
    super();
    const { nEmbd: d, bias, initStd } = config;
    const a = attentionWidth(config);
    this.cAttn = this.registerModule('c_attn', new Conv1D(d, 3 * a, { bias, std: initStd, ...opts }));
    // GPT-2: residual projections scaled by 1/√(2L) so the residual stream's variance stays put
    this.cProj = this.registerModule('c_proj', new Conv1D(a, d, { bias, std: initStd / Math.sqrt(2 * config.nLayer), ...opts }));
  }

  forward(x: Tensor): Tensor {
    // (B, T, 3A) → q, k, v each (B, nh, T, hs); the fused weight is [Wq | Wk | Wv] along its columns.
    // splitHeads / mergeHeads are one native call each (host overhead: this runs every layer)
    const [q, k, v] = splitHeads(this.cAttn.forward(x), this.config.nHead);
    const p = this.training ? this.config.dropout.attention : 0;
    const y = scaledDotProductAttention(q, k, v, { isCausal: true, dropoutP: p }); // (B, nh, T, hs)
    const merged = mergeHeads(y); // (B, T, A)
    return modelDropout(this.cProj.forward(merged), this.config.dropout.residual, this.training);
  }
}
