// Activation checkpointing (GPT.lossBackward with recompute): in float64, with every dropout on, the
// gradients of every parameter, the loss and the generator state afterwards equal the plain
// backward's — tied and untied heads, a head size other than d/heads, no biases, a divisor.
import { GPT, parseGPTConfig, type GPTConfigInput } from '../../lib/nn';
import { getRngState, manualSeed, randint, tidy, type Tensor } from '../../lib';

function gradsOf(m: GPT): Map<string, Tensor> {
  return new Map(m.namedParameters().map((p) => [p.name, p.tensor.grad!.clone()]));
}

function compare(config: Partial<GPTConfigInput>, divisor = 1): void {
  const c = parseGPTConfig({ vocabSize: 37, vocabMultiple: 8, contextLength: 12, nLayer: 3, nHead: 2, nEmbd: 16, ...config });
  manualSeed(1);
  const m = new GPT(c, { dtype: 'float64' });
  m.train();
  const idx = randint(0, 37, [3, 12], { dtype: 'int64' });
  const y = randint(0, 37, [3, 12], { dtype: 'int64' });
  const run = (recompute: boolean) => {
    manualSeed(7);
    for (const p of m.parameters()) p.grad?.zero_();
    const loss = m.lossBackward(idx, y, { recompute, divisor });
    const after = getRngState('cpu');
    return { loss: loss.item(), grads: gradsOf(m), after };
  };
  const plain = run(false);
  const again = run(true);
  expect(again.loss).toBe(plain.loss);
  // the masks drawn again are the forward's, and the generator ends where the plain step leaves it
  expect([...(again.after.toArray() as Uint8Array)]).toEqual([...(plain.after.toArray() as Uint8Array)]);
  for (const [name, g] of plain.grads) {
    const d = tidy(() => again.grads.get(name)!.sub(g).abs().max().item());
    const scale = tidy(() => g.abs().max().item());
    expect({ name, d: d <= 1e-12 * Math.max(1, scale) }).toEqual({ name, d: true });
    expect(scale).toBeGreaterThan(0); // (every parameter has a gradient to compare)
  }
  m.dispose();
}

const dropout = { embedding: 0.1, attention: 0.2, residual: 0.1 };

describe('activation checkpointing (lossBackward, recompute)', () => {
  it('gives the plain backward’s gradients with dropout on: tied head', () => compare({ dropout }));
  it('untied head, a divisor (gradient accumulation)', () => compare({ dropout, tiedEmbeddings: false }, 3));
  it('head size ≠ d/heads, no biases, one layer', () => compare({ dropout, headSize: 5, bias: false, nLayer: 1 }));
  it('without dropout, the same', () => compare({}));

  it('a block that throws in its recomputation leaves the generator where the plain step would', () => {
    const c = parseGPTConfig({ vocabSize: 37, vocabMultiple: 8, contextLength: 12, nLayer: 3, nHead: 2, nEmbd: 16, dropout });
    manualSeed(1);
    const m = new GPT(c, { dtype: 'float64' });
    m.train();
    const idx = randint(0, 37, [2, 12], { dtype: 'int64' });
    manualSeed(7);
    m.lossBackward(idx, idx, {});
    const plainAfter = [...(getRngState('cpu').toArray() as Uint8Array)];
    const block = m.blocks[1];
    const forward = block.forwardPending.bind(block);
    let calls = 0;
    block.forwardPending = (...args: Parameters<typeof forward>) => {
      if (++calls === 2) throw new Error('block 1 failed'); // (its recomputation, after the forward)
      return forward(...args);
    };
    manualSeed(7);
    expect(() => m.lossBackward(idx, idx, { recompute: true })).toThrow('block 1 failed');
    expect([...(getRngState('cpu').toArray() as Uint8Array)]).toEqual(plainAfter);
    m.dispose();
  });
});
