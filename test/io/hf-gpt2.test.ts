// Hugging Face GPT-2 directories: read as written by save_pretrained (no `transformer.` prefix or
// with it, mask buffers, the unpadded vocabulary, shards, half precision), refused where the model
// differs, and used as a run's initFrom. With Python and transformers at hand (STAGED_LM_PYTHON, else
// python3), transformers' own logits are the reference both ways.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crossEntropy, fromTypedArray, GPT, manualSeed, noGrad, paddedVocab, parseGPTConfig, randint, tidy, type Tensor } from '../imports';
import { saveSafetensors } from '../../lib/io/safetensors';
import { isHfDir, loadHfGpt2 } from '../../lib/io/hf-gpt2';
import { loadModel } from '../../lib/cli/model-io';
import { Trainer } from '../../lib/train/trainer';
import { readRun, writeReport } from '../../lib/train/report';
import { fitPointsFromMetrics } from '../../lib/scaling/logs';
import { itWhen } from '../helpers';

const config = parseGPTConfig({ vocabSize: 50257, contextLength: 16, nLayer: 2, nHead: 2, nEmbd: 16 });
const hfConfig = {
  architectures: ['GPT2LMHeadModel'],
  model_type: 'gpt2',
  vocab_size: 50257,
  n_positions: 16,
  n_embd: 16,
  n_layer: 2,
  n_head: 2,
  n_inner: null,
  activation_function: 'gelu_new',
  resid_pdrop: 0.1,
  embd_pdrop: 0.1,
  attn_pdrop: 0.1,
  layer_norm_epsilon: 1e-5,
  initializer_range: 0.02,
  scale_attn_weights: true,
  tie_word_embeddings: true,
};
const IDS = [464, 1893, 318, 257, 1332, 13, 50256, 40];

