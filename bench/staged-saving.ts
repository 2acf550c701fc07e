// The compute-saving experiment of issue 5: train a target model from scratch, and the same target
// reached by staged training from a smaller start, with the same data order and recipe; report the
// FLOPs each needs to reach the baseline's final validation loss. --op width (default) starts half as
// wide (¼ of the non-embedding parameters) and grows width ×2; --op depth starts half as deep (½ of
// them) and grows depth ×2. The staged run grows where the slope trigger says, or at a fixed step
// with --grow-at.
//
//   node dist/bench/staged-saving.js --data DIR|embedded|--gutenberg --target PRESET
//        [--layers L] [--embd D] [--heads H] [--ctx C] [--device cuda] [--steps N] [--batch B] [--seq T]
//        [--eval-interval E] [--eval-batches K] [--op width|depth] [--grow-at S] [--c-op align|X] [--noise STD]
//        [--hidden-width-base W] [--off-diagonal-moments zero|scaled] [--split-noise STD]
//        [--cuda-graph] [--reuse-baseline] [--out DIR]
//
// Compute is reported two ways: the trainer's FLOPs (6·all parameters incl. the tied embedding/head
// + attention, i.e. what the hardware does) and the spec's Kaplan compute 6·N·tokens with N the
// non-embedding parameters (what the paper's savings are stated in). Small models on a 50k-token
// vocabulary spend most of their FLOPs in the head, which width growth halves only once: there the
// two measures differ a lot.
//
// DIR is a directory of token shards (staged-lm prepare); with --gutenberg the shared Gutenberg
// corpus (../shared/data/gutenberg, or --gutenberg-dir; ~26.7M tokens) is prepared into
// runs/data/gutenberg first.
// Prints one JSON object and a table; both runs' metrics and report.svg (overlaid) stay in --out.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { prepare } from '../lib/data/prepare';
import { nonEmbeddingParams, presetConfig } from '../lib/nn/config';
import { Trainer } from '../lib/train/trainer';
import { readRun, writeReport } from '../lib/train/report';
import { firstReach, parseValidationLog } from '../lib/scaling/logs';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: 'embedded' },
    gutenberg: { type: 'boolean', default: false },
    'gutenberg-dir': { type: 'string' },
    target: { type: 'string', default: 'tiny' },
    layers: { type: 'string' },
    embd: { type: 'string' },
    heads: { type: 'string' },
    ctx: { type: 'string' },
    device: { type: 'string', default: 'cpu' },
    steps: { type: 'string', default: '600' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '64' },
    'eval-interval': { type: 'string', default: '25' },
    'eval-batches': { type: 'string', default: '8' },
    op: { type: 'string', default: 'width' },
    'grow-at': { type: 'string' },
    'c-op': { type: 'string', default: 'align' },
    'reuse-baseline': { type: 'boolean', default: false },
    noise: { type: 'string', default: '0' },
    'hidden-width-base': { type: 'string' },
    'off-diagonal-moments': { type: 'string', default: 'zero' },
    'split-noise': { type: 'string', default: '0' },
    'cuda-graph': { type: 'boolean', default: false },
    out: { type: 'string', default: join('runs', 'staged-saving') },
  },
});

/** (step, validation loss) of every evaluation in a run's metrics.jsonl. */
function valSteps(dir: string): { step: number; loss: number }[] {
  return parseValidationLog(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'), { format: 'metrics' }).map((v) => ({
    step: v.step!,
    loss: v.loss,
  }));
}

/** FLOPs at which a validation curve first reaches `loss`. */
const flopsToReach = (points: { flops: number; loss: number }[], loss: number): number | null => firstReach(points, loss, (p) => p.flops);

