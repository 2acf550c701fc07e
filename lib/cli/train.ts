// `staged-lm train`: a run from a config file or a preset, or a resumed run.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { destroyDistributed, distributedEnv, initDistributed, isMainRank } from '../distributed/process-group';
import { readCheckpointState, recoverCheckpoint } from '../train/checkpoint';
import { parseRunConfig } from '../train/config';
import { runDirectoryOwner } from '../train/run-lock';
import { pastHorizon } from '../optim/schedule';
import { describeProfile } from '../train/profile-window';
import { FileTokens } from '../data/file-tokens';
import { describeModel, Trainer, TrainingDivergedError, type TrainData } from '../train/trainer';
import { device, fmtFlops, nonNegativeInt, output, positiveInt, shellWord } from './common';
import { checkpointDir } from './model-io';
import { applyOverrides, collectOverride, type Override } from './overrides';
import { handleStops } from './stop-signals';

interface TrainFlags {
  config?: string;
  preset?: string;
  initFrom?: string;
  data?: string;
  set?: Override[];
  steps?: number;
  endAt?: 'steps' | 'schedule';
  seed?: number;
  out?: string;
  device?: string;
  precision?: 'auto' | 'fp32' | 'bf16' | 'fp16';
  resume?: string;
  batchSize?: number;
  seqLen?: number;
  cudaGraph?: boolean;
  activationCheckpointing?: boolean;
  lossKernel?: 'aten' | 'fused';
  normKernel?: 'aten' | 'fused';
  tf32?: boolean;
  profile?: string;
  profileSteps?: number;
  profileAfter?: number;
  json?: boolean;
  progress: boolean;
  tensorboard?: boolean;
}

function readConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read config ${path}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`config ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(
      `config ${path} must hold a JSON object (a run config), not ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  return value as Record<string, unknown>;
}

/** The device a checkpoint's run trained on (to pick the collective backend before loading it). */
function resumedDevice(resume: string): string | undefined {
  const run = (readCheckpointState(checkpointDir(resume)).extra as { run?: { device?: string } }).run;
  return run?.device;
}

/** What a resumed run takes from its checkpoint and cannot change: the flags that would set it. */
/**
 * What `--set` may change on `--resume`: what a run logs, saves and when it stops early, none of
 * which changes its steps (evaluations and the batch feed the slope trigger and the data order).
 */
const BOOKKEEPING_ON_RESUME = ['logInterval', 'checkpointInterval', 'checkpointMinutes', 'snapshots', 'eval.patience'];

const FIXED_ON_RESUME: [keyof TrainFlags, string][] = [
  ['config', '--config'],
  ['preset', '--preset'],
  ['initFrom', '--init-from'],
  ['seed', '--seed'],
  ['batchSize', '--batch-size'],
  ['seqLen', '--seq-len'],
];

/**
 * A path in a run config file that is missing where it resolves (the working directory, as on the
 * command line) but present beside the config file: named, rather than failing to read it.
 */
function checkConfigPaths(file: string, cfg: Record<string, unknown>, given: { data?: string; initFrom?: string; set?: Override[] }): void {
  for (const key of ['data', 'initFrom'] as const) {
    // (a flag's path, or a --set of it, replaces the file's)
    if (given[key] !== undefined || (given.set ?? []).some((o) => o.path[0] === key)) continue;
    const v = cfg[key];
    if (typeof v !== 'string' || v === 'embedded' || isAbsolute(v) || existsSync(v)) continue;
    const beside = join(dirname(file), v);
    if (existsSync(beside))
      throw new Error(
        `${key} '${v}' (run config ${file}) is not in the working directory ${process.cwd()}: paths in a run config resolve against the working directory, as on the command line; it is at ${beside}: give that path, or train from ${dirname(resolve(file))}`,
      );
  }
}

/**
 * Refuses to start a run in a directory that holds one: its metrics would be cut and its
 * checkpoint replaced (a resumed run may write to its own directory).
 */
