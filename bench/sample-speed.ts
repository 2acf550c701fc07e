// Sampling speed with the KV cache against recomputing every window (generate's kvCache: false, the
// nanoGPT way), side by side on one model in one run, greedy so both draw the same tokens (checked).
// Prints one JSON line per preset: tokens/s of each and their ratio.
// Usage: node dist/bench/sample-speed.js [--device cpu|cuda] [--preset tiny,gpt2-124m] [--prompt 32] [--tokens 96] [--samples 1]
import { parseArgs } from 'node:util';
import { checkDevice } from '../lib/dtype';
import { GPT, presetConfig } from '../lib/nn';
import { manualSeed, synchronize } from '../lib/runtime';
import { generateSamples } from '../lib/train/sample';

const { values: a } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    preset: { type: 'string', default: 'tiny,gpt2-124m' },
    prompt: { type: 'string', default: '32' },
    tokens: { type: 'string', default: '96' },
    samples: { type: 'string', default: '1' },
  },
});
const device = checkDevice(a.device!);
const promptLength = Number(a.prompt);
const tokens = Number(a.tokens);
const samples = Number(a.samples);

for (const preset of a.preset!.split(',')) {
  manualSeed(0);
  const model = new GPT(presetConfig(preset), { device });
  const prompt = Array.from({ length: promptLength }, (_, i) => (i * 7919) % 50000);
  const run = (kvCache: boolean) => {
    synchronize();
    const t0 = performance.now();
    const out = generateSamples(model, prompt, samples, { maxNewTokens: tokens, temperature: 0, kvCache });
    synchronize();
    return { out, seconds: (performance.now() - t0) / 1000 };
  };
  run(true); // warm-up: allocator, kernels, the tokenizer-free path's first calls
  const cached = run(true);
  const full = run(false);
  const same = JSON.stringify(cached.out) === JSON.stringify(full.out);
  const rate = (s: number) => Math.round((samples * tokens) / s);
  console.log(
    JSON.stringify({
      bench: 'sample-speed',
      preset,
      device,
      prompt: promptLength,
      tokens,
      samples,
      kvCacheTokensPerSec: rate(cached.seconds),
      recomputeTokensPerSec: rate(full.seconds),
      speedup: Math.round((full.seconds / cached.seconds) * 100) / 100,
      sameTokens: same,
    }),
  );
  model.dispose();
}
