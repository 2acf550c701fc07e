// Sampling: the token choice (temperature, top-k, top-p) against direct computations, and generation
// with the KV cache against generation that recomputes every window (float64, so the draws agree),
// including past the context length where the window slides.
import { totalmem } from 'node:os';
import { fromTypedArray, GPT, generate, generateSamples, manualSeed, noGrad, parseGPTConfig, randint, tidy } from '../imports';
import { Xoshiro128 } from '../../lib/data/rng';
import { chooseToken, largest } from '../../lib/train/next-token';

function model(): GPT {
  manualSeed(5);
  const m = new GPT(parseGPTConfig({ vocabSize: 40, vocabMultiple: 8, contextLength: 10, nLayer: 2, nHead: 2, nEmbd: 16, initStd: 0.5 }), {
    dtype: 'float64',
  });
  noGrad(() => {
    for (const p of m.namedParameters())
      if (p.kind !== 'weight' && p.kind !== 'embedding')
        p.tensor.copy_(tidy(() => randint(0, 1000, p.tensor.shape, { dtype: 'float64' }).div(1000).add(0.5)));
  });
  return m;
}

describe('chooseToken', () => {
  const rng = () => Xoshiro128.fromSeed(3);

  it('largest(): the k largest, largest first, ties to the lower index, as a full sort says', () => {
    const r = Xoshiro128.fromSeed(1);
    for (let trial = 0; trial < 50; trial++) {
      const row = Float32Array.from({ length: 1 + (r.nextUint32() % 300) }, () => r.nextUint32() % 40); // many ties
      const k = 1 + (r.nextUint32() % row.length);
      const sorted = [...row.keys()].sort((a, b) => row[b] - row[a] || a - b);
      expect([...largest(row, k)]).toEqual(sorted.slice(0, k));
    }
  });

  it('temperature 0 and top-k 1 pick the most likely token', () => {
    const row = [0.1, 2, -1, 1.9];
    expect(chooseToken(row, { temperature: 0, topK: 0, topP: 1 }, rng())).toBe(1);
    for (let i = 0; i < 20; i++) expect(chooseToken(row, { temperature: 5, topK: 1, topP: 1 }, rng())).toBe(1);
  });

  /** Frequencies of 20,000 draws. */
  function frequencies(row: number[], c: { temperature: number; topK: number; topP: number }): number[] {
    const g = rng();
    const counts = row.map(() => 0);
    for (let i = 0; i < 20000; i++) counts[chooseToken(row, c, g)]++;
    return counts.map((n) => n / 20000);
  }
  const softmax = (xs: number[]) => {
    const e = xs.map((x) => Math.exp(x));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };
  const probs = [0.05, 0.5, 0.15, 0.3];
  const row = probs.map(Math.log);

  it('draws with softmax(logits / T) probabilities', () => {
    const f1 = frequencies(row, { temperature: 1, topK: 0, topP: 1 });
    for (let i = 0; i < 4; i++) expect(Math.abs(f1[i] - probs[i])).toBeLessThan(0.015); // 4σ at n = 20000
    const hot = softmax(row.map((x) => x / 2));
    const f = frequencies(row, { temperature: 2, topK: 0, topP: 1 });
    for (let i = 0; i < 4; i++) expect(Math.abs(f[i] - hot[i])).toBeLessThan(0.015); // 4σ at n = 20000
  });

  it('top-k renormalises over the k most likely; top-p over the shortest prefix holding p', () => {
    const k2 = frequencies(row, { temperature: 1, topK: 2, topP: 1 }); // {0.5, 0.3} → 5/8, 3/8
    expect(k2[0] + k2[2]).toBe(0);
    expect(Math.abs(k2[1] - 0.625)).toBeLessThan(0.015);
    const p = frequencies(row, { temperature: 1, topK: 0, topP: 0.7 }); // 0.5 < 0.7 ≤ 0.8: {0.5, 0.3}
    expect(p[0] + p[2]).toBe(0);
    expect(Math.abs(p[1] - 0.625)).toBeLessThan(0.015);
    const both = frequencies(row, { temperature: 1, topK: 3, topP: 0.4 }); // 0.5 ≥ 0.4: the top token alone
    expect(both[1]).toBe(1);
    const all = frequencies(row, { temperature: 1, topK: 0, topP: 0.99 }); // all four needed
    expect(all[0]).toBeGreaterThan(0.03);
  });

  it('top-p alone finds its nucleus however long it is (the largest 64, 256, … until they hold p)', () => {
    // 200 tied tokens at logit 5 hold 86% of the mass; the 4800 at 0 the rest
    const V = 5000;
    const row = Float32Array.from({ length: V }, (_, i) => (i % 25 === 0 ? 5 : 0));
    const sorted = [...row.keys()].sort((a, b) => row[b] - row[a] || a - b);
    const nucleus = (p: number) => {
      const total = row.reduce((a, x) => a + Math.exp(x), 0);
      let mass = 0;
      let n = 0;
      while (mass < p * total) mass += Math.exp(row[sorted[n++]]);
      return new Set(sorted.slice(0, n));
    };
    const g = rng();
    for (const p of [0.5, 0.95]) {
      const allowed = nucleus(p);
      expect(allowed.size).toBeGreaterThan(64);
      const drawn = new Set(Array.from({ length: 3000 }, () => chooseToken(row, { temperature: 1, topK: 0, topP: p }, g)));
      expect([...drawn].every((t) => allowed.has(t))).toBe(true);
      // p = 0.5: about half the tied tokens (more than the first 64 looked at); p = 0.95: past them all
      if (p === 0.5) expect(drawn.size).toBeGreaterThan(64);
      else expect([...drawn].some((t) => row[t] === 0)).toBe(true);
    }
  });

  it('refuses logits that are not finite', () => {
    expect(() => chooseToken([NaN, 1], { temperature: 1, topK: 0, topP: 1 }, rng())).toThrow(/logits are not finite/);
    expect(() => chooseToken([NaN, NaN], { temperature: 0, topK: 0, topP: 1 }, rng())).toThrow(/logits are not finite/);
  });
});

