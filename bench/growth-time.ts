// Time of the growth operators on a GPT-2 124M training state (parameters + AdamW moments), on the
// device where the tensors live. Prints one JSON line per operator.
// Usage: node dist/bench/growth-time.js [cpu|cuda] [preset]
import { disposeState, growBoth, growDepth, growWidth } from '../lib/growth';
import { stateOf } from '../lib/growth/model-state';
import { GPT, presetConfig } from '../lib/nn';
import { AdamW } from '../lib/optim/adamw';
import { parseSchedule } from '../lib/optim/schedule';
import { checkDevice } from '../lib/dtype';
import { emptyCache, manualSeed, memoryStats, synchronize } from '../lib/runtime';

const device = checkDevice(process.argv[2] ?? 'cpu');
const preset = process.argv[3] ?? 'gpt2-124m';
manualSeed(0);
const model = new GPT(presetConfig(preset), { device });
const optimizer = new AdamW(model.namedParameters());
const schedule = parseSchedule({ kind: 'linear', peak: 6e-4, warmup: 100, total: 10000 });
const state = stateOf(model, optimizer, schedule, { step: 1000, tokens: 0, flops: 0, stage: 0, schedulePos: 1000 });
for (const [op, fn] of [
  ['width', () => growWidth(state)],
  ['depth', () => growDepth(state)],
  ['both', () => growBoth(state)],
] as const) {
  synchronize();
  const t0 = performance.now();
  const g = fn();
  synchronize();
  const seconds = (performance.now() - t0) / 1000;
  const params = Object.values(g.params).reduce((a, t) => a + t.numel, 0);
  disposeState(g);
  emptyCache();
  const cuda = memoryStats().cuda[0];
  console.log(
    JSON.stringify({
      bench: 'growth-time',
      preset,
      op,
      device,
      seconds: Math.round(seconds * 1000) / 1000,
      grownParams: params,
      cudaAllocatedAfterGiB: cuda ? Math.round((cuda.allocated / 2 ** 30) * 100) / 100 : null,
    }),
  );
}
model.dispose();
optimizer.dispose();
