// Growth of the MLP width alone and of the attention heads alone: exact, with the gradient lemma;
// split noise breaks the symmetry of the copies and moves the function at second order only.
import { growHeads, growMlp, type TrainState } from '../../lib/growth';
import { instantiate } from '../../lib/growth/model-state';
import { dispose, manualSeed, noGrad, tidy } from '../../lib';
import { GPT } from '../../lib/nn';
import { batch, gradients, maxAbsDiff, tinyState } from './fixture';

const { state: small, model } = tinyState();
const { x, y } = batch();
const logitsOf = (m: GPT) => tidy(() => noGrad(() => m.logits(x)));

describe.each([
  ['mlp', growMlp, { mlpWidth: 64, nHead: 2, nEmbd: 8 }, 'transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight', 32],
  [
    'heads',
    growHeads,
    { nHead: 4, headSize: 4, nEmbd: 8, mlpWidth: 32 },
    'transformer.h.0.attn.c_attn.weight',
    'transformer.h.0.attn.c_proj.weight',
    8,
  ],
] as const)('%s ×2', (_name, op, shape, fanout, fanin, width) => {
  const grown = op(small);
  const big = instantiate(grown).model;

  it('grows the inner width only, exactly', () => {
    expect(grown.config).toMatchObject(shape);
    expect(maxAbsDiff(logitsOf(model), logitsOf(big))).toBeLessThan(1e-10);
  });

  it('fan-out copies get g/2 and m/2, v/4; fan-in pieces get g and keep m, v', () => {
    const gs = gradients(model, x, y);
    const gb = gradients(big, x, y);
    tidy(() => {
      const out = gb[fanout]; // columns: the copies (per q/k/v group for heads)
      const half = out.narrow(1, 0, width);
      expect(maxAbsDiff(half, gs[fanout].narrow(1, 0, width).div(2))).toBeLessThan(1e-12);
      expect(maxAbsDiff(gb[fanin].narrow(0, width, width), gs[fanin])).toBeLessThan(1e-12);
      expect(
        maxAbsDiff(grown.moments[fanout].expAvgSq.narrow(1, 0, width), small.moments[fanout].expAvgSq.narrow(1, 0, width).div(4)),
      ).toBe(0);
      expect(maxAbsDiff(grown.moments[fanin].expAvg.narrow(0, width, width), small.moments[fanin].expAvg)).toBe(0);
    });
  });

  /** Largest difference between the two copies' gradients of the first fan-out group (q for heads). */
  const copyGradientGap = (s: TrainState): number => {
    const m = instantiate(s).model;
    const g = gradients(m, x, y)[fanout];
    const gap = maxAbsDiff(g.narrow(1, 0, width), g.narrow(1, width, width));
    m.dispose();
    return gap;
  };
  const freeState = (s: TrainState) =>
    dispose([Object.values(s.params), Object.values(s.moments).flatMap((mm) => [mm.expAvg, mm.expAvgSq])]);

  it('without split noise the copies get equal gradients: they can never diverge', () => {
    expect(copyGradientGap(grown)).toBeLessThan(1e-12);
  });

  it('split noise: zero-sum copies, unequal gradients, the function moved at second order', () => {
    const g = op(small, { splitNoiseStd: 1e-2 });
    tidy(() => {
      const w = g.params[fanout];
      const w0 = small.params[fanout];
      // the copies' mean is the small weight; they differ by ~2·std; biases and moments untouched
      expect(
        maxAbsDiff(
          w
            .narrow(1, 0, width)
            .add(w.narrow(1, width, width))
            .div(2),
          w0.narrow(1, 0, width),
        ),
      ).toBeLessThan(1e-12);
      expect(maxAbsDiff(w.narrow(1, 0, width), w.narrow(1, width, width))).toBeGreaterThan(1e-2);
      expect(maxAbsDiff(g.moments[fanout].expAvg, grown.moments[fanout].expAvg)).toBe(0);
      const bias = fanout.replace(/weight$/, 'bias');
      expect(maxAbsDiff(g.params[bias], grown.params[bias])).toBe(0);
    });
    expect(copyGradientGap(g)).toBeGreaterThan(1e-6);
    freeState(g);
    const logitChange = (std: number) => {
      manualSeed(5); // the same draw, scaled
      const s = op(small, { splitNoiseStd: std });
      const m = instantiate(s).model;
      const delta = maxAbsDiff(logitsOf(model), logitsOf(m));
      m.dispose();
      freeState(s);
      return delta;
    };
    // second order: doubling the std of the same draw about quadruples the change
    const d1 = logitChange(1e-3);
    const d2 = logitChange(2e-3);
    expect(d1).toBeGreaterThan(0);
    expect(d2 / d1).toBeGreaterThan(3);
    expect(d2 / d1).toBeLessThan(5);
  });
});

describe('mlp / heads growth: options it refuses', () => {
  it('names the bad option', () => {
    expect(() => growMlp(small, { splitNoiseStd: -1 })).toThrow(/mlp growth.*splitNoiseStd/);
    expect(() => growHeads(small, { factor: 1 })).toThrow(/heads growth.*factor/);
    expect(() => growMlp(small, { noiseStd: 0.1 } as never)).toThrow(/mlp growth.*noiseStd/);
  });
});
