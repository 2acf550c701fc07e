// Growth of the MLP width alone and of the attention heads alone: exact, with the gradient lemma.
import { growHeads, growMlp } from '../../lib/growth';
import { instantiate } from '../../lib/growth/model-state';
import { noGrad, tidy } from '../../lib';
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
});
