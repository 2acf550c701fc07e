// Width growth against spec/growth.md: exact function, the residual stream is dup(h), head copies,
// the gradient lemma, the moments, one AdamW step, symmetry, fp32, general factors, errors.
import { growWidth, widthParams, type TrainState } from '../../lib/growth';
import { instantiate } from '../../lib/growth/model-state';
import { cat } from '../../lib/functional';
import { dispose, manualSeed, noGrad, tidy, watchStorage, type Tensor } from '../../lib';
import { GPT } from '../../lib/nn';
import { batch, gradients, maxAbsDiff, tinyState } from './fixture';

const { state: small, model } = tinyState();
const { x, y } = batch();
const grown = growWidth(small);
const big = instantiate(grown).model;

const logitsOf = (m: GPT) => tidy(() => noGrad(() => m.logits(x)));

describe('width ×2: the function is unchanged', () => {
  it('logits equal before and after (|Δ| < 1e-10 in fp64)', () => {
    expect(maxAbsDiff(logitsOf(model), logitsOf(big))).toBeLessThan(1e-10);
  });

  it('doubles width, heads and MLP, keeps the head size, depth, vocabulary and context', () => {
    expect(grown.config).toMatchObject({ nEmbd: 16, nHead: 4, mlpWidth: 64, headSize: 4, nLayer: 2, vocabSize: 50, contextLength: 8 });
  });

  it("every block's residual output equals dup(h)", () => {
    noGrad(() =>
      tidy(() => {
        let h = model.hidden(x.narrow(1, 0, 8));
        let h2 = big.hidden(x);
        expect(maxAbsDiff(cat([h, h], 2), h2)).toBeLessThan(1e-10);
        // block by block, from any duplicated input (here the token embeddings alone)
        h = model.transformer.wte.forward(x);
        h2 = big.transformer.wte.forward(x);
        for (let i = 0; i < 2; i++) {
          h = model.blocks[i].forward(h);
          h2 = big.blocks[i].forward(h2);
          expect(maxAbsDiff(cat([h, h], 2), h2)).toBeLessThan(1e-10);
        }
      }),
    );
  });

  it('head j+h equals head j for q, k and v', () => {
    noGrad(() =>
      tidy(() => {
        const inp = big.blocks[0].ln1.forward(big.hidden(x).narrow(1, 0, 8));
        const qkv = big.blocks[0].attn.cAttn.forward(inp); // (B, T, 3·16)
        for (const g of [0, 1, 2]) {
          // q, k, v in turn: heads 0..3 of size 4; head j+2 must equal head j
          const part = qkv.narrow(2, g * 16, 16);
          expect(maxAbsDiff(part.narrow(2, 0, 8), part.narrow(2, 8, 8))).toBeLessThan(1e-12);
        }
      }),
    );
  });

  it('fp32: logits equal to 1e-4', () => {
    const s32 = tinyState({ dtype: 'float32' });
    const g32 = growWidth(s32.state);
    const b32 = instantiate(g32).model;
    expect(maxAbsDiff(logitsOf(s32.model), logitsOf(b32))).toBeLessThan(1e-4);
  });

  it.each([3, 4])('width ×%i is exact too', (k) => {
    const g = growWidth(small, { factor: k });
    const m = instantiate(g).model;
    expect(g.config.nEmbd).toBe(8 * k);
    expect(maxAbsDiff(logitsOf(model), logitsOf(m))).toBeLessThan(1e-10);
    m.dispose();
  });
});

