// The growth experiment of issue 4: train the tiny model on the embedded corpus, grow it, and train
// on for 50 steps — the spec's operator against three controls:
//   reset     the same grown parameters, but AdamW moments zeroed and its step reset
//   restart   the same grown state, but the schedule restarted from warmup (position 0)
//   copy-stack (depth only) [B1, B1, B2, B2, …] with everything copied: not function-preserving
// Every variant starts from the same checkpoint and sees the same batches. Prints a table and
// writes the numbers as JSON.  Usage: node dist/bench/growth-experiment.js [--pre 300] [--after 50]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { disposeState, growDepth, growWidth, type TrainState } from '../lib/growth';
import { parseSchedule } from '../lib/optim/schedule';
import { Trainer } from '../lib/train/trainer';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const PRE = arg('pre', 300);
const AFTER = arg('after', 50);
const REWARMUP = arg('rewarmup', 10);
const out = join('runs', 'growth-experiment');

type Variant = 'spec' | 'reset' | 'restart' | 'copy-stack';

function variantState(base: TrainState, op: 'width' | 'depth', v: Variant): TrainState {
  const schedule = { rewarmup: REWARMUP };
  const width = { dropout: { attention: 0.1, residual: 0.1 } }; // breaks the symmetry of the copies
  const g =
    op === 'width'
      ? growWidth(base, { ...width, schedule })
      : growDepth(base, { schedule, ...(v === 'copy-stack' ? { method: 'copy-stack' as const } : {}) });
  if (v === 'reset') {
    for (const m of Object.values(g.moments)) {
      m.expAvg.zero_();
      m.expAvgSq.zero_();
    }
    g.optimizerStep = 0;
  }
  if (v === 'restart') {
    const { restart: _restart, ...rest } = g.schedule;
    void _restart;
    g.schedule = parseSchedule(rest);
    g.progression = { ...g.progression, schedulePos: 0 };
  }
  return g;
}

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  const run = {
    model: 'tiny',
    steps: PRE,
    batchSize: 8,
    seqLen: 64,
    seed: 7,
    lr: { peak: 'kaplan' as const, kind: 'linear' as const, warmup: 30, total: 2000, finalFraction: 0 },
    eval: { interval: 0, batches: 8 },
    logInterval: 50,
  };
  process.stderr.write(`pre-training tiny for ${PRE} steps…\n`);
  const pre = Trainer.create(run);
  await pre.train({ out: join(out, 'pre'), progress: false });
  pre.dispose();
  const ckpt = join(out, 'pre', 'checkpoint');

  const rows: Record<string, unknown>[] = [];
  for (const op of ['depth', 'width'] as const) {
    const variants: Variant[] = op === 'depth' ? ['spec', 'reset', 'restart', 'copy-stack'] : ['spec', 'reset', 'restart'];
    for (const v of variants) {
      const t = Trainer.resume(ckpt, { steps: PRE + AFTER });
      const before = t.quickValLoss();
      const g = variantState(t.trainState(), op, v);
      t.applyState(g);
      disposeState(g);
      const after = t.quickValLoss();
      const losses: number[] = [];
      await t.train({ out: join(out, `${op}-${v}`), progress: false, onRecord: (r) => losses.push(r.loss) });
      const val = t.evaluate();
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      const row = {
        op,
        variant: v,
        lossBefore: before,
        lossAfterGrowth: after,
        maxTrainLossFirst10: Math.max(...losses.slice(0, 10)),
        meanTrain1to10: mean(losses.slice(0, 10)),
        meanTrain11to25: mean(losses.slice(10, 25)),
        meanTrain26to50: mean(losses.slice(25, 50)),
        valLossAt50: val,
      };
      rows.push(row);
      process.stderr.write(`${op} ${v}: ${JSON.stringify(row)}\n`);
      t.dispose();
    }
  }
  writeFileSync(join(out, 'results.json'), JSON.stringify({ pre: PRE, after: AFTER, rewarmup: REWARMUP, rows }, null, 2) + '\n');
  const f = (x: unknown) => (x as number).toFixed(3).padStart(8);
  console.log(
    '| op | variant | val loss before growth | right after | max train loss, steps 1–10 | mean train 1–10 | 11–25 | 26–50 | val loss at +50 |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.op} | ${r.variant} | ${f(r.lossBefore)} | ${f(r.lossAfterGrowth)} | ${f(r.maxTrainLossFirst10)} | ${f(r.meanTrain1to10)} | ${f(r.meanTrain11to25)} | ${f(r.meanTrain26to50)} | ${f(r.valLossAt50)} |`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
