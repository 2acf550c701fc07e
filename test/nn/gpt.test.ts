// The GPT model: names and shapes as Hugging Face GPT-2, gradients of every parameter kind against
// finite differences in float64, the loss at init, and that it can fit one batch.
import { GPT, parseGPTConfig, paddedVocab, nonEmbeddingParams, totalParams, presetConfig } from '../../lib/nn';
import { AdamW } from '../../lib/optim/adamw';
import { manualSeed, noGrad, randint, tidy, type Tensor } from '../../lib';

const small = parseGPTConfig({ vocabSize: 50257, contextLength: 16, nLayer: 2, nHead: 2, nEmbd: 16 });

describe('GPT structure', () => {
  it('takes a config as written (parsed: defaults filled in); refuses a bad one, a non-float dtype and token ids that are not a (B, T) tensor, naming them', () => {
    const written = new GPT({ nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 16 });
    expect(written.config).toEqual(parseGPTConfig({ nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 16 }));
    written.dispose();
    // one that gives some of the derived fields is still parsed (its other defaults filled in)
    const some = { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 16, mlpWidth: 64, headSize: 8, dropout: { residual: 0.1 } };
    const partly = new GPT(some);
    expect(partly.config).toEqual(parseGPTConfig(some));
    expect(partly.lmHead).toBeNull(); // (tiedEmbeddings' default)
    partly.dispose();
    expect(() => new GPT({ nLayer: 2, nHead: 3, nEmbd: 32 })).toThrow(/invalid model config: /);
    expect(() => new GPT({ nLayer: 2, nHead: 2, nEmbd: 32, ctx: 8 } as never)).toThrow(/invalid model config: .*Unrecognized key: "ctx"/);
    // a parsed config is taken as it is, with the structural checks
    expect(() => new GPT({ ...small, contextLength: 0 })).toThrow(/GPT: config\.contextLength is 0: build the config with parseGPTConfig/);
    expect(() => new GPT(small, { dtype: 'int64' })).toThrow(/GPT: dtype must be a floating type .*, got 'int64'/);
    manualSeed(0);
    const m = new GPT(small);
    tidy(() => {
      const ids = randint(0, 100, [2, 4], { dtype: 'int64' });
      expect(() => m.loss([[3, 1]] as never, ids)).toThrow(/GPT: idx must be a Tensor of token ids \(B, T\), got an array/);
      expect(() => m.loss(randint(0, 100, [4], { dtype: 'int64' }), ids)).toThrow(/GPT: idx must be \(batch, positions\), got shape \[4\]/);
      expect(() => m.loss(ids, randint(0, 100, [2, 3], { dtype: 'int64' }))).toThrow(
        /GPT\.loss: targets have shape \[2,3\] but idx has \[2,4\]/,
      );
    });
    m.dispose();
  });

  it('uses Hugging Face GPT-2 names and Conv1D (in, out) shapes', () => {
    manualSeed(0);
    const m = new GPT(small);
    const shapes = Object.fromEntries(m.namedParameters().map((p) => [p.name, p.tensor.shape]));
    expect(shapes['transformer.wte.weight']).toEqual([50304, 16]);
    expect(shapes['transformer.wpe.weight']).toEqual([16, 16]);
    expect(shapes['transformer.h.0.ln_1.weight']).toEqual([16]);
    expect(shapes['transformer.h.0.attn.c_attn.weight']).toEqual([16, 48]);
    expect(shapes['transformer.h.0.attn.c_attn.bias']).toEqual([48]);
    expect(shapes['transformer.h.1.attn.c_proj.weight']).toEqual([16, 16]);
    expect(shapes['transformer.h.1.mlp.c_fc.weight']).toEqual([16, 64]);
    expect(shapes['transformer.h.1.mlp.c_proj.weight']).toEqual([64, 16]);
    expect(shapes['transformer.ln_f.bias']).toEqual([16]);
    expect(shapes['lm_head.weight']).toBeUndefined(); // tied
    const counted = m.namedParameters().reduce((a, p) => a + p.tensor.numel, 0);
    expect(counted).toBe(totalParams(small));
    expect(nonEmbeddingParams(small)).toBe(counted - 50304 * 16 - 16 * 16);
    expect(paddedVocab(small)).toBe(50304);
    m.dispose();
  });

  it('has the presets the paper needs', () => {
    expect(presetConfig('paper-large')).toMatchObject({ nLayer: 24, nEmbd: 1536, nHead: 16 });
    expect(presetConfig('paper-base').nEmbd / presetConfig('paper-base').nHead).toBe(96);
    expect(presetConfig('gpt2-124m')).toMatchObject({ nLayer: 12, nHead: 12, nEmbd: 768 });
    expect(() => presetConfig('gpt5')).toThrow(/unknown preset 'gpt5'/);
    expect(() => parseGPTConfig({ nLayer: 2, nHead: 3, nEmbd: 16 })).toThrow(/nHead: nEmbd must be divisible by nHead/);
    expect(() => parseGPTConfig({ nLayer: 0, nHead: 2, nEmbd: 16 })).toThrow(/nLayer/);
  });

  it('starts at a loss of about ln(vocab)', () => {
    manualSeed(1);
    const m = new GPT(small);
    const loss = tidy(() => noGrad(() => m.loss(randint(0, 50257, [4, 16]), randint(0, 50257, [4, 16])).item()));
    expect(Math.abs(loss - Math.log(50304))).toBeLessThan(0.1);
    m.dispose();
  });
});

