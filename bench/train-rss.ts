// Memory-growth check of the training loop: trains the `tiny` preset on the embedded corpus with the
// Trainer (metrics, periodic evaluation, the final checkpoint: the real loop, not a stripped copy) and
// samples the process RSS after warm-up, every --sample-every steps and at the last step. A leak of
// tensors, autograd graphs or host buffers per step shows up as RSS that keeps climbing after warm-up.
//
//   node dist/bench/train-rss.js [--steps 2000] [--warmup 200] [--batch 4] [--seq 64] [--threshold 5]
//
// stdout: one JSON line {steps, rssStartMiB, rssEndMiB, growthPct, samples, pass, …}, then `PASS: …` or
// `FAIL: …`; the exit status is 1 on FAIL. Progress goes to stderr. Not part of `npm test` (minutes).
// Reading the numbers: the CPU block cache (native/cpu_allocator.cc) keeps freed blocks of 1 MiB and
// more mapped for reuse, so RSS also rises in one-off steps (an evaluation's blocks, a checkpoint's)
// until the cache holds what the loop reuses, then stays flat; a leak keeps rising, and shows in
// secondHalfGrowthPct and in liveTensors (STAGED_LM_DEFAULT_MALLOC=1 runs with libtorch's default
// allocator, malloc, instead).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { memoryStats } from '../lib/runtime';
import type { StepRecord } from '../lib/train/metrics';
import { Trainer } from '../lib/train/trainer';

const MiB = 2 ** 20;

interface Options {
  steps: number;
  warmup: number;
  batch: number;
  seq: number;
  evalInterval: number;
  sampleEvery: number;
  threshold: number;
  out?: string;
}

interface Sample {
  step: number;
  rssMiB: number;
  /** V8's heap (the JS side); the rest of the RSS is native: libtorch, the allocator, code. */
  v8HeapMiB: number;
  liveTensors: number;
}

