// Host-side cost of one training step, without the arithmetic: the `tiny` preset's structure
// (4 layers, 4 heads, the same ops per step) at a micro size (width 32, vocabulary 64, batch 1 × 8)
// on CPU, where the kernels take microseconds, so ms/step is what a GPU step costs the host to
// launch (the launch-bound case of issue 6). Also counts the native calls per step, by name, and
// compares freeing a scope's tensors in one native call (the library's way) with one call each,
// alternating the two in the same run.
//
//   node dist/bench/host-overhead.js [--steps N] [--top K]
// Prints one JSON object.
import { parseArgs } from 'node:util';
import { randint } from '../lib/factories';
import { native } from '../lib/native';
import { presetConfig } from '../lib/nn/config';
import { GPT } from '../lib/nn/gpt';
import { AdamW } from '../lib/optim/adamw';
import { manualSeed } from '../lib/runtime';
import { setDisposeAll, tidy } from '../lib/scope';
import { Tensor, disposeTogether } from '../lib/tensor';
import { median } from './stats';

const { values: a } = parseArgs({ options: { steps: { type: 'string', default: '300' }, top: { type: 'string', default: '12' } } });
const steps = Number(a.steps);

// count every native call by name (the addon's exports are plain functions on one object)
const counts = new Map<string, number>();
const table = native as unknown as Record<string, unknown>;
for (const [name, fn] of Object.entries(table)) {
  if (typeof fn !== 'function' || /^[A-Z]/.test(name)) continue;
  table[name] = function (this: unknown, ...args: unknown[]) {
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return (fn as (...a: unknown[]) => unknown).apply(this, args);
  };
}

// …and the handle methods Tensor calls (the addon's own are read-only: count at the Tensor side)
for (const name of ['shape', 'dtype', 'device', 'isDisposed']) {
  const d = Object.getOwnPropertyDescriptor(Tensor.prototype, name)!;
  Object.defineProperty(Tensor.prototype, name, {
    get(this: Tensor) {
      counts.set(`Tensor.${name}`, (counts.get(`Tensor.${name}`) ?? 0) + 1);
      return d.get!.call(this);
    },
  });
}
const dispose = Tensor.prototype.dispose;
Tensor.prototype.dispose = function (this: Tensor) {
  counts.set('Tensor.dispose', (counts.get('Tensor.dispose') ?? 0) + 1);
  dispose.call(this);
};

manualSeed(0);
const cfg = presetConfig('tiny', { nEmbd: 32, vocabSize: 64, contextLength: 8 });
const model = new GPT(cfg);
const opt = new AdamW(model.namedParameters(), { betas: [0.9, 0.95], weightDecay: 0.1 });
const x = randint(0, cfg.vocabSize, [1, 8]);
const y = randint(0, cfg.vocabSize, [1, 8]);
// time per phase of the step
const phases = { forward: 0, backward: 0, clipAndUpdate: 0, zeroGrad: 0, scopeExit: 0 };
const step = () => {
  let t = performance.now();
  const lap = (k: keyof typeof phases) => {
    const now = performance.now();
    phases[k] += now - t;
    t = now;
  };
  tidy(() => {
    const loss = model.loss(x, y);
    lap('forward');
    loss.backward();
    lap('backward');
    opt.clipAndUpdate(1.0, 1e-3); // as the trainer steps
    lap('clipAndUpdate');
    opt.zeroGrad();
    lap('zeroGrad');
  });
  lap('scopeExit');
};
for (let i = 0; i < 20; i++) step();
// the comparison: one native dispose per tensor, alternated with the library's batched disposal
const oneByOne = (items: { dispose(): void }[]) => {
  for (const t of items) t.dispose();
};
const eachMs: number[] = [];
const batchedMs: number[] = [];
for (let pair = 0; pair < 3; pair++) {
  for (const [fn, out] of [
    [oneByOne, eachMs],
    [disposeTogether, batchedMs],
  ] as const) {
    setDisposeAll(fn);
    const t = performance.now();
    for (let i = 0; i < steps; i++) step();
    out.push((performance.now() - t) / steps);
  }
}
setDisposeAll(disposeTogether);
counts.clear();
for (const k of Object.keys(phases)) phases[k as keyof typeof phases] = 0;
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const ms = (performance.now() - t0) / steps;
const calls = [...counts.values()].reduce((s, c) => s + c, 0) / steps;
console.log(
  JSON.stringify({
    bench: 'host-overhead',
    model: `tiny structure (${cfg.nLayer} layers, ${cfg.nHead} heads) at width ${cfg.nEmbd}, vocab ${cfg.vocabSize}, batch 1×8, cpu`,
    ms_per_step: Math.round(ms * 1000) / 1000,
    native_calls_per_step: calls,
    us_per_call: Math.round(((ms * 1000) / calls) * 100) / 100,
    ms_per_step_dispose_one_by_one: Math.round(median(eachMs) * 1000) / 1000,
    ms_per_step_dispose_batched: Math.round(median(batchedMs) * 1000) / 1000,
    batched_over_one_by_one: Math.round((median(batchedMs) / median(eachMs)) * 1000) / 1000,
    ms_per_phase: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round((v / steps) * 1000) / 1000])),
    top_calls: [...counts.entries()]
      .sort((p, q) => q[1] - p[1])
      .slice(0, Number(a.top))
      .map(([n, c]) => [n, c / steps]),
  }),
);
model.dispose();
opt.dispose();
