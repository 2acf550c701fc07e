// Width growth d → k·d (spec/growth.md, "Width"): heads ×k with the head size kept, MLP ×k.
// Every parameter is mapped so that the grown residual stream is always dup_k(h):
//   E, P (and an untied head)        [E ∣ E]                 columns duplicated, not scaled
//   LN1/LN2 γ, β, linear biases      dup(γ), dup(β), dup(b)
//   fused QKV weight [Wq ∣ Wk ∣ Wv]  [bd(Wq) ∣ bd(Wk) ∣ bd(Wv)]   per projection
//   fused QKV bias                   [bq; bq; bk; bk; bv; bv]
//   Wo, W1, W2                       bd(W)
//   LNf γ, β                         dup(γ)/k, dup(β)/k      the only scaled tensor
// AdamW: each copy (diagonal blocks included) receives g/k, so it gets m/k and v/k²; LNf's copies
// receive g and keep m, v; off-diagonal blocks start at zero (or m/k, v/k² as an option).
import { z } from 'zod';
import { randn } from '../factories';
import { parseGPTConfig, type GPTConfig } from '../nn/config';
import type { Moments } from '../optim/adamw';
import { keep, tidy } from '../scope';
import type { Tensor } from '../tensor';
import { blockDiagonal, dup, perGroup, splitNoise } from './blocks';
import type { TrainState } from './state';
import { parseOrThrow } from '../validate';

/** How a parameter maps under width growth. */
type Role =
  | { kind: 'copy'; dim: number; groups?: number } // duplicated (per group along dim for the fused QKV bias)
  | { kind: 'matrix'; groups?: number } // block-diagonal (per column group for the fused QKV weight)
  | { kind: 'lnf' }; // duplicated and scaled by 1/k

export function widthRole(name: string): Role {
  if (/^transformer\.(wte|wpe)\.weight$/.test(name) || name === 'lm_head.weight') return { kind: 'copy', dim: 1 };
  if (/^transformer\.ln_f\./.test(name)) return { kind: 'lnf' };
  if (/\.attn\.c_attn\.weight$/.test(name)) return { kind: 'matrix', groups: 3 };
  if (/\.attn\.c_attn\.bias$/.test(name)) return { kind: 'copy', dim: 0, groups: 3 };
  if (/\.(attn|mlp)\.c_(proj|fc)\.weight$/.test(name)) return { kind: 'matrix' };
  if (/\.(ln_1|ln_2)\.(weight|bias)$/.test(name) || /\.(attn|mlp)\.c_(proj|fc)\.bias$/.test(name)) return { kind: 'copy', dim: 0 };
  throw new Error(`width growth: no rule for parameter '${name}'`);
}

export const WidthOptionsSchema = z
  .object({
    factor: z.number().int().min(2).default(2),
    /** Moments of the off-diagonal blocks: zero (reference) or m/k, v/k² like the copies. */
    offDiagonalMoments: z.enum(['zero', 'scaled']).default('zero'),
    /** An untied LM head is only grown when asked: [U ∣ U] with the ½ kept on LNf. */
    untiedHead: z.enum(['refuse', 'duplicate']).default('refuse'),
    /** Dropout of the grown stage: breaks the symmetry of the copies while training. */
    dropout: z.object({ embedding: z.number(), attention: z.number(), residual: z.number() }).partial().strict().optional(),
    /** Std of noise added to the new (off-diagonal) weights: breaks symmetry, trades away exactness. */
    noiseStd: z.number().nonnegative().default(0),
    /**
     * Std of zero-sum noise across the k copies of the token and position embeddings ([E+N ∣ E−N]
     * for k = 2): the residual stream's copies start apart, so symmetry is broken from the first
     * step, while the function changes only at second order in N (the copies' mean is E, and
     * LayerNorm and the halved LNf average them; off-diagonal noise changes it at first order).
     */
    splitNoiseStd: z.number().nonnegative().default(0),
  })
  .strict();
export type WidthOptions = z.input<typeof WidthOptionsSchema>;

