// CPU training step time and peak RSS with staged-lm's CPU block cache (native/cpu_allocator.cc)
// against libtorch's default allocator (malloc with glibc's defaults, STAGED_LM_DEFAULT_MALLOC=1),
// and optionally against another build (--other: the dist/ of another checkout, e.g. the commit
// before a change). The allocator is chosen when the addon loads, so each run is its own process
// of `staged-lm bench`; the variants alternate, round after round, on this noisy shared machine.
//
//   node dist/bench/cpu-allocator.js [--model tiny] [--batch 8] [--seq 128] [--steps 15] [--rounds 3] [--other DIR]
// Prints one JSON line per run, then one with each variant's median and its ratio to the cache's.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './stats';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '128' },
    steps: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    other: { type: 'string' },
  },
});

interface Variant {
  name: string;
  cli: string;
  env: NodeJS.ProcessEnv;
}
const here = join(__dirname, '..', 'lib', 'cli', 'main.js');
const plain = { ...process.env };
delete plain.STAGED_LM_DEFAULT_MALLOC;
const variants: Variant[] = [
  { name: 'block-cache', cli: here, env: plain },
  { name: 'default-malloc', cli: here, env: { ...plain, STAGED_LM_DEFAULT_MALLOC: '1' } },
];
if (a.other !== undefined) variants.push({ name: `other:${a.other}`, cli: join(a.other, 'lib', 'cli', 'main.js'), env: plain });

const args = ['bench', '--model', a.model!, '--batch', a.batch!, '--seq', a.seq!, '--steps', a.steps!, '--warmup', a.warmup!];
const results = new Map<string, { ms: number[]; rssGiB: number[] }>(variants.map((v) => [v.name, { ms: [], rssGiB: [] }]));
for (let round = 0; round < Number(a.rounds); round++) {
  for (const v of variants) {
    const out = execFileSync(process.execPath, [v.cli, ...args], { env: v.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const run = JSON.parse(out.trim().split('\n').pop()!) as { ms_per_step: number; peak_rss_gib: number };
    results.get(v.name)!.ms.push(run.ms_per_step);
    results.get(v.name)!.rssGiB.push(run.peak_rss_gib);
    console.log(JSON.stringify({ round, variant: v.name, ms_per_step: run.ms_per_step, peak_rss_gib: run.peak_rss_gib }));
  }
}
const base = results.get('block-cache')!;
const summary = Object.fromEntries(
  [...results].map(([name, r]) => [
    name,
    {
      ms_per_step: median(r.ms),
      peak_rss_gib: median(r.rssGiB),
      time_vs_block_cache: Math.round((median(r.ms) / median(base.ms)) * 1000) / 1000,
      rss_vs_block_cache: Math.round((median(r.rssGiB) / median(base.rssGiB)) * 1000) / 1000,
    },
  ]),
);
console.log(JSON.stringify({ bench: 'cpu-allocator', model: a.model, batch: Number(a.batch), seq: Number(a.seq), summary }));
