// `staged-lm grow`: a grown checkpoint from a checkpoint — parameters, AdamW state, schedule and
// counters transformed by a growth operator; `train --resume OUT` continues the run at the new size.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { referenceCOpNote } from '../growth';
import { symmetryNote } from '../growth/symmetry';
import { rewarmupPastHorizonNote } from '../optim/schedule';
import { growthOptions } from '../train/config';
import { Trainer, type ModelSize } from '../train/trainer';
import { nonNegativeInt, nonNegativeNumber, output, positiveInt, positiveNumber, probability, shellWord } from './common';
import { checkpointDir } from './model-io';

interface GrowFlags {
  checkpoint: string;
  op: 'width' | 'depth' | 'both' | 'mlp' | 'heads';
  out: string;
  factor?: number;
  dropout?: number;
  noise?: number;
  splitNoise?: number;
  rewarmup?: number;
  cOp?: number;
  peakLr?: number | 'kaplan';
  untiedHead?: 'duplicate';
  json?: boolean;
}

const OPS = ['width', 'depth', 'both', 'mlp', 'heads'];

function peakLr(v: string): number | 'kaplan' {
  if (v === 'kaplan') return v;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`--peak-lr must be a positive number or 'kaplan' (got '${v}')`);
  return n;
}

function op(v: string): string {
  if (!OPS.includes(v)) throw new InvalidArgumentError(`--op must be one of ${OPS.join(', ')} (got '${v}')`);
  return v;
}

/** Layers × width, with the heads and the MLP width (what mlp and heads growth change). */
function describeSize(m: ModelSize): string {
  return `${m.nLayer}×${m.nEmbd} (${m.nHead} heads, MLP ${m.mlpWidth})`;
}

