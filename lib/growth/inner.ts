// Growth of an inner width with the residual width d kept — beyond the paper's operators:
//   MLP width M → k·M:   W1 → [W1 ∣ … ∣ W1], b1 → dup(b1), W2 → [W2/k; … ; W2/k]
//   heads H → k·H:       per projection [Wq ∣ … ∣ Wq] (head size kept), bias likewise,
//                        Wo → [Wo/k; … ; Wo/k]
// The new units are copies whose outputs are averaged back, so the function is unchanged.
// AdamW: the fan-out copies (W1, b1; Wq, Wk, Wv and their biases) receive g/k → m/k, v/k²; the
// fan-in pieces (W2, Wo) receive the full g → m, v duplicated unscaled; all else is unchanged.
import { parseGPTConfig } from '../nn/config';
import type { Moments } from '../optim/adamw';
import { keep, tidy } from '../scope';
import type { Tensor } from '../tensor';
import { dup, perGroup } from './blocks';
import type { TrainState } from './state';

type InnerRole = 'fanout' | 'fanin' | 'same';

function mlpRole(name: string): { role: InnerRole; groups?: number } {
  if (/\.mlp\.c_fc\.(weight|bias)$/.test(name)) return { role: 'fanout' };
  if (/\.mlp\.c_proj\.weight$/.test(name)) return { role: 'fanin' };
  return { role: 'same' };
}

function headsRole(name: string): { role: InnerRole; groups?: number } {
  if (/\.attn\.c_attn\.(weight|bias)$/.test(name)) return { role: 'fanout', groups: 3 };
  if (/\.attn\.c_proj\.weight$/.test(name)) return { role: 'fanin' };
  return { role: 'same' };
}

/** The fan-out axis is the last one (columns of a weight, the only axis of a bias). */
function fanout(x: Tensor, k: number, groups?: number): Tensor {
  const dim = x.ndim - 1;
  return groups ? perGroup(x, groups, dim, (p) => dup(p, k, dim)) : dup(x, k, dim);
}

function grow(s: TrainState, k: number, which: 'mlp' | 'heads'): Pick<TrainState, 'config' | 'params' | 'moments'> {
  if (!Number.isInteger(k) || k < 2) throw new Error(`${which} growth: factor must be an integer ≥ 2, got ${k}`);
  const roleOf = which === 'mlp' ? mlpRole : headsRole;
  const config = parseGPTConfig(
    which === 'mlp'
      ? { ...s.config, mlpWidth: k * s.config.mlpWidth }
      : { ...s.config, nHead: k * s.config.nHead, headSize: s.config.headSize },
  );
  const params: Record<string, Tensor> = {};
  const moments: Record<string, Moments> = {};
  for (const [name, p] of Object.entries(s.params)) {
    const m = s.moments[name];
    if (m === undefined) throw new Error(`${which} growth: no optimizer moments for '${name}'`);
    const { role, groups } = roleOf(name);
    const out = tidy(() => {
      if (role === 'same') return { p: p.clone(), m: m.expAvg.clone(), v: m.expAvgSq.clone() };
      if (role === 'fanout')
        return { p: fanout(p, k, groups), m: fanout(m.expAvg.div(k), k, groups), v: fanout(m.expAvgSq.div(k * k), k, groups) };
      return { p: dup(p, k, 0).div(k), m: dup(m.expAvg, k, 0), v: dup(m.expAvgSq, k, 0) };
    });
    params[name] = keep(out.p);
    moments[name] = { expAvg: keep(out.m), expAvgSq: keep(out.v) };
  }
  return { config, params, moments };
}

export function mlpParams(s: TrainState, factor = 2): Pick<TrainState, 'config' | 'params' | 'moments'> {
  return grow(s, factor, 'mlp');
}

export function headsParams(s: TrainState, factor = 2): Pick<TrainState, 'config' | 'params' | 'moments'> {
  return grow(s, factor, 'heads');
}
