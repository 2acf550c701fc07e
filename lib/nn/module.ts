// Module: a named tree of parameters (Hugging Face dotted names) and submodules, with a train/eval
// flag. Parameters are leaf tensors that require grad and live until the module is disposed.
import type { NamedParameter, ParamKind } from '../optim/adamw';
import { keep } from '../scope';
import type { Tensor } from '../tensor';

export abstract class Module {
  training = true;
  private readonly ownParams = new Map<string, { tensor: Tensor; kind: ParamKind }>();
  private readonly children = new Map<string, Module>();

  protected registerParameter(name: string, tensor: Tensor, kind: ParamKind): Tensor {
    keep(tensor).requiresGrad_(true);
    this.ownParams.set(name, { tensor, kind });
    return tensor;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Every parameter with its full dotted name, in registration order (depth first). */
  namedParameters(prefix = ''): NamedParameter[] {
    const out: NamedParameter[] = [];
    for (const [n, p] of this.ownParams) out.push({ name: prefix + n, tensor: p.tensor, kind: p.kind });
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map((p) => p.tensor);
  }

  /** Training mode (dropout on) or evaluation mode, for the whole tree. */
  train(on = true): this {
    this.training = on;
    for (const m of this.children.values()) m.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Frees every parameter. */
  dispose(): void {
    for (const p of this.ownParams.values()) p.tensor.dispose();
    for (const m of this.children.values()) m.dispose();
  }
}