export function grownWidthConfig(c: GPTConfig, k: number, dropout?: Partial<GPTConfig['dropout']>): GPTConfig {
  return parseGPTConfig({
    ...c,
    nEmbd: k * c.nEmbd,
    nHead: k * c.nHead,
    mlpWidth: k * c.mlpWidth,
    headSize: c.headSize,
    dropout: { ...c.dropout, ...dropout },
  });
}

function mapValue(x: Tensor, role: Role, k: number, offDiagonal: (() => Tensor) | null): Tensor {
  switch (role.kind) {
    case 'copy':
      return role.groups ? perGroup(x, role.groups, role.dim, (p) => dup(p, k, role.dim)) : dup(x, k, role.dim);
    case 'lnf':
      return tidy(() => dup(x, k, 0).div(k));
    case 'matrix': {
      // (fresh noise for every off-diagonal block: the same in (i, j) and (j, i) keeps the copies equal)
      const bd = (w: Tensor) => tidy(() => blockDiagonal(w, k, offDiagonal));
      return role.groups ? perGroup(x, role.groups, 1, bd) : bd(x);
    }
  }
}

/** m and v of a grown parameter: copies m/k, v/k²; LNf unscaled; off-diagonal blocks zero or scaled. */
function mapMoments(m: Moments, role: Role, k: number, offDiagonal: 'zero' | 'scaled'): Moments {
  return tidy(() => {
    if (role.kind === 'lnf') return { expAvg: dup(m.expAvg, k, 0), expAvgSq: dup(m.expAvgSq, k, 0) };
    const m1 = m.expAvg.div(k);
    const v1 = m.expAvgSq.div(k * k);
    if (role.kind === 'copy') return { expAvg: mapValue(m1, role, k, null), expAvgSq: mapValue(v1, role, k, null) };
    const off = (t: Tensor) => (offDiagonal === 'scaled' ? () => t : null);
    // per QKV group the scaled moments must come from the same group
    if (role.groups) {
      const bdGroup = (t: Tensor) => perGroup(t, role.groups!, 1, (p) => blockDiagonal(p, k, offDiagonal === 'scaled' ? p : null));
      return { expAvg: bdGroup(m1), expAvgSq: bdGroup(v1) };
    }
    return { expAvg: mapValue(m1, role, k, off(m1)), expAvgSq: mapValue(v1, role, k, off(v1)) };
  });
}

/** `next`, with `prev` (an intermediate it was computed from) freed. */
function replaced(prev: Tensor, next: Tensor): Tensor {
  prev.dispose();
  return next;
}

/** Parameters and moments of the width-grown model; schedule and counters are the caller's. */
export function widthParams(s: TrainState, input: WidthOptions = {}): Pick<TrainState, 'config' | 'params' | 'moments'> {
  const o = parseOrThrow(WidthOptionsSchema, input, 'width growth');
  const k = o.factor;
  if (!s.config.tiedEmbeddings && o.untiedHead !== 'duplicate') {
    throw new Error("width growth of an untied LM head needs untiedHead: 'duplicate' ([U ∣ U] with LNf halved)");
  }
  const config = grownWidthConfig(s.config, k, o.dropout);
  const params: Record<string, Tensor> = {};
  const moments: Record<string, Moments> = {};
  for (const [name, p] of Object.entries(s.params)) {
    const role = widthRole(name);
    const noise =
      o.noiseStd > 0 && role.kind === 'matrix'
        ? () => randn(role.groups ? [p.shape[0], p.shape[1] / role.groups] : p.shape, { dtype: p.dtype, device: p.device }).mul_(o.noiseStd)
        : null;
    const copies = mapValue(p, role, k, noise);
    const grown =
      o.splitNoiseStd > 0 && /^transformer\.(wte|wpe)\.weight$/.test(name)
        ? replaced(copies, splitNoise(copies, k, o.splitNoiseStd))
        : copies;
    params[name] = keep(grown);
    const m = s.moments[name];
    if (m === undefined) throw new Error(`width growth: no optimizer moments for '${name}'`);
    const g = mapMoments(m, role, k, o.offDiagonalMoments);
    moments[name] = { expAvg: keep(g.expAvg), expAvgSq: keep(g.expAvgSq) };
  }
  return { config, params, moments };
}