function checkFreshOut(out: string, resumedFrom?: string): void {
  checkNoOwner(out);
  if (resumedFrom !== undefined && resolve(out) === resolve(resumedFrom, '..')) return;
  // a save cut short between its two renames left its checkpoint under a temporary name: put back,
  // it is a run to resume (unseen, a fresh run's first save would delete it as a dead process's)
  recoverCheckpoint(join(out, 'checkpoint'));
  const held = ['metrics.jsonl', 'checkpoint'].filter((f) => existsSync(join(out, f)));
  if (held.length === 1 && held[0] === 'metrics.jsonl')
    throw new Error(
      `${out} holds the metrics.jsonl of a run that saved no checkpoint (it stopped before its first save: there is nothing to resume): remove ${join(out, 'metrics.jsonl')}, or choose another --out`,
    );
  if (held.length > 0)
    throw new Error(
      `${out} already holds a run (${held.join(', ')}): continue it with --resume ${shellWord(out)}, or choose another --out (or remove it)`,
    );
}

/** A run directory a live process trains in is named as such first (not as a log without a checkpoint, say). */
function checkNoOwner(out: string): void {
  const owner = runDirectoryOwner(out);
  if (owner !== null) throw new Error(owner);
}

/** The data's name and split sizes; a split read from disk as needed says so. */
function describeData(d: TrainData): string {
  const n = (t: TrainData['train']) => `${t.length.toLocaleString('en-US')}${t instanceof FileTokens ? ' (read from disk)' : ''}`;
  return `${d.name} (${n(d.train)} train / ${n(d.val)} validation tokens)`;
}

