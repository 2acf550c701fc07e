// The KV cache against the model's own full forward (float64): a prompt read from position 0, then
// one token at a time, then a chunk after cached positions (the bottom-right causal mask), for
// models with an untied head, a head size that is not d / heads, and no biases.
import {
  fromTypedArray,
  GPT,
  KVCache,
  manualSeed,
  memoryStats,
  noGrad,
  parseGPTConfig,
  randint,
  tidy,
  type GPTConfigInput,
} from '../imports';

/** A float64 model whose LayerNorm gains and biases are not 1 and 0, so every parameter matters. */
function model(input: GPTConfigInput): GPT {
  manualSeed(11);
  const m = new GPT(parseGPTConfig(input), { dtype: 'float64' });
  noGrad(() => {
    for (const p of m.namedParameters())
      if (p.kind !== 'weight' && p.kind !== 'embedding')
        p.tensor.copy_(tidy(() => randint(0, 1000, p.tensor.shape, { dtype: 'float64' }).div(1000).add(0.5)));
  });
  m.eval();
  return m;
}

const ids = (rows: number[][]) => fromTypedArray(Int32Array.from(rows.flat()), [rows.length, rows[0].length], { dtype: 'int64' });

/** The largest difference between the cached logits and the full forward's, at each piece's end. */
function largestDifference(m: GPT, tokens: number[][], pieces: number[]): number {
  const cache = new KVCache(m.config, tokens.length);
  let worst = 0;
  let at = 0;
  try {
    for (const n of pieces) {
      const piece = tokens.map((row) => row.slice(at, at + n));
      at += n;
      const diff = tidy(() =>
        noGrad(() => {
          const cached = m.nextLogits(ids(piece), cache); // (B, Vpad)
          const full = m.logits(ids(tokens.map((row) => row.slice(0, at)))).select(1, at - 1);
          return cached.sub(full).abs().max().item();
        }),
      );
      expect(cache.length).toBe(at);
      worst = Math.max(worst, diff);
    }
  } finally {
    cache.dispose();
  }
  return worst;
}

describe('KVCache: nextLogits equals the full forward at the last position', () => {
  const shapes: [string, GPTConfigInput][] = [
    ['tied, biases', { vocabSize: 30, vocabMultiple: 8, contextLength: 12, nLayer: 2, nHead: 2, nEmbd: 8 }],
    [
      'untied head, head size 5 (attention 15 wide), no bias',
      {
        vocabSize: 30,
        vocabMultiple: 8,
        contextLength: 12,
        nLayer: 3,
        nHead: 3,
        nEmbd: 8,
        headSize: 5,
        tiedEmbeddings: false,
        bias: false,
      },
    ],
  ];
  it.each(shapes)('%s: prompt, single tokens, a chunk after cached positions, up to the full context', (_, input) => {
    const m = model(input);
    const rows = [
      [1, 5, 9, 2, 7, 3, 3, 0, 29, 4, 8, 6],
      [4, 4, 4, 1, 0, 12, 17, 2, 9, 9, 1, 28],
    ];
    expect(largestDifference(m, rows, [5, 1, 1, 3, 1, 1])).toBeLessThan(1e-12);
    expect(largestDifference(m, rows.slice(0, 1), [1, 1, 10])).toBeLessThan(1e-12); // one-token prompt
    m.dispose();
  });

  it('runs without autograd even where gradients are on: no graph through the cache', () => {
    const m = model({ vocabSize: 30, vocabMultiple: 8, contextLength: 8, nLayer: 1, nHead: 2, nEmbd: 8 });
    const cache = new KVCache(m.config, 1);
    for (const t of [[[1, 2]], [[3]]]) {
      const logits = tidy(() => m.nextLogits(ids(t), cache)); // (no noGrad here)
      expect(logits.requiresGrad).toBe(false);
      logits.dispose();
    }
    cache.dispose();
    m.dispose();
  });

  it('the cache can be reset and reused for another prompt; nothing outlives dispose()', () => {
    const m = model({ vocabSize: 30, vocabMultiple: 8, contextLength: 8, nLayer: 2, nHead: 2, nEmbd: 8 });
    const before = memoryStats().liveTensors;
    const cache = new KVCache(m.config, 1);
    const first = tidy(() => noGrad(() => m.nextLogits(ids([[1, 2, 3]]), cache).toNumberArray()));
    tidy(() => noGrad(() => m.nextLogits(ids([[4]]), cache))).dispose();
    cache.reset();
    expect(cache.length).toBe(0);
    expect(tidy(() => noGrad(() => m.nextLogits(ids([[1, 2, 3]]), cache).toNumberArray()))).toEqual(first);
    // its buffers, nothing else. (At most: the count is the process's, and finalizers may collect
    // handles earlier tests left to the garbage collector meanwhile — a count can only fall by it.)
    expect(memoryStats().liveTensors).toBeLessThanOrEqual(before + 2 * m.config.nLayer);
    cache.dispose();
    expect(memoryStats().liveTensors).toBeLessThanOrEqual(before);
    m.dispose();
  });

  it('refuses positions past the context, another batch size, another model', () => {
    const m = model({ vocabSize: 30, vocabMultiple: 8, contextLength: 6, nLayer: 1, nHead: 2, nEmbd: 8 });
    const other = model({ vocabSize: 30, vocabMultiple: 8, contextLength: 6, nLayer: 2, nHead: 2, nEmbd: 8 });
    const cache = new KVCache(m.config, 1);
    tidy(() => noGrad(() => m.nextLogits(ids([[1, 2, 3, 4, 5]]), cache))).dispose();
    expect(cache.free).toBe(1);
    expect(() => tidy(() => noGrad(() => m.nextLogits(ids([[1, 2]]), cache)))).toThrow(
      /sequence length 7 \(5 cached\) exceeds the context length 6/,
    );
    expect(() => tidy(() => noGrad(() => m.nextLogits(ids([[1], [2]]), cache)))).toThrow(
      /batch of 2 sequences does not match the cache's 1/,
    );
    expect(() => tidy(() => noGrad(() => other.nextLogits(ids([[1]]), cache)))).toThrow(/cache was made for another model configuration/);
    expect(cache.length).toBe(5); // the refused forwards added nothing
    expect(() => new KVCache(m.config, 0)).toThrow(/batch must be a positive integer, got 0/);
    // a smaller capacity: what a short generation reserves
    const short = new KVCache(m.config, 1, 3);
    expect(() => tidy(() => noGrad(() => m.nextLogits(ids([[1, 2, 3, 4]]), short)))).toThrow(
      /sequence length 4 \(0 cached\) exceeds the cache's capacity 3/,
    );
    expect(new KVCache(m.config, 1, 100).capacity).toBe(6);
    short.dispose();
    cache.dispose();
    m.dispose();
    other.dispose();
  });
});