describe('gradients match finite differences (float64)', () => {
  // a config with an untied head and non-trivial LayerNorm/bias values, so every kind is exercised
  const cfg = parseGPTConfig({ vocabSize: 40, vocabMultiple: 8, contextLength: 6, nLayer: 2, nHead: 2, nEmbd: 8, tiedEmbeddings: false });
  manualSeed(2);
  const m = new GPT(cfg, { dtype: 'float64' });
  noGrad(() => {
    for (const p of m.namedParameters())
      if (p.kind !== 'weight' && p.kind !== 'embedding')
        p.tensor.copy_(tidy(() => randint(0, 1000, p.tensor.shape, { dtype: 'float64' }).div(1000).add(0.5)));
  });
  const x = randint(0, 40, [2, 6]);
  const y = randint(0, 40, [2, 6]);
  const lossOf = () => m.loss(x, y);

  it.each(m.namedParameters().map((p) => [p.name, p.tensor] as [string, Tensor]))('%s', (_name, param) => {
    for (const p of m.parameters()) p.grad = null;
    tidy(() => lossOf().backward());
    const analytic = param.grad!.toArray() as Float64Array;
    const flat = param.view(-1);
    const n = param.numel;
    const eps = 1e-6;
    // probe a handful of coordinates spread over the tensor
    const probes = Array.from(new Set([0, Math.floor(n / 3), Math.floor((2 * n) / 3), n - 1]));
    for (const i of probes) {
      const orig = flat.select(0, i).item();
      const at = (v: number) =>
        tidy(() =>
          noGrad(() => {
            flat.select(0, i).fill_(v);
            return lossOf().item();
          }),
        );
      const numeric = (at(orig + eps) - at(orig - eps)) / (2 * eps);
      at(orig);
      expect(Math.abs(numeric - analytic[i])).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)));
    }
    flat.dispose();
  });

  it('transformer.wpe.weight with a sequence shorter than the context: rows past it get a zero gradient', () => {
    const wpe = m.transformer.wpe.weight; // (6, 8)
    const xs = x.narrow(1, 0, 4);
    const ys = y.narrow(1, 0, 4);
    for (const p of m.parameters()) p.grad = null;
    tidy(() => m.loss(xs, ys).backward());
    const analytic = wpe.grad!.toArray() as Float64Array;
    const flat = wpe.view(-1);
    const eps = 1e-6;
    for (const i of [0, 13, 31, 32, 47]) {
      // rows 0–3 (elements 0–31) are read; rows 4 and 5 are not
      const orig = flat.select(0, i).item();
      const at = (v: number) =>
        tidy(() =>
          noGrad(() => {
            flat.select(0, i).fill_(v);
            return m.loss(xs, ys).item();
          }),
        );
      const numeric = (at(orig + eps) - at(orig - eps)) / (2 * eps);
      at(orig);
      if (i >= 32) expect(analytic[i]).toBe(0);
      else expect(Math.abs(analytic[i])).toBeGreaterThan(1e-9);
      expect(Math.abs(numeric - analytic[i])).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)));
    }
    flat.dispose();
    xs.dispose();
    ys.dispose();
  });
});

describe('training', () => {
  it('overfits one batch to loss < 0.05', () => {
    manualSeed(4);
    const cfg = parseGPTConfig({ contextLength: 16, nLayer: 2, nHead: 2, nEmbd: 32 });
    const m = new GPT(cfg);
    const opt = new AdamW(m.namedParameters(), { weightDecay: 0 });
    const x = randint(0, 50257, [2, 16]);
    const y = randint(0, 50257, [2, 16]);
    let loss = Infinity;
    for (let i = 0; i < 300 && loss >= 0.05; i++) {
      loss = tidy(() => {
        const l = m.loss(x, y);
        l.backward();
        return l.item();
      });
      opt.update(3e-3);
      opt.zeroGrad();
    }
    expect(loss).toBeLessThan(0.05);
    m.dispose();
    opt.dispose();
  });
});
