// What activation checkpointing (bench --activation-checkpointing, run config
// `activationCheckpointing`) trades: the step's peak memory against its time. Runs `staged-lm bench`
// in a child process per measurement, plain and recomputing in turn (alternating which goes first:
// shared machines are noisy), and prints one JSON line per run, then a summary with the ratios
// recomputing/plain of ms per step and of the peak — on CUDA the allocator's peak of allocated bytes,
// on the CPU the process's peak resident set (VmHWM: a child each, since it never goes down).
//   node dist/bench/activation-memory.js [--device cuda] [--model 124M] [--batch 16] [--seq 1024]
//        [--vocab 50304] [--steps 10] [--rounds 2]
// CPU default: paper-base-half-width (12 × 384) at 8 × 256 tokens with a 4096-token vocabulary (the
// blocks' activations, not the logits, dominate: what checkpointing saves), a few seconds a step.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './stats';

const { values: a } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    model: { type: 'string' },
    batch: { type: 'string' },
    seq: { type: 'string' },
    vocab: { type: 'string' },
    steps: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
  },
});
const cuda = a.device!.startsWith('cuda');
const model = a.model ?? (cuda ? '124M' : 'paper-base-half-width');
const batch = a.batch ?? (cuda ? '16' : '8');
const seq = a.seq ?? (cuda ? '1024' : '256');
const vocab = a.vocab ?? (cuda ? '50304' : '4096');
const cli = join(__dirname, '..', 'lib', 'cli', 'main.js');

interface Run {
  ms_per_step: number;
  peak_mem_gib: number | null;
  peak_rss_gib: number | null;
  final_loss: number;
}

function bench(recompute: boolean): Run {
  const args = [
    cli,
    'bench',
    '--model',
    model,
    '--device',
    a.device!,
    '--batch',
    batch,
    '--seq',
    seq,
    '--vocab',
    vocab,
    '--steps',
    a.steps!,
    '--warmup',
    '2',
  ];
  const r = spawnSync(process.execPath, recompute ? [...args, '--activation-checkpointing'] : args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench failed (${r.status ?? r.signal}): ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Run;
  process.stdout.write(JSON.stringify({ recompute, ...out }) + '\n');
  return out;
}

const plain: Run[] = [];
const recomputed: Run[] = [];
for (let round = 0; round < Number(a.rounds); round++) {
  for (const recompute of round % 2 === 0 ? [false, true] : [true, false]) (recompute ? recomputed : plain).push(bench(recompute));
}
const peak = (r: Run) => (cuda ? r.peak_mem_gib : r.peak_rss_gib) ?? NaN;
const ms = (rs: Run[]) => median(rs.map((r) => r.ms_per_step));
const mem = (rs: Run[]) => median(rs.map(peak));
process.stdout.write(
  JSON.stringify({
    summary: true,
    device: a.device,
    model,
    batch: Number(batch),
    seq: Number(seq),
    vocab: Number(vocab),
    peak_kind: cuda ? 'allocated (CUDA)' : 'resident set (VmHWM)',
    plain: { ms_per_step: ms(plain), peak_gib: mem(plain) },
    recomputed: { ms_per_step: ms(recomputed), peak_gib: mem(recomputed) },
    time_ratio: Math.round((ms(recomputed) / ms(plain)) * 1000) / 1000,
    peak_ratio: Math.round((mem(recomputed) / mem(plain)) * 1000) / 1000,
    same_loss: plain.every((p, i) => Math.abs(p.final_loss - recomputed[i].final_loss) < 1e-3),
  }) + '\n',
);
