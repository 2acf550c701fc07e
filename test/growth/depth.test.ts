// Depth growth against spec/growth.md: exact (also in fp32), identity blocks, originals untouched,
// gradients, moments, new blocks train, appended and ×3 placements, and copy-stacking as the
// negative control.
import { grow, growBoth, growDepth } from '../../lib/growth';
import { instantiate } from '../../lib/growth/model-state';
import { eye, noGrad, randn, tidy, type Tensor } from '../../lib';
import { GPT } from '../../lib/nn';
import { batch, gradients, maxAbsDiff, tinyState } from './fixture';

const { state: small, model } = tinyState();
const { x, y } = batch();
const grown = growDepth(small);
const deep = instantiate(grown).model;
const logitsOf = (m: GPT) => tidy(() => noGrad(() => m.logits(x)));
const lossOf = (m: GPT) => tidy(() => noGrad(() => m.loss(x, y).item()));

describe('depth ×2 (interleaved)', () => {
  it('logits are equal, exactly in fp32 too', () => {
    expect(maxAbsDiff(logitsOf(model), logitsOf(deep))).toBeLessThan(1e-12);
    const s32 = tinyState({ dtype: 'float32' });
    const d32 = instantiate(growDepth(s32.state)).model;
    expect(maxAbsDiff(logitsOf(s32.model), logitsOf(d32))).toBe(0);
  });

  it('a new block maps any input to itself', () => {
    tidy(() =>
      noGrad(() => {
        const h = randn([2, 5, 8], { dtype: 'float64' }).mul(3);
        expect(maxAbsDiff(deep.blocks[1].forward(h), h)).toBe(0);
        expect(maxAbsDiff(deep.blocks[3].forward(h), h)).toBe(0);
      }),
    );
  });

  it('originals sit at slots 0 and 2, bit-identical, with their moments; new blocks start at zero moments', () => {
    for (const [name, p] of Object.entries(small.params)) {
      const target = name.replace(/^transformer\.h\.(\d+)\./, (_, i: string) => `transformer.h.${2 * Number(i)}.`);
      expect(maxAbsDiff(grown.params[target], p)).toBe(0);
      expect(maxAbsDiff(grown.moments[target].expAvg, small.moments[name].expAvg)).toBe(0);
      expect(maxAbsDiff(grown.moments[target].expAvgSq, small.moments[name].expAvgSq)).toBe(0);
    }
    for (const [name, m] of Object.entries(grown.moments)) {
      if (/^transformer\.h\.[13]\./.test(name)) expect(tidy(() => m.expAvg.abs().sum().item() + m.expAvgSq.abs().sum().item())).toBe(0);
    }
    expect(grown.config.nLayer).toBe(4);
    expect(grown.optimizerStep).toBe(small.optimizerStep);
  });

  it("original blocks' gradients are unchanged; new LN and biases get non-zero gradient at step 1", () => {
    const gs = gradients(model, x, y);
    const gd = gradients(deep, x, y);
    for (const [name, g] of Object.entries(gs)) {
      const target = name.replace(/^transformer\.h\.(\d+)\./, (_, i: string) => `transformer.h.${2 * Number(i)}.`);
      expect(maxAbsDiff(gd[target], g)).toBeLessThan(1e-12);
    }
    for (const n of ['ln_1.weight', 'ln_1.bias', 'ln_2.bias', 'attn.c_proj.bias', 'mlp.c_proj.bias']) {
      expect(tidy(() => gd[`transformer.h.1.${n}`].abs().sum().item())).toBeGreaterThan(0);
    }
  });

  it('identity-like init: the new blocks train — LN1, and after one step q and k (QKV is [I | I | I], not [I | 0 | 0])', () => {
    // one identity over the fused QKV weight would leave v = 0: attention's output would not depend
    // on LN1, q or k, and none of them would ever get a gradient
    const m = instantiate(growDepth(small, { init: 'identity' })).model;
    tidy(() => {
      for (const part of m.blocks[1].attn.cAttn.weight.chunk(3, 1)) {
        const n = Math.min(...part.shape);
        expect(maxAbsDiff(part.narrow(0, 0, n).narrow(1, 0, n), eye(n, { dtype: part.dtype }))).toBe(0);
      }
    });
    const sumAbs = (t: Tensor) => tidy(() => t.abs().sum().item());
    let g = gradients(m, x, y);
    for (const n of ['ln_1.weight', 'ln_1.bias', 'ln_2.weight', 'ln_2.bias', 'attn.c_proj.bias', 'mlp.c_fc.bias', 'mlp.c_proj.bias'])
      expect(sumAbs(g[`transformer.h.1.${n}`])).toBeGreaterThan(0);
    // at step 1 k = 0, so q and k get none yet; after one plain gradient step LN1 outputs more than 0
    noGrad(() => m.namedParameters().forEach((p) => p.tensor.sub_(g[p.name].mul(0.1))));
    g = gradients(m, x, y);
    for (const n of ['attn.c_attn.weight', 'attn.c_attn.bias'])
      for (const part of g[`transformer.h.1.${n}`].chunk(3, -1)) expect(sumAbs(part)).toBeGreaterThan(0);
    m.dispose();
  });

  it('appended placement and identity-like init are exact too', () => {
    for (const opts of [{ placement: 'appended' as const }, { init: 'identity' as const }, { factor: 3 }]) {
      const m = instantiate(growDepth(small, opts)).model;
      expect(maxAbsDiff(logitsOf(model), logitsOf(m))).toBeLessThan(1e-12);
      m.dispose();
    }
  });

  it('copy-stacking (the named non-preserving option) changes the loss', () => {
    const m = instantiate(growDepth(small, { method: 'copy-stack' })).model;
    expect(Math.abs(lossOf(m) - lossOf(model))).toBeGreaterThan(1e-3);
    m.dispose();
  });
});

describe('both at once', () => {
  it('width then depth stays exact', () => {
    const g = growBoth(small);
    expect(g.config).toMatchObject({ nEmbd: 16, nLayer: 4, nHead: 4 });
    const m = instantiate(g).model;
    expect(maxAbsDiff(logitsOf(model), logitsOf(m))).toBeLessThan(1e-10);
    m.dispose();
  });

  it('depth then width (composed by hand) stays exact', () => {
    const d = growDepth(small, { schedule: false });
    const w = instantiate(growBoth(d, { depth: { factor: 2 } })).model;
    expect(maxAbsDiff(logitsOf(model), logitsOf(w))).toBeLessThan(1e-10);
  });

  it("refuses an option it would ignore (a top-level factor), through grow('both') too", () => {
    const message =
      /growBoth: unknown option 'factor': it takes width, depth and schedule \(each operator's factor goes in its own options/;
    expect(() => growBoth(small, { factor: 3 } as never)).toThrow(message);
    expect(() => grow(small, 'both', { factor: 3 })).toThrow(message);
  });
});