const USAGE =
  'usage: node dist/bench/train-rss.js [--steps N=2000] [--warmup N=200] [--batch N=4] [--seq N=64]\n' +
  '         [--eval-interval N=100 (0: none)] [--sample-every N=100] [--threshold PCT=5] [--out DIR (default: a temp dir, removed)]';

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '200' },
      batch: { type: 'string', default: '4' },
      seq: { type: 'string', default: '64' },
      'eval-interval': { type: 'string', default: '100' },
      'sample-every': { type: 'string', default: '100' },
      threshold: { type: 'string', default: '5' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const int = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got '${v}')`);
    return n;
  };
  const threshold = Number(values.threshold);
  if (!Number.isFinite(threshold) || threshold < 0)
    throw new Error(`--threshold must be a non-negative number (got '${values.threshold}')`);
  const o: Options = {
    steps: int('steps', values.steps, 1),
    warmup: int('warmup', values.warmup, 1),
    batch: int('batch', values.batch, 1),
    seq: int('seq', values.seq, 2),
    evalInterval: int('eval-interval', values['eval-interval'], 0),
    sampleEvery: int('sample-every', values['sample-every'], 1),
    threshold,
    out: values.out,
  };
  if (o.warmup >= o.steps) throw new Error(`--warmup (${o.warmup}) must be below --steps (${o.steps})`);
  return o;
}

function sampleNow(step: number): Sample {
  const m = memoryStats();
  const mib = (b: number) => Math.round((b / MiB) * 10) / 10;
  return { step, rssMiB: mib(m.rss), v8HeapMiB: mib(process.memoryUsage().heapTotal), liveTensors: m.liveTensors };
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const out = o.out ?? mkdtempSync(join(tmpdir(), 'staged-lm-train-rss-'));
  const trainer = Trainer.create({
    model: 'tiny',
    data: 'embedded',
    steps: o.steps,
    batchSize: o.batch,
    seqLen: o.seq,
    lr: { peak: 3e-3, kind: 'cosine', warmup: Math.min(30, o.steps), finalFraction: 0.1 },
    eval: { interval: o.evalInterval, batches: 4 },
    logInterval: 10,
    seed: 1337,
  });
  const samples: Sample[] = [];
  const marks: { start?: Sample; end?: Sample } = {};
  const onRecord = (r: StepRecord): void => {
    const isStart = r.step === o.warmup;
    const isEnd = r.step === o.steps;
    if (!isStart && !isEnd && r.step % o.sampleEvery !== 0) return;
    // records arrive at log intervals (every 10 steps), so a sample is at most 9 steps late
    const s = sampleNow(r.step);
    samples.push(s);
    if (isStart) marks.start = s;
    if (isEnd) marks.end = s;
    process.stderr.write(
      `train-rss: step ${s.step}/${o.steps}  rss ${s.rssMiB.toFixed(1)} MiB  live tensors ${s.liveTensors}  loss ${r.loss.toFixed(3)}\n`,
    );
  };
  process.stderr.write(`train-rss: tiny preset, batch ${o.batch} × seq ${o.seq}, ${o.steps} steps (warm-up ${o.warmup}), run dir ${out}\n`);
  let result: Awaited<ReturnType<Trainer['train']>>;
  try {
    result = await trainer.train({ out, progress: false, onRecord });
  } finally {
    trainer.dispose();
    if (o.out === undefined) rmSync(out, { recursive: true, force: true });
  }
  const { start: s0, end: s1 } = marks;
  if (s0 === undefined || s1 === undefined) throw new Error('no RSS sample at the warm-up or the last step (were the records read back?)');
  const pct = (a: Sample, b: Sample) => Math.round(((b.rssMiB - a.rssMiB) / a.rssMiB) * 1e4) / 1e2;
  const growthPct = pct(s0, s1);
  const afterWarmup = samples.filter((s) => s.step >= o.warmup);
  const peakMiB = Math.max(...afterWarmup.map((s) => s.rssMiB));
  // The verdict is on the second half of the run: a leak grows there as it did before, while the
  // allocators' one-off steps (the block cache filling, glibc's bins settling) do not.
  // Live tensors must not grow at all.
  const mid = afterWarmup.find((s) => s.step >= (o.warmup + o.steps) / 2) ?? s1;
  const secondHalfGrowthPct = pct(mid, s1);
  const pass = secondHalfGrowthPct <= o.threshold && s1.liveTensors <= s0.liveTensors;
  const report = {
    bench: 'train-rss',
    steps: o.steps,
    warmup: o.warmup,
    batchSize: o.batch,
    seqLen: o.seq,
    rssStartMiB: s0.rssMiB,
    rssEndMiB: s1.rssMiB,
    rssPeakAfterWarmupMiB: peakMiB,
    growthPct,
    secondHalfGrowthPct,
    thresholdPct: o.threshold,
    liveTensorsStart: s0.liveTensors,
    liveTensorsEnd: s1.liveTensors,
    finalLoss: Math.round(result.finalLoss * 1e4) / 1e4,
    seconds: Math.round(result.seconds * 10) / 10,
    samples,
    pass,
  };
  process.stdout.write(JSON.stringify(report) + '\n');
  const summary =
    `RSS ${mid.rssMiB} MiB at step ${mid.step} → ${s1.rssMiB} MiB at step ${s1.step} (${secondHalfGrowthPct >= 0 ? '+' : ''}${secondHalfGrowthPct}%, limit ${o.threshold}%); ` +
    `since warm-up (step ${s0.step}, ${s0.rssMiB} MiB) ${growthPct >= 0 ? '+' : ''}${growthPct}%; live tensors ${s0.liveTensors} → ${s1.liveTensors}`;
  process.stdout.write(`${pass ? 'PASS' : 'FAIL'}: ${summary}\n`);
  return pass ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`train-rss: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    process.exitCode = 2;
  },
);