let dir: string;
let source: GPT;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'slm-hf-'));
  manualSeed(4);
  source = new GPT(config);
  noGrad(() => {
    for (const p of source.namedParameters())
      if (p.kind !== 'weight' && p.kind !== 'embedding') p.tensor.copy_(tidy(() => randint(0, 1000, p.tensor.shape).div(1000).add(0.5)));
  });
});
afterAll(() => {
  source.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** The source model's weights as transformers writes them, into a new directory. */
function writeHf(name: string, opts: { prefix?: boolean; shards?: boolean; dtype?: 'bfloat16'; config?: object } = {}): string {
  const out = join(dir, name);
  mkdirSync(out);
  writeFileSync(join(out, 'config.json'), JSON.stringify({ ...hfConfig, ...opts.config }));
  const tensors: Record<string, Tensor> = {};
  const owned: Tensor[] = [];
  for (const p of source.namedParameters()) {
    let t = p.name === 'transformer.wte.weight' ? p.tensor.narrow(0, 0, 50257) : p.tensor; // unpadded
    if (opts.dtype !== undefined) owned.push((t = t.to(opts.dtype)));
    tensors[opts.prefix ? p.name : p.name.replace(/^transformer\./, '')] = t;
  }
  // the causal-mask buffers old checkpoints hold
  for (let l = 0; l < 2; l++) {
    const mask = tidy(() => fromTypedArray(new Float32Array(256).fill(1), [1, 1, 16, 16]).tril());
    owned.push(mask);
    tensors[`${opts.prefix ? 'transformer.' : ''}h.${l}.attn.bias`] = mask;
  }
  if (opts.shards) {
    const names = Object.keys(tensors);
    const half = Math.floor(names.length / 2);
    const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const parts = [names.slice(0, half), names.slice(half)];
    parts.forEach((part, i) => saveSafetensors(join(out, files[i]), Object.fromEntries(part.map((n) => [n, tensors[n]]))));
    const weightMap = Object.fromEntries(parts.flatMap((part, i) => part.map((n) => [n, files[i]])));
    writeFileSync(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  } else saveSafetensors(join(out, 'model.safetensors'), tensors);
  for (const t of owned) t.dispose();
  return out;
}

/** The logits of IDS over the real vocabulary. */
function logits(model: GPT): number[] {
  return tidy(() =>
    noGrad(() =>
      model
        .logits(fromTypedArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'int64' }))
        .narrow(2, 0, 50257)
        .toNumberArray(),
    ),
  );
}

describe('Hugging Face GPT-2 directories', () => {
  it.each([
    ['as GPT2LMHeadModel.save_pretrained writes them', {}],
    ['with the transformer. prefix', { prefix: true }],
    ['in two shards with an index', { shards: true }],
  ])('%s: the same logits, and the loss over the real vocabulary only', (name, opts) => {
    const path = writeHf(name.replace(/\W+/g, '-'), opts);
    expect(isHfDir(path)).toBe(true);
    const model = loadModel(path);
    expect(model.config).toMatchObject({ vocabSize: 50257, contextLength: 16, nLayer: 2, nEmbd: 16, dropout: { attention: 0.1 } });
    expect(paddedVocab(model.config)).toBe(50257); // no padding rows: zero ones would score logit 0 in the softmax
    expect(logits(model)).toEqual(logits(source.eval()));
    // the loss is the cross-entropy of the source's logits over the 50257 real tokens
    const [x, y] = [IDS.slice(0, -1), IDS.slice(1)].map((r) => fromTypedArray(Int32Array.from(r), [1, r.length], { dtype: 'int64' }));
    const loss = tidy(() => noGrad(() => model.loss(x, y).item()));
    const reference = tidy(() => noGrad(() => crossEntropy(source.logits(x).narrow(2, 0, 50257).reshape(-1, 50257), y.reshape(-1)).item()));
    expect(loss).toBeCloseTo(reference, 5);
    x.dispose();
    y.dispose();
    model.dispose();
  });

  it('reads half-precision weights as float32', () => {
    const model = loadModel(writeHf('bf16', { dtype: 'bfloat16' }));
    expect(model.transformer.wte.weight.dtype).toBe('float32');
    const a = logits(model);
    const b = logits(source);
    expect(a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0)).toBeLessThan(0.05);
    model.dispose();
  });

  it('refuses what this model does not compute, naming the field, and pickles, naming the fix', () => {
    expect(() => loadHfGpt2(writeHf('erf', { config: { activation_function: 'gelu' } }))).toThrow(
      /activation_function "gelu" is not GPT-2's tanh GELU/,
    );
    expect(() => loadHfGpt2(writeHf('layer-scaled', { config: { scale_attn_by_inverse_layer_idx: true } }))).toThrow(
      /scale_attn_by_inverse_layer_idx true is not supported/,
    );
    expect(() => loadHfGpt2(writeHf('bert', { config: { model_type: 'bert' } }))).toThrow(/model_type is "bert", not "gpt2"/);
    const pickle = join(dir, 'pickle');
    mkdirSync(pickle);
    writeFileSync(join(pickle, 'config.json'), JSON.stringify(hfConfig));
    writeFileSync(join(pickle, 'pytorch_model.bin'), 'not read');
    expect(() => loadModel(pickle)).toThrow(
      /pytorch_model\.bin \(a Python pickle\) but no safetensors: convert it in Python: GPT2LMHeadModel\.from_pretrained\(dir\)\.save_pretrained\(dir, safe_serialization=True\)/,
    );
    expect(() => loadModel(writeHf('llama', { config: { model_type: 'llama' } }))).toThrow(/model_type is "llama", not "gpt2"/);
    const nullConfig = writeHf('null-config');
    writeFileSync(join(nullConfig, 'config.json'), 'null');
    expect(() => loadHfGpt2(nullConfig)).toThrow(/null-config\/config\.json: not a JSON object/);
    const sharded = writeHf('lost-shard', { shards: true });
    rmSync(join(sharded, 'model-00002-of-00002.safetensors'));
    expect(() => loadModel(sharded)).toThrow(/model\.safetensors\.index\.json lists .*model-00002-of-00002\.safetensors, which is missing/);
    // a file for another size names the tensor
    const wide = writeHf('wrong-size', { config: { n_embd: 32 } });
    expect(() => loadModel(wide)).toThrow(
      /wrong-size: tensor 'transformer\.wte\.weight' has shape \[50257,16\] but the config needs \[50257,32\]/,
    );
  });

  it('initFrom starts a run from them: the same function at step 0, a fresh optimizer, then training', async () => {
    const path = writeHf('init');
    const out = join(dir, 'run-init');
    const t = Trainer.create({ initFrom: path, steps: 3, batchSize: 2, seqLen: 16, eval: { interval: 0 }, logInterval: 1 });
    expect(t.modelConfig).toMatchObject({ nLayer: 2, nEmbd: 16 });
    t.model.eval();
    expect(logits(t.model)).toEqual(logits(source));
    t.model.train();
    expect(t.optimizer.step).toBe(0);
    const r = await t.train({ out, progress: false });
    expect(r.step).toBe(3);
    t.dispose();
    // its log says so: report names the weights it began from, fit refuses it (its losses are not
    // a from-scratch run's)
    const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n');
    expect(JSON.parse(log[0])).toEqual({ event: 'init', step: 0, from: resolve(path) });
    const report = writeReport(out);
    expect(report.initFrom).toBe(resolve(path));
    expect(report.table.split('\n')[0]).toBe(`initialized from ${resolve(path)} (a fine-tune)`);
    expect(() => fitPointsFromMetrics(log.join('\n'), 1e6, 'log')).toThrow(/log line 1: a fine-tune of .*init \(initFrom\)/);
    // resumed into another directory, the resume event carries it
    const moved = join(dir, 'run-init-moved');
    const resumed = Trainer.resume(join(out, 'checkpoint'));
    await resumed.train({ out: moved, steps: 4, progress: false });
    resumed.dispose();
    expect(readRun(moved).initFrom).toBe(resolve(path));
    // a staged-lm run directory works too; naming a model beside it is refused
    const again = Trainer.create({ initFrom: out, steps: 1, batchSize: 2, seqLen: 16, eval: { interval: 0 } });
    expect(again.modelConfig.nLayer).toBe(2);
    again.dispose();
    expect(() => Trainer.create({ initFrom: path, model: 'tiny', steps: 1 })).toThrow(
      /model: initFrom takes the model from its checkpoint: leave model out, or give only its dropout/,
    );
    expect(() => Trainer.create({ initFrom: join(dir, 'nowhere'), steps: 1 })).toThrow(/initFrom: .*nowhere/);
    // its dropout, and only that, may change (fine-tuning without the checkpoint's 0.1)
    const noDropout = Trainer.create({ initFrom: path, model: { dropout: { residual: 0 } }, steps: 1, batchSize: 2, seqLen: 16 });
    expect(noDropout.modelConfig.dropout).toEqual({ embedding: 0.1, attention: 0.1, residual: 0 });
    noDropout.dispose();
    expect(() => Trainer.create({ initFrom: path, model: { nLayer: 3 }, steps: 1 })).toThrow(/leave model out, or give only its dropout/);
    expect(() => Trainer.create({ initFrom: path, model: { dropout: { residual: 2 } }, steps: 1, batchSize: 2, seqLen: 16 })).toThrow(
      /^invalid model config: model\.dropout\.residual: /,
    );
  });
});

