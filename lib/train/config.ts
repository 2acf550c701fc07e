// The run configuration of `staged-lm train`, validated by zod: errors name the field.
import { z } from 'zod';
import { AdamWOptionsSchema } from '../optim/adamw';
import { LossScaleOptionsSchema } from '../optim/grad-scaler';
import { GPTConfigSchema, parseGPTConfig, presetConfig, PRESET_NAMES, type GPTConfig, type GPTConfigInput } from '../nn/config';
import { formatIssues } from '../validate';

const ModelSpec = z.union([
  z.string(),
  z.object({ preset: z.string() }).passthrough(),
  // a full config object (GPTConfigSchema fields)
  z.record(z.string(), z.unknown()),
]);

const GROWTH_OPS = ['width', 'depth', 'both', 'mlp', 'heads'] as const;

/** When a stage ends (counters are cumulative over all stages), and how it grows into the next. */
export const StageSchema = z
  .object({
    until: z
      .object({
        steps: z.number().int().positive().optional(),
        tokens: z.number().positive().optional(),
        flops: z.number().positive().optional(),
        /** The slope trigger of spec/schedule.md on the validation curve (needs eval.interval > 0). */
        slope: z.object({ threshold: z.number().negative().optional() }).strict().optional(),
      })
      .strict()
      .refine((u) => Object.values(u).filter((v) => v !== undefined).length === 1, {
        message: 'give exactly one of steps, tokens, flops, slope',
      }),
    grow: z
      .object({
        op: z.enum(GROWTH_OPS),
        factor: z.number().int().min(2).optional(),
        /** Dropout of the grown stage (attention and residual), to break the symmetry of width copies. */
        dropout: z.number().min(0).lt(1).optional(),
        noiseStd: z.number().nonnegative().optional(),
        /**
         * Zero-sum noise across copies (symmetry broken, function changed at second order): on the
         * embedding copies for width growth, on the fan-out weight copies for mlp and heads growth.
         */
        splitNoiseStd: z.number().nonnegative().optional(),
        /** Width growth: AdamW moments of the off-diagonal blocks, zero (reference) or m/k, v/k² like the copies. */
        offDiagonalMoments: z.enum(['zero', 'scaled']).optional(),
        /** Width growth of a model with an untied LM head: 'duplicate' grows it as [U ∣ U] with LNf halved (refused otherwise). */
        untiedHead: z.enum(['refuse', 'duplicate']).optional(),
        /**
         * Schedule of the grown stage (spec/growth.md): target peak (default: the run's lr.peak, so
         * a fixed peak stays fixed and 'kaplan' gives lr(N) of the grown size), c_op, re-warmup.
         */
        peakLr: z.union([z.number().positive(), z.literal('kaplan')]).optional(),
        cOp: z.number().positive().optional(),
        /**
         * A from-scratch run of the grown size (its metrics.jsonl or run directory): the grown state
         * resumes the schedule at the step where that run's validation loss first reached this run's
         * last one — the spec's S_target read off a measured curve instead of S_pre / c_op.
         */
        alignTo: z.string().min(1).optional(),
        rewarmup: z.number().int().nonnegative().optional(),
      })
      .strict()
      .refine((g) => g.alignTo === undefined || g.cOp === undefined, {
        message: 'give cOp or alignTo, not both (both place the grown state on its schedule)',
        path: ['alignTo'],
      })
      .superRefine((g, ctx) => {
        if (g.op === 'both' && g.factor !== undefined)
          ctx.addIssue({
            code: 'custom',
            message:
              'factor applies to width, depth, mlp and heads: both grows width and depth by 2 each (c_op 2.455); use two stages for other factors',
            path: ['factor'],
          });
        // options of the width operator (split noise: of the copying operators) are refused for the others rather than dropped
        if (g.op === 'width' || g.op === 'both') return;
        for (const key of ['dropout', 'noiseStd', 'offDiagonalMoments', 'untiedHead'] as const)
          if (g[key] !== undefined)
            ctx.addIssue({ code: 'custom', message: `${key} applies to width and both growth, not ${g.op}`, path: [key] });
        if (g.op === 'depth' && g.splitNoiseStd !== undefined)
          ctx.addIssue({
            code: 'custom',
            message: 'splitNoiseStd applies to width, both, mlp and heads growth, not depth',
            path: ['splitNoiseStd'],
          });
      }),
  })
  .strict()
  .refine(
    (st) => st.until.slope === undefined || st.until.slope.threshold !== undefined || ['width', 'depth', 'both'].includes(st.grow.op),
    {
      message: 'the slope trigger has reference thresholds for width, depth and both only: give until.slope.threshold',
      path: ['until', 'slope', 'threshold'],
    },
  );