describe('width ×2: gradients and optimizer state', () => {
  const gs = gradients(model, x, y);
  const gb = gradients(big, x, y);
  const d = 8;

  it('copies and off-diagonal blocks get g/2, LNf gets g', () => {
    tidy(() => {
      // embeddings: both column copies
      const gE = gs['transformer.wte.weight'];
      const gE2 = gb['transformer.wte.weight'];
      expect(maxAbsDiff(gE2.narrow(1, 0, d), gE.div(2))).toBeLessThan(1e-12);
      expect(maxAbsDiff(gE2.narrow(1, d, d), gE.div(2))).toBeLessThan(1e-12);
      // an MLP matrix: all four blocks
      const gW = gs['transformer.h.1.mlp.c_fc.weight']; // (8, 32)
      const gW2 = gb['transformer.h.1.mlp.c_fc.weight']; // (16, 64)
      for (const [i, j] of [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1],
      ]) {
        expect(maxAbsDiff(gW2.narrow(0, i * 8, 8).narrow(1, j * 32, 32), gW.div(2))).toBeLessThan(1e-12);
      }
      // LNf: full g on each copy
      for (const n of ['transformer.ln_f.weight', 'transformer.ln_f.bias']) {
        expect(maxAbsDiff(gb[n].narrow(0, 0, d), gs[n])).toBeLessThan(1e-12);
        expect(maxAbsDiff(gb[n].narrow(0, d, d), gs[n])).toBeLessThan(1e-12);
      }
    });
  });

  it('moments: copies m/2, v/4; off-diagonal zero; LNf unscaled; step kept', () => {
    tidy(() => {
      const m = small.moments['transformer.h.0.attn.c_proj.weight'];
      const m2 = grown.moments['transformer.h.0.attn.c_proj.weight'];
      expect(maxAbsDiff(m2.expAvg.narrow(0, 0, d).narrow(1, 0, d), m.expAvg.div(2))).toBe(0);
      expect(maxAbsDiff(m2.expAvgSq.narrow(0, d, d).narrow(1, d, d), m.expAvgSq.div(4))).toBe(0);
      expect(m2.expAvg.narrow(0, 0, d).narrow(1, d, d).abs().sum().item()).toBe(0);
      expect(m2.expAvgSq.narrow(0, d, d).narrow(1, 0, d).abs().sum().item()).toBe(0);
      const f = small.moments['transformer.ln_f.weight'];
      const f2 = grown.moments['transformer.ln_f.weight'];
      expect(maxAbsDiff(f2.expAvg.narrow(0, d, d), f.expAvg)).toBe(0);
      expect(maxAbsDiff(f2.expAvgSq.narrow(0, 0, d), f.expAvgSq)).toBe(0);
      const b = small.moments['transformer.h.1.attn.c_attn.bias'];
      const b2 = grown.moments['transformer.h.1.attn.c_attn.bias']; // [q;q;k;k;v;v]
      expect(maxAbsDiff(b2.expAvg.narrow(0, 2 * d + d, d), b.expAvg.narrow(0, d, d).div(2))).toBe(0);
      expect(grown.optimizerStep).toBe(small.optimizerStep);
    });
  });

  it('the scaled option gives off-diagonal blocks m/2, v/4', () => {
    const g = widthParams(small, { offDiagonalMoments: 'scaled' });
    tidy(() => {
      const m = small.moments['transformer.h.0.mlp.c_proj.weight'];
      const m2 = g.moments['transformer.h.0.mlp.c_proj.weight'];
      expect(maxAbsDiff(m2.expAvg.narrow(0, 0, 32).narrow(1, 8, 8), m.expAvg.div(2))).toBe(0);
      expect(maxAbsDiff(m2.expAvgSq.narrow(0, 32, 32).narrow(1, 0, 8), m.expAvgSq.div(4))).toBe(0);
    });
    dispose([Object.values(g.params), Object.values(g.moments).flatMap((m) => [m.expAvg, m.expAvgSq])]);
  });

  it("one AdamW step moves every diagonal copy like the small model's step (ε doubled, relative 1e-6)", () => {
    // m/(√v+ε) on the copies equals m_small/(√v_small + 2ε): run the small model with 2ε
    const a = instantiate(small, { optimizer: { betas: [0.9, 0.98], eps: 2e-8, weightDecay: 0, biasCorrection: false } });
    const b = instantiate(grown, { optimizer: { betas: [0.9, 0.98], eps: 1e-8, weightDecay: 0, biasCorrection: false } });
    for (const { model: m, optimizer } of [a, b]) {
      tidy(() => m.loss(x, y).backward());
      optimizer.update(1e-2);
    }
    const pa = Object.fromEntries(a.model.namedParameters().map((p) => [p.name, p.tensor]));
    const pb = Object.fromEntries(b.model.namedParameters().map((p) => [p.name, p.tensor]));
    tidy(() => {
      const rel = (u: Tensor, v: Tensor) => u.sub(v).abs().max().item() / v.abs().max().item();
      expect(
        rel(pb['transformer.h.0.mlp.c_fc.weight'].narrow(0, 8, 8).narrow(1, 32, 32), pa['transformer.h.0.mlp.c_fc.weight']),
      ).toBeLessThan(1e-6);
      expect(rel(pb['transformer.wte.weight'].narrow(1, 0, 8), pa['transformer.wte.weight'])).toBeLessThan(1e-6);
      expect(rel(pb['transformer.h.1.ln_2.bias'].narrow(0, 8, 8), pa['transformer.h.1.ln_2.bias'])).toBeLessThan(1e-6);
      expect(
        rel(
          pb['transformer.h.0.attn.c_attn.weight'].narrow(0, 0, 8).narrow(1, 16, 8),
          pa['transformer.h.0.attn.c_attn.weight'].narrow(1, 8, 8),
        ),
      ).toBeLessThan(1e-6);
    });
  });
});

