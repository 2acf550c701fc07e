// Causal multi-head self-attention with a fused QKV projection (HF: attn.c_attn, attn.c_proj).
import { ones, type TensorOptions } from '../factories';
import { mergeHeads, scaledDotProductAttention, splitHeads } from '../functional';
import type { Tensor } from '../tensor';
import { attentionWidth, type GPTConfig } from './config';
import type { AttentionCache } from './kv-cache';
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

  /**
   * x (B, T, d) → (B, T, d). With `cache`, x holds the positions after the cached ones: their keys
   * and values are written into the cache and they attend to every cached position too.
   */
  forward(x: Tensor, cache?: AttentionCache): Tensor {
    // (B, T, 3A) → q, k, v each (B, nh, T, hs); the fused weight is [Wq | Wk | Wv] along its columns.
    // splitHeads / mergeHeads are one native call each (host overhead: this runs every layer)
    const [q, k, v] = splitHeads(this.cAttn.forward(x), this.config.nHead);
    const p = this.training ? this.config.dropout.attention : 0;
    const y = cache === undefined ? scaledDotProductAttention(q, k, v, { isCausal: true, dropoutP: p }) : attendCached(q, k, v, cache, p); // (B, nh, T, hs)
    const merged = mergeHeads(y); // (B, T, A)
    return modelDropout(this.cProj.forward(merged), this.config.dropout.residual, this.training);
  }
}

/** Attention of n new positions to the cached ones and to themselves, causally; caches their k, v. */
function attendCached(q: Tensor, k: Tensor, v: Tensor, cache: AttentionCache, dropoutP: number): Tensor {
  const n = k.shape[2];
  const { keys, values, start } = cache.append(k, v);
  // one new position sees everything; a prompt read from position 0 is the usual square causal
  // mask; n new positions after cached ones see the keys j ≤ start + i (the causal mask aligned to
  // the bottom right, where isCausal aligns a non-square mask to the top left)
  if (n === 1) return scaledDotProductAttention(q, keys, values, { dropoutP });
  if (start === 0) return scaledDotProductAttention(q, keys, values, { isCausal: true, dropoutP });
  const mask = ones([n, start + n], { dtype: 'bool', device: q.device }).tril(start);
  return scaledDotProductAttention(q, keys, values, { mask, dropoutP });
}
