// A pre-LN transformer block: h ← h + Attn(LN1(h)); h ← h + MLP(LN2(h)).
import type { TensorOptions } from '../factories';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';
import { CausalSelfAttention } from './attention';
import type { GPTConfig } from './config';
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

  /** Intermediates are released as soon as the block is done (autograd keeps what it saved). */
  forward(h: Tensor): Tensor {
    return tidy(() => {
      const a = h.add(this.attn.forward(this.ln1.forward(h)));
      return a.add(this.mlp.forward(this.ln2.forward(a)));
    });
  }
}
