// `staged-lm grow`: a grown checkpoint from a checkpoint — parameters, AdamW state, schedule and
// counters transformed by a growth operator; `train --resume OUT` continues the run at the new size.
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { Trainer } from '../train/trainer';
import { nonNegativeNumber, output, positiveInt } from './common';

interface GrowFlags {
  checkpoint: string;
  op: 'width' | 'depth' | 'both' | 'mlp' | 'heads';
  out: string;
  factor?: number;
  dropout?: number;
  noise?: number;
  rewarmup?: number;
  json?: boolean;
}

const OPS = ['width', 'depth', 'both', 'mlp', 'heads'];

function op(v: string): string {
  if (!OPS.includes(v)) throw new InvalidArgumentError(`--op must be one of ${OPS.join(', ')} (got '${v}')`);
  return v;
}

export function registerGrow(program: Command): void {
  program
    .command('grow')
    .description('grow a checkpoint (width, depth, both; or mlp / heads alone) into a new checkpoint with its training state')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory (or run directory)')
    .requiredOption('--op <op>', 'width | depth | both | mlp | heads', op)
    .requiredOption('--out <dir>', 'directory of the grown checkpoint')
    .option('--factor <k>', 'growth factor (width/depth/mlp/heads)', positiveInt('--factor'))
    .option(
      '--dropout <p>',
      'dropout of the grown stage (attention and residual): breaks the symmetry of width copies',
      nonNegativeNumber('--dropout'),
    )
    .option('--noise <std>', 'std of noise on the new width weights (trades exactness for symmetry breaking)', nonNegativeNumber('--noise'))
    .option('--rewarmup <steps>', 're-warmup steps after growth (default: the reference 150)', positiveInt('--rewarmup'))
    .option('--json', 'print one JSON object')
    .action((f: GrowFlags) => {
      const dir = /checkpoint\/?$/.test(f.checkpoint) ? f.checkpoint : join(f.checkpoint, 'checkpoint');
      const trainer = Trainer.resume(dir);
      try {
        const schedule = f.op === 'mlp' || f.op === 'heads' ? false : f.rewarmup === undefined ? {} : { rewarmup: f.rewarmup };
        const width = {
          ...(f.factor !== undefined && f.op !== 'depth' ? { factor: f.factor } : {}),
          ...(f.dropout !== undefined ? { dropout: { attention: f.dropout, residual: f.dropout } } : {}),
          ...(f.noise !== undefined ? { noiseStd: f.noise } : {}),
        };
        const depth = f.factor !== undefined && f.op === 'depth' ? { factor: f.factor } : {};
        const opts: Record<string, unknown> =
          f.op === 'width'
            ? { ...width, schedule }
            : f.op === 'depth'
              ? { ...depth, schedule }
              : f.op === 'both'
                ? { width, schedule }
                : { factor: f.factor ?? 2, schedule };
        const event = trainer.grow(f.op, opts);
        const target = /checkpoint\/?$/.test(f.out) ? f.out : join(f.out, 'checkpoint');
        trainer.save(target);
        output(f.json, { ...event, checkpoint: target }, () =>
          [
            `grew ${f.op} at step ${event.step}: ${event.from.nLayer}×${event.from.nEmbd} → ${event.to.nLayer}×${event.to.nEmbd} (${(event.to.nonEmbeddingParams / 1e6).toFixed(2)}M non-embedding params)`,
            `validation loss ${event.lossBefore.toFixed(6)} → ${event.lossAfter.toFixed(6)}`,
            `schedule: peak LR ${event.peakLr.toExponential(3)}, continuing at position ${event.schedulePos}`,
            `checkpoint: ${target}  (continue with: staged-lm train --resume ${target} --steps N)`,
          ].join('\n'),
        );
      } finally {
        trainer.dispose();
      }
    });
}
