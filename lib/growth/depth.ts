// Depth growth L → k·L (spec/growth.md, "Depth"): every original block is kept and k−1 blocks that
// are exactly the identity function are added — interleaved (original i at slot k·i, new ones
// right after it) or appended. A new block has LN1/LN2 γ = β = 0 and zero biases, so both LNs
// output 0, q = k = v = 0 and attention and MLP add exact zeros: its input-Jacobian is the
// identity. Its weight matrices are copies of the original block's (default) or identity-like,
// so it trains from the first step (its LN γ/β and biases get gradient). AdamW: original blocks
// keep m, v (bit-identical), new blocks start at m = v = 0.
// `copy-stack` is the NON-preserving baseline [B1, B1, B2, B2, …] with everything copied; it exists
// only to compare against.
import { z } from 'zod';
import { eye, zeros, zerosLike } from '../factories';
import { cat } from '../functional';
import { parseGPTConfig } from '../nn/config';
import type { Moments } from '../optim/adamw';
import { keep, tidy } from '../scope';
import type { Tensor } from '../tensor';
import { blockIndex, renameBlock, type TrainState } from './state';
import { parseOrThrow } from '../validate';

export const DepthOptionsSchema = z
  .object({
    factor: z.number().int().min(2).default(2),
    placement: z.enum(['interleaved', 'appended']).default('interleaved'),
    /** Weights of the new blocks: copies of the original block's, or identity-like. */
    init: z.enum(['copy', 'identity']).default('copy'),
    /** 'identity-blocks' preserves the function; 'copy-stack' does not (negative control). */
    method: z.enum(['identity-blocks', 'copy-stack']).default('identity-blocks'),
  })
  .strict();
export type DepthOptions = z.input<typeof DepthOptionsSchema>;

/** Slot of original block i's j-th copy (j = 0: the original) among k·L. */
function slot(i: number, j: number, L: number, k: number, placement: 'interleaved' | 'appended'): number {
  return placement === 'interleaved' ? k * i + j : j * L + i;
}

/** An identity-like matrix of this shape: ones on the main diagonal. */
function identityLike(shape: number[], like: Tensor): Tensor {
  return tidy(() => {
    const [r, c] = shape;
    const n = Math.min(r, c);
    const out = zeros(shape, { dtype: like.dtype, device: like.device });
    out
      .narrow(0, 0, n)
      .narrow(1, 0, n)
      .copy_(eye(n, { dtype: like.dtype, device: like.device }));
    return out;
  });
}

/** The value of a new (identity) block's parameter made from the original block's. */
function newBlockValue(name: string, p: Tensor, init: 'copy' | 'identity'): Tensor {
  if (/\.(ln_1|ln_2)\.(weight|bias)$/.test(name) || /\.bias$/.test(name)) return zerosLike(p); // γ = β = 0, b = 0
  if (init === 'copy') return p.clone();
  // the fused QKV weight (d × 3a) is three projections: identity-like each, [I | I | I]. One
  // identity over the whole would be [I | 0 | 0]: v = 0 for every token, so the attention's output
  // would not depend on q, k or LN1 and none of them would ever get a gradient
  if (/\.attn\.c_attn\.weight$/.test(name)) {
    const [d, three] = p.shape;
    return tidy(() =>
      cat(
        [0, 1, 2].map(() => identityLike([d, three / 3], p)),
        1,
      ),
    );
  }
  return identityLike(p.shape, p);
}

function cloneMoments(m: Moments): Moments {
  return { expAvg: keep(m.expAvg.clone()), expAvgSq: keep(m.expAvgSq.clone()) };
}

export function depthParams(s: TrainState, input: DepthOptions = {}): Pick<TrainState, 'config' | 'params' | 'moments'> {
  const o = parseOrThrow(DepthOptionsSchema, input, 'depth growth');
  const k = o.factor;
  const L = s.config.nLayer;
  const config = parseGPTConfig({ ...s.config, nLayer: k * L });
  const params: Record<string, Tensor> = {};
  const moments: Record<string, Moments> = {};
  for (const [name, p] of Object.entries(s.params)) {
    const m = s.moments[name];
    if (m === undefined) throw new Error(`depth growth: no optimizer moments for '${name}'`);
    const i = blockIndex(name);
    if (i === null) {
      params[name] = keep(p.clone());
      moments[name] = cloneMoments(m);
      continue;
    }
    for (let j = 0; j < k; j++) {
      const target = renameBlock(name, slot(i, j, L, k, o.placement));
      if (j === 0 || o.method === 'copy-stack') {
        params[target] = keep(p.clone());
        moments[target] = cloneMoments(m);
      } else {
        params[target] = keep(newBlockValue(name, p, o.init));
        moments[target] = {
          expAvg: keep(zerosLike(p, { dtype: m.expAvg.dtype })),
          expAvgSq: keep(zerosLike(p, { dtype: m.expAvgSq.dtype })),
        };
      }
    }
  }
  return { config, params, moments };
}