export function registerGrow(program: Command): void {
  program
    .command('grow')
    .description('grow a checkpoint (width, depth, both; or mlp / heads alone) into a new checkpoint with its training state')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory (or run directory)')
    .requiredOption('--op <op>', 'width | depth | both | mlp | heads', op)
    .requiredOption(
      '--out <dir>',
      'run directory for the grown checkpoint (it goes to DIR/checkpoint; a DIR named checkpoint is that directory itself)',
    )
    .option('--factor <k>', 'growth factor (width/depth/mlp/heads; both grows each by 2)', positiveInt('--factor'))
    .option(
      '--dropout <p>',
      'dropout of the grown stage (attention and residual): breaks the symmetry of width copies',
      probability('--dropout'),
    )
    .option('--noise <std>', 'std of noise on the new width weights (trades exactness for symmetry breaking)', nonNegativeNumber('--noise'))
    .option(
      '--split-noise <std>',
      'std of zero-sum noise across the copies (width: embeddings; mlp/heads: fan-out weights): breaks their symmetry, moves the function at second order',
      nonNegativeNumber('--split-noise'),
    )
    .option('--rewarmup <steps>', 're-warmup steps after growth (default: the reference 150; 0: none)', nonNegativeInt('--rewarmup'))
    .option(
      '--c-op <c>',
      'step-ratio constant: the grown model continues its schedule at S_pre / c (default: the reference constant of ×2 width 1.776, depth 1.412, both 2.455; mlp and heads keep the schedule unless given)',
      positiveNumber('--c-op'),
    )
    .option(
      '--peak-lr <lr>',
      "peak LR of the grown model's schedule: a number, or 'kaplan' for lr(N) of the grown size (default: the run's lr.peak)",
      peakLr,
    )
    .addOption(
      new Option('--untied-head <how>', "width growth of an untied LM head: 'duplicate' grows it as [U | U] with LNf halved").choices([
        'duplicate',
      ]),
    )
    .option('--json', 'print one JSON object')
    .action((f: GrowFlags) => {
      // flags the operator has no use for are refused rather than dropped
      const unused = [
        ['--dropout', f.dropout, ['width', 'both']],
        ['--noise', f.noise, ['width', 'both']],
        ['--split-noise', f.splitNoise, ['width', 'both', 'mlp', 'heads']],
        // mlp and heads keep the schedule, unless given a c_op
        ['--rewarmup', f.rewarmup, f.cOp === undefined ? ['width', 'depth', 'both'] : OPS],
        ['--peak-lr', f.peakLr, f.cOp === undefined ? ['width', 'depth', 'both'] : OPS],
        ['--factor', f.factor, ['width', 'depth', 'mlp', 'heads']],
        ['--untied-head', f.untiedHead, ['width', 'both']],
      ] as const;
      for (const [flag, value, ops] of unused)
        if (value !== undefined && !(ops as readonly string[]).includes(f.op))
          throw new Error(`${flag} applies to --op ${ops.join(' / ')}, not ${f.op}`);
      const dir = checkpointDir(f.checkpoint);
      // --out is a run directory, or the checkpoint directory itself when it is named so
      const target = basename(resolve(f.out)) === 'checkpoint' ? f.out : join(f.out, 'checkpoint');
      if (existsSync(target))
        throw new Error(
          resolve(target) === resolve(dir)
            ? `--out ${f.out} is the checkpoint being grown: choose another directory for the grown one`
            : `${target} already holds a checkpoint: choose another --out`,
        );
      // a resumed run appends to its directory's metrics.jsonl: another run's would be taken for its past
      const log = join(target, '..', 'metrics.jsonl');
      if (existsSync(log)) throw new Error(`${log} belongs to another run: choose another --out for the grown checkpoint`);
      const trainer = Trainer.resume(dir);
      try {
        if ((f.op === 'mlp' || f.op === 'heads') && trainer.config.lr.hiddenWidthBase !== undefined)
          throw new Error(
            `this run's lr.hiddenWidthBase scales by nEmbd: it does not cover the ${f.op} operator (grow with width, depth or both)`,
          );
        if ((f.op === 'width' || f.op === 'both') && !trainer.modelConfig.tiedEmbeddings && f.untiedHead === undefined)
          throw new Error("this model's LM head is untied: width growth needs --untied-head duplicate ([U | U] with LNf halved)");
        // the operator's options as a run config's stage would give them (one mapping for both)
        const opts = growthOptions(
          {
            op: f.op,
            ...(f.factor !== undefined ? { factor: f.factor } : {}),
            ...(f.dropout !== undefined ? { dropout: f.dropout } : {}),
            ...(f.noise !== undefined ? { noiseStd: f.noise } : {}),
            ...(f.splitNoise !== undefined ? { splitNoiseStd: f.splitNoise } : {}),
            ...(f.untiedHead !== undefined ? { untiedHead: f.untiedHead } : {}),
            ...(f.rewarmup !== undefined ? { rewarmup: f.rewarmup } : {}),
            ...(f.cOp !== undefined ? { cOp: f.cOp } : {}),
            ...(f.peakLr !== undefined ? { peakLr: f.peakLr } : {}),
          },
          trainer.config.lr.peak,
        );
        const before = trainer.modelConfig;
        const event = trainer.grow(f.op, opts);
        trainer.save(target);
        const late = rewarmupPastHorizonNote(trainer.schedule);
        if (late !== null) process.stderr.write(`staged-lm: note: ${late} (grow with a shorter --rewarmup)\n`);
        const guess = referenceCOpNote(f.op, f.factor, f.cOp !== undefined);
        if (guess !== null) process.stderr.write(`staged-lm: note: ${guess} (give --c-op)\n`);
        // (the model as it was grown from: its dropout is what the grown one keeps where --dropout sets none)
        const symmetry = symmetryNote(f.op, { dropout: f.dropout, noiseStd: f.noise, splitNoiseStd: f.splitNoise }, before.dropout, {
          dropout: '--dropout',
          noise: '--noise',
          split: '--split-noise',
        });
        if (symmetry !== null) process.stderr.write(`staged-lm: note: this ${symmetry}\n`);
        output(f.json, { ...event, checkpoint: target }, () =>
          [
            `grew ${f.op} at step ${event.step}: ${describeSize(event.from)} → ${describeSize(event.to)} (${(event.to.nonEmbeddingParams / 1e6).toFixed(2)}M non-embedding params)`,
            `validation loss on 2 batches ${event.lossBefore.toFixed(6)} → ${event.lossAfter.toFixed(6)}`,
            `schedule: peak LR ${event.peakLr.toExponential(3)}, continuing at position ${event.schedulePos}`,
            `checkpoint: ${target}  (continue with: staged-lm train --resume ${shellWord(target)} --steps N)`,
          ].join('\n'),
        );
      } finally {
        trainer.dispose();
      }
    });
}