export type StageConfig = z.infer<typeof StageSchema>;

/**
 * The growth-operator options a stage's `grow` entry stands for. `runPeak` is the run's lr.peak:
 * the grown schedule's peak unless the entry gives peakLr (a fixed number stays fixed across
 * growths; 'kaplan' is lr(N) of each size).
 */
export function growthOptions(g: StageConfig['grow'], runPeak: number | 'kaplan' = 'kaplan'): Record<string, unknown> {
  const schedule =
    g.op === 'mlp' || g.op === 'heads' ? (g.cOp === undefined ? false : { cOp: g.cOp, ...sched(g, runPeak) }) : sched(g, runPeak);
  const width = {
    ...(g.factor !== undefined ? { factor: g.factor } : {}),
    ...(g.dropout !== undefined ? { dropout: { attention: g.dropout, residual: g.dropout } } : {}),
    ...(g.noiseStd !== undefined ? { noiseStd: g.noiseStd } : {}),
    ...(g.splitNoiseStd !== undefined ? { splitNoiseStd: g.splitNoiseStd } : {}),
    ...(g.offDiagonalMoments !== undefined ? { offDiagonalMoments: g.offDiagonalMoments } : {}),
    ...(g.untiedHead !== undefined ? { untiedHead: g.untiedHead } : {}),
  };
  switch (g.op) {
    case 'width':
      return { ...width, schedule };
    case 'depth':
      return { ...(g.factor !== undefined ? { factor: g.factor } : {}), schedule };
    case 'both':
      return { width, schedule };
    default:
      return { factor: g.factor ?? 2, ...(g.splitNoiseStd !== undefined ? { splitNoiseStd: g.splitNoiseStd } : {}), schedule };
  }
}

function sched(g: StageConfig['grow'], runPeak: number | 'kaplan'): Record<string, unknown> {
  return {
    peak: g.peakLr ?? runPeak,
    ...(g.cOp !== undefined ? { cOp: g.cOp } : {}),
    ...(g.rewarmup !== undefined ? { rewarmup: g.rewarmup } : {}),
  };
}

