// `staged-lm sample` on a Hugging Face directory whose vocabulary keeps nanoGPT's padding (50304
// rows, no staged_lm block): only GPT-2's 50257 ids are drawn, so the text always decodes (it drew
// the padding ids and failed mid-output with "decode: 50264 is not a GPT-2 token id"); a prompt
// longer than the model reads is noted.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GPT, manualSeed, noGrad, parseGPTConfig } from '../../lib';
import { saveSafetensors } from '../../lib/io/safetensors';
import { toHfConfig } from '../../lib/nn/config';
import { modelTensors } from '../../lib/train/checkpoint';

const CLI = resolve(__dirname, '../../dist/lib/cli/main.js');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'slm-sample-cli-'));
  manualSeed(1);
  const model = new GPT(parseGPTConfig({ vocabSize: 50304, vocabMultiple: 1, contextLength: 16, nLayer: 1, nHead: 2, nEmbd: 16 }));
  // every position's hidden state is LNf's bias (gain 0): the padding rows score far above GPT-2's
  noGrad(() => {
    for (const p of model.namedParameters())
      if (p.name === 'transformer.ln_f.weight') p.tensor.fill_(0);
      else if (p.name === 'transformer.ln_f.bias') p.tensor.fill_(1);
    model.transformer.wte.weight.narrow(0, 50257, 47).fill_(1);
  });
  const hf = join(dir, 'hf');
  mkdirSync(hf);
  const config = toHfConfig(model.config);
  delete config.staged_lm;
  writeFileSync(join(hf, 'config.json'), JSON.stringify(config));
  saveSafetensors(join(hf, 'model.safetensors'), modelTensors(model));
  model.dispose();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sample = (args: string[]) =>
  spawnSync(process.execPath, [CLI, 'sample', '--checkpoint', join(dir, 'hf'), ...args], { encoding: 'utf8', input: '', timeout: 120_000 });

describe('sample', () => {
  it("draws only GPT-2's ids from a model with a padded vocabulary, and says when the prompt is cut to the model's window", () => {
    const r = sample(['--prompt', 'Call me Ishmael.', '--tokens', '40', '--temperature', '1', '--top-k', '0', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { tokens: number; text: string };
    expect(out.tokens).toBe(40);
    const long = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen';
    const cut = sample(['--prompt', long, '--tokens', '2', '--json']);
    expect(cut.status).toBe(0);
    expect(cut.stderr).toMatch(/note: the prompt is \d+ tokens and the model reads 16: it continues from the prompt's last 16 tokens/);
    const huge = sample(['--prompt', 'x', '--top-k', '1e20']);
    expect(huge.status).not.toBe(0);
    expect(huge.stderr).toMatch(/--top-k must be a non-negative integer below 2\^53 \(got '1e20'\)/);
    expect(huge.stdout).toBe('');
  });
});