describe('generate', () => {
  it('with the KV cache draws what recomputing every window draws, past the context length too', () => {
    const m = model();
    for (const choice of [
      { temperature: 1, topK: 0, topP: 1 },
      { temperature: 0.7, topK: 5, topP: 0.9 },
      { temperature: 0, topK: 0, topP: 1 },
    ]) {
      const opts = { maxNewTokens: 25, seed: 4, ...choice }; // prompt 3 + 25 > context 10
      expect(generate(m, [1, 2, 3], opts)).toEqual(generate(m, [1, 2, 3], { ...opts, kvCache: false }));
    }
    const long = Array.from({ length: 14 }, (_, i) => (i * 7) % 40); // a prompt longer than the context
    expect(generate(m, long, { maxNewTokens: 6, temperature: 1 })).toEqual(
      generate(m, long, { maxNewTokens: 6, temperature: 1, kvCache: false }),
    );
    m.dispose();
  });

  it('a shorter context slides the window there: each greedy token is the argmax over the last `context` tokens', () => {
    const m = model();
    const opts = { maxNewTokens: 12, temperature: 0, context: 6 }; // context 6 of the model's 10
    const drawn = generate(m, [1, 2, 3], opts);
    expect(generate(m, [1, 2, 3], { ...opts, kvCache: false })).toEqual(drawn);
    const seq = [1, 2, 3, ...drawn];
    for (let k = 3; k < seq.length; k++) {
      const window = seq.slice(Math.max(0, k - 6), k);
      const row = tidy(() =>
        noGrad(() => {
          const x = fromTypedArray(Int32Array.from(window), [1, window.length], { dtype: 'int64' });
          return m
            .logits(x)
            .select(1, window.length - 1)
            .narrow(1, 0, 40)
            .toArray() as Float32Array;
        }),
      );
      expect(row.indexOf(Math.max(...row))).toBe(seq[k]);
    }
    expect(() => generate(m, [1], { maxNewTokens: 1, context: 11 })).toThrow(
      /generate: context must be an integer from 1 to the model's contextLength \(10\), got 11/,
    );
    expect(() => generate(m, [1], { maxNewTokens: 1, context: 0 })).toThrow(/context must be an integer from 1/);
    m.dispose();
  });

  it('samples side by side: sample i is what seed + i draws alone; each stops at its stop token; onToken sees every token', () => {
    const m = model();
    const seen: number[][] = [[], [], [], []];
    const batch = generateSamples(m, [7, 8], 4, {
      maxNewTokens: 30,
      temperature: 1.5,
      topK: 0,
      seed: 10,
      onToken: (t, i) => seen[i].push(t),
    });
    expect(seen).toEqual(batch);
    for (let i = 0; i < 4; i++)
      expect(batch[i]).toEqual(generate(m, [7, 8], { maxNewTokens: 30, temperature: 1.5, topK: 0, seed: 10 + i }));
    // stop at a token some sample draws early: that sample ends with it, the others go on
    const stop = batch[1][2];
    const stopped = generateSamples(m, [7, 8], 4, { maxNewTokens: 30, temperature: 1.5, topK: 0, seed: 10, stopToken: stop });
    stopped.forEach((s, i) => {
      const at = batch[i].indexOf(stop);
      expect(s).toEqual(at < 0 ? batch[i] : batch[i].slice(0, at + 1));
    });
    expect(stopped[1].length).toBeLessThanOrEqual(3);
    m.dispose();
  });

  it('stops when its signal aborts, returning what it drew', () => {
    const m = model();
    const stop = new AbortController();
    const drawn: number[] = [];
    const out = generate(m, [1, 2], {
      maxNewTokens: 20,
      signal: stop.signal,
      onToken: (t) => {
        drawn.push(t);
        if (drawn.length === 3) stop.abort();
      },
    });
    expect(out).toEqual(drawn);
    expect(out).toHaveLength(3);
    expect(generate(m, [1], { maxNewTokens: 5, signal: AbortSignal.abort() })).toEqual([]);
    m.dispose();
  });

  it('vocab: only ids below it are drawn, however likely the ones above (a padded vocabulary no text stands for)', () => {
    const m = model();
    // every token's hidden state is LNf's bias (gain 0), so its logits are the embedding rows' sums:
    // ids 30 … 39 far above the rest
    noGrad(() => {
      const ln = m.namedParameters().filter((p) => p.name.startsWith('transformer.ln_f.'));
      ln.find((p) => p.name.endsWith('weight'))!.tensor.fill_(0);
      ln.find((p) => p.name.endsWith('bias'))!.tensor.fill_(1);
      const wte = m.transformer.wte.weight;
      wte.fill_(0);
      wte.narrow(0, 30, 10).fill_(1);
    });
    const drawn = (vocab?: number) =>
      generate(m, [1], { maxNewTokens: 30, temperature: 1, topK: 0, ...(vocab === undefined ? {} : { vocab }) });
    expect(drawn().every((id) => id >= 30)).toBe(true);
    expect(drawn(30).every((id) => id < 30)).toBe(true);
    expect(new Set(drawn(30)).size).toBeGreaterThan(5); // (uniform over 0 … 29)
    expect(() => generate(m, [1], { maxNewTokens: 1, vocab: 41 })).toThrow(
      /vocab must be an integer from 1 to the model's vocabSize \(40\), got 41/,
    );
    expect(() => generate(m, [35], { maxNewTokens: 1, vocab: 30 })).toThrow(
      /prompt token 0 is 35, not an id of this model's vocabulary \(0 … 29\)/,
    );
    m.dispose();
  });

  it('leaves the model in its mode and refuses bad options, naming them', () => {
    const m = model();
    m.train();
    generate(m, [1], { maxNewTokens: 2 });
    expect(m.training).toBe(true);
    expect(() => generate(m, [], { maxNewTokens: 2 })).toThrow(/prompt must hold at least one token/);
    expect(() => generate(m, [1], { maxNewTokens: 2, topP: 0 })).toThrow(/topP must be in \(0, 1\], got 0/);
    expect(() => generate(m, [1], { maxNewTokens: 2, topK: 1.5 })).toThrow(/topK must be an integer ≥ 0, got 1.5/);
    expect(() => generate(m, [1], { maxNewTokens: 2, temperature: NaN })).toThrow(/temperature must be a finite number ≥ 0/);
    expect(() => generateSamples(m, [1], 0, { maxNewTokens: 2 })).toThrow(/samples must be a positive integer, got 0/);
    expect(() => generate(m, [1], { maxNewTokens: -1 })).toThrow(/maxNewTokens must be an integer ≥ 0/);
    expect(() => generate(m, [1, 40], { maxNewTokens: 1 })).toThrow(
      /prompt token 1 is 40, not an id of this model's vocabulary \(0 … 39\)/,
    );
    expect(() => generate(m, [1.5], { maxNewTokens: 1 })).toThrow(/prompt token 0 is 1.5/);
    expect(() => generateSamples(m, [1], 2, { maxNewTokens: 1, seed: Number.MAX_SAFE_INTEGER })).toThrow(
      /seed \+ samples − 1 a safe integer, got 9007199254740991 \(2 samples\)/,
    );
    // more samples side by side than the machine holds: refused before anything is allocated
    // (each sample holds its 40 logits three times over at least: on the device, in JS, in the choice)
    const tooMany = Math.ceil(totalmem() / (3 * 4 * 40)) + 1;
    expect(() => generateSamples(m, [1, 2], tooMany, { maxNewTokens: 1 })).toThrow(
      new RegExp(
        `generate: ${tooMany} samples side by side need about [\\d.]+ GiB at once .*more than this machine has .*: draw at most about \\d+ at a time`,
      ),
    );
    m.dispose();
    // a window that slides past the context reads all of it for every token: counted so
    const long = new GPT(parseGPTConfig({ vocabSize: 256, vocabMultiple: 8, contextLength: 2048, nLayer: 1, nHead: 16, nEmbd: 32 }));
    long.eval();
    const scores = 3 * 16 * 2048 * 2048 * 4; // (one sample's attention scores over the whole window, three times)
    const sliding = Math.ceil(totalmem() / scores) + 1;
    expect(() => generateSamples(long, [1, 2, 3], sliding, { maxNewTokens: 2060 })).toThrow(/samples side by side need about/);
    long.dispose();
  });
});