/** --loss-kernel / --norm-kernel as a run config's `kernels` (nothing when neither is given). */
function kernelFlags(f: TrainFlags): { kernels?: { loss?: 'aten' | 'fused'; norm?: 'aten' | 'fused' } } {
  if (f.lossKernel === undefined && f.normKernel === undefined) return {};
  return {
    kernels: {
      ...(f.lossKernel === undefined ? {} : { loss: f.lossKernel }),
      ...(f.normKernel === undefined ? {} : { norm: f.normKernel }),
    },
  };
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a model (a run config, a preset, or --resume a checkpoint); progress on stderr')
    .option('--config <file>', 'run config (JSON)')
    .option('--preset <name>', 'model preset, e.g. tiny, gpt2-124m, paper-base')
    .option(
      '--init-from <dir>',
      'start from the weights of a checkpoint or run directory, or a Hugging Face GPT-2 directory (fresh optimizer and schedule; run config initFrom)',
    )
    .option(
      '--data <source>',
      "training data: 'embedded', a directory of prepared shards, or a token file (with --resume: where the run's data is now, if it moved; the same tokens)",
    )
    .option(
      '--set <path=value>',
      'set one run-config field, e.g. --set lr.peak=6e-4 --set model.nLayer=8 (repeatable; the value is read as JSON, else as a string; applied after --config and --preset, before the other flags)',
      collectOverride,
    )
    .option('--steps <n>', "optimizer steps in total (default: the config's steps, else 1000)", positiveInt('--steps'))
    .addOption(
      new Option(
        '--end-at <where>',
        "end at step --steps, or when the last model's LR schedule ends: after a growth that resumes it earlier, later (run config endAt)",
      ).choices(['steps', 'schedule']),
    )
    .option('--seed <n>', 'seed of init, data order and dropout', nonNegativeInt('--seed'))
    .option('--batch-size <n>', 'sequences per micro-batch', positiveInt('--batch-size'))
    .option('--seq-len <n>', 'tokens per sequence', positiveInt('--seq-len'))
    .option('--device <device>', 'cpu, cuda or cuda:N (with --resume: another device for the run)', device)
    .addOption(
      new Option(
        '--precision <p>',
        "run config precision: auto (bf16 on GPUs with bf16 tensor cores, fp16 on older ones, fp32 on the CPU), fp32, bf16, or fp16 (float16 autocast with dynamic loss scaling); with --resume: another one, e.g. on a device without the run's",
      ).choices(['auto', 'fp32', 'bf16', 'fp16']),
    )
    .option('--out <dir>', 'run directory (metrics.jsonl, checkpoint/)')
    .option('--resume <dir>', 'continue from a checkpoint directory (or a run directory)')
    .option('--cuda-graph', 'replay the training step as a CUDA graph (CUDA, static shapes: small models gain most)')
    .option('--no-cuda-graph', 'eager steps (run config cudaGraph: false; with --resume, turns a graph run back to eager)')
    .option(
      '--activation-checkpointing',
      "recompute each block's forward in the backward: less memory, about a third more compute, the same gradients (run config activationCheckpointing)",
    )
    .option('--no-activation-checkpointing', 'keep every activation (run config activationCheckpointing: false; also with --resume)')
    .addOption(
      new Option(
        '--loss-kernel <kernel>',
        "the loss's kernel: libtorch's, or staged-lm's fused CUDA one (run config kernels.loss)",
      ).choices(['aten', 'fused']),
    )
    .addOption(
      new Option(
        '--norm-kernel <kernel>',
        "the residual add + LayerNorm's kernel: libtorch's, or staged-lm's fused CUDA one (run config kernels.norm)",
      ).choices(['aten', 'fused']),
    )
    .option('--tf32', 'let CUDA float32 matmuls use TF32 tensor cores (run config tf32; for precision fp32 runs on a GPU)')
    .option('--no-tf32', 'float32 matmuls in full float32 (run config tf32: false)')
    .option(
      '--profile <file>',
      "record a few steps with libtorch's profiler: a Chrome trace to <file>, its time by kind of work in the result",
    )
    .option('--profile-steps <n>', 'steps to record with --profile (default 3)', positiveInt('--profile-steps'))
    .option('--profile-after <n>', 'steps of this run before recording starts (default 5)', nonNegativeInt('--profile-after'))
    .option(
      '--tensorboard',
      'also write the metrics as TensorBoard event files in the run directory (watch with: tensorboard --logdir <out or its parent>)',
    )
    .option(
      '--no-progress',
      'no header line (model, device, data, run), progress bar or per-interval lines on stderr (growths, notes and warnings still print)',
    )
    .option('--json', 'print the result as one JSON object')
    .action(async (f: TrainFlags) => {
      if (f.profile === undefined && (f.profileSteps !== undefined || f.profileAfter !== undefined))
        throw new Error('--profile-steps and --profile-after go with --profile FILE');
      let trainer: Trainer;
      let out: string;
      // launched as one rank of a data-parallel job (staged-lm launch, torchrun): join it first
      if (distributedEnv() !== null) {
        let dev = f.device;
        if (dev === undefined && f.resume !== undefined) dev = resumedDevice(f.resume);
        if (dev === undefined && f.config !== undefined) dev = readConfig(f.config).device as string | undefined;
        initDistributed({ device: dev ?? 'cpu' });
      }
      if (f.resume !== undefined) {
        const fixed = FIXED_ON_RESUME.filter(([k]) => f[k] !== undefined).map(([, flag]) => flag);
        if (fixed.length > 0)
          throw new Error(
            `--resume continues the saved run as it was configured: ${fixed.join(', ')} cannot change it ` +
              '(with --resume: --steps, --end-at, --out, --data where the same data is now, --device, --precision, --cuda-graph, --activation-checkpointing, --loss-kernel, --norm-kernel, --tf32, --profile, and --set of its bookkeeping)',
          );
        for (const o of f.set ?? [])
          if (!BOOKKEEPING_ON_RESUME.some((p) => o.path.join('.') === p || o.path.join('.').startsWith(`${p}.`)))
            throw new Error(
              `--set ${o.text}: --resume continues the saved run as it was configured; --set may change only its bookkeeping there (${BOOKKEEPING_ON_RESUME.join(', ')})` +
                (o.path[0] === 'steps' ? ': the step count is --steps' : ''),
            );
        // (a run that trains there now and has saved nothing yet: named as such, not as no checkpoint)
        if (f.out === undefined) checkNoOwner(basename(resolve(f.resume)) === 'checkpoint' ? join(f.resume, '..') : f.resume);
        const dir = checkpointDir(f.resume);
        if (f.out !== undefined) checkFreshOut(f.out, dir);
        // in place only as a run's own checkpoint/ (its metrics beside it); a snapshot or a copy
        // starts a new run directory
        else if (existsSync(join(dir, 'config.json')) && basename(resolve(dir)) !== 'checkpoint')
          throw new Error(`${f.resume} is not a run's checkpoint/ (a snapshot, or a copy): resume it into a run directory with --out DIR`);
        trainer = Trainer.resume(dir, {
          steps: f.steps,
          endAt: f.endAt,
          ...(f.data === undefined ? {} : { data: f.data }),
          ...(f.device === undefined ? {} : { device: f.device }),
          ...(f.precision === undefined ? {} : { precision: f.precision }),
          ...(f.cudaGraph === undefined ? {} : { cudaGraph: f.cudaGraph }),
          ...(f.activationCheckpointing === undefined ? {} : { activationCheckpointing: f.activationCheckpointing }),
          ...kernelFlags(f),
          ...(f.tf32 === undefined ? {} : { tf32: f.tf32 }),
          ...(f.set === undefined ? {} : { edit: (run: Record<string, unknown>) => applyOverrides(run, f.set!) }),
        });
        out = f.out ?? join(dir, '..');
        const saved = (readCheckpointState(dir).extra as { run?: { device?: string; precision?: string } }).run ?? {};
        if (f.device !== undefined && saved.device !== undefined && saved.device !== trainer.config.device && isMainRank())
          process.stderr.write(
            `staged-lm: note: the run trained on ${saved.device} and goes on on ${trainer.device} (${trainer.precision}): from here its random streams (dropout) are this device's, not an uninterrupted run's\n`,
          );
        // ('auto' on the CPU was fp32; on a GPU, bf16 or fp16 by its kind: named as 'auto' there)
        const before =
          saved.precision === 'auto' && saved.device !== undefined && !saved.device.startsWith('cuda') ? 'fp32' : saved.precision;
        if (f.precision !== undefined && before !== undefined && before !== trainer.precision && isMainRank())
          process.stderr.write(
            `staged-lm: note: the run trained in precision ${before}${before === 'auto' ? ` on ${saved.device}` : ''} and goes on in ${trainer.precision}: its numerics change from here\n`,
          );
        const { schedule, progression } = trainer;
        if (f.steps !== undefined && isMainRank()) {
          // the steps this schedule governs (a growth still to come sets its own, and the trainer notes that one)
          const { last, unless } = trainer.scheduleSpan(f.steps);
          // (the next step is at position schedulePos + 1: learningRate's numbering)
          const first = progression.schedulePos + 1;
          const past = pastHorizon(schedule, first, first + (last - progression.step) - 1);
          if (past.rewarming > 0)
            process.stderr.write(
              `staged-lm: note: the re-warmup after the growth (${schedule.restart!.rewarmup} steps from position ${schedule.restart!.at}) runs past the schedule's horizon (lr.total ${schedule.total}): ` +
                `${past.rewarming} of these steps still rise towards its final rate ${schedule.final.toPrecision(4)}, and the rate never decays${unless}\n`,
            );
          if (past.atFinal > 0)
            process.stderr.write(
              `staged-lm: note: the learning-rate schedule reaches its end (lr.total ${schedule.total}) before step ${last}: ` +
                `the last ${past.atFinal} steps ${last < f.steps ? 'before the growth ' : ''}train at its final rate ${schedule.final.toPrecision(4)}${unless}\n`,
            );
        }
      } else {
        if (f.config === undefined && f.preset === undefined && f.initFrom === undefined && f.set === undefined && f.data === undefined)
          throw new Error('train needs --config FILE, --preset NAME, --init-from DIR, --set PATH=VALUE, --data SOURCE or --resume DIR');
        if (f.initFrom !== undefined && f.preset !== undefined)
          throw new Error('--init-from takes the model from its checkpoint: --preset does not apply');
        const cfg: Record<string, unknown> = f.config !== undefined ? readConfig(f.config) : {};
        if (f.config !== undefined) checkConfigPaths(f.config, cfg, f);
        if (f.preset !== undefined) cfg.model = f.preset;
        if (f.initFrom !== undefined) cfg.initFrom = f.initFrom;
        if (f.set !== undefined) {
          // a preset named by its string takes field overrides as {preset, ...fields}
          if (typeof cfg.model === 'string' && f.set.some((o) => o.path[0] === 'model' && o.path.length > 1))
            cfg.model = { preset: cfg.model };
          applyOverrides(cfg, f.set);
        }
        if (f.data !== undefined) cfg.data = f.data;
        if (f.steps !== undefined) cfg.steps = f.steps;
        if (f.endAt !== undefined) cfg.endAt = f.endAt;
        if (f.seed !== undefined) cfg.seed = f.seed;
        if (f.device !== undefined) cfg.device = f.device;
        if (f.precision !== undefined) cfg.precision = f.precision;
        if (f.batchSize !== undefined) cfg.batchSize = f.batchSize;
        if (f.seqLen !== undefined) cfg.seqLen = f.seqLen;
        if (f.cudaGraph !== undefined) cfg.cudaGraph = f.cudaGraph;
        if (f.activationCheckpointing !== undefined) cfg.activationCheckpointing = f.activationCheckpointing;
        const { kernels } = kernelFlags(f);
        if (kernels !== undefined) cfg.kernels = { ...(cfg.kernels as object | undefined), ...kernels };
        if (f.tf32 !== undefined) cfg.tf32 = f.tf32;
        if (cfg.steps === undefined) cfg.steps = 1000;
        out = f.out ?? join('runs', new Date().toISOString().replace(/[:.]/g, '-'));
        checkFreshOut(out);
        const label =
          (f.config !== undefined ? `run config ${f.config}` : 'run config') + (f.set !== undefined ? ' with its --set fields' : '');
        trainer = Trainer.create(parseRunConfig(cfg, label));
        // a fine-tune at the from-scratch rate can undo much of what the weights learned
        const lr = cfg.lr as { peak?: unknown } | undefined;
        if (cfg.initFrom !== undefined && lr?.peak === undefined && isMainRank())
          process.stderr.write(
            `staged-lm: note: lr.peak is 'kaplan' (${trainer.schedule.peak.toPrecision(3)}), a from-scratch rate for this size; fine-tuning usually takes 10–100× less (--set lr.peak=…)\n`,
          );
      }
      if (f.progress && isMainRank())
        process.stderr.write(
          `staged-lm: ${describeModel(trainer.modelConfig)} on ${trainer.device} (${trainer.precision}), data ${describeData(trainer.data)}, run ${out}\n`,
        );
      // Ctrl-C, and SIGTERM (how schedulers and torchrun preempt a job): a checkpoint at the next
      // step, exit 130 / 143; a second signal (not the same one delivered twice) quits at once
      const controller = new AbortController();
      let stopSignal: NodeJS.Signals = 'SIGINT';
      const removeStops = handleStops(
        (signal) => {
          stopSignal = signal;
          process.stderr.write(
            `\nstaged-lm: ${signal === 'SIGINT' ? 'interrupted' : 'asked to stop (SIGTERM)'} — saving a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'a second signal'} again to quit at once)\n`,
          );
          controller.abort();
        },
        (signal) => {
          process.stderr.write(
            `\nstaged-lm: quit at once; the run goes on from its last saved checkpoint, if any: ${join(out, 'checkpoint')}\n`,
          );
          process.exit(signal === 'SIGINT' ? 130 : 143);
        },
      );
      try {
        const profile = f.profile === undefined ? undefined : { trace: f.profile, steps: f.profileSteps, after: f.profileAfter };
        const r = await trainer.train({
          out,
          progress: f.progress,
          notes: true,
          signal: controller.signal,
          profile,
          tensorboard: f.tensorboard === true,
        });
        if (isMainRank())
          output(f.json, { ...r, out }, () =>
            [
              `${r.interrupted ? 'interrupted' : r.stoppedEarly ? 'stopped early' : 'done'} at step ${r.step}: loss ${r.finalLoss.toFixed(4)}` +
                (r.valLoss === null
                  ? ''
                  : `, val loss ${r.valLoss.toFixed(4)}${r.valLossStep !== null && r.valLossStep !== r.step ? ` (at step ${r.valLossStep})` : ''}`),
              `${r.tokens} tokens, ${fmtFlops(r.flops)}, ${r.seconds.toFixed(1)} s`,
              `checkpoint: ${r.checkpoint}`,
              ...(r.best === null
                ? []
                : r.best.snapshot !== null
                  ? [`best: ${r.best.snapshot} (step ${r.best.step}, val loss ${r.best.valLoss.toFixed(4)})`]
                  : trainer.config.snapshots.best
                    ? [
                        `best: step ${r.best.step}, val loss ${r.best.valLoss.toFixed(4)} (its snapshot is not in this run directory: the run was resumed from elsewhere)`,
                      ]
                    : []),
              ...(r.lossScale === null
                ? []
                : [
                    `loss scale: ${Number(r.lossScale.scale.toPrecision(4))}, ${r.lossScale.skippedUpdates} update(s) skipped for overflowing gradients`,
                  ]),
              `metrics: ${join(out, 'metrics.jsonl')}`,
              ...(r.profile === null ? [] : [f.progress ? `profile: ${r.profile.trace}` : describeProfile(r.profile)]),
            ].join('\n'),
          );
        if (r.interrupted) process.exitCode = stopSignal === 'SIGINT' ? 130 : 143;
      } catch (e) {
        if (e instanceof TrainingDivergedError) process.exitCode = 3;
        throw e;
      } finally {
        removeStops();
        trainer.dispose();
        destroyDistributed();
      }
    });
}
