// The MLP of a block: d → mlpWidth → d with GPT-2's tanh-approximated GELU (HF: mlp.c_fc, mlp.c_proj).
import type { TensorOptions } from '../factories';
import type { Tensor } from '../tensor';
import type { GPTConfig } from './config';
import { Conv1D, modelDropout } from './layers';
import { Module } from './module';

export class MLP extends Module {
  readonly cFc: Conv1D;
  readonly cProj: Conv1D;

  constructor(
    readonly config: GPTConfig,
    opts: TensorOptions,
  ) {
    super();
    const { nEmbd: d, mlpWidth, bias, initStd } = config;
    this.cFc = this.registerModule('c_fc', new Conv1D(d, mlpWidth, { bias, std: initStd, ...opts }));
    this.cProj = this.registerModule('c_proj', new Conv1D(mlpWidth, d, { bias, std: initStd / Math.sqrt(2 * config.nLayer), ...opts }));
  }

  forward(x: Tensor): Tensor {
    return modelDropout(this.cProj.forward(this.cFc.forward(x).gelu('tanh')), this.config.dropout.residual, this.training);
  }
}