describe('width ×2: symmetry', () => {
  function halvesDiffer(s: TrainState, steps: number): number {
    const { model: m, optimizer } = instantiate(s, { optimizer: { weightDecay: 0 } });
    for (let i = 0; i < steps; i++) {
      tidy(() => m.loss(x, y).backward());
      optimizer.update(1e-2);
      optimizer.zeroGrad();
    }
    const w = m.namedParameters().find((p) => p.name === 'transformer.h.0.mlp.c_fc.weight')!.tensor;
    const r = maxAbsDiff(w.narrow(0, 0, 8).narrow(1, 0, 32), w.narrow(0, 8, 8).narrow(1, 32, 32));
    m.dispose();
    optimizer.dispose();
    return r;
  }

  it('without dropout the halves stay identical after several steps (to rounding)', () => {
    expect(halvesDiffer(grown, 5)).toBeLessThan(1e-12);
  });

  it('with dropout they diverge after one step', () => {
    const g = growWidth(small, { dropout: { residual: 0.1, attention: 0.1 } });
    expect(g.config.dropout.residual).toBe(0.1);
    expect(halvesDiffer(g, 1)).toBeGreaterThan(1e-6);
  });

  it('split noise: the embedding copies start apart and the halves diverge without dropout; the function moves at second order', () => {
    const logitChange = (o: { splitNoiseStd?: number; noiseStd?: number }) => {
      manualSeed(5); // the same draw, scaled
      const g = growWidth(small, o);
      const m = instantiate(g).model;
      const delta = maxAbsDiff(logitsOf(model), logitsOf(m));
      m.dispose();
      dispose([Object.values(g.params), Object.values(g.moments).flatMap((mm) => [mm.expAvg, mm.expAvgSq])]);
      return delta;
    };
    const g = growWidth(small, { splitNoiseStd: 1e-2 });
    tidy(() => {
      const e = g.params['transformer.wte.weight'];
      const e0 = small.params['transformer.wte.weight'];
      // zero-sum: the copies' mean is the small embedding; they differ by ~2·std
      expect(
        maxAbsDiff(
          e
            .narrow(1, 0, 8)
            .add(e.narrow(1, 8, 8))
            .div(2),
          e0,
        ),
      ).toBeLessThan(1e-12);
      expect(maxAbsDiff(e.narrow(1, 0, 8), e.narrow(1, 8, 8))).toBeGreaterThan(1e-2);
      // the other copied parameters are untouched
      expect(maxAbsDiff(g.params['transformer.h.0.ln_1.bias'].narrow(0, 0, 8), small.params['transformer.h.0.ln_1.bias'])).toBe(0);
    });
    expect(halvesDiffer(g, 3)).toBeGreaterThan(1e-6);
    // second order: doubling the std about quadruples the change, and it is far below what
    // off-diagonal noise of the same std does (first order)
    const d1 = logitChange({ splitNoiseStd: 1e-3 });
    const d2 = logitChange({ splitNoiseStd: 2e-3 });
    expect(d1).toBeGreaterThan(0);
    expect(d2 / d1).toBeGreaterThan(3);
    expect(d2 / d1).toBeLessThan(5);
    expect(logitChange({ noiseStd: 1e-3 })).toBeGreaterThan(20 * d1);
  });

  it('noise on the new weights breaks exactness by a small, reported amount, and the symmetry of the copies', () => {
    const g = growWidth(small, { noiseStd: 1e-3 });
    const m = instantiate(g).model;
    const delta = maxAbsDiff(logitsOf(model), logitsOf(m));
    expect(delta).toBeGreaterThan(0);
    expect(delta).toBeLessThan(0.05);
    m.dispose();
    // each off-diagonal block draws its own noise (the same in both would keep the stream [h ∣ h])
    for (const name of ['transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.attn.c_proj.weight']) {
      const w = g.params[name];
      const [r, c] = [w.shape[0] / 2, w.shape[1] / 2];
      expect(maxAbsDiff(w.narrow(0, 0, r).narrow(1, c, c), w.narrow(0, r, r).narrow(1, 0, c))).toBeGreaterThan(1e-4);
    }
    expect(halvesDiffer(g, 3)).toBeGreaterThan(1e-6);
  });
});

describe('width: states it cannot take', () => {
  it('refuses an untied head unless asked, then grows it exactly', () => {
    const u = tinyState({ config: { tiedEmbeddings: false } });
    expect(() => growWidth(u.state)).toThrow(/untied LM head needs untiedHead: 'duplicate'/);
    const g = growWidth(u.state, { untiedHead: 'duplicate' });
    const m = instantiate(g).model;
    expect(maxAbsDiff(logitsOf(u.model), logitsOf(m))).toBeLessThan(1e-10);
  });

  it('refuses a factor below 2', () => {
    expect(() => growWidth(small, { factor: 1 })).toThrow(/factor/);
  });
});

describe('instantiate with adopt', () => {
  it('takes the grown tensors over without a copy and computes the same function', () => {
    const g = growWidth(small);
    const w = g.params['transformer.h.0.mlp.c_fc.weight'];
    const watch = watchStorage(w);
    const m = g.moments['transformer.h.0.mlp.c_fc.weight'].expAvg;
    const { model: adopted, optimizer } = instantiate(g, { adopt: true });
    expect(w.isDisposed).toBe(true); // the handle is consumed…
    expect(watch.alive()).toBe(true); // …but its storage is now the model's parameter
    expect(optimizer.getMoments('transformer.h.0.mlp.c_fc.weight').expAvg).toBe(m);
    expect(maxAbsDiff(logitsOf(model), logitsOf(adopted))).toBeLessThan(1e-10);
    adopted.dispose();
    optimizer.dispose();
    expect(watch.alive()).toBe(false);
  });
});
