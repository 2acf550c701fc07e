// Does a grown model train at the speed of one built at that size? Trains a half-size model a few
// steps, grows it (width or depth) inside its Trainer, then times training steps of the grown
// trainer and of a fresh trainer of the grown configuration, alternating which goes first (shared
// machines are noisy). Also the device memory each holds once both have trained (CUDA: what
// disposing each frees): a grown state that kept copies of its small self would show there. One
// JSON line per round, then a summary per operator with the ratios grown/fresh (1.0: full speed,
// no leftover memory); grow_seconds includes the validation probe the trainer runs before and after
// a growth.
//   node dist/bench/speed-after-growth.js [--device cuda] [--target gpt2-124m] [--batch 16]
//        [--seq 1024] [--steps 20] [--rounds 3] [--ops width,depth]
// CPU default: the tiny preset at 8×64 tokens.
import { parseArgs } from 'node:util';
import { cudaAvailable, emptyCache, memoryStats, synchronize } from '../lib/runtime';
import { presetConfig, type GPTConfig } from '../lib/nn/config';
import { Trainer, type StepResult } from '../lib/train/trainer';
import type { GrowthOperator } from '../lib/growth';
import { median } from './stats';

const { values: a } = parseArgs({
  options: {
    device: { type: 'string', default: cudaAvailable() ? 'cuda' : 'cpu' },
    target: { type: 'string' },
    batch: { type: 'string' },
    seq: { type: 'string' },
    steps: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    ops: { type: 'string', default: 'width,depth' },
  },
});
const device = a.device!;
const cuda = device.startsWith('cuda');
const target = presetConfig(a.target ?? (cuda ? 'gpt2-124m' : 'tiny'));
const batch = Number(a.batch ?? (cuda ? 16 : 8));
const seq = Number(a.seq ?? (cuda ? 1024 : 64));
const steps = Number(a.steps);
const rounds = Number(a.rounds);
const ops = a.ops!.split(',') as GrowthOperator[];
for (const op of ops) if (op !== 'width' && op !== 'depth') throw new Error(`--ops: expected width and/or depth, got '${op}'`);

/** The configuration one growth step below the target. */
function smaller(op: GrowthOperator): GPTConfig {
  if (op === 'depth') return { ...target, nLayer: target.nLayer / 2 };
  // half the heads of the same size, half the MLP: what growWidth doubles
  return { ...target, nEmbd: target.nEmbd / 2, nHead: target.nHead / 2, mlpWidth: target.mlpWidth / 2 };
}

function trainer(model: GPTConfig): Trainer {
  return Trainer.create({
    model,
    data: 'embedded',
    batchSize: batch,
    seqLen: seq,
    steps: 1_000_000,
    device,
    eval: { interval: 0 },
    logInterval: 1_000_000,
  });
}

/** Device bytes allocated after returning cached blocks (0 on the CPU). */
function allocated(): number {
  synchronize();
  emptyCache();
  return cuda ? memoryStats().cuda[0].allocated : 0;
}

function msPerStep(t: Trainer): number {
  for (let i = 0; i < 2; i++) disposeStep(t.step()); // warm-up: allocator and kernels settle
  synchronize();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) disposeStep(t.step());
  synchronize();
  return (performance.now() - t0) / steps;
}

function disposeStep(s: StepResult): void {
  s.loss.dispose();
  s.gradNorm?.dispose();
  s.skipped?.dispose();
}

const gib = (b: number) => Math.round((b / 2 ** 30) * 1000) / 1000;

for (const op of ops) {
  const grown = trainer(smaller(op));
  msPerStep(grown);
  const t0 = performance.now();
  grown.grow(op);
  synchronize();
  const growSeconds = (performance.now() - t0) / 1000;
  const c = grown.model.config;
  if (c.nLayer !== target.nLayer || c.nEmbd !== target.nEmbd || c.nHead !== target.nHead)
    throw new Error(`grew into ${c.nLayer}×${c.nEmbd} (${c.nHead} heads), not the target's ${target.nLayer}×${target.nEmbd}`);
  const fresh = trainer(c);
  const ms: { grown: number[]; fresh: number[] } = { grown: [], fresh: [] };
  for (let r = 0; r < rounds; r++) {
    const order = [
      ['grown', grown],
      ['fresh', fresh],
    ] as const;
    for (const [name, t] of r % 2 === 0 ? order : [...order].reverse()) {
      const m = msPerStep(t);
      ms[name].push(m);
      process.stdout.write(
        JSON.stringify({ bench: 'speed-after-growth', op, trainer: name, device, round: r, ms_per_step: +m.toFixed(3) }) + '\n',
      );
    }
  }
  // each trainer's share of device memory: what disposing it frees (lazily created global buffers,
  // such as cuBLAS workspaces, stay and count for neither)
  const both = allocated();
  grown.dispose();
  const onlyFresh = allocated();
  fresh.dispose();
  const grownBytes = both - onlyFresh;
  const freshBytes = onlyFresh - allocated();
  process.stdout.write(
    JSON.stringify({
      bench: 'speed-after-growth',
      summary: true,
      op,
      device,
      model: `${target.nLayer}x${target.nEmbd}`,
      batch,
      seq,
      grow_seconds: +growSeconds.toFixed(3),
      ms_per_step: { grown: +median(ms.grown).toFixed(3), fresh: +median(ms.fresh).toFixed(3) },
      ratio_time: +(median(ms.grown) / median(ms.fresh)).toFixed(3),
      memory_gib: cuda ? { grown: gib(grownBytes), fresh: gib(freshBytes) } : null,
      ratio_memory: cuda && freshBytes > 0 ? +(grownBytes / freshBytes).toFixed(3) : null,
    }) + '\n',
  );
}