async function main(): Promise<void> {
  let data = a.data!;
  if (a.gutenberg) {
    const src = a['gutenberg-dir'] ?? resolve(__dirname, '..', '..', '..', 'shared', 'data', 'gutenberg');
    data = join('runs', 'data', 'gutenberg');
    if (!existsSync(join(data, 'val_000000.bin'))) {
      const inputs = readdirSync(src)
        .filter((f) => f.endsWith('.txt.br'))
        .map((f) => join(src, f));
      if (inputs.length === 0) throw new Error(`no Gutenberg shards in ${src}`);
      process.stderr.write(`preparing ${inputs.length} Gutenberg shards into ${data}…\n`);
      await prepare({ inputs, outDir: data });
    }
  }
  const steps = Number(a.steps);
  const overrides = {
    ...(a.layers === undefined ? {} : { nLayer: Number(a.layers) }),
    ...(a.embd === undefined ? {} : { nEmbd: Number(a.embd) }),
    ...(a.heads === undefined ? {} : { nHead: Number(a.heads) }),
    ...(a.ctx === undefined ? {} : { contextLength: Number(a.ctx) }),
  };
  const target = presetConfig(a.target!, overrides);
  const op = a.op!;
  if (op !== 'width' && op !== 'depth') throw new Error(`--op must be width or depth, not ${op}`);
  if (op === 'width' && (target.nEmbd % 2 !== 0 || target.nHead % 2 !== 0))
    throw new Error('the target needs an even width and head count (the start is half as wide)');
  if (op === 'depth' && target.nLayer % 2 !== 0) throw new Error('the target needs an even layer count (the start is half as deep)');
  // dropout 0.1 in both runs (the reference recipe); in the staged run it also breaks the symmetry
  // of the width copies
  const dropout = { attention: 0.1, residual: 0.1 };
  const big = { preset: a.target!, ...overrides, dropout };
  const shrink = op === 'width' ? { nEmbd: target.nEmbd / 2, nHead: target.nHead / 2 } : { nLayer: target.nLayer / 2 };
  const small = { ...big, ...shrink };
  const smallConfig = presetConfig(a.target!, { ...overrides, ...shrink });
  const common = {
    data,
    device: a.device!,
    steps,
    batchSize: Number(a.batch),
    seqLen: Number(a.seq),
    seed: 1234,
    // the same recipe for both runs: the schedule's horizon is the baseline's length
    // --hidden-width-base W: the width-scaled recipe (hidden matrices at peak·W/width) for both runs
    lr: {
      peak: 'kaplan' as const,
      kind: 'cosine' as const,
      warmup: Math.max(1, Math.round(steps / 20)),
      total: steps,
      finalFraction: 0.1,
      ...(a['hidden-width-base'] === undefined ? {} : { hiddenWidthBase: Number(a['hidden-width-base']) }),
    },
    eval: { interval: Number(a['eval-interval']), batches: Number(a['eval-batches']) },
    logInterval: Number(a['eval-interval']),
    // --cuda-graph: replayed CUDA-graph steps (wall-clock only: the same math)
    cudaGraph: a['cuda-graph'] === true,
  };
  const until = a['grow-at'] === undefined ? { slope: {} } : { steps: Number(a['grow-at']) };
  const out = a.out!;
  mkdirSync(out, { recursive: true });

  const baseDir = join(out, 'baseline');
  let baseSeconds: number | null = null;
  if (a['reuse-baseline'] && existsSync(join(baseDir, 'checkpoint', 'state.json')) && readRun(baseDir).val.length > 0) {
    process.stderr.write(`baseline: reusing ${baseDir}\n`);
  } else {
    process.stderr.write(`baseline: ${a.target} from scratch, ${steps} steps\n`);
    rmSync(baseDir, { recursive: true, force: true });
    const base = Trainer.create({ ...common, model: big });
    baseSeconds = (await base.train({ out: baseDir, progress: true })).seconds;
    base.dispose();
  }

  const b = readRun(join(out, 'baseline'));
  const targetLoss0 = b.val[b.val.length - 1].loss;
  const startShape = `${smallConfig.nLayer}×${smallConfig.nEmbd}`;
  process.stderr.write(`staged: ${startShape} start, ${op} ×2 at the ${a['grow-at'] ? `step ${a['grow-at']}` : 'slope trigger'}\n`);
  // the staged run may need more steps than the baseline to reach its loss: allow 2×, and stop
  // as soon as an evaluation reaches it
  // the re-warmup after growth as long as the initial warmup (the reference's 150 steps assume runs
  // of hundreds of thousands of steps)
  // where the grown state resumes the target schedule: 'align' reads S_target off the baseline's
  // own curve (the spec's definition: the step where the from-scratch target reached the same loss);
  // a number uses S_pre / c_op (the reference's constants: width 1.776, depth 1.412)
  const placement = a['c-op'] === 'align' ? { alignTo: join(baseDir, 'metrics.jsonl') } : { cOp: Number(a['c-op']) };
  // --noise: std of noise on the new weights (breaks the copies' symmetry faster than dropout alone,
  // at the price of exactness: the growth event's loss before/after shows the cost)
  const noiseStd = Number(a.noise);
  const offDiagonal = a['off-diagonal-moments']!;
  // --split-noise: zero-sum noise on the embedding copies (second-order change, symmetry broken at once)
  const splitNoise = Number(a['split-noise']);
  if (offDiagonal !== 'zero' && offDiagonal !== 'scaled')
    throw new Error(`--off-diagonal-moments must be zero or scaled, not ${offDiagonal}`);
  const grow = {
    op: op as 'width' | 'depth', // (checked above)
    rewarmup: common.lr.warmup,
    ...placement,
    ...(noiseStd > 0 ? { noiseStd } : {}),
    ...(op === 'width' ? { offDiagonalMoments: offDiagonal as 'zero' | 'scaled' } : {}),
    ...(op === 'width' && splitNoise > 0 ? { splitNoiseStd: splitNoise } : {}),
  };
  const staged = Trainer.create({ ...common, steps: 2 * steps, model: small, stages: [{ until, grow }] });
  const stop = new AbortController();
  rmSync(join(out, 'staged'), { recursive: true, force: true });
  const stagedResult = await staged.train({
    out: join(out, 'staged'),
    progress: true,
    signal: stop.signal,
    onRecord: (r) => {
      if (r.valLoss !== undefined && r.valLoss <= targetLoss0 && staged.progression.stage > 0) stop.abort();
    },
  });
  staged.dispose();

  const s = readRun(join(out, 'staged'));
  const targetLoss = b.val[b.val.length - 1].loss;
  const baselineFlops = b.val[b.val.length - 1].flops;
  // the staged run must reach the loss as the grown (target-size) model: a small model that gets
  // there before growing means the baseline is too short for the target to beat its ¼-size start
  // (reported as smallReachedBaselineLoss; the saving is then not a staged-training saving)
  const growFlops = s.growths[0]?.flops ?? Infinity;
  const smallReached = s.val.some((v) => v.flops <= growFlops && v.loss <= targetLoss);
  const stagedFlops = flopsToReach(
    s.val.filter((v) => v.flops > growFlops),
    targetLoss,
  );
  // the spec's compute: 6·N(non-embedding)·tokens, per stage
  const tokensPerStep = common.batchSize * common.seqLen;
  const nBig = nonEmbeddingParams(target);
  const nSmall = nonEmbeddingParams(smallConfig);
  const growStep = s.growths[0]?.step ?? Infinity;
  const kaplan = (step: number, staged: boolean): number =>
    6 * tokensPerStep * (staged ? nSmall * Math.min(step, growStep) + nBig * Math.max(0, step - growStep) : nBig * step);
  const baseVal = valSteps(join(out, 'baseline'));
  const stagedVal = valSteps(join(out, 'staged'));
  const baselineKaplan = kaplan(baseVal[baseVal.length - 1].step, false);
  const stagedKaplan = flopsToReach(
    stagedVal.filter((v) => v.step > growStep).map((v) => ({ flops: kaplan(v.step, true), loss: v.loss })),
    targetLoss,
  );
  writeReport(join(out, 'staged'), join(out, 'baseline'));
  const result = {
    experiment: 'staged-saving',
    data,
    preset: a.target,
    device: a.device,
    steps,
    batch: common.batchSize,
    seq: common.seqLen,
    baselineFinalValLoss: targetLoss,
    baselineFlops,
    stagedFlopsToBaselineLoss: stagedFlops,
    target: { nLayer: target.nLayer, nEmbd: target.nEmbd, nHead: target.nHead, nonEmbeddingParams: nBig },
    op,
    start: { nLayer: smallConfig.nLayer, nEmbd: smallConfig.nEmbd, nHead: smallConfig.nHead, nonEmbeddingParams: nSmall },
    growth: s.growths[0] ?? null,
    // S_target: where the grown state resumed the target schedule
    growthSchedulePos:
      readFileSync(join(out, 'staged', 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"event":"growth"'))
        .map((l) => (JSON.parse(l) as { schedulePos: number }).schedulePos)[0] ?? null,
    smallReachedBaselineLoss: smallReached,
    saving: stagedFlops === null ? null : 1 - stagedFlops / baselineFlops,
    baselineKaplanCompute: baselineKaplan,
    stagedKaplanComputeToBaselineLoss: stagedKaplan,
    kaplanSaving: stagedKaplan === null ? null : 1 - stagedKaplan / baselineKaplan,
    placement: a['c-op'] === 'align' ? 'aligned to the baseline curve' : `c_op ${a['c-op']}`,
    noiseStd,
    hiddenWidthBase: common.lr.hiddenWidthBase ?? null,
    offDiagonalMoments: op === 'width' ? offDiagonal : null,
    splitNoiseStd: splitNoise,
    baselineSeconds: baseSeconds,
    stagedSeconds: stagedResult.seconds,
    stagedSteps: stagedResult.step,
  };
  writeFileSync(join(out, 'result.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(JSON.stringify(result));
  console.log(
    stagedFlops === null
      ? `the staged run did not reach the baseline's final validation loss ${targetLoss.toFixed(4)} within ${2 * steps} steps`
      : `baseline ${target.nLayer}×${target.nEmbd}: val loss ${targetLoss.toFixed(4)} after ${baselineFlops.toExponential(3)} FLOPs; staged: the same loss after ${stagedFlops.toExponential(3)} FLOPs → saving ${(100 * result.saving!).toFixed(1)}% (non-embedding compute: ${(100 * result.kaplanSaving!).toFixed(1)}%)`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
