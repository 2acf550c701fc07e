// Growth of an inner width with the residual width d kept — beyond the paper's operators:
//   MLP width M → k·M:   W1 → [W1 ∣ … ∣ W1], b1 → dup(b1), W2 → [W2/k; … ; W2/k]
//   heads H → k·H:       per projection [Wq ∣ … ∣ Wq] (head size kept), bias likewise,
//                        Wo → [Wo/k; … ; Wo/k]
// The new units are copies whose outputs are averaged back, so the function is unchanged.
// AdamW: the fan-out copies (W1, b1; Wq, Wk, Wv and their biases) receive g/k → m/k, v/k²; the
// fan-in pieces (W2, Wo) receive the full g → m, v duplicated unscaled; all else is unchanged.
// Symmetry: copies of a unit receive equal gradients and stay equal forever. For the MLP nothing in
// the model can tell them apart (dropout acts after W2, on their average); attention dropout does for
// heads. `splitNoiseStd` adds zero-sum noise to the fan-out weight copies (W1 ± N; Wq, Wk, Wv ± N per
// head): the copies compute different activations from the first step, and since the output averages
// a smooth function of them, it moves only at second order in N.
import { z } from 'zod';
import { parseGPTConfig } from '../nn/config';
import type { Moments } from '../optim/adamw';
import { keep, tidy } from '../scope';
import type { Tensor } from '../tensor';
import { parseOrThrow } from '../validate';
import { dup, perGroup, splitNoise } from './blocks';
import type { TrainState } from './state';

export const InnerOptionsSchema = z
  .object({
    factor: z.number().int().min(2).default(2),
    /** Std of zero-sum noise across the copies of the fan-out weights (symmetry broken, function moved at second order). */
    splitNoiseStd: z.number().nonnegative().default(0),
  })
  .strict();
export type InnerOptions = z.input<typeof InnerOptionsSchema>;

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

/**
 * The fan-out axis is the last one (columns of a weight, the only axis of a bias); `noiseStd` > 0
 * splits a weight's copies apart (per q/k/v group for the fused attention weight).
 */
function fanout(x: Tensor, k: number, groups?: number, noiseStd = 0): Tensor {
  const dim = x.ndim - 1;
  const copies = (p: Tensor) => (noiseStd > 0 && p.ndim === 2 ? tidy(() => splitNoise(dup(p, k, dim), k, noiseStd)) : dup(p, k, dim));
  return groups ? perGroup(x, groups, dim, copies) : copies(x);
}

function grow(s: TrainState, input: InnerOptions, which: 'mlp' | 'heads'): Pick<TrainState, 'config' | 'params' | 'moments'> {
  const { factor: k, splitNoiseStd } = parseOrThrow(InnerOptionsSchema, input, `${which} growth`);
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
        return {
          p: fanout(p, k, groups, splitNoiseStd),
          m: fanout(m.expAvg.div(k), k, groups),
          v: fanout(m.expAvgSq.div(k * k), k, groups),
        };
      return { p: dup(p, k, 0).div(k), m: dup(m.expAvg, k, 0), v: dup(m.expAvgSq, k, 0) };
    });
    params[name] = keep(out.p);
    moments[name] = { expAvg: keep(out.m), expAvgSq: keep(out.v) };
  }
  return { config, params, moments };
}

export function mlpParams(s: TrainState, opts: InnerOptions = {}): Pick<TrainState, 'config' | 'params' | 'moments'> {
  return grow(s, opts, 'mlp');
}

export function headsParams(s: TrainState, opts: InnerOptions = {}): Pick<TrainState, 'config' | 'params' | 'moments'> {
  return grow(s, opts, 'heads');
}
