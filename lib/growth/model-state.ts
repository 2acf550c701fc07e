// Between live training objects (GPT + AdamW) and the TrainState the operators take.
import { noGrad } from '../autograd';
import type { Device } from '../dtype';
import { GPT } from '../nn/gpt';
import { AdamW, type AdamWOptionsInput, type Moments } from '../optim/adamw';
import type { Schedule } from '../optim/schedule';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';
import type { Progression, TrainState } from './state';

/** A view of the live state: the tensors are the model's and optimizer's own (not copies). */
export function stateOf(model: GPT, optimizer: AdamW, schedule: Schedule, progression: Progression): TrainState {
  const params: Record<string, Tensor> = {};
  const moments: Record<string, Moments> = {};
  for (const p of model.namedParameters()) {
    params[p.name] = p.tensor;
    moments[p.name] = optimizer.getMoments(p.name);
  }
  return { config: model.config, params, moments, optimizerStep: optimizer.step, schedule, progression: { ...progression } };
}

/**
 * A model and optimizer holding a state's tensors, on the state's device unless told: copies by
 * default; with `adopt` the model and optimizer take the state's tensors over where they already
 * sit on the right device and dtype (no second copy of a freshly grown state), and the state must
 * not be used or disposed afterwards.
 */
export function instantiate(
  s: TrainState,
  opts: { device?: Device; optimizer?: AdamWOptionsInput; adopt?: boolean } = {},
): { model: GPT; optimizer: AdamW } {
  const first = Object.values(s.params)[0];
  const device = opts.device ?? first.device;
  const model = new GPT(s.config, { device, dtype: first.dtype });
  const names = new Set(Object.keys(s.params));
  noGrad(() => {
    for (const p of model.namedParameters()) {
      const src = s.params[p.name];
      if (src === undefined) throw new Error(`state has no parameter '${p.name}' for this config`);
      if (src.shape.join() !== p.tensor.shape.join())
        throw new Error(`state parameter '${p.name}' has shape [${src.shape}] but the config needs [${p.tensor.shape}]`);
      if (opts.adopt && src.device === p.tensor.device && src.dtype === p.tensor.dtype) {
        p.tensor.setData(src); // shares src's storage; the handle itself is no longer needed
        src.dispose();
      } else {
        p.tensor.copy_(src);
        if (opts.adopt) src.dispose();
      }
      names.delete(p.name);
    }
  });
  if (names.size > 0) throw new Error(`state has parameters the config does not: ${[...names].join(', ')}`);
  const optimizer = new AdamW(model.namedParameters(), opts.optimizer);
  tidy(() => {
    for (const p of model.namedParameters()) {
      const m = s.moments[p.name];
      if (m === undefined) throw new Error(`state has no optimizer moments for '${p.name}'`);
      // setMoments keep()s what it is given; intermediate handles go with the scope
      const take = (t: Tensor): Tensor => {
        if (!opts.adopt) return t.to({ device }).clone();
        if (t.device === device) return t;
        const moved = t.to({ device });
        t.dispose();
        return moved;
      };
      optimizer.setMoments(p.name, { expAvg: take(m.expAvg), expAvgSq: take(m.expAvgSq) });
    }
  });
  optimizer.step = s.optimizerStep;
  return { model, optimizer };
}
