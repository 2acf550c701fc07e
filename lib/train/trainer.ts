// The training loop: micro-batches with gradient accumulation, clipping, AdamW on a schedule,
// periodic evaluation, metrics, checkpoints and exact resume. One step, from config to kernel:
//   loader.next() → model.loss() (bf16 autocast on CUDA) → backward → clip + AdamW.update(lr(t))
// (under float16, with the loss scaled before the backward and unscaled in the update: GradScaler)
// Losses stay on the device until a log interval reads them all at once (one host sync).
// Inside a data-parallel job (lib/distributed) each rank trains on its shard of every batch, the
// gradients are averaged over ranks, and rank 0 alone writes metrics, checkpoints and progress.
import { readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { removeAbandoned } from '../data/atomic';
import { join, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { loadEmbeddedCorpus } from '../data/corpus';
import { BatchLoader, LoaderMismatchError, type LoaderState } from '../data/loader';
import type { Tokens } from '../data/file-tokens';
import { loadTokenData } from '../data/source';
import { checkDevice, type Device } from '../dtype';
import { stack } from '../functional';
import { useKernels } from '../kernels';
import { GPT } from '../nn/gpt';
import { kaplanParams, nonEmbeddingParams, paddedVocab, trainingFlopsPerToken, type GPTConfig } from '../nn/config';
import { AdamW } from '../optim/adamw';
import { GradScaler, type GradScalerState } from '../optim/grad-scaler';
import {
  kaplanPeakLr,
  learningRate,
  parseSchedule,
  pastHorizon,
  type Schedule,
  rewarmupPastHorizonNote,
  wsdEndingAt,
} from '../optim/schedule';
import { emptyCache, manualSeed, setTF32, tf32Enabled, withAutocast } from '../runtime';
import { grow, referenceCOpNote, type GrowthOperator, type Progression, type TrainState } from '../growth';
import { instantiate, stateOf } from '../growth/model-state';
import { symmetryNote } from '../growth/symmetry';
import { keep, tidy } from '../scope';
import type { Tensor } from '../tensor';
import { packageVersion } from '../cli/version';
import {
  captureRng,
  loadCheckpoint,
  readCheckpointState,
  loadParameters,
  restoreRng,
  saveCheckpoint,
  type CheckpointState,
  type RngState,
} from './checkpoint';
import {
  growthOptions,
  initModel,
  lossScaling,
  parseRunConfig,
  resolveModel,
  type RunConfig,
  type RunConfigInput,
  type StageConfig,
} from './config';
import { evaluate } from './evaluate';
import { autoPrecision } from './precision';
import { lrScales } from './lr-scales';
import { MetricsLog, type StepRecord } from './metrics';
import { TensorBoardLog } from './tensorboard';
import { parseTrainerExtra } from './trainer-state';
import { Progress } from './progress';
import { lockRunDirectory } from './run-lock';
import { findGrowthPoint, TRIGGER_THRESHOLDS } from '../scaling/trigger';
import { optimalGrowthPoint } from '../scaling/growth-point';
import { firstReach, parseValidationLog } from '../scaling/logs';
import type { ValPoint } from '../scaling/trigger';
import { writeReport } from './report';
import { DataParallel } from './data-parallel';
import { adoptWeights, loadWeights, type Weights } from './weights';
import { CapturedTrainStep } from './captured-step';
import { describeProfile, ProfileWindow, type ProfileOptions, type ProfileResult } from './profile-window';
import { CudaGraph } from '../cuda-graph';
import { processGroup } from '../distributed/process-group';

export class TrainingDivergedError extends Error {
  constructor(
    readonly step: number,
    readonly value: number,
    /**
     * What went non-finite: the step's loss, the parameters after its update, or (under loss
     * scaling) the gradients, at MAX_SKIPPED_IN_A_ROW steps in a row (value: the scale then).
     */
    readonly what: 'loss' | 'parameters' | 'gradients' = 'loss',
  ) {
    super(
      `training diverged: ${
        what === 'loss'
          ? `the loss is ${value}`
          : what === 'parameters'
            ? 'the parameters blew up (their norm is not finite)'
            : `the gradients overflowed at ${MAX_SKIPPED_IN_A_ROW} steps in a row although the loss scale halved each time (down to ${value.toPrecision(4)}): they are not finite (NaN), or the scale began far too high (lossScale.init; 2^16 by default)`
      } at step ${step} (the checkpoint and snapshots written before it, if any, are intact)`,
    );
  }
}

/**
 * Updates skipped in a row under loss scaling after which a run stops as diverged: each skip halves
 * the scale, and a float16 run settles within a few dozen (from 2^16, below 2^−16); what still
 * overflows then is not the scale's doing (NaN gradients), and the run would go on without training.
 */
export const MAX_SKIPPED_IN_A_ROW = 50;

/** Steps between the ranks' agreement on a stop request when no log, eval or checkpoint step comes sooner. */
const STOP_POLL_STEPS = 10;

export interface TrainData {
  name: string;
  /** In memory, or read from disk window by window (a large split: lib/data/file-tokens.ts). */
  train: Tokens;
  val: Tokens;
}

/** Token data a run config names: the embedded corpus or files from `prepare`. */
export function loadRunData(spec: string, vocabSize: number): TrainData {
  if (spec === 'embedded') {
    const c = loadEmbeddedCorpus();
    // (token files are checked against the vocabulary as they load; the corpus is GPT-2 tokens)
    let top = 0;
    for (const part of [c.train, c.val]) for (const id of part) if (id > top) top = id;
    if (top >= vocabSize)
      throw new Error(`the embedded corpus holds GPT-2 token ids up to ${top}: a model with vocabSize ${vocabSize} cannot embed them`);
    return { name: c.name, train: c.train, val: c.val };
  }
  const d = loadTokenData(spec, { vocabSize });
  return { name: d.name, train: d.train, val: d.val };
}

export interface TrainOptions {
  /** Run directory: metrics.jsonl and checkpoint/ go here. */
  out: string;
  /** Progress on stderr (default true). */
  progress?: boolean;
  /**
   * Events and warnings on stderr — each growth, a moved end, a schedule that will not finish its
   * decay, a dropped profile or report (default: as `progress`; the CLI prints them always).
   */
  notes?: boolean;
  /** Stops the loop after the current step; a checkpoint is saved. */
  signal?: AbortSignal;
  /** Called with each step's record when it is read back (at log intervals). */
  onRecord?: (r: StepRecord) => void;
  /** Train until this step instead of the config's `steps`. */
  steps?: number;
  /** Called after each growth of a staged run. */
  onGrowth?: (g: GrowthEvent) => void;
  /** Record a few steps with libtorch's profiler (train --profile); on data-parallel runs, rank 0's. */
  profile?: ProfileOptions;
  /**
   * Also write metrics.jsonl's scalars as TensorBoard event files into the run directory (train
   * --tensorboard; `tensorboard --logdir` it, or a folder of run directories). Default false.
   */
  tensorboard?: boolean;
}

export interface TrainResult {
  step: number;
  tokens: number;
  flops: number;
  finalLoss: number;
  valLoss: number | null;
  /** The step valLoss was measured at (an interrupted run's last evaluation may be a few steps back). */
  valLossStep: number | null;
  interrupted: boolean;
  checkpoint: string;
  seconds: number;
  /** report.svg and the stage table, written next to metrics.jsonl. */
  report: { svg: string; table: string } | null;
  /** With opts.profile: the trace and the recorded steps' time by kind of work (null if the run ended first). */
  profile: ProfileResult | null;
  /** Under loss scaling (precision fp16): the scale at the end, and the updates skipped for overflowing gradients over the whole run. */
  lossScale: { scale: number; skippedUpdates: number } | null;
  /** The lowest validation loss of the run and its step; snapshot: where its state is (config.snapshots.best), else null. */
  best: { step: number; valLoss: number; snapshot: string | null } | null;
  /** The run ended before its last step: eval.patience evaluations in a row brought no lower validation loss. */
  stoppedEarly: boolean;
}

/** One optimizer step's results, as device tensors the caller owns (nothing waits for the device). */
export interface StepResult {
  loss: Tensor;
  gradNorm: Tensor | null;
  lr: number;
  /** Under loss scaling: 1 where the update was skipped for overflowing gradients, else 0. */
  skipped: Tensor | null;
}

export class Trainer {
  model: GPT;
  optimizer: AdamW;
  modelConfig: GPTConfig;
  flopsPerToken: number;
  /**
   * The spec's compute so far (spec/schedule.md, "Measuring σ online"): 6·N·tokens with N the
   * current model's kaplanParams, summed over stages — the slope trigger's x. `flops` counts what
   * the hardware does (all parameters, attention); the two differ by a factor that changes at
   * every growth.
   */
  compute = 0;
  private computePerToken: number;
  readonly loader: BatchLoader;
  readonly seqLen: number;
  readonly device: Device;
  /** The run's precision: config.precision, with 'auto' resolved for the device (autoPrecision). */
  readonly precision: 'fp32' | 'bf16' | 'fp16';
  readonly autocast: 'bfloat16' | 'float16' | null;
  /** Dynamic loss scaling (config.lossScale; precision fp16), null where the run does not scale its loss. */
  readonly scaler: GradScaler | null;
  /** Updates skipped under loss scaling for overflowing gradients, over the whole run (counted at log intervals). */
  skippedUpdates = 0;
  /** The last updates, in a row, that were skipped (counted at log intervals; see MAX_SKIPPED_IN_A_ROW). */
  private skippedInARow = 0;
  schedule: Schedule;
  progression: Progression = { step: 0, tokens: 0, flops: 0, stage: 0, schedulePos: 0 };
  lastValLoss: number | null = null;
  /** The step of lastValLoss. */
  lastValStep: number | null = null;
  /** The lowest validation loss so far and its step (config.snapshots.best keeps that state), null before any. */
  best: { step: number; valLoss: number } | null = null;
  /** Evaluations on the interval since the lowest of them (config.eval.patience ends the run when it is reached). */
  evalsSinceBest = 0;
  /** The lowest validation loss of the evaluations on the interval (patience's reference). */
  private intervalBest: number | null = null;
  /** Notes from before train() (resume), printed when it starts. */
  private pendingNotes: string[] = [];
  /** Validation points of the current stage (cumulative FLOPs, loss): the slope trigger's input. */
  valHistory: { step: number; flops: number; compute?: number; loss: number }[] = [];
  /** This process's part in a data-parallel job (null in a single-process run). */
  readonly dp: DataParallel | null;
  /** Rank 0's slope-trigger decision for the current validation history (data parallel). */
  private agreedTrigger: { points: number; fired: boolean } | null = null;
  /** The captured step (config.cudaGraph), once captured; dropped when the model changes. */
  private captured: CapturedTrainStep | null = null;
  /** Eager steps since the model last changed: capture waits for GRAPH_WARMUP_STEPS of them. */
  private eagerSteps = 0;
  /** A capture failed (reported once): the rest of the run steps eagerly. */
  private graphFailed = false;
  private graphCaptures = 0;
  /** Puts back the process-wide kernel choices and TF32 switch config.kernels / .tf32 changed (at dispose). */
  private readonly restoreProcessSettings: () => void;
  private graphReplays = 0;
  /** Wall-clock seconds of the run's training sessions before this one (from its checkpoint). */
  private elapsedSeconds = 0;
  /** The run's wall-clock seconds so far (set while train() runs). */
  private elapsedClock = (): number => this.elapsedSeconds;

  private constructor(
    readonly config: RunConfig,
    modelConfig: GPTConfig,
    readonly data: TrainData,
    init: { loaderState?: LoaderState; schedule?: Schedule; lossScale?: GradScalerState } = {},
  ) {
    this.modelConfig = modelConfig;
    const group = processGroup();
    // one GPU per rank: a bare 'cuda' means this rank's local GPU
    this.device = checkDevice(group !== null && config.device === 'cuda' ? `cuda:${group.localRank}` : config.device);
    this.dp = group === null ? null : new DataParallel(group, this.device);
    if (config.cudaGraph && this.dp !== null)
      throw new Error('cudaGraph: a data-parallel step all-reduces from autograd hooks and is not captured; run without cudaGraph');
    this.precision = config.precision === 'auto' ? autoPrecision(this.device) : config.precision;
    this.autocast = this.precision === 'fp16' ? 'float16' : this.precision === 'bf16' ? 'bfloat16' : null;
    if (this.autocast !== null && !this.device.startsWith('cuda'))
      throw new Error(`precision ${config.precision} needs a CUDA device (autocast is CUDA-only here)`);
    const scales = lossScaling({ precision: this.precision, lossScale: config.lossScale });
    if (scales && config.cudaGraph)
      throw new Error(
        `cudaGraph does not capture loss scaling (precision ${this.precision}${config.precision === 'auto' ? `, what 'auto' picks on ${this.device}` : ''}): use precision bf16, or run without cudaGraph`,
      );
    this.seqLen = config.seqLen ?? modelConfig.contextLength;
    if (this.seqLen > modelConfig.contextLength)
      throw new Error(`seqLen ${this.seqLen} exceeds the model's context length ${modelConfig.contextLength}`);
    if (modelConfig.vocabSize > 65536) throw new Error('token data is uint16: the vocabulary must have at most 65536 entries');
    // checked now rather than at the first evaluation or growth, after steps whose work would be lost
    const validates = config.eval.interval > 0 ? 'eval.interval > 0' : config.stages.length > 0 ? 'a growth' : null;
    if (validates !== null && data.val.length < this.seqLen + 1)
      throw new Error(
        `the validation split of ${data.name} has ${data.val.length} tokens, too few for one window of seqLen + 1 = ${this.seqLen + 1}, ` +
          `which ${validates} needs: give it more tokens (prepare --val-tokens) or train with a shorter seqLen` +
          (validates === 'a growth' ? '' : ', or set eval.interval 0'),
      );
    manualSeed(config.seed);
    const { growthFactor, backoffFactor, growthInterval, init: initScale } = config.lossScale;
    this.scaler = scales
      ? new GradScaler(this.device, { init: initScale, growthFactor, backoffFactor, growthInterval }, init.lossScale)
      : null;
    this.model = new GPT(modelConfig, { device: this.device });
    this.optimizer = new AdamW(this.model.namedParameters(), config.optimizer);
    this.applyLrScales();
    this.loader = new BatchLoader(data.train, {
      batchSize: config.batchSize,
      seqLen: this.seqLen,
      seed: config.seed,
      device: this.device,
      ...(group === null ? {} : { shard: { rank: group.rank, worldSize: group.worldSize } }),
    });
    if (init.loaderState) this.loader.restore(init.loaderState);
    this.schedule = init.schedule ?? defaultSchedule(config, modelConfig);
    this.flopsPerToken = trainingFlopsPerToken(modelConfig, this.seqLen);
    this.computePerToken = 6 * kaplanParams(modelConfig);
    // the model's loss and LayerNorms read the process-wide kernel choices, its float32 matmuls the
    // TF32 switch: set for this run's lifetime
    const restoreKernels = useKernels(config.kernels, this.device);
    const tf32Before = tf32Enabled();
    if (config.tf32 !== undefined) setTF32(config.tf32);
    this.restoreProcessSettings = () => {
      restoreKernels();
      if (config.tf32 !== undefined) setTF32(tf32Before);
    };
  }

  /** A fresh run. */
  static create(input: RunConfigInput, data?: TrainData): Trainer {
    const parsed = parseRunConfig(input);
    // paths kept absolute: a resumed run may start in another directory
    const config = {
      ...parsed,
      ...(parsed.initFrom === undefined ? {} : { initFrom: resolve(parsed.initFrom) }),
      data: parsed.data === 'embedded' || data !== undefined ? parsed.data : resolve(parsed.data),
      stages: parsed.stages.map((st) =>
        st.grow.alignTo === undefined ? st : { ...st, grow: { ...st.grow, alignTo: resolve(st.grow.alignTo) } },
      ),
    };
    if (config.initFrom === undefined) {
      const modelConfig = resolveModel(config.model);
      const t = new Trainer(config, modelConfig, data ?? loadRunData(config.data, modelConfig.vocabSize));
      t.joinDataParallel();
      return t;
    }
    const device = checkDevice(config.device);
    let weights: Weights;
    try {
      weights = loadWeights(config.initFrom, device);
    } catch (e) {
      throw new Error(`initFrom: ${(e as Error).message}`);
    }
    let t: Trainer | null = null;
    try {
      const modelConfig = initModel(weights.config, config.model);
      t = new Trainer(config, modelConfig, data ?? loadRunData(config.data, modelConfig.vocabSize));
    } finally {
      if (t === null) for (const w of Object.values(weights.params)) w.dispose();
    }
    try {
      adoptWeights(t.model, weights);
      t.joinDataParallel(); // (rank 0's weights everywhere: the same files, but one source of truth)
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  /**
   * Data parallel: rank 0's state everywhere, gradient buckets, a dropout stream per rank — a
   * resumed run's from the checkpoint (`ranks`, one per rank, as saved), where it has them.
   */
  private joinDataParallel(ranks?: RngState[]): void {
    if (this.dp === null) return;
    // precision 'auto' is decided per GPU: ranks on GPUs that differ in bf16 support would average
    // scaled float16 gradients with unscaled bf16 ones
    const half = this.precision === 'fp16';
    if (this.dp.any(half) && this.dp.any(!half))
      throw new Error(
        `the ranks train in different precisions (fp16 on some, ${half ? 'not here' : `${this.precision} here`}): precision 'auto' picks bf16 on GPUs with bf16 tensor cores and fp16 on older ones; set precision for the job`,
      );
    this.dp.adopt(this.trainState());
    const own = ranks?.length === this.dp.worldSize ? ranks[this.dp.rank] : undefined;
    if (own === undefined) this.seedRank();
    else restoreRng(own, this.device);
  }

  /** Rank r > 0 draws dropout masks from its own stream (rank 0 keeps the run's). */
  private seedRank(): void {
    if (this.dp !== null && this.dp.rank > 0) manualSeed(this.config.seed + 1_000_003 * this.dp.rank + this.progression.step);
  }

  /**
   * Continues the run saved in a checkpoint directory; `steps` may extend it, `cudaGraph` switch
   * CUDA-graph steps on or off, `kernels` change which kernels run (the math is the same either
   * way, up to the order of float sums), `tf32` switch TF32 float32 matmuls and
   * `activationCheckpointing` switch the blocks' recomputation (the same gradients either way).
   */
  static resume(
    dir: string,
    overrides: {
      steps?: number;
      endAt?: RunConfig['endAt'];
      cudaGraph?: boolean;
      kernels?: RunConfig['kernels'];
      tf32?: boolean;
      activationCheckpointing?: boolean;
      /**
       * The run's data where it is now (moved, copied to another machine): a path, kept absolute.
       * The training split must hold the same tokens (the loader checks its length and a
       * fingerprint), so the batches go on as they would have.
       */
      data?: string;
      /**
       * Another device than the run's (another GPU, or the CPU): the same state trains on there.
       * Its random streams (dropout) are then the new device's, not an uninterrupted run's.
       */
      device?: string;
      /**
       * Another precision (with a device that has no bf16, say): the same state trains on in it;
       * the loss scale's state carries over where both scale the loss.
       */
      precision?: RunConfig['precision'];
      /** Changes to the saved run config before it is checked (the CLI's --set of bookkeeping fields). */
      edit?: (run: Record<string, unknown>) => void;
    } = {},
    data?: TrainData,
  ): Trainer {
    const state = readCheckpointState(dir);
    // what the trainer wrote beside the tensors, checked before anything uses it
    const extra = parseTrainerExtra(state, `${dir}/state.json`);
    const saved = structuredClone(extra.run) as Record<string, unknown>;
    overrides.edit?.(saved);
    const config = parseRunConfig(
      {
        ...saved,
        ...(overrides.endAt === undefined ? {} : { endAt: overrides.endAt }),
        ...(overrides.steps ? { steps: stepsOnResume(overrides.endAt ?? (extra.run as { endAt?: string }).endAt, overrides.steps) } : {}),
        ...(overrides.cudaGraph === undefined ? {} : { cudaGraph: overrides.cudaGraph }),
        ...(overrides.tf32 === undefined ? {} : { tf32: overrides.tf32 }),
        ...(overrides.activationCheckpointing === undefined ? {} : { activationCheckpointing: overrides.activationCheckpointing }),
        ...(overrides.kernels === undefined ? {} : { kernels: { ...(extra.run as { kernels?: object }).kernels, ...overrides.kernels } }),
        ...(overrides.data === undefined ? {} : { data: overrides.data === 'embedded' ? 'embedded' : resolve(overrides.data) }),
        ...(overrides.device === undefined ? {} : { device: overrides.device }),
        ...(overrides.precision === undefined ? {} : { precision: overrides.precision }),
      },
      Object.values(overrides).every((v) => v === undefined)
        ? `${dir}/state.json run`
        : `run config (${dir}/state.json's, with the options given on resuming)`,
    );
    let device: Device;
    try {
      device = checkDevice(config.device);
    } catch (e) {
      // (the run's device is not here: say how to go on elsewhere)
      if (overrides.device !== undefined) throw e;
      throw new Error(
        `${(e as Error).message} — the run's device (${dir}/state.json, run.device): resume it on another with --device (the CPU: --device cpu, with --precision fp32 for a bf16 or fp16 run)`,
      );
    }
    const ck = loadCheckpoint(dir, device);
    let t: Trainer | null = null;
    try {
      let runData = data;
      try {
        runData ??= loadRunData(config.data, ck.config.vocabSize);
      } catch (e) {
        throw new Error(
          `the run's data '${config.data}' (${dir}/state.json, run.data): ${(e as Error).message}` +
            (overrides.data === undefined ? ' (if it moved, resume with --data where it is now: the same tokens)' : ''),
        );
      }
      try {
        t = new Trainer(config, ck.config, runData, {
          loaderState: extra.loader,
          schedule: parseSchedule(extra.schedule),
          // (a checkpoint from before loss scaling, or of a run without it: the scale starts afresh)
          ...(extra.lossScale === undefined ? {} : { lossScale: extra.lossScale }),
        });
      } catch (e) {
        const message = (e as Error).message;
        if (/^precision (bf16|fp16) needs a CUDA device/.test(message) && overrides.precision === undefined)
          throw new Error(`${message}: resume it with --precision fp32 (the run's precision, ${dir}/state.json, run.precision)`);
        // the loader's own words name its state, not the run's files
        if (!(e instanceof LoaderMismatchError)) throw e;
        if (e.what === 'worldSize')
          throw new Error(
            `the run trained on ${e.saved} rank(s) and this one has ${e.current}: a run resumes on as many (its batches are split between them): ` +
              (e.saved === 1 ? 'resume it without launch' : `resume it with staged-lm launch -n ${e.saved}`),
          );
        throw new Error(
          `the run's data '${config.data}' is not what the run trained on: the checkpoint's loader was ${e.problem.replace(/^the state was /, '')}. ` +
            'A run resumes only on the same training tokens (was the directory prepared again, or another one named?)',
        );
      }
      t.skippedUpdates = extra.skippedUpdates ?? 0;
      // (a run resumed where it no longer scales its loss — on another device under 'auto' — skips
      // nothing from here: no run of skips goes on)
      t.skippedInARow = t.scaler === null ? 0 : (extra.skippedInARow ?? 0);
      loadParameters(t.model, ck.params, `${dir}/model.safetensors`, { exactDtype: true });
      try {
        t.optimizer.loadMomentTensors(ck.moments!, state.optimizerStep, { exactDtype: true });
      } catch (e) {
        throw new Error(`${dir}/optimizer.safetensors: ${(e as Error).message}`);
      }
      t.progression = { ...extra.progression };
      t.lastValLoss = extra.lastValLoss;
      t.lastValStep = extra.lastValStep ?? (extra.lastValLoss === null ? null : extra.progression.step);
      t.best = extra.best ?? null;
      t.evalsSinceBest = extra.evalsSinceBest ?? 0;
      t.intervalBest = extra.intervalBest ?? null;
      // (now, not at train(): the caller reads the schedule for its own notes)
      t.alignWsdToEnd();
      // a checkpoint older than the compute counter: its FLOPs, scaled by the current model's ratio
      // of Kaplan compute to FLOPs, stand in — for the counter and its curve's points alike, so that
      // the trigger's log-log slopes (blind to a common factor) go on unchanged; exact before any
      // growth, an estimate after one
      const toCompute = t.computePerToken / t.flopsPerToken;
      t.valHistory = (extra.valHistory ?? []).map((v) => (v.compute === undefined ? { ...v, compute: v.flops * toCompute } : v));
      t.compute = extra.compute ?? extra.progression.flops * toCompute;
      t.elapsedSeconds = extra.elapsed ?? 0;
      try {
        restoreRng(state.rng, t.device);
      } catch (e) {
        throw new Error(`${dir}/state.json: rng is not a random generator state this libtorch restores (${(e as Error).message})`);
      }
      t.joinDataParallel(state.rng.ranks);
    } catch (e) {
      t?.dispose(); // frees its tensors and puts back the process-wide settings it changed
      throw e;
    } finally {
      for (const x of [...Object.values(ck.params), ...Object.values(ck.moments!)]) x.dispose();
      // the files' blocks were a one-off: back to the system, not kept for reuse (the CPU block
      // cache would otherwise hold them, up to twice the checkpoint, for the rest of the run)
      emptyCache();
    }
    return t;
  }

  /** The run's per-parameter learning-rate multipliers for the current model (width-scaled recipe). */
  private applyLrScales(): void {
    const scale = lrScales(this.config.lr.hiddenWidthBase, this.modelConfig);
    if (scale !== null) this.optimizer.setLrScales(scale);
  }

  /** The live training state (the model's and optimizer's own tensors, not copies). */
  trainState(): TrainState {
    return stateOf(this.model, this.optimizer, this.schedule, this.progression);
  }

  /**
   * Continues from another state (e.g. a grown one): model, optimizer, schedule and counters are
   * replaced; the data order goes on. With `adopt` the state's tensors are taken over (see instantiate).
   */
  applyState(s: TrainState, opts: { adopt?: boolean } = {}): void {
    this.releaseCapturedStep(); // it replays the old parameters' kernels
    const next = instantiate(s, { device: this.device, optimizer: this.config.optimizer, adopt: opts.adopt });
    this.model.dispose();
    this.optimizer.dispose();
    this.model = next.model;
    this.optimizer = next.optimizer;
    this.modelConfig = s.config;
    this.applyLrScales();
    this.flopsPerToken = trainingFlopsPerToken(s.config, this.seqLen);
    this.computePerToken = 6 * kaplanParams(s.config);
    this.schedule = s.schedule;
    this.progression = { ...s.progression };
    this.dp?.attach(this.model.namedParameters().map((p) => p.tensor)); // buckets for the new parameter set
  }

  /**
   * Grows the model in place with a growth operator, logging the event (step, op, sizes, validation
   * loss before and after) to the metrics file when given. Returns the event. The grown schedule's
   * peak is the run's lr.peak unless `opts.schedule.peak` says otherwise; a re-warmup that ends past
   * the schedule's horizon (the rate would never decay) is what rewarmupPastHorizonNote(t.schedule)
   * reports.
   */
  grow(op: GrowthOperator, opts: Record<string, unknown> = {}, metrics?: Pick<MetricsLog, 'append'>): GrowthEvent {
    const before = this.quickValLoss();
    const fromConfig = this.modelConfig;
    // every rank draws the same random numbers in the operator (symmetry-breaking noise)
    if (this.dp !== null) manualSeed(this.config.seed + 7919 * this.progression.step);
    const grown = grow(this.trainState(), op, this.withRunPeak(op, opts));
    this.applyState(grown, { adopt: true }); // the grown tensors become the model's: no second copy
    if (this.dp !== null) {
      this.dp.checkIdentical(this.trainState(), `after the ${op} growth at step ${this.progression.step}`);
      this.seedRank();
    }
    this.valHistory = [];
    this.agreedTrigger = null;
    emptyCache();
    const after = this.quickValLoss();
    const event: GrowthEvent = {
      event: 'growth',
      step: this.progression.step,
      op,
      stage: this.progression.stage,
      lossBefore: before,
      lossAfter: after,
      from: sizeOf(fromConfig),
      to: sizeOf(this.modelConfig),
      schedulePos: this.progression.schedulePos,
      peakLr: this.schedule.peak,
    };
    metrics?.append([event]);
    return event;
  }

  /**
   * `opts` with the grown schedule's peak defaulting to the run's lr.peak, as a stage's or `grow`'s
   * (the operators alone default to 'kaplan', the spec's target-size rate). mlp and heads keep the
   * schedule unless given one.
   */
  private withRunPeak(op: GrowthOperator, opts: Record<string, unknown>): Record<string, unknown> {
    const s = opts.schedule;
    if (s === false || ((op === 'mlp' || op === 'heads') && s === undefined)) return opts;
    const given = typeof s === 'object' && s !== null ? (s as Record<string, unknown>) : {};
    return given.peak !== undefined ? opts : { ...opts, schedule: { ...given, peak: this.config.lr.peak } };
  }

  /** The growth options of a stage's end, with c_op measured on the `alignTo` curve when given. */
  stageGrowthOptions(stage: StageConfig): Record<string, unknown> {
    const o = growthOptions(stage.grow, this.config.lr.peak);
    if (stage.grow.alignTo === undefined) return o;
    const cOp = this.progression.schedulePos / this.alignedStep(stage.grow.alignTo);
    return { ...o, schedule: { ...(typeof o.schedule === 'object' ? o.schedule : {}), cOp } };
  }

  /**
   * The step at which a from-scratch run (metrics.jsonl or its directory) first reached this run's
   * last validation loss, interpolated linearly between its evaluations.
   */
  alignedStep(path: string): number {
    const { file, curve } = alignCurve(path);
    const loss = this.lastValLoss;
    if (loss === null) throw new Error('grow.alignTo needs a validation loss before the growth (eval.interval > 0)');
    const step = firstReach(curve, loss, (v) => v.step!);
    if (step === null) {
      const best = Math.min(...curve.map((v) => v.loss));
      throw new Error(`grow.alignTo: ${file} never reached validation loss ${loss.toFixed(4)} (its best is ${best.toFixed(4)})`);
    }
    return Math.max(1, step);
  }

  /**
   * What would otherwise fail only at a growth point, after the stage before it has trained: an
   * alignTo run that cannot be read, or width growth of an untied LM head not asked to duplicate it.
   */
  private checkStages(): void {
    this.config.stages.forEach((st, i) => {
      if (i < this.progression.stage) return; // grown already
      const where = `stages.${i}.grow`;
      if (st.grow.alignTo !== undefined) {
        const { file, curve } = alignCurve(st.grow.alignTo, where);
        if (curve.length === 0) throw new Error(`${where}.alignTo: ${file} holds no validation losses to align to`);
      }
      if ((st.grow.op === 'width' || st.grow.op === 'both') && !this.modelConfig.tiedEmbeddings && st.grow.untiedHead !== 'duplicate')
        throw new Error(`${where}: width growth of this model's untied LM head needs untiedHead: 'duplicate' ([U ∣ U] with LNf halved)`);
    });
  }

  /**
   * At a run's end, the stage it did not grow out of where nothing said so at its start (a FLOP
   * budget, the slope trigger): a run that ends at the small size without a word reads as done. A
   * trigger that fired at the last evaluation grows first thing in a resumed run.
   */
  private ungrownNotes(): string[] {
    const k = this.progression.stage;
    const st = this.config.stages[k];
    if (st === undefined || st.until.steps !== undefined || st.until.tokens !== undefined) return [];
    const at = `stages[${k}] (${st.grow.op} growth)`;
    if (st.until.flops !== undefined)
      return [
        this.stageEnded(st)
          ? `staged-lm: note: ${at}: the run reached its ${st.until.flops.toExponential(3)} FLOPs at the last step ${this.progression.step}, as it ended: it did not grow (train --resume with more --steps grows first)`
          : `staged-lm: note: ${at} ends at ${st.until.flops.toExponential(3)} FLOPs; the run ended at ${this.progression.flops.toExponential(3)}: it did not grow`,
      ];
    return [
      this.stageEnded(st)
        ? `staged-lm: note: ${at}: the slope trigger fired at the last evaluation (step ${this.progression.step}), as the run ended: it did not grow (train --resume with more --steps grows first)`
        : `staged-lm: note: ${at}: the slope trigger did not fire by the last step ${this.progression.step}: the run ended at the size before that growth`,
    ];
  }

  /**
   * The last step, up to `steps`, that the current schedule governs: the next stage's growth sets a
   * schedule of its own where its step is known in advance; `unless` is the clause for a note when
   * it is not (a slope or FLOP stage may grow first), else ''.
   */
  scheduleSpan(steps: number): { last: number; unless: string } {
    const next = this.config.stages[this.progression.stage];
    const nextEnd = next === undefined ? null : this.stageEndStep(next);
    return {
      last: nextEnd !== null && nextEnd < steps ? nextEnd : steps,
      unless:
        next !== undefined && nextEnd === null
          ? ` — unless stages[${this.progression.stage}]'s ${next.grow.op} growth comes first and sets a schedule of its own`
          : '',
    };
  }

  /** The step a stage ends at where its counter tells it in advance (steps, tokens); null for a FLOP budget or the slope trigger. */
  stageEndStep(stage: StageConfig): number | null {
    if (stage.until.steps !== undefined) return stage.until.steps;
    return stage.until.tokens === undefined ? null : Math.ceil(stage.until.tokens / this.tokensPerStep);
  }

  /**
   * Notes on where the run ends: a stage still to come that ends at or after the last step by a
   * step or token count (it will not grow in this run); with endAt 'schedule', an end that is not
   * config.steps. (A run that ends with its schedule ends later after each growth: only the next
   * stage is sure to lie past it, and the notes are made again at each growth that moves the end.)
   */
  private endNotes(steps: number): string[] {
    const notes: string[] = [];
    if (this.config.endAt === 'schedule' && this.progression.stage === 0 && this.progression.step === 0 && steps !== this.config.steps)
      notes.push(
        `staged-lm: note: this run ends with its schedule (endAt 'schedule'), at step ${steps} (lr.total), not at steps ${this.config.steps}`,
      );
    this.config.stages.forEach((st, i) => {
      if (i < this.progression.stage) return;
      const at = this.stageEndStep(st);
      if (at !== null && at >= steps && (this.config.endAt === 'steps' || i === this.progression.stage))
        notes.push(
          `staged-lm: note: stages[${i}] ends at step ${at}, not before this run's last step ${steps}: it does not grow in this run`,
        );
    });
    return notes;
  }

  /**
   * Notes on stages still to come whose width, mlp or heads growth has nothing to break the
   * symmetry of its copies (spec/growth.md, "Symmetry": they stay identical, the small model in disguise).
   */
  private symmetryNotes(): string[] {
    const notes: string[] = [];
    // the dropout of the model each stage grows: the current one's, then as each earlier stage set it
    let dropout = this.modelConfig.dropout;
    this.config.stages.forEach((st, i) => {
      if (i < this.progression.stage) return;
      const { op } = st.grow;
      const symmetry = symmetryNote(op, st.grow, dropout, {
        dropout: 'dropout',
        noise: 'noiseStd',
        split: 'splitNoiseStd',
      });
      if (st.grow.dropout !== undefined) dropout = { ...dropout, attention: st.grow.dropout, residual: st.grow.dropout };
      if (symmetry !== null) notes.push(`staged-lm: note: stages[${i}]'s ${symmetry}`);
      const guess = referenceCOpNote(op, st.grow.factor, st.grow.cOp !== undefined || st.grow.alignTo !== undefined);
      if (guess !== null)
        notes.push(`staged-lm: note: stages[${i}]: ${guess} (give grow.cOp, or grow.alignTo a from-scratch run's log to measure it)`);
      // the slope trigger's reference thresholds are for ×2 too; the law's optimum moves with the factor
      const k = st.grow.factor;
      if (
        st.until.slope?.threshold === undefined &&
        st.until.slope !== undefined &&
        k !== undefined &&
        k !== 2 &&
        (op === 'width' || op === 'depth')
      ) {
        // (σ at the optimal point does not depend on the size under the law: any N will do)
        const lawSigma = (factor: number) => optimalGrowthPoint(1e8, op === 'width' ? factor * factor : factor).sigmaPre.toFixed(4);
        notes.push(
          `staged-lm: note: stages[${i}]: the slope trigger's default threshold ${TRIGGER_THRESHOLDS[op]} is that of ${op} growth ×2; Kaplan's law puts the optimal growth point at σ = ${lawSigma(k)} for ×${k} (${lawSigma(2)} for ×2): give until.slope.threshold`,
        );
      }
    });
    return notes;
  }

  /** Whether the current stage's end condition holds (counters are cumulative over stages). */
  stageEnded(stage: StageConfig): boolean {
    const u = stage.until;
    const p = this.progression;
    if (u.steps !== undefined) return p.step >= u.steps;
    if (u.tokens !== undefined) return p.tokens >= u.tokens;
    if (u.flops !== undefined) return p.flops >= u.flops;
    if (this.dp === null) return this.slopeTriggered(stage);
    // the trigger reads a noisy curve: rank 0 decides for everyone, once per new validation point
    // (every rank evaluates at the same steps), so steps in between need no collective
    const points = this.valHistory.length;
    if (this.agreedTrigger?.points !== points) this.agreedTrigger = { points, fired: this.dp.agree(this.slopeTriggered(stage)) };
    return this.agreedTrigger.fired;
  }

  /**
   * The slope trigger of spec/schedule.md on this stage's validation curve (cumulative FLOPs of all
   * stages on x): true once σ has risen past the threshold after its most negative value.
   */
  private slopeTriggered(stage: StageConfig): boolean {
    if (this.config.eval.interval === 0) throw new Error('a stage that ends on the slope trigger needs eval.interval > 0');
    const op = stage.grow.op === 'mlp' || stage.grow.op === 'heads' ? 'depth' : stage.grow.op;
    const r = findGrowthPoint(
      // (points from a checkpoint older than the compute counter: its FLOPs)
      this.valHistory.map((v) => ({ compute: v.compute ?? v.flops, loss: v.loss, step: v.step })),
      { op, ...(stage.until.slope?.threshold !== undefined ? { threshold: stage.until.slope.threshold } : {}) },
    );
    return r.reached;
  }

  /** Validation loss on the first two eval batches: a cheap, deterministic before/after probe. */
  quickValLoss(): number {
    return evaluate(this.model, this.data.val, {
      batchSize: this.config.batchSize * (this.dp?.worldSize ?? 1),
      seqLen: this.seqLen,
      maxBatches: 2,
      device: this.device,
      autocast: this.autocast,
    }).loss;
  }

  /** The learning rate of the next update. */
  currentLr(): number {
    return learningRate(this.schedule, this.progression.schedulePos + 1);
  }

  /**
   * One optimizer step (gradAccum micro-batches). Returns the mean loss and the gradient norm as
   * device tensors the caller owns: nothing here waits for the device.
   */
  step(): StepResult {
    if (this.config.cudaGraph && !this.graphFailed) {
      if (this.eagerSteps >= GRAPH_WARMUP_STEPS) return this.replayStep();
      // the last warm-up step on the capture stream: its per-stream set-up happens outside the capture
      if (this.eagerSteps === GRAPH_WARMUP_STEPS - 1) return CudaGraph.warmup(this.device, () => this.eagerStep(() => this.loader.next()));
    }
    return this.eagerStep(() => this.loader.next());
  }

  /** One step run op by op, on gradAccum micro-batches drawn from `batch`. */
  private eagerStep(batch: () => { x: Tensor; y: Tensor }): StepResult {
    const { gradAccum, clipGradNorm } = this.config;
    const lr = this.currentLr();
    const scaler = this.scaler;
    const out = tidy(() => {
      let lossSum: Tensor | null = null;
      for (let micro = 0; micro < gradAccum; micro++) {
        const { x, y } = batch();
        const autocast = this.autocast;
        if (this.dp !== null && micro === gradAccum - 1) this.dp.prepareBackward();
        const l = this.model.lossBackward(x, y, {
          divisor: gradAccum,
          recompute: this.config.activationCheckpointing,
          ...(autocast === null ? {} : { run: <R>(fn: () => R) => withAutocast(autocast, fn) }),
          ...(scaler === null ? {} : { lossScale: scaler.scale }),
        });
        lossSum = lossSum === null ? l : lossSum.add(l);
      }
      this.dp?.finishBackward();
      // clipping folded into the update: the fused kernel divides the gradients as it reads them
      // (under loss scaling, by the scale too, and it skips an update whose gradients overflowed)
      let gradNorm: Tensor | null = null;
      let skipped: Tensor | null = null;
      if (scaler !== null) {
        const r = this.optimizer.scaledUpdate(lr, scaler.scale, clipGradNorm ?? Infinity);
        scaler.update(r.foundInf);
        skipped = r.foundInf;
        if (clipGradNorm === null) r.norm.dispose();
        else gradNorm = r.norm;
      } else if (clipGradNorm === null) this.optimizer.update(lr);
      else gradNorm = this.optimizer.clipAndUpdate(clipGradNorm, lr);
      this.optimizer.zeroGrad();
      return { loss: gradAccum > 1 ? lossSum!.div(gradAccum) : lossSum!, gradNorm, skipped };
    });
    this.eagerSteps += 1;
    this.advance();
    return {
      loss: keep(out.loss),
      gradNorm: out.gradNorm === null ? null : keep(out.gradNorm),
      lr,
      skipped: out.skipped === null ? null : keep(out.skipped),
    };
  }

  /**
   * The step as a replayed CUDA graph (config.cudaGraph), captured on first use after the model
   * last changed; the batch is copied into the graph's inputs, loss and norm out of its outputs.
   * A capture that fails is reported once and the run goes on eagerly with the same batch.
   */
  private replayStep(): StepResult {
    const batch = this.loader.next();
    try {
      if (this.captured === null) {
        try {
          this.captured = CapturedTrainStep.capture(this.model, this.optimizer, batch.x, batch.y, {
            clip: this.config.clipGradNorm ?? Infinity,
            autocast: this.autocast,
          });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          if (/capture broke/.test(message)) throw e; // CUDA's state is not trustworthy: stop the run
          this.graphFailed = true;
          process.stderr.write(`staged-lm: ${message}; continuing with eager steps\n`);
          return this.eagerStep(() => batch);
        }
        this.graphCaptures += 1;
      }
      const lr = this.currentLr();
      const captured = this.captured;
      const out = tidy(() => {
        captured.run(lr, batch.x, batch.y);
        this.graphReplays += 1;
        // copies: the graph's own outputs are overwritten by the next replay
        return { loss: captured.loss.clone(), gradNorm: captured.gradNorm?.clone() ?? null };
      });
      this.advance();
      return { loss: keep(out.loss), gradNorm: out.gradNorm === null ? null : keep(out.gradNorm), lr, skipped: null };
    } finally {
      batch.x.dispose();
      batch.y.dispose();
    }
  }

  /** How config.cudaGraph went so far: captures made, steps replayed, whether a capture failed. */
  cudaGraphStats(): { captures: number; replays: number; failed: boolean } {
    return { captures: this.graphCaptures, replays: this.graphReplays, failed: this.graphFailed };
  }

  /** Tokens one optimizer step trains on: micro-batches of B × T, on every rank. */
  private get tokensPerStep(): number {
    return this.config.batchSize * this.seqLen * this.config.gradAccum * (this.dp?.worldSize ?? 1);
  }

  /** Counters after one optimizer step. */
  private advance(): void {
    const tokens = this.tokensPerStep;
    const p = this.progression;
    p.step += 1;
    p.schedulePos += 1;
    p.tokens += tokens;
    p.flops += tokens * this.flopsPerToken;
    this.compute += tokens * this.computePerToken;
  }

  /** Frees the captured step (its graph, memory pool and gradients); the next steps run eagerly. */
  private releaseCapturedStep(): void {
    this.captured?.dispose();
    this.captured = null;
    this.eagerSteps = 0;
  }

  /** Validation loss over eval.batches batches (split between the ranks of a data-parallel job). */
  evaluate(): number {
    const opts = {
      batchSize: this.config.batchSize,
      seqLen: this.seqLen,
      maxBatches: this.config.eval.batches,
      device: this.device,
      autocast: this.autocast,
    };
    let loss: number;
    if (this.dp === null) {
      loss = evaluate(this.model, this.data.val, opts).loss;
    } else {
      // eval.batches batches of the global batch W·b: W·eval.batches of b, every W-th on this rank
      // (the same windows one process with batch W·b scores)
      const { rank, worldSize } = this.dp;
      const r = evaluate(this.model, this.data.val, { ...opts, maxBatches: opts.maxBatches * worldSize, shard: { rank, worldSize } });
      const [nats, tokens] = this.dp.sum([r.tokens === 0 ? 0 : r.loss * r.tokens, r.tokens]);
      if (tokens === 0) throw new Error('evaluate: the validation data holds no complete window');
      loss = nats / tokens;
    }
    this.lastValLoss = loss;
    this.lastValStep = this.progression.step;
    return loss;
  }

  checkpointState(): Omit<CheckpointState, 'format' | 'version'> {
    const p = this.progression;
    return {
      library: packageVersion(),
      step: p.step,
      tokens: p.tokens,
      flops: p.flops,
      stage: p.stage,
      optimizerStep: this.optimizer.step,
      rng: captureRng(this.device),
      extra: {
        run: this.config,
        loader: this.loader.state(),
        schedule: this.schedule,
        progression: { ...p },
        lastValLoss: this.lastValLoss,
        lastValStep: this.lastValStep,
        best: this.best,
        evalsSinceBest: this.evalsSinceBest,
        intervalBest: this.intervalBest,
        // this stage's validation curve: the slope trigger reads it, and a resumed run must see it
        valHistory: this.valHistory,
        compute: this.compute,
        // wall-clock seconds so far: a resumed run's elapsedSec goes on from here
        elapsed: this.elapsedClock(),
        // loss scaling: the scale and its count of good steps go on where they were
        ...(this.scaler === null
          ? {}
          : { lossScale: this.scaler.state(), skippedUpdates: this.skippedUpdates, skippedInARow: this.skippedInARow }),
      },
    };
  }

  /**
   * Writes a checkpoint. In a data-parallel job every rank calls it: rank 0 writes (every rank
   * holds the same state), with each rank's generators, so that a resumed run draws the dropout
   * masks an uninterrupted one would have.
   */
  save(dir: string, opts: { tensorsFrom?: string } = {}): void {
    // a diverged update (the loss it is checked by was computed before it) must not replace the
    // last good checkpoint: every rank holds the same parameters and refuses alike
    if (!this.parametersFinite()) throw new TrainingDivergedError(this.progression.step, NaN, 'parameters');
    const ranks =
      this.dp === null
        ? undefined
        : this.dp
            .allGatherBytes(Buffer.from(JSON.stringify(captureRng(this.device))))
            .map((b) => JSON.parse(Buffer.from(b).toString('utf8')) as RngState);
    if (this.dp !== null && this.dp.rank !== 0) return;
    const state = this.checkpointState();
    saveCheckpoint(dir, this.model, this.optimizer, ranks === undefined ? state : { ...state, rng: { ...state.rng, ranks } }, opts);
  }

  /** Whether every parameter is finite: one read-back of the sum of their norms (overflow counts as not). */
  private parametersFinite(): boolean {
    return tidy(() =>
      Number.isFinite(
        stack(this.model.parameters().map((p) => p.norm().to({ dtype: 'float32' })))
          .sum()
          .item(),
      ),
    );
  }

  /**
   * A wsd schedule's decay moved to the run's last step (endAt 'steps'): after a growth, which
   * places the model at R < S_pre of its target schedule, the decay would otherwise come after
   * the run's end; on resuming with more steps, it goes on at the peak. Not while the decay is
   * under way, nor for a schedule whose lr.total the config set (and that never grew).
   */
  private alignWsdToEnd(note: (line: string) => void = (line) => this.pendingNotes.push(line)): void {
    if (this.config.endAt !== 'steps' || (this.config.lr.total !== undefined && this.schedule.restart === undefined)) return;
    // (the run's configured end: a session that stops earlier, train({ steps }), is a part of it)
    const steps = this.config.steps;
    const end = this.progression.schedulePos + (steps - this.progression.step);
    const moved = wsdEndingAt(this.schedule, this.progression.schedulePos, end);
    if (moved === null) return;
    this.schedule = moved;
    note(`staged-lm: the wsd schedule's decay (${moved.decay} steps) now ends with the run: at position ${end}, step ${steps}`);
  }

  /**
   * The run's last step: config.steps (or opts.steps), or with endAt 'schedule' the step at which the
   * current schedule reaches its horizon (it moves at each growth that repositions the schedule).
   */
  lastStep(opts: Pick<TrainOptions, 'steps'> = {}): number {
    if (this.config.endAt === 'steps') return opts.steps ?? this.config.steps;
    if (opts.steps !== undefined)
      throw new Error(`this run ends with its schedule (endAt 'schedule', at step ${this.lastStep()}): a step count does not apply`);
    return this.progression.step + Math.max(0, this.schedule.total - this.progression.schedulePos);
  }

  /** Trains until the last step (see lastStep), evaluating, logging and checkpointing as configured. */
  async train(opts: TrainOptions): Promise<TrainResult> {
    const steps = this.lastStep(opts);
    if (steps <= this.progression.step)
      throw new Error(
        this.config.endAt === 'schedule'
          ? `the run is already at step ${this.progression.step}, at or past the end of its schedule (endAt 'schedule'): nothing to train`
          : `the run is already at step ${this.progression.step}: nothing to train up to step ${steps} (ask for more steps)`,
      );
    this.checkStages();
    const main = this.dp === null || this.dp.rank === 0;
    // one process per run directory: a second one stops here, before it writes anything (every
    // rank of a data-parallel job with it)
    let release: (() => void) | null = null;
    let refused: Error | null = null;
    try {
      if (main) release = lockRunDirectory(opts.out);
    } catch (e) {
      refused = e as Error;
    }
    if (this.dp === null ? refused !== null : this.dp.any(refused !== null))
      throw refused ?? new Error(`rank 0 could not lock the run directory ${opts.out}`);
    try {
      return await this.trainLocked(opts, steps, main);
    } finally {
      release?.();
    }
  }

  private async trainLocked(opts: TrainOptions, lastStep: number, main: boolean): Promise<TrainResult> {
    const { logInterval, eval: ev, checkpointInterval, checkpointMinutes } = this.config;
    let steps = lastStep;
    // checked before anything is written: Kineto in this libtorch, the counts, a writable path
    const profileWindow = opts.profile !== undefined && main ? new ProfileWindow(opts.profile, this.device.startsWith('cuda')) : null;
    // ranks other than 0 write nothing: every rank holds the same state and the same (mean) losses
    let metrics: Pick<MetricsLog, 'append'> = { append: () => {} };
    if (main) {
      const log = new MetricsLog(join(opts.out, 'metrics.jsonl'));
      // no duplicate records from an earlier run here
      const lastLogged = log.truncateAfter(this.progression.step, this.progression.stage);
      // a run resumed into a directory whose log does not reach its step (another --out, a grown
      // checkpoint): where it starts, so that the report's stages and counters begin there
      if (this.progression.step > 0 && (lastLogged ?? -1) < this.progression.step) {
        const p = this.progression;
        const size = { nLayer: this.modelConfig.nLayer, nEmbd: this.modelConfig.nEmbd };
        const init = this.config.initFrom === undefined ? {} : { initFrom: this.config.initFrom };
        log.append([
          {
            event: 'resume',
            step: p.step,
            stage: p.stage,
            tokens: p.tokens,
            flops: p.flops,
            compute: this.compute,
            // (where this model is on its schedule: slope's S_pre for a model grown in another run)
            schedulePos: p.schedulePos,
            size,
            ...init,
          },
        ]);
      }
      // a fine-tune's log says whose weights it began from: its losses are not a from-scratch
      // run's (fit refuses it, report names it)
      if (this.progression.step === 0 && lastLogged === null && this.config.initFrom !== undefined)
        log.append([{ event: 'init', step: 0, from: this.config.initFrom }]);
      metrics = log;
      if (opts.tensorboard === true) {
        // this session's steps supersede what an earlier one logged from its first new step on, as
        // truncateAfter dropped them from metrics.jsonl (all of them for a fresh run)
        const board = new TensorBoardLog(opts.out, this.progression.step === 0 ? 0 : this.progression.step + 1);
        metrics = {
          append: (records) => {
            log.append(records);
            board.append(records);
          },
        };
      }
    }
    const checkpointDir = join(opts.out, 'checkpoint');
    // a second save of the same state (the last step's snapshot, then the checkpoint) links the
    // first one's tensor files; a growth (same step, new model) forgets it
    let lastSave: { dir: string; step: number } | null = null;
    // when the checkpoint was last saved (checkpointMinutes counts from here)
    let checkpointSavedAt = performance.now();
    const save = (dir: string) => {
      const step = this.progression.step;
      this.save(dir, lastSave !== null && lastSave.step === step ? { tensorsFrom: lastSave.dir } : {});
      lastSave = { dir, step };
      if (dir === checkpointDir) checkpointSavedAt = performance.now();
    };
    const progress = new Progress(
      steps,
      this.progression.step,
      main && (opts.progress ?? true),
      main && (opts.notes ?? opts.progress ?? true),
    );
    this.alignWsdToEnd((line) => progress.note(line));
    for (const line of this.pendingNotes.splice(0)) progress.note(line);
    for (const line of [...this.endNotes(steps), ...this.symmetryNotes()]) progress.note(line);
    // a best snapshot the run does not know of (it was saved after the checkpoint this run resumed
    // from, by a session that was killed): set aside, named, as the resumed run will save its own
    if (main && this.config.snapshots.best) {
      const stray = strayBestSnapshot(opts.out, this.best);
      if (stray !== null) progress.note(`staged-lm: note: ${stray}`);
    }
    const t0 = performance.now();
    // wall time of the whole run: what earlier sessions of it spent, then this one's
    const elapsedBefore = this.elapsedSeconds;
    this.elapsedClock = () => elapsedBefore + (performance.now() - t0) / 1000;
    let windowStart = performance.now();
    let windowTokens = 0;
    let pending: ({ step: number; tokens: number; flops: number; compute: number } & StepResult)[] = [];
    let lastLoss = NaN;
    let interrupted = false;
    let stoppedEarly = false;
    let profile: ProfileResult | null = null;
    // a profile that fails (a full disk, say) is reported and dropped; the run goes on
    const profiling = (stage: (w: ProfileWindow) => ProfileResult | null | void): void => {
      if (profileWindow === null) return;
      try {
        const p = stage(profileWindow);
        if (p === null || p === undefined) return;
        profile = p;
        progress.log(describeProfile(p));
      } catch (e) {
        profileWindow.discard();
        progress.note(`staged-lm: no profile: ${(e as Error).message}`);
      }
    };

    // tokensPerSec covers training steps only: the window ends before an evaluation (ended by
    // `end`) and starts again after a growth or a checkpoint
    const flush = (valLoss?: number, end = performance.now(), valOffInterval = false) => {
      if (pending.length === 0) return;
      // one read-back for the whole interval
      // the mean over ranks (one collective per log interval)
      const losses = tidy(() => {
        const l = stack(pending.map((p) => p.loss));
        return (this.dp === null ? l : this.dp.mean(l)).toNumberArray();
      });
      const norms = pending[0].gradNorm === null ? null : tidy(() => stack(pending.map((p) => p.gradNorm!)).toNumberArray());
      // loss scaling: which updates were skipped, and the scale now (one read-back with them)
      const scaling =
        this.scaler === null || pending.some((p) => p.skipped === null)
          ? null
          : tidy(() => stack([...pending.map((p) => p.skipped!), this.scaler!.scale]).toNumberArray());
      const seconds = (end - windowStart) / 1000;
      const tps = windowTokens / seconds;
      const records: StepRecord[] = pending.map((p, i) => ({
        step: p.step,
        tokens: p.tokens,
        flops: p.flops,
        compute: p.compute,
        loss: losses[i],
        lr: p.lr,
        gradNorm: norms === null ? null : norms[i],
        ...(scaling !== null && scaling[i] !== 0 ? { skipped: true } : {}),
      }));
      const last = records[records.length - 1];
      if (scaling !== null) last.lossScale = scaling[scaling.length - 1];
      last.tokensPerSec = tps;
      last.elapsedSec = this.elapsedClock();
      if (valLoss !== undefined) last.valLoss = valLoss;
      if (valLoss !== undefined && valOffInterval) last.valOffInterval = true;
      for (const p of pending) {
        p.loss.dispose();
        p.gradNorm?.dispose();
        p.skipped?.dispose();
      }
      pending = [];
      windowStart = performance.now();
      windowTokens = 0;
      metrics.append(records);
      for (const r of records) opts.onRecord?.(r);
      const bad = records.find((r) => !Number.isFinite(r.loss));
      if (bad !== undefined) throw new TrainingDivergedError(bad.step, bad.loss);
      const skippedNow = records.filter((r) => r.skipped === true).map((r) => r.step);
      if (skippedNow.length > 0) {
        this.skippedUpdates += skippedNow.length;
        const which =
          skippedNow.length === 1
            ? `step ${skippedNow[0]}: its update was skipped`
            : `${skippedNow.length} updates skipped (steps ${skippedNow.slice(0, 5).join(', ')}${skippedNow.length > 5 ? ', …' : ''})`;
        progress.note(`staged-lm: ${which}: the gradients overflowed at the loss scale, which is ${fmtScale(last.lossScale!)} now`);
      }
      if (scaling !== null)
        for (const r of records) {
          this.skippedInARow = r.skipped === true ? this.skippedInARow + 1 : 0;
          if (this.skippedInARow >= MAX_SKIPPED_IN_A_ROW) throw new TrainingDivergedError(r.step, last.lossScale!, 'gradients');
        }
      lastLoss = last.loss;
      progress.update(last.step, { loss: last.loss, lr: last.lr, tokensPerSec: tps });
    };

    try {
      while (this.progression.step < steps) {
        // a stage that has ended grows into the next before the step (also right after a resume)
        const stage = this.config.stages[this.progression.stage];
        if (stage !== undefined && this.stageEnded(stage)) {
          flush();
          if (this.config.snapshots.beforeGrowth) save(snapshotDir(opts.out, this.progression.step, 'before-growth'));
          const g = this.grow(stage.grow.op, this.stageGrowthOptions(stage), metrics);
          lastSave = null;
          progress.note(
            `step ${g.step}: grew ${g.op} → ${g.to.nLayer}×${g.to.nEmbd} (stage ${g.stage}); val loss on 2 batches ${g.lossBefore.toFixed(4)} → ${g.lossAfter.toFixed(4)}, peak LR ${g.peakLr.toExponential(2)}`,
          );
          // the grown model resumes the target schedule at R < S_pre: a run that ends with its
          // schedule ends later; one with a step budget may end before that schedule has decayed
          const moved = this.lastStep();
          if (this.config.endAt === 'schedule' && moved !== steps) {
            steps = moved;
            progress.setTotal(steps);
            progress.note(
              `staged-lm: the schedule resumes at position ${this.progression.schedulePos} of ${this.schedule.total}: the run now ends at step ${steps}`,
            );
            for (const line of this.endNotes(steps)) progress.note(line);
          }
          this.alignWsdToEnd((line) => progress.note(line));
          // each stage has its own patience: the grown model's first evaluations (its re-warmup)
          // do not count against the last stage's
          this.evalsSinceBest = 0;
          // a counter end the run is already past (a slope stage before it ended late): the stage
          // trains no steps, its growth follows at once — most likely not what the config meant
          const next = this.config.stages[this.progression.stage];
          if (next !== undefined && next.until.slope === undefined && this.stageEnded(next)) {
            const u = next.until;
            const at =
              u.steps !== undefined
                ? `step ${u.steps}`
                : u.tokens !== undefined
                  ? `${u.tokens} tokens`
                  : `${u.flops!.toExponential(3)} FLOPs`;
            progress.note(
              `staged-lm: note: stages[${this.progression.stage}] ends at ${at}, which the run has already passed (the counters run over the whole run): it trains no steps and grows at once`,
            );
          }
          const late = rewarmupPastHorizonNote(this.schedule);
          if (late !== null) progress.note(`staged-lm: note: ${late} (a shorter grow.rewarmup fits)`);
          // a re-warmup the run ends inside of: the grown model never trains at its full rate (only
          // where this growth placed it: mlp and heads growth keep the schedule, an old restart too)
          const restart = this.schedule.restart;
          const rewarmup = restart !== undefined && restart.at === this.progression.schedulePos ? restart.rewarmup : 0;
          if (late === null && g.step + rewarmup > steps)
            progress.note(
              `staged-lm: note: the re-warmup after this growth (${rewarmup} steps) ends at step ${g.step + rewarmup}, after this run's last step ${steps}: the run ends with the rate still rising (a shorter grow.rewarmup fits)`,
            );
          const end = this.progression.schedulePos + (steps - this.progression.step);
          if (this.schedule.kind !== 'constant' && end < this.schedule.total)
            progress.note(
              `staged-lm: note: the schedule resumes at position ${this.progression.schedulePos}; this run's ${steps} steps end at position ${end} of its ${this.schedule.total} (${steps + this.schedule.total - end} steps would finish its decay)`,
            );
          const { last, unless } = this.scheduleSpan(steps);
          const atFinal = pastHorizon(
            this.schedule,
            this.progression.schedulePos + 1,
            this.progression.schedulePos + (last - this.progression.step),
          ).atFinal;
          if (late === null && atFinal > 0)
            progress.note(
              `staged-lm: note: the schedule resumes at position ${this.progression.schedulePos} and reaches its end (lr.total ${this.schedule.total}) before step ${last}: the last ${atFinal} steps train at its final rate ${this.schedule.final.toPrecision(4)}${unless}`,
            );
          save(checkpointDir);
          windowStart = performance.now();
          opts.onGrowth?.(g);
          continue; // (the run's end may have moved to this very step)
        }
        profiling((w) => w.beforeStep(this.progression.step));
        const r = this.step();
        profiling((w) => w.afterStep());
        const p = this.progression;
        pending.push({ step: p.step, tokens: p.tokens, flops: p.flops, compute: this.compute, ...r });
        windowTokens += this.tokensPerStep;
        const evalNow = ev.interval > 0 && (p.step % ev.interval === 0 || p.step === steps);
        const logNow = p.step % logInterval === 0 || p.step === steps;
        if (evalNow) {
          // (the last step's loss read first: its work is done when the window ends)
          const end = pending.length > 0 ? (pending[pending.length - 1].loss.item(), performance.now()) : performance.now();
          const v = this.evaluate();
          // the slope trigger's curve takes the interval's points only: the extra one at the end of a
          // session would not be in an uninterrupted run's curve, and a resumed trigger would differ
          const onInterval = p.step % ev.interval === 0;
          if (onInterval) this.valHistory.push({ step: p.step, flops: p.flops, compute: this.compute, loss: v });
          flush(v, end, !onInterval);
          progress.log(`step ${p.step}: val loss ${this.lastValLoss!.toFixed(4)}`);
          // candidates: the evaluations on the interval (as the trigger's curve: a resumed run keeps
          // the uninterrupted one's best) and the one at the run's last step (its config's, not a
          // shorter session's: train({ steps }))
          if ((onInterval || p.step === this.lastStep()) && Number.isFinite(v) && (this.best === null || v < this.best.valLoss)) {
            this.best = { step: p.step, valLoss: v };
            if (this.config.snapshots.best) {
              save(bestSnapshotDir(opts.out));
              windowStart = performance.now();
            }
          }
          // patience counts the interval's evaluations only, against the interval's best: a
          // session's last one off the interval would make a resumed run stop where an
          // uninterrupted one does not
          if (onInterval) {
            if (Number.isFinite(v) && (this.intervalBest === null || v < this.intervalBest)) {
              this.intervalBest = v;
              this.evalsSinceBest = 0;
            } else this.evalsSinceBest += 1;
          }
          // (every rank evaluated the same loss: they stop together, after this step's saves)
          const patience = ev.patience;
          if (patience !== undefined && patience !== null && this.evalsSinceBest >= patience && p.step < steps) {
            stoppedEarly = true;
            const left = this.config.stages.length - this.progression.stage;
            progress.note(
              `staged-lm: stopping early at step ${p.step}: no lower validation loss in ${this.evalsSinceBest} evaluation(s) on the interval` +
                (this.best === null ? '' : ` (the lowest: ${this.best.valLoss.toFixed(4)} at step ${this.best.step})`) +
                (this.skippedInARow > 0 && this.scaler !== null
                  ? `; the last ${this.skippedInARow} updates were skipped, their gradients overflowing at the loss scale ${fmtScale(this.scaler.state().scale)}: the model has not trained since`
                  : '') +
                (left > 0 ? `; ${left} growth(s) of the config not made` : ''),
            );
          }
        } else if (logNow) {
          flush();
        }
        const snapshots = this.config.snapshots.interval;
        if (snapshots > 0 && p.step % snapshots === 0) {
          flush(); // (as for a checkpoint: a diverged run stops before it saves)
          save(snapshotDir(opts.out, p.step));
          if (main && this.config.snapshots.keep > 0) pruneSnapshots(opts.out, this.config.snapshots.keep);
          windowStart = performance.now();
        }
        // steps every rank reaches together (data parallel: where they can agree on a decision)
        const pollNow = evalNow || logNow || p.step % STOP_POLL_STEPS === 0;
        const dueByTime = checkpointMinutes > 0 && performance.now() - checkpointSavedAt >= checkpointMinutes * 60_000;
        const checkpointNow =
          p.step < steps &&
          ((checkpointInterval > 0 && p.step % checkpointInterval === 0) ||
            (checkpointMinutes > 0 && pollNow && (this.dp === null ? dueByTime : this.dp.any(dueByTime))));
        if (checkpointNow) {
          // the losses since the last log are read first: a diverged run stops before its NaN
          // weights replace the last good checkpoint, and the records reach metrics.jsonl with it
          flush();
          save(checkpointDir);
          windowStart = performance.now();
        }
        // let signal handlers (Ctrl-C) run between steps
        await nextTurn();
        const stop = opts.signal?.aborted ?? false;
        // a stop request (Ctrl-C reaches every rank, but not at the same step) ends every rank at the
        // same step: agreed at log, eval and checkpoint steps, which read back from the device
        // anyway, and every STOP_POLL_STEPS steps in between. A stop during the last step is none.
        const agreeNow = pollNow || checkpointNow;
        if (stoppedEarly) break;
        if ((this.dp === null ? stop : agreeNow && this.dp.any(stop)) && p.step < steps) {
          interrupted = true;
          break;
        }
      }
      flush();
      profiling((w) => w.finish());
      if (!interrupted && !stoppedEarly) for (const line of this.ungrownNotes()) progress.note(line);
      if (interrupted) metrics.append([{ event: 'interrupt', step: this.progression.step }]);
      if (stoppedEarly) metrics.append([{ event: 'early-stop', step: this.progression.step, best: this.best }]);
      save(checkpointDir);
      this.dp?.barrier(); // no rank reports done before rank 0's checkpoint is written
    } finally {
      profileWindow?.discard(); // open only when the loop failed
      for (const p of pending) {
        p.loss.dispose();
        p.gradNorm?.dispose();
        p.skipped?.dispose();
      }
      progress.stop();
      this.releaseCapturedStep(); // its memory pool and gradients go back with the run
      this.elapsedSeconds = this.elapsedClock(); // (a later train() on this trainer goes on from it)
      this.elapsedClock = () => this.elapsedSeconds;
    }
    const p = this.progression;
    let report: TrainResult['report'] = null;
    try {
      if (main) report = writeReport(opts.out);
    } catch (e) {
      progress.note(`staged-lm: no report: ${(e as Error).message}`);
    }
    return {
      report,
      profile,
      step: p.step,
      tokens: p.tokens,
      flops: p.flops,
      finalLoss: lastLoss,
      valLoss: this.lastValLoss,
      valLossStep: this.lastValStep,
      interrupted,
      checkpoint: checkpointDir,
      seconds: (performance.now() - t0) / 1000,
      lossScale: this.scaler === null ? null : { scale: this.scaler.scale.item(), skippedUpdates: this.skippedUpdates },
      best: this.best === null ? null : { ...this.best, snapshot: bestSnapshotHolding(opts.out, this.best.step) },
      stoppedEarly,
    };
  }

  dispose(): void {
    this.releaseCapturedStep();
    this.dp?.dispose();
    this.model.dispose();
    this.optimizer.dispose();
    this.scaler?.dispose();
    this.restoreProcessSettings();
  }
}

/** A loss scale as people write it: 2^16 for a power of two, else four digits. */
function fmtScale(scale: number): string {
  const log2 = Math.log2(scale);
  return Number.isInteger(log2) ? `2^${log2}` : scale.toPrecision(4);
}

/** Where a run keeps the state of its lowest validation loss (config.snapshots.best). */
export function bestSnapshotDir(out: string): string {
  return join(out, 'snapshots', 'best');
}

/** The step of the state in a run's best snapshot, null where it holds none (or none readable). */
function bestSnapshotStep(out: string): number | null {
  try {
    return readCheckpointState(bestSnapshotDir(out)).step;
  } catch {
    return null;
  }
}

/** The best snapshot's directory where it holds the state of `step`, else null (a run resumed into another directory, say). */
function bestSnapshotHolding(out: string, step: number): string | null {
  return bestSnapshotStep(out) === step ? bestSnapshotDir(out) : null;
}

/**
 * Renames a best snapshot that is not the run's best (a killed session saved it after the
 * checkpoint the run resumed from) to `snapshots/abandoned-best-step-NNNNNN`, and says so; null
 * where there is none, or it is the run's.
 */
function strayBestSnapshot(out: string, best: { step: number } | null): string | null {
  const step = bestSnapshotStep(out);
  if (step === null || step === best?.step) return null;
  const aside = join(out, 'snapshots', `abandoned-best-step-${String(step).padStart(6, '0')}`);
  rmSync(aside, { recursive: true, force: true });
  renameSync(bestSnapshotDir(out), aside);
  return `${bestSnapshotDir(out)} held step ${step}, after the checkpoint this run resumed from (a session that ended without saving it): moved to ${aside}`;
}

/** Where a run keeps its snapshot of `step` (config.snapshots): step-NNNNNN, or step-NNNNNN-before-growth. */
export function snapshotDir(out: string, step: number, kind?: 'before-growth'): string {
  return join(out, 'snapshots', `step-${String(step).padStart(6, '0')}${kind === undefined ? '' : `-${kind}`}`);
}

/**
 * Deletes all but the newest `keep` interval snapshots (by step; before-growth ones stay). Each is
 * renamed out of the way first, so that a kill while deleting leaves no half snapshot under a
 * snapshot's name; what such a kill left is deleted here next time.
 */
function pruneSnapshots(out: string, keep: number): void {
  const dir = join(out, 'snapshots');
  removeAbandoned(dir, /^\.deleting-(\d+)-/, { ownPidEnded: true });
  const steps = readdirSync(dir)
    .map((name) => /^step-(\d+)$/.exec(name))
    .filter((m) => m !== null)
    .map((m) => ({ name: m[0], step: Number(m[1]) }))
    .sort((a, b) => b.step - a.step);
  for (const old of steps.slice(keep)) {
    const doomed = join(dir, `.deleting-${process.pid}-${old.name}`);
    renameSync(join(dir, old.name), doomed);
    rmSync(doomed, { recursive: true, force: true });
  }
}

/** A resumed run's new step count, refused for a run that ends with its schedule. */
function stepsOnResume(endAt: string | undefined, steps: number): number {
  if (endAt === 'schedule')
    throw new Error(
      `the run ends with its schedule (endAt 'schedule'): a step count (${steps}) does not apply on resuming (end it at a step with --end-at steps)`,
    );
  return steps;
}

/**
 * Eager steps before a step is captured (config.cudaGraph): libtorch sets up cuBLAS handles,
 * workspaces and autocast state lazily, which must not happen during a capture.
 */
const GRAPH_WARMUP_STEPS = 3;

/** The schedule a run config implies for its model. */
export function defaultSchedule(config: RunConfig, model: GPTConfig): Schedule {
  const peak = config.lr.peak === 'kaplan' ? kaplanPeakLr(kaplanParams(model)) : config.lr.peak;
  const total = config.lr.total ?? config.steps;
  const warmup = Math.min(config.lr.warmup ?? Math.min(500, Math.floor(config.steps / 10)), total);
  const { kind, decayFraction, decayShape } = config.lr;
  return parseSchedule({
    kind,
    peak,
    warmup,
    total,
    final: peak * config.lr.finalFraction,
    ...(kind === 'wsd' ? { decay: Math.round((decayFraction ?? 0.2) * (total - warmup)), decayShape: decayShape ?? '1-sqrt' } : {}),
  });
}

/** The validation curve of a from-scratch run to align a growth to (its metrics.jsonl, or its directory). */
function alignCurve(path: string, where = 'grow'): { file: string; curve: ValPoint[] } {
  const file = path.endsWith('.jsonl') ? path : join(path, 'metrics.jsonl');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${where}.alignTo: cannot read ${file}: ${(e as Error).message}`);
  }
  return { file, curve: parseValidationLog(text, { format: 'metrics' }).filter((v) => v.step !== undefined) };
}

export type GrowthEvent = {
  event: 'growth';
  step: number;
  op: GrowthOperator;
  stage: number;
  lossBefore: number;
  lossAfter: number;
  from: ModelSize;
  to: ModelSize;
  schedulePos: number;
  peakLr: number;
};

export type ModelSize = {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  mlpWidth: number;
  nonEmbeddingParams: number;
};

export function sizeOf(c: GPTConfig): ModelSize {
  return { nLayer: c.nLayer, nEmbd: c.nEmbd, nHead: c.nHead, mlpWidth: c.mlpWidth, nonEmbeddingParams: nonEmbeddingParams(c) };
}

/** Sizes worth printing next to a run. */
export function describeModel(c: GPTConfig): string {
  return `${c.nLayer} layers × ${c.nEmbd} (${c.nHead} heads), context ${c.contextLength}, vocab ${paddedVocab(c)}, ${(nonEmbeddingParams(c) / 1e6).toFixed(2)}M non-embedding params`;
}