export const RunConfigSchema = z
  .object({
    /** A preset name, {preset, ...overrides}, or a full model config (default 'tiny'; none with initFrom). */
    model: ModelSpec.optional(),
    /**
     * Start from the weights of a checkpoint instead of a random init: a staged-lm checkpoint or run
     * directory, or a Hugging Face GPT-2 directory (config.json + safetensors). The model is that
     * checkpoint's (`model` may set its dropout, nothing else); the optimizer, step and schedule
     * start afresh (fine-tuning, or staged training from a pretrained small model).
     */
    initFrom: z.string().min(1).optional(),
    /** 'embedded' (the corpus that ships with the package), a directory of shards, or a token file. */
    data: z.string().default('embedded'),
    /** Sequences per micro-batch. */
    batchSize: z.number().int().positive().default(8),
    /** Tokens per sequence (default: the model's context length). */
    seqLen: z.number().int().positive().optional(),
    /** Micro-batches per optimizer step (gradient accumulation). */
    gradAccum: z.number().int().positive().default(1),
    /** Optimizer steps to train (in total, counting steps before a resume). */
    steps: z.number().int().positive(),
    /**
     * Where the run ends. 'steps': at step `steps`. 'schedule': when the current model's
     * learning-rate schedule reaches its horizon (lr.total, default `steps`), so the last model
     * trains through its whole decay, as in the paper: a growth resumes the target schedule at
     * R < S_pre (spec/growth.md), which moves the end S_pre − R steps later. Without stages, or with
     * growths that keep the schedule, both end at the same step when lr.total is `steps`.
     */
    endAt: z.enum(['steps', 'schedule']).default('steps'),
    seed: z.number().int().nonnegative().default(1337),
    device: z
      .string()
      .regex(/^(cpu|cuda(:\d+)?)$/, "expected 'cpu', 'cuda' or 'cuda:N'")
      .default('cpu'),
    /**
     * 'auto': bf16 autocast with fp32 master weights on GPUs with bf16 tensor cores (compute
     * capability 8.0+), fp16 on older ones, fp32 on the CPU (autoPrecision). 'fp16': float16
     * autocast with fp32 master weights and dynamic loss scaling (lossScale). bf16 and fp16 need CUDA.
     */
    precision: z.enum(['auto', 'fp32', 'bf16', 'fp16']).default('auto'),
    /**
     * Dynamic loss scaling, as torch.amp.GradScaler: the loss is multiplied by a scale before the
     * backward, the update divides it out and is skipped where the gradients overflowed (inf or
     * NaN); the scale halves after an overflow and doubles after growthInterval good steps.
     * `enabled` defaults to precision 'fp16'; under another precision it skips updates whose
     * gradients are not finite (with a power-of-two scale the updates made are the unscaled ones).
     */
    lossScale: LossScaleOptionsSchema.extend({ enabled: z.boolean().optional() }).strict().prefault({}),
    /**
     * Let CUDA float32 matmuls use TF32 tensor cores (setTF32) for the run's lifetime: for
     * precision 'fp32' on a GPU (bf16 autocast's matmuls are not float32; no effect on the CPU).
     * Absent: the process-wide setting (off unless changed, as in PyTorch).
     */
    tf32: z.boolean().optional(),
    optimizer: AdamWOptionsSchema.prefault({}),
    lr: z
      .object({
        /** Peak LR, or 'kaplan' for lr(N) = 0.003239 − 0.0001395·log10(N). */
        peak: z.union([z.number().positive(), z.literal('kaplan')]).default('kaplan'),
        /** See ScheduleSchema: 'wsd' holds the peak until its decay (the last decayFraction of the steps after warmup). */
        kind: z.enum(['linear', 'cosine', 'constant', 'wsd']).default('cosine'),
        /** Warmup steps (default: 10% of the steps, at most 500). */
        warmup: z.number().int().nonnegative().optional(),
        /** Decay horizon (default: steps). */
        total: z.number().int().positive().optional(),
        /** Final LR as a fraction of the peak. */
        finalFraction: z.number().min(0).max(1).default(0.1),
        /** wsd: the decay's share of the steps after warmup (default 0.2; Hägele et al.: 20% matches cosine). */
        decayFraction: z.number().gt(0).max(1).optional(),
        /** wsd: the decay's shape, 1 − p or 1 − √p (default) over its progress p. */
        decayShape: z.enum(['linear', '1-sqrt']).optional(),
        /**
         * Width-scaled learning rates (μP's Adam rule): the blocks' weight matrices and the final
         * LayerNorm train at peak · hiddenWidthBase / nEmbd, everything else at the peak. Under it a
         * width-grown model's copies move the function as the small model's weights did (without
         * it, both copies take a full Adam step and the function moves twice as far). See lr-scales.ts.
         */
        hiddenWidthBase: z.number().int().positive().optional(),
      })
      .strict()
      .refine((l) => l.kind === 'wsd' || (l.decayFraction === undefined && l.decayShape === undefined), {
        message: "decayFraction and decayShape belong to kind 'wsd'",
        path: ['kind'],
      })
      .prefault({}),
    /** Clip gradients to this global L2 norm (null: no clipping). */
    clipGradNorm: z.number().positive().nullable().default(1),
    /**
     * Capture the training step as a CUDA graph (after a few eager steps, again after each growth)
     * and replay it: one launch per step instead of hundreds, for launch-bound (small) models.
     * CUDA, one process, gradAccum 1, fused AdamW with bias correction.
     */
    cudaGraph: z.boolean().default(false),
    /**
     * Activation checkpointing: the forward keeps only each block's input and the backward runs
     * each block's forward again just before its backward (GPT.lossBackward) — about a third more
     * compute for the memory of the blocks' activations (a larger batch, a deeper model). Same
     * gradients, dropout masks included. Not with cudaGraph.
     */
    activationCheckpointing: z.boolean().default(false),
    /**
     * Which implementation runs the ops staged-lm has its own CUDA kernels for: libtorch's ('aten')
     * or the fused ones ('fused': CUDA, a build with them). Absent: the process-wide choice
     * (STAGED_LM_LOSS_KERNEL / STAGED_LM_NORM_KERNEL; libtorch's when unset). See lib/kernels.ts.
     */
    kernels: z
      .object({ loss: z.enum(['aten', 'fused']).optional(), norm: z.enum(['aten', 'fused']).optional() })
      .strict()
      .prefault({}),
    eval: z
      .object({
        interval: z.number().int().nonnegative().default(50),
        batches: z.number().int().positive().default(8),
        /**
         * Early stopping: end the run after this many evaluations on the interval in a row without a
         * new lowest validation loss (snapshots.best keeps that state; the count starts afresh at
         * each growth). Absent or null: never.
         */
        patience: z.number().int().positive().nullable().optional(),
      })
      .strict()
      .prefault({}),
    /** Save a checkpoint every N steps (0: only at the end and on interrupt). */
    checkpointInterval: z.number().int().nonnegative().default(0),
    /**
     * Also save one when this many minutes have passed since the last (default 30; 0: never), so
     * that a crash, an OOM kill or a lost machine costs at most that much of a long run. Checked
     * every few steps (at log and eval steps, and every 10); the steps it lands on do not change
     * what the run computes.
     */
    checkpointMinutes: z.number().nonnegative().default(30),
    /**
     * Copies of the training state kept beside the latest checkpoint, in `<out>/snapshots/step-NNNNNN/`:
     * each a full checkpoint (sample, eval, grow and initFrom read it; `--resume` it with `--out`).
     */
    snapshots: z
      .object({
        /** Every N steps (0: none). */
        interval: z.number().int().nonnegative().default(0),
        /** Keep only the newest N of the interval's snapshots (0: all); before-growth ones are all kept. */
        keep: z.number().int().nonnegative().default(0),
        /** Right before each growth (`step-NNNNNN-before-growth`): the state to grow again another way (`staged-lm grow`). */
        beforeGrowth: z.boolean().default(false),
        /**
         * `snapshots/best`: the state at the lowest validation loss so far (replaced by each evaluation
         * on eval.interval, or at the run's last step, that improves on it; needs eval.interval > 0)
         * — the model to keep when a run, a fine-tune say, starts to overfit.
         */
        best: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /** Read losses back from the device (a host sync) every N steps. */
    logInterval: z.number().int().positive().default(10),
    /**
     * Staged training: each entry ends one stage and grows into the next; the last stage runs to
     * `steps`. The model above is the first stage's.
     */
    stages: z.array(StageSchema).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    // counters are cumulative over stages: a threshold below an earlier stage's of the same kind
    // would end its stage at once
    const last: Record<string, { v: number; at: number }> = {};
    c.stages.forEach((st, i) => {
      for (const kind of ['steps', 'tokens', 'flops'] as const) {
        const v = st.until[kind];
        if (v === undefined) continue;
        const before = last[kind];
        if (before !== undefined && v <= before.v)
          ctx.addIssue({
            code: 'custom',
            message: `stages[${i}] ends at ${kind} ${v}, not after stages[${before.at}]'s ${before.v} (the counters run over the whole run)`,
            path: ['stages', i, 'until', kind],
          });
        last[kind] = { v, at: i };
      }
    });
  })
  .refine((c) => c.initFrom === undefined || c.model === undefined || isDropoutOnly(c.model), {
    message: 'initFrom takes the model from its checkpoint: leave model out, or give only its dropout ({"dropout": {…}})',
    path: ['model'],
  })
  .refine((c) => !c.cudaGraph || c.device.startsWith('cuda'), { message: 'cudaGraph needs a CUDA device', path: ['cudaGraph'] })
  .refine((c) => c.eval.patience === undefined || c.eval.patience === null || c.eval.interval > 0, {
    message: 'early stopping counts evaluations: it needs eval.interval > 0',
    path: ['eval', 'patience'],
  })
  .refine((c) => c.eval.interval > 0 || c.stages.every((st) => st.until.slope === undefined), {
    message: 'a stage that ends on the slope trigger reads the validation curve: it needs eval.interval > 0',
    path: ['eval', 'interval'],
  })
  .refine((c) => !c.snapshots.best || c.eval.interval > 0, {
    message: 'the best snapshot is chosen at evaluations: it needs eval.interval > 0',
    path: ['snapshots', 'best'],
  })
  .refine((c) => !(c.cudaGraph && c.activationCheckpointing), {
    message: 'cudaGraph captures one plain forward and backward: it does not take activationCheckpointing',
    path: ['activationCheckpointing'],
  })
  .refine((c) => !(c.cudaGraph && lossScaling(c)), {
    message: 'cudaGraph does not capture loss scaling (precision fp16, lossScale.enabled): use precision bf16, or run without cudaGraph',
    path: ['cudaGraph'],
  })
  .refine((c) => !c.cudaGraph || c.gradAccum === 1, {
    message: 'cudaGraph captures one forward and backward per step: it needs gradAccum 1',
    path: ['cudaGraph'],
  })
  .refine((c) => !c.cudaGraph || (c.optimizer.fused && c.optimizer.biasCorrection), {
    message: 'cudaGraph needs the fused AdamW with bias correction (optimizer.fused and optimizer.biasCorrection true)',
    path: ['cudaGraph'],
  })
  .refine((c) => c.kernels.loss !== 'fused' || c.device.startsWith('cuda'), {
    message: "'fused' runs on CUDA only",
    path: ['kernels', 'loss'],
  })
  .refine((c) => c.kernels.norm !== 'fused' || c.device.startsWith('cuda'), {
    message: "'fused' runs on CUDA only",
    path: ['kernels', 'norm'],
  })
  .refine((c) => c.lr.hiddenWidthBase === undefined || c.stages.every((st) => st.grow.op !== 'mlp' && st.grow.op !== 'heads'), {
    // the rule follows nEmbd; those operators widen the MLP or the heads alone, whose copies it
    // would not scale
    message: 'lr.hiddenWidthBase scales by nEmbd: it does not cover the mlp and heads operators (use width, depth or both)',
    path: ['lr', 'hiddenWidthBase'],
  });

/** Whether a run scales its loss (lossScale.enabled, by default on for precision fp16). */
export function lossScaling(c: { precision: string; lossScale: { enabled?: boolean | undefined } }): boolean {
  return c.lossScale.enabled ?? c.precision === 'fp16';
}

/** A model spec that only sets dropout (what a run from initFrom may change about its model). */
function isDropoutOnly(spec: unknown): spec is { dropout: Record<string, unknown> } {
  return typeof spec === 'object' && spec !== null && Object.keys(spec).length === 1 && 'dropout' in spec;
}

/** The model config of a run from initFrom: the checkpoint's, with the run's dropout where it gives one. */
export function initModel(checkpoint: GPTConfig, spec: RunConfig['model']): GPTConfig {
  if (spec === undefined) return checkpoint;
  if (!isDropoutOnly(spec)) throw new Error('model: initFrom takes the model from its checkpoint: give only its dropout');
  // (errors name the run config's field: model.dropout.residual)
  return parseGPTConfig({ ...checkpoint, dropout: { ...checkpoint.dropout, ...spec.dropout } }, 'model');
}

export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

export function parseRunConfig(input: unknown, source = 'run config'): RunConfig {
  const r = RunConfigSchema.safeParse(input);
  if (!r.success) {
    throw new Error(`invalid ${source}: ${formatIssues(r.error)}`);
  }
  return r.data;
}

/** The model config a run config names (the `tiny` preset when it names none). */
export function resolveModel(spec: RunConfig['model']): GPTConfig {
  if (spec === undefined) return presetConfig('tiny');
  if (typeof spec === 'string') return presetConfig(spec);
  if ('preset' in spec && typeof spec.preset === 'string') {
    const { preset, ...overrides } = spec;
    return presetConfig(preset, overrides as Partial<GPTConfigInput>, 'model');
  }
  const full = GPTConfigSchema.safeParse(spec);
  if (!full.success)
    throw new Error(`model: not a preset (${PRESET_NAMES.join(', ')}) nor a valid config: ${formatIssues(full.error, '(model)', 'model')}`);
  return parseGPTConfig(full.data, 'model');
}