const python = process.env.STAGED_LM_PYTHON ?? 'python3';
const hasTransformers = spawnSync(python, ['-c', 'import transformers, safetensors, torch'], { stdio: 'ignore' }).status === 0;
const itTransformers = itWhen(hasTransformers, `${python} cannot import transformers (set STAGED_LM_PYTHON)`);

describe('against transformers', () => {
  /** transformers' logits of IDS from a directory (over the first 50257 entries) and its loss of IDS. */
  function hfRun(path: string): { logits: number[]; loss: number } {
    const r = spawnSync(
      python,
      [
        '-c',
        `import json, sys, torch
from transformers import GPT2LMHeadModel
m = GPT2LMHeadModel.from_pretrained(sys.argv[1], torch_dtype=torch.float32).eval()
ids = torch.tensor([${IDS.join(',')}])[None]
with torch.no_grad():
    r = m(ids, labels=ids)
print(json.dumps({"logits": r.logits[0, :, :50257].flatten().tolist(), "loss": r.loss.item()}))`,
        path,
      ],
      { encoding: 'utf8', maxBuffer: 1 << 30 },
    );
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { logits: number[]; loss: number };
  }
  /** Our loss of IDS (as transformers' labels=ids: each token predicts the next). */
  function ourLoss(model: GPT): number {
    const [x, y] = [IDS.slice(0, -1), IDS.slice(1)].map((r) => fromTypedArray(Int32Array.from(r), [1, r.length], { dtype: 'int64' }));
    const loss = tidy(() => noGrad(() => model.loss(x, y).item()));
    x.dispose();
    y.dispose();
    return loss;
  }
  const largestDifference = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

  itTransformers(
    'a model transformers saves computes the same logits and loss here, and a staged-lm checkpoint loads in transformers',
    async () => {
      // an untied head whose real logits are all near −20, as a trained model's are far below 0:
      // a zero padding row would take most of the softmax
      const saved = join(dir, 'from-python');
      const made = spawnSync(
        python,
        [
          '-c',
          `import sys, torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(0)
m = GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=32, n_embd=32, n_layer=2, n_head=4, tie_word_embeddings=False))
u = torch.nn.functional.normalize(torch.randn(32), dim=0)
with torch.no_grad():
    for n, p in m.named_parameters():
        if 'ln' in n: p.add_(torch.randn_like(p) * 0.2)
    m.lm_head.weight.add_(5 * u)
    m.transformer.ln_f.weight.mul_(0.1)
    m.transformer.ln_f.bias.add_(-4 * u)
m.save_pretrained(sys.argv[1])`,
          saved,
        ],
        { encoding: 'utf8' },
      );
      if (made.status !== 0) throw new Error(made.stderr);
      const model = loadModel(saved);
      const hf = hfRun(saved);
      expect(Math.max(...hf.logits.slice(0, 50257))).toBeLessThan(-10);
      expect(largestDifference(logits(model), hf.logits)).toBeLessThan(1e-4);
      expect(Math.abs(ourLoss(model) - hf.loss)).toBeLessThan(1e-4);
      model.dispose();
      // the other way: a checkpoint this library wrote (after a few steps, so nothing is at its init)
      const run = join(dir, 'for-python');
      const t = Trainer.create({
        model: { preset: 'tiny', nLayer: 2, contextLength: 32 },
        steps: 2,
        batchSize: 2,
        seqLen: 32,
        eval: { interval: 0 },
      });
      await t.train({ out: run, progress: false });
      t.model.eval();
      expect(largestDifference(logits(t.model), hfRun(join(run, 'checkpoint')).logits)).toBeLessThan(1e-4);
      t.dispose();
      // and saved back by transformers (its config keeps ours under staged_lm): it loads here again
      const back = join(dir, 'saved-back');
      const resaved = spawnSync(
        python,
        [
          '-c',
          'import sys; from transformers import GPT2LMHeadModel; GPT2LMHeadModel.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])',
          join(run, 'checkpoint'),
          back,
        ],
        { encoding: 'utf8' },
      );
      if (resaved.status !== 0) throw new Error(resaved.stderr);
      const again = loadModel(back);
      expect(largestDifference(logits(again), hfRun(back).logits)).toBeLessThan(1e-4);
      again.dispose();
    },
    120_000,
  );
});
