// Fixes from the scaling audit: `slope` replays the online trigger (first firing, growth-restarted
// curves, end-of-session evaluations left out, every drop reason counted), no implied saving past the
// target schedule, fixed-batch laws in `fit`/`plan`, `report --json` as the table, staged runs refused
// by `fit --run`, pretty-printed points files, number formatting, degenerate plans, argument errors, and
// `slope --help` on the x smoothing. Numbers are checked against computations written here.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmtCount } from '../../lib/cli/plan';
import { fmtFlops } from '../../lib/cli/common';
import { findGrowthPoint, lossAt, planStages, replayTrigger, type ValPoint } from '../../lib/scaling';

import { Command } from 'commander';
import { registerSlope } from '../../lib/cli/slope';
import { runScalingCli } from './run-cli';
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'scaling-audit-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runScalingCli;

/**
 * An independent online trigger (the spec's recipe with the default x smoothing, after trig.py of the
 * audit): after each point, on the points so far, drop spikes and non-increasing compute, smooth log10
 * loss and log10 compute over 5 kept points, σ = Δȳ/Δx̄; fire when, after the most negative σ, a later σ
 * reaches the threshold. Returns the step of the first firing.
 */
function onlineStep(points: { step: number; compute: number; loss: number }[], threshold: number): number | null {
  const offline = (pts: typeof points): number | null => {
    const kept: typeof points = [];
    for (const p of pts) {
      const last = kept[kept.length - 1];
      if (last && (p.compute <= last.compute || p.loss > last.loss * 1.01)) continue;
      kept.push(p);
    }
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const sig: (number | null)[] = kept.map((_, j) => {
      if (j < 5) return null;
      const y = (k: number) => mean(kept.slice(k - 4, k + 1).map((p) => Math.log10(p.loss)));
      const x = (k: number) => mean(kept.slice(k - 4, k + 1).map((p) => Math.log10(p.compute)));
      return (y(j) - y(j - 1)) / (x(j) - x(j - 1));
    });
    let m = -1;
    sig.forEach((s, j) => {
      if (s !== null && (m < 0 || s < (sig[m] as number))) m = j;
    });
    if (m < 0 || (sig[m] as number) >= threshold) return null;
    const j = sig.findIndex((s, i) => i > m && s !== null && s >= threshold);
    return j < 0 ? null : kept[j].step;
  };
  for (let n = 1; n <= points.length; n++) {
    const s = offline(points.slice(0, n));
    if (s !== null) return s;
  }
  return null;
}

/** The audit's online.js curve: log-log slopes −0.1, −0.02, −0.2, −0.01 in turn, a point every 100 steps. */
function twoDipCurve(): { step: number; compute: number; loss: number }[] {
  const sig = [...Array(7).fill(-0.1), ...Array(6).fill(-0.02), ...Array(6).fill(-0.2), ...Array(6).fill(-0.01)] as number[];
  let x = 9;
  let y = Math.log10(8);
  const pts = [{ step: 100, compute: 10 ** x, loss: 10 ** y }];
  sig.forEach((g, i) => {
    x += 0.05;
    y += g * 0.05;
    pts.push({ step: 100 * (i + 2), compute: 10 ** x, loss: 10 ** y });
  });
  return pts;
}

const toJsonl = (recs: object[]) => recs.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('1. slope reports where the online trigger first fires', () => {
  test('a curve with two dips: the first firing (step 1100), not the whole-log analysis (step 2400)', async () => {
    const pts = twoDipCurve();
    const expected = onlineStep(pts, -0.0575);
    expect(expected).toBe(1100);
    // the whole-log analysis differs: this is what slope reported before
    const whole = findGrowthPoint(pts, { op: 'depth' });
    expect(whole.reached && whole.step).toBe(2400);
    const file = join(dir, 'two-dips.jsonl');
    writeFileSync(file, toJsonl(pts.map((p) => ({ step: p.step, compute: p.compute, valLoss: p.loss }))));
    const r = JSON.parse(await run(['slope', '--log', file, '--json']));
    expect(r.reached).toBe(true);
    expect(r.step).toBe(expected);
    expect(r.replay.fired).toBe(true);
    const human = await run(['slope', '--log', file]);
    expect(human).toMatch(/grow at step 1100: .*the first evaluation where the online trigger fires/);
  });

  test('replayTrigger agrees with findGrowthPoint run on every prefix (the trainer’s loop)', () => {
    const pts: ValPoint[] = twoDipCurve();
    for (const op of ['depth', 'width', 'both'] as const) {
      let brute: number | null = null;
      for (let n = 1; n <= pts.length && brute === null; n++) {
        const r = findGrowthPoint(pts.slice(0, n), { op });
        if (r.reached) brute = r.index;
      }
      const rep = replayTrigger(pts, { op });
      expect(rep.result.reached ? rep.result.index : null).toBe(brute);
    }
  });

  test('the curve restarts at each growth, as the trainer’s', async () => {
    // stage 0: a curve that never steepens enough; stage 1 (after a growth): the two-dip curve
    const flat = Array.from({ length: 12 }, (_, i) => ({ step: 10 * (i + 1), compute: 1e8 * (i + 1), valLoss: 9 - 0.001 * i }));
    const grown = twoDipCurve().map((p) => ({ step: 120 + p.step, compute: 1e9 + p.compute, valLoss: p.loss }));
    const file = join(dir, 'grown.jsonl');
    writeFileSync(file, toJsonl([...flat, { event: 'growth', step: 120, op: 'depth' }, ...grown]));
    const r = JSON.parse(await run(['slope', '--log', file, '--json']));
    const expected = onlineStep(
      grown.map((p) => ({ step: p.step, compute: p.compute, loss: p.valLoss })),
      -0.0575,
    );
    expect(r.step).toBe(expected);
    expect(r.replay.segment).toBe(1);
    expect(await run(['slope', '--log', file])).toMatch(/the log has 2 stages; the trainer's curve restarts at each growth/);
  });

  test("S_pre after a growth is the grown model's schedule position (where the growth placed it), as the trainer's R", async () => {
    const flat = Array.from({ length: 12 }, (_, i) => ({ step: 10 * (i + 1), compute: 1e8 * (i + 1), valLoss: 9 - 0.001 * i }));
    const grown = twoDipCurve().map((p) => ({ step: 120 + p.step, compute: 1e9 + p.compute, valLoss: p.loss }));
    const expected = onlineStep(
      grown.map((p) => ({ step: p.step, compute: p.compute, loss: p.valLoss })),
      -0.0575,
    ) as number;
    // the growth at step 120 placed the model at position 85 (R = 120 / 1.412): 35 behind its steps
    for (const [name, event] of [
      ['grown-at.jsonl', { event: 'growth', step: 120, op: 'depth', schedulePos: 85 }],
      // (a run grown by `staged-lm grow` and resumed: its log starts with the resume)
      ['resumed-at.jsonl', { event: 'resume', step: 120, stage: 1, schedulePos: 85 }],
    ] as const) {
      const file = join(dir, name);
      writeFileSync(file, toJsonl([...(event.event === 'growth' ? flat : []), event, ...grown]));
      const r = JSON.parse(await run(['slope', '--log', file, '--json']));
      expect(r.step).toBe(expected);
      expect(r.sPre).toBe(expected - 35);
      expect(r.sTarget).toBeCloseTo((expected - 35) / 1.412, 9);
      expect(await run(['slope', '--log', file])).toMatch(
        new RegExp(
          `S_target = S_pre / c_op = ${expected - 35} / 1\\.412 = \\d+ .*; S_pre is the model's schedule position at step ${expected}`,
        ),
      );
    }
  });
});

describe('2. end-of-session evaluations (valOffInterval)', () => {
  /** A resumed run's log: evaluations every 100 steps, and sessions that ended at 1150, 2050 and 2930. */
  function resumedLog(): { recs: object[]; onInterval: { step: number; compute: number; loss: number }[] } {
    const N = 1e7;
    const B = 5e5;
    const recs: object[] = [];
    const onInterval: { step: number; compute: number; loss: number }[] = [];
    for (let s = 50; s <= 40000; s += 50) {
      const rec = { step: s, tokens: s * B, flops: 6 * N * B * s, compute: 6 * N * B * s, loss: lossAt(N, s) + 0.01 };
      if (s % 100 === 0) {
        onInterval.push({ step: s, compute: rec.compute, loss: lossAt(N, s) });
        recs.push({ ...rec, valLoss: lossAt(N, s) });
      } else if ([1150, 2050, 2950, 12050, 21050, 22050].includes(s)) {
        // a noisier end-of-session evaluation (fewer batches), 0.8% below the curve
        recs.push({ ...rec, valLoss: lossAt(N, s) * 0.992, valOffInterval: true });
        recs.push({ event: 'resume', step: s });
      } else recs.push(rec);
    }
    return { recs, onInterval };
  }

  test('slope leaves them out: the trainer’s growth point', async () => {
    const { recs, onInterval } = resumedLog();
    const file = join(dir, 'resumed.jsonl');
    writeFileSync(file, toJsonl(recs));
    const expected = onlineStep(onInterval, -0.0575);
    expect(expected).not.toBeNull();
    // with them in the curve the trigger would grow elsewhere (what slope did before)
    const withThem = recs.filter((r): r is { step: number; compute: number; valLoss: number } => 'valLoss' in r);
    expect(
      onlineStep(
        withThem.map((r) => ({ step: r.step, compute: r.compute, loss: r.valLoss })),
        -0.0575,
      ),
    ).not.toBe(expected);
    const r = JSON.parse(await run(['slope', '--log', file, '--json']));
    expect(r.step).toBe(expected);
    expect(r.replay.offInterval).toHaveLength(6);
    expect(await run(['slope', '--log', file])).toMatch(/6 end-of-session evaluations off the interval left out/);
  });

  test('fit --run keeps them (valid measurements at their step)', async () => {
    const lines: object[] = [];
    for (const N of [1e5, 1e6]) {
      for (let s = 100; s <= 3000; s += 100) lines.push({ step: s, tokens: s * 64, valLoss: lossAt(N, s) });
      lines.push({ step: 3050, tokens: 3050 * 64, valLoss: lossAt(N, 3050), valOffInterval: true });
      writeFileSync(join(dir, `off-${N}.jsonl`), toJsonl(lines.splice(0)));
    }
    const fit = JSON.parse(
      await run(['fit', '--run', `${join(dir, 'off-100000.jsonl')}:1e5`, '--run', `${join(dir, 'off-1000000.jsonl')}:1e6`, '--json']),
    );
    expect(fit.points).toBe(62);
  });
});

describe('3. no implied saving past the target schedule', () => {
  const pts: ValPoint[] = twoDipCurve();
  test('S_target > S_opt: no saving, with the reason', async () => {
    const r = findGrowthPoint(pts.slice(0, 11), { op: 'depth', finalSteps: 500 });
    if (!r.reached) throw new Error('expected the trigger to fire');
    expect(r.sTarget).toBeCloseTo(1100 / 1.412, 9); // 779 > 500
    expect(r.saving).toBeNull();
    expect(r.noSaving).toBe('target-past-schedule');
    const file = join(dir, 'two-dips-2.jsonl');
    writeFileSync(file, toJsonl(pts.map((p) => ({ step: p.step, compute: p.compute, valLoss: p.loss }))));
    const human = await run(['slope', '--log', file, '--final-steps', '500']);
    expect(human).toMatch(
      /implied saving: none — S_target = 779 is past S_opt = 500 \(given\): the grown model would resume after the end of its own schedule/,
    );
    expect(human).not.toMatch(/implied saving \d/);
  });

  test('S_target ≤ S_opt: (S_target − S_pre/2)/S_opt', () => {
    const r = findGrowthPoint(pts.slice(0, 11), { op: 'depth', finalSteps: 5000 });
    if (!r.reached) throw new Error('expected the trigger to fire');
    expect(r.saving).toBeCloseTo((1100 / 1.412 - 1100 / 2) / 5000, 12);
    expect(r.noSaving).toBeNull();
  });
});

describe('4. a law fitted at a fixed batch plans in that batch’s tokens', () => {
  const law = { Nc: 3e12, alphaN: 0.09, Sc: 1.5e3, alphaS: 0.7 };
  const B = 512;
  test('fit --batch-tokens records it; plan counts tokens = steps·B', async () => {
    const pts = [1e5, 4e5, 1.6e6, 6.4e6].flatMap((N) =>
      [100, 300, 1000, 3000, 10000, 20000].map((S) => ({ N, tokens: S * B, L: lossAt(N, S, { ...law, Bstar: 2.1e8, alphaB: 0.21 }) })),
    );
    writeFileSync(join(dir, 'tok.json'), JSON.stringify(pts));
    const lawFile = join(dir, 'law512.json');
    const fitOut = await run(['fit', '--points', join(dir, 'tok.json'), '--batch-tokens', String(B), '--out', lawFile]);
    expect(fitOut).toMatch(/steps are at a fixed batch of 512 tokens/);
    // points before step 1000 (given in tokens: at the batch) left out: 2 of 6 per size
    const late = JSON.parse(
      await run(['fit', '--points', join(dir, 'tok.json'), '--batch-tokens', String(B), '--min-steps', '1000', '--json']),
    );
    expect(late).toMatchObject({ points: 16, leftOut: 8 });
    expect(late.law.alphaN).toBeCloseTo(law.alphaN, 4);
    await expect(run(['fit', '--points', join(dir, 'tok.json'), '--batch-tokens', String(B), '--min-steps', '15000'])).rejects.toThrow(
      /fit: --min-steps 15000 leaves 4 of the 24 points: the fit needs at least 5/,
    );
    expect(await run(['fit', '--points', join(dir, 'tok.json'), '--batch-tokens', String(B), '--min-steps', '1000'])).toMatch(
      /fitted on 16 points \(8 before step 1000 left out\)/,
    );
    expect(JSON.parse(readFileSync(lawFile, 'utf8')).batchTokens).toBe(B);
    const L = 3.5;
    const p = JSON.parse(await run(['plan', '--law', lawFile, '--target-loss', String(L), '--stages', '1', '--json']));
    // independently: the one-stage optimum of the law, (Nc/N)^αN = L/(1 + αN/αS), and its steps
    const N = law.Nc / Math.pow(L / (1 + law.alphaN / law.alphaS), 1 / law.alphaN);
    const S = (2 * law.Sc) / Math.pow(L - Math.pow(law.Nc / N, law.alphaN), 1 / law.alphaS);
    expect(p.batch).toBe('fixed');
    expect(p.stages[0].params / N).toBeCloseTo(1, 5);
    expect(p.stages[0].steps / S).toBeCloseTo(1, 5);
    expect(p.totalTokens / (S * B)).toBeCloseTo(1, 5);
    expect(p.totalFlops / (6 * N * B * S)).toBeCloseTo(1, 5);
    expect(p.totalPfDays / ((6 * N * B * S) / 8.64e19)).toBeCloseTo(1, 5);
    const human = await run(['plan', '--law', lawFile, '--target-loss', String(L)]);
    expect(human).toMatch(
      /B = 512 tokens per step \(fixed, the batch the law was fitted at\); steps are steps at that batch, tokens = steps·B/,
    );
    // the saving of a fixed batch for every stage is the 'target' plan's (one batch for all stages)
    const kaplanStyle = planStages({ targetLoss: L, law: JSON.parse(readFileSync(lawFile, 'utf8')).law });
    expect(JSON.parse(await run(['plan', '--law', lawFile, '--target-loss', String(L), '--json'])).computeRatio).toBeCloseTo(
      kaplanStyle.computeRatio,
      9,
    );
    await expect(run(['plan', '--law', lawFile, '--target-loss', '3.5', '--batch', 'per-stage'])).rejects.toThrow(
      /fixed batch of 512 tokens/,
    );
    // its steps say nothing about another batch; the same batch again is fine
    await expect(run(['plan', '--law', lawFile, '--target-loss', '3.5', '--batch-tokens', '4096'])).rejects.toThrow(
      /was fitted on steps at a batch of 512 tokens: its steps say nothing about a batch of 4096/,
    );
    expect(
      JSON.parse(await run(['plan', '--law', lawFile, '--target-loss', String(L), '--stages', '1', '--batch-tokens', '512', '--json']))
        .totalTokens,
    ).toBe(p.totalTokens);
    // constants without a recorded batch: --batch-tokens says at which batch their steps were counted
    const bare = join(dir, 'bare.json');
    writeFileSync(bare, JSON.stringify(JSON.parse(readFileSync(lawFile, 'utf8')).law));
    const given = await run(['plan', '--law', bare, '--target-loss', String(L), '--stages', '1', '--batch-tokens', '1024']);
    expect(given).toMatch(/B = 1.02k tokens per step \(fixed, the batch given for the law's steps\)/);
  });

  test('a fit that did not converge is noted when planned from; a fit with few points to spare says so', async () => {
    const file = join(dir, 'unconverged.json');
    writeFileSync(file, JSON.stringify({ law, batchTokens: B, converged: false }));
    let err = '';
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      err += String(s);
      return true;
    });
    try {
      await run(['plan', '--law', file, '--target-loss', '3.5']);
    } finally {
      spy.mockRestore();
    }
    expect(err).toMatch(/law file '.*unconverged\.json' is a fit that did not converge: its constants may be far from the data's best fit/);
    // exponents no language model shows (a fit of runs too short or too alike)
    const odd = join(dir, 'odd.json');
    writeFileSync(odd, JSON.stringify({ law: { Nc: 1.16e99, alphaN: 0.0089, Sc: 1e3, alphaS: 0.05 } }));
    err = '';
    const spy2 = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      err += String(s);
      return true;
    });
    try {
      await run(['plan', '--law', odd, '--target-loss', '7']).catch(() => undefined);
    } finally {
      spy2.mockRestore();
    }
    expect(err).toMatch(/law file '.*odd\.json': αN = 0\.00890 \(Nc = 1\.16e\+99\): the loss barely depends on size in this fit/);
    expect(err).toMatch(/law file '.*odd\.json': αS = 0\.0500: far from the usual \(Kaplan: 0\.76\)/);
    // 5 points for 4 constants
    const five = [1e5, 1e6].flatMap((N) =>
      [300, 3000, 30000].map((S) => ({ N, S, L: lossAt(N, S, { ...law, Bstar: 2.1e8, alphaB: 0.21 }) })),
    );
    writeFileSync(join(dir, 'five.json'), JSON.stringify(five.slice(0, 5)));
    expect(await run(['fit', '--points', join(dir, 'five.json')])).toMatch(
      /5 points for 4 constants: 1 to spare, so a small error proves little/,
    );
    writeFileSync(join(dir, 'six.json'), JSON.stringify([...five, ...five.map((p) => ({ ...p, N: p.N * 10 }))]));
    expect(await run(['fit', '--points', join(dir, 'six.json')])).not.toMatch(/to spare/);
  });

  test('Kaplan’s law counts critical-batch steps: --batch-tokens is refused rather than relabelling them', async () => {
    await expect(run(['plan', '--target-loss', '3', '--batch-tokens', '65536'])).rejects.toThrow(
      /Kaplan's law counts steps at the critical batch: --batch-tokens does not apply to it/,
    );
  });

  test('fit --run takes the batch from the runs’ logs; runs at different batches are refused', async () => {
    const mk = (N: number, tps: number) => {
      const f = join(dir, `b-${N}-${tps}.jsonl`);
      const recs = [];
      for (let i = 0; i < 12; i++) {
        const S = Math.round(100 * Math.pow(10, i / 5));
        recs.push({ step: S, tokens: S * tps, valLoss: lossAt(N, S, { ...law, Bstar: 2.1e8, alphaB: 0.21 }) });
      }
      writeFileSync(f, toJsonl(recs));
      return `${f}:${N}`;
    };
    const fit = JSON.parse(await run(['fit', '--run', mk(1e5, 256), '--run', mk(1e6, 256), '--json']));
    expect(fit.batchTokens).toBe(256);
    await expect(run(['fit', '--run', mk(1e5, 256), '--run', mk(1e6, 512)])).rejects.toThrow(/trains 512 tokens per step.*one batch/);
    await expect(run(['fit', '--run', mk(1e5, 256), '--run', mk(1e6, 256), '--batch-tokens', '512'])).rejects.toThrow(
      /--batch-tokens is 512/,
    );
  });

  test('Kaplan’s law keeps the critical-batch accounting (the spec’s reference numbers)', async () => {
    const one = JSON.parse(await run(['plan', '--target-loss', '3', '--stages', '1', '--json']));
    expect(one.batch).toBe('target');
    expect(one.batchTokens).toBeNull();
    expect(one.totalPfDays).toBeCloseTo(0.294, 3);
  });
});

describe('5. report --json carries the table’s per-stage numbers', () => {
  test('tokens and flops per stage, cumulative values under explicit names', async () => {
    const run1 = join(dir, 'report-run');
    mkdirSync(run1, { recursive: true });
    const recs: object[] = [];
    for (let s = 1; s <= 6; s++) {
      if (s === 4)
        recs.push({ event: 'growth', step: 3, stage: 1, op: 'depth', from: { nLayer: 1, nEmbd: 32 }, to: { nLayer: 2, nEmbd: 32 } });
      // 100 tokens a step; 1000 FLOPs a step before the growth, 2000 after
      recs.push({
        step: s,
        tokens: 100 * s,
        flops: s <= 3 ? 1000 * s : 3000 + 2000 * (s - 3),
        loss: 5 - 0.1 * s,
        ...(s % 3 === 0 ? { valLoss: 5 - 0.1 * s } : {}),
      });
    }
    writeFileSync(join(run1, 'metrics.jsonl'), toJsonl(recs));
    const j = JSON.parse(await run(['report', '--run', run1, '--json']));
    expect(j.stages.map((s: { tokens: number; flops: number }) => [s.tokens, s.flops])).toEqual([
      [300, 3000],
      [300, 6000],
    ]);
    expect(j.stages.map((s: { cumulativeTokens: number; cumulativeFlops: number }) => [s.cumulativeTokens, s.cumulativeFlops])).toEqual([
      [300, 3000],
      [600, 9000],
    ]);
    const table = (await run(['report', '--run', run1])).split('\n');
    expect(table[1]).toMatch(/^\s+0\s+0–3\s+1×32\s+300\s+3\.00e\+3\s/);
    expect(table[2]).toMatch(/^\s+1\s+3–6\s+2×32\s+300\s+6\.00e\+3\s/);
  });
});

describe('5b. report --baseline: where the grown run reaches the baseline’s final loss, and the compute saved', () => {
  /** A log: a val loss at each step from 1, 1000 FLOPs and 600 compute a step (×2 after a growth). */
  function log(dirName: string, losses: number[], growAt: number | null): string {
    const d = join(dir, dirName);
    mkdirSync(d, { recursive: true });
    const recs: object[] = [];
    let flops = 0;
    let compute = 0;
    for (const [i, valLoss] of losses.entries()) {
      const step = i + 1;
      if (growAt !== null && step === growAt + 1)
        recs.push({ event: 'growth', step: growAt, stage: 1, op: 'width', from: { nLayer: 1, nEmbd: 16 }, to: { nLayer: 1, nEmbd: 32 } });
      const k = growAt !== null && step > growAt ? 2 : 1;
      flops += 1000 * k;
      compute += 600 * k;
      recs.push({ step, tokens: 100 * step, flops, compute, loss: valLoss, valLoss });
    }
    writeFileSync(join(d, 'metrics.jsonl'), toJsonl(recs));
    return d;
  }

  test('the saving in FLOPs and in 6·N·tokens, interpolated between evaluations (by hand)', async () => {
    // baseline: 4 steps at 2000 FLOPs (1200 compute) each, to loss 4.0 → 8000 FLOPs, 4800 compute
    const base = join(dir, 'base');
    mkdirSync(base, { recursive: true });
    writeFileSync(
      join(base, 'metrics.jsonl'),
      toJsonl(
        [5, 4.6, 4.3, 4.0].map((l, i) => ({
          step: i + 1,
          tokens: 100 * (i + 1),
          flops: 2000 * (i + 1),
          compute: 1200 * (i + 1),
          loss: l,
          valLoss: l,
        })),
      ),
    );
    // staged: 2 small steps (1000 each), then big ones (2000): loss 4.2 at step 3 (4000 FLOPs), 3.8 at
    // step 4 (6000): it reaches 4.0 half way, at 5000 FLOPs and 3000 compute
    const staged = log('staged', [5, 4.5, 4.2, 3.8], 2);
    const j = JSON.parse(await run(['report', '--run', staged, '--baseline', base, '--json']));
    expect(j.comparison).toMatchObject({
      baselineLoss: 4,
      baselineStep: 4,
      baselineFlops: 8000,
      baselineCompute: 4800,
      smallReachedBaselineLoss: false,
      notes: [],
    });
    expect(j.comparison.stagedStep).toBeCloseTo(3.5, 12);
    expect(j.comparison.stagedFlops).toBeCloseTo(5000, 9);
    expect(j.comparison.stagedCompute).toBeCloseTo(3000, 9);
    expect(j.comparison.saving).toBeCloseTo(1 - 5000 / 8000, 12);
    expect(j.comparison.computeSaving).toBeCloseTo(1 - 3000 / 4800, 12);
    expect(typeof j.table).toBe('string');
    expect(await run(['report', '--run', staged, '--baseline', base])).toMatch(
      /the run reaches it at step 4 \(5\.000e\+3 FLOPs: saving 37\.5%; in 6·N·tokens, the paper's measure: saving 37\.5%\)/,
    );
  });

  test('says when it measures nothing: the small model got there first, a baseline that grew, a run that never reaches it', async () => {
    const base = log('base2', [5, 4.5], null);
    const early = log('early', [4.4, 4.3, 4.6], 2);
    const e = JSON.parse(await run(['report', '--run', early, '--baseline', base, '--json'])).comparison;
    expect(e.smallReachedBaselineLoss).toBe(true);
    expect(e.notes).toContainEqual(expect.stringMatching(/reached the baseline's final loss before it grew/));
    const never = log('never', [5, 4.9, 4.8], 1);
    const grewBase = log('grew-base', [5, 4.7, 4.5], 1);
    const n = JSON.parse(await run(['report', '--run', never, '--baseline', grewBase, '--json'])).comparison;
    expect(n).toMatchObject({ stagedFlops: null, saving: null, computeSaving: null });
    expect(n.notes).toContainEqual(expect.stringMatching(/the baseline grew \(at step 1\): it is not a from-scratch run/));
    expect(await run(['report', '--run', never, '--baseline', grewBase])).toMatch(
      /the run does not reach the baseline's final loss after it grew/,
    );
    // validation taken at another sequence length (from each run's checkpoint) does not compare
    for (const [d, seqLen] of [
      [early, 64],
      [base, 128],
    ] as const) {
      mkdirSync(join(d, 'checkpoint'), { recursive: true });
      writeFileSync(
        join(d, 'checkpoint', 'state.json'),
        JSON.stringify({ extra: { run: { seqLen, data: 'embedded', eval: { batches: 8 } } } }),
      );
    }
    expect(JSON.parse(await run(['report', '--run', early, '--baseline', base, '--json'])).comparison.notes).toContainEqual(
      "the runs' validation losses are not taken alike (seqLen 64 vs 128): they do not compare",
    );
    // the loader's resolved values win (an evaluation scores eval.batches × batchSize windows)
    for (const [d, batchSize] of [
      [early, 4],
      [base, 8],
    ] as const)
      writeFileSync(
        join(d, 'checkpoint', 'state.json'),
        JSON.stringify({ extra: { run: { data: 'embedded', eval: { batches: 8 } }, loader: { seqLen: 64, batchSize } } }),
      );
    expect(JSON.parse(await run(['report', '--run', early, '--baseline', base, '--json'])).comparison.notes).toContainEqual(
      "the runs' validation losses are not taken alike (windows (eval.batches × batchSize × ranks) 32 vs 64): they do not compare",
    );
    // a data-parallel job's evaluation scores eval.batches × batchSize windows per rank (its
    // checkpoint keeps one generator state per rank): 8 × 4 on 2 ranks is 8 × 8 on one
    const twoRanks = (batches: number, batchSize: number) =>
      JSON.stringify({
        rng: { ranks: [{}, {}] },
        extra: { run: { data: 'embedded', eval: { batches } }, loader: { seqLen: 64, batchSize } },
      });
    writeFileSync(join(early, 'checkpoint', 'state.json'), twoRanks(8, 4));
    const alike = JSON.parse(await run(['report', '--run', early, '--baseline', base, '--json'])).comparison.notes;
    expect(alike.filter((n: string) => n.includes('not taken alike'))).toEqual([]);
    writeFileSync(join(early, 'checkpoint', 'state.json'), twoRanks(8, 8));
    expect(JSON.parse(await run(['report', '--run', early, '--baseline', base, '--json'])).comparison.notes).toContainEqual(
      "the runs' validation losses are not taken alike (windows (eval.batches × batchSize × ranks) 128 vs 64): they do not compare",
    );
  });

  test('the crossing may lie between the evaluation at the growth and the next; a log that starts grown; no saving', async () => {
    const base = log('base3', [5, 4.5, 4.0, 3.5], null);
    // 4.2 at the growth (step 2), 3.0 at step 3: 3.5 is reached at step 2 + 0.7/1.2
    const fast = JSON.parse(await run(['report', '--run', log('fast', [5, 4.2, 3.0], 2), '--baseline', base, '--json'])).comparison;
    expect(fast.stagedStep).toBeCloseTo(2 + 0.7 / 1.2, 12);
    // no evaluation at the growth (step 2): the one before it is the small model's, not a start
    // for the grown curve — the crossing is not read off it
    const gap = join(dir, 'gap');
    mkdirSync(gap, { recursive: true });
    writeFileSync(
      join(gap, 'metrics.jsonl'),
      toJsonl([
        { step: 1, tokens: 100, flops: 1000, compute: 600, loss: 4.5, valLoss: 4.5 },
        { step: 2, tokens: 200, flops: 2000, compute: 1200, loss: 4.4 },
        { event: 'growth', step: 2, stage: 1, op: 'width', from: { nLayer: 1, nEmbd: 16 }, to: { nLayer: 1, nEmbd: 32 } },
        { step: 3, tokens: 300, flops: 4000, compute: 2400, loss: 2.0, valLoss: 2.0 },
      ]),
    );
    expect(JSON.parse(await run(['report', '--run', gap, '--baseline', base, '--json'])).comparison.stagedStep).toBe(3);
    // a log resumed after its growth: every point counts, no "never grew"
    const d = join(dir, 'resumed-grown');
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'metrics.jsonl'),
      toJsonl([
        { event: 'resume', step: 10, stage: 1, tokens: 1000, flops: 20000, compute: 12000, size: { nLayer: 2, nEmbd: 16 } },
        { step: 11, tokens: 1100, flops: 22000, compute: 13200, loss: 3.6, valLoss: 3.6 },
        { step: 12, tokens: 1200, flops: 24000, compute: 14400, loss: 3.4, valLoss: 3.4 },
      ]),
    );
    const r = JSON.parse(await run(['report', '--run', d, '--baseline', base, '--json'])).comparison;
    expect(r.notes).toEqual(["the run's log starts at stage 1, after a growth: its counters carry what came before"]);
    expect(r.stagedStep).toBeCloseTo(11.5, 12);
    // more compute than the baseline: said as such
    expect(await run(['report', '--run', d, '--baseline', base])).toMatch(/\(2\.300e\+4 FLOPs: no saving: 475\.0% more;/);
  });
});

describe('6. slope counts every drop reason', () => {
  test('two logs one after the other: the second’s points are not after the first’s in compute', async () => {
    const a = twoDipCurve().slice(0, 10);
    const b = twoDipCurve().map((p) => ({ ...p, compute: p.compute * 1.0001 }));
    const spike = { ...a[7], loss: a[7].loss * 1.05 };
    const all = [...a.slice(0, 7), spike, ...a.slice(7), ...b];
    const file = join(dir, 'cat.jsonl');
    writeFileSync(file, toJsonl(all.map((p) => ({ step: p.step, compute: p.compute, valLoss: p.loss }))));
    // independently: the spike, and every point of b at or below the largest compute kept so far
    let maxC = 0;
    let notIncreasing = 0;
    for (const p of all.filter((p) => p !== spike)) {
      if (p.compute <= maxC) notIncreasing++;
      else maxC = p.compute;
    }
    expect(notIncreasing).toBe(9);
    const human = await run(['slope', '--log', file]);
    expect(human).toMatch(
      new RegExp(
        `${all.length} validation points; dropped: 1 spike, ${notIncreasing} not after the previous point in compute, 0 non-positive`,
      ),
    );
    const r = JSON.parse(await run(['slope', '--log', file, '--json']));
    expect(r.replay.dropCounts).toEqual({ spike: 1, 'not-increasing-compute': notIncreasing, 'non-positive': 0 });
  });
});

describe('7. fit --run refuses a staged run', () => {
  test('names the file and the growth’s step', async () => {
    const f = join(dir, 'staged.jsonl');
    writeFileSync(
      f,
      toJsonl([
        { step: 100, tokens: 100, valLoss: 5 },
        { event: 'growth', step: 150, op: 'depth' },
        { step: 200, tokens: 200, valLoss: 4 },
      ]),
    );
    await expect(run(['fit', '--run', `${f}:1e6`])).rejects.toThrow(
      new RegExp(
        `${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 2: a growth at step 150: this is a staged run; fit needs from-scratch runs`,
      ),
    );
  });
});

describe('7b. fit --run refuses a run resumed past a growth (grow, then train --resume: no growth in its log)', () => {
  test('names the file and the stage', async () => {
    const f = join(dir, 'grown-resumed.jsonl');
    writeFileSync(
      f,
      toJsonl([
        { event: 'resume', step: 150, stage: 1, tokens: 150, flops: 1, compute: 1, size: { nLayer: 2, nEmbd: 32 } },
        { step: 200, tokens: 200, valLoss: 4 },
      ]),
    );
    await expect(run(['fit', '--run', `${f}:1e6`])).rejects.toThrow(
      new RegExp(
        `${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 1: resumed at step 150 in stage 1, after a growth: this is a staged run; fit needs from-scratch runs`,
      ),
    );
  });
});

describe('7c. fit --run refuses a fine-tune (initFrom): its losses start from trained weights', () => {
  test('its init event, and a resume event that carries initFrom, name the checkpoint', async () => {
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const fresh = join(dir, 'fine-tune.jsonl');
    writeFileSync(
      fresh,
      toJsonl([
        { event: 'init', step: 0, from: '/models/gpt2' },
        { step: 200, tokens: 200, valLoss: 4 },
      ]),
    );
    await expect(run(['fit', '--run', `${fresh}:1e6`])).rejects.toThrow(
      new RegExp(
        `${esc(fresh)} line 1: a fine-tune of /models/gpt2 \\(initFrom\\): its losses start from trained weights; fit needs from-scratch runs`,
      ),
    );
    const resumed = join(dir, 'fine-tune-resumed.jsonl');
    writeFileSync(
      resumed,
      toJsonl([
        {
          event: 'resume',
          step: 150,
          stage: 0,
          tokens: 150,
          flops: 1,
          compute: 1,
          size: { nLayer: 2, nEmbd: 32 },
          initFrom: '/models/gpt2',
        },
        { step: 200, tokens: 200, valLoss: 4 },
      ]),
    );
    await expect(run(['fit', '--run', `${resumed}:1e6`])).rejects.toThrow(
      new RegExp(`${esc(resumed)} line 1: a fine-tune of /models/gpt2`),
    );
  });
});

describe('8. fit --points reads pretty-printed JSON', () => {
  test('{"points": [...]} over several lines, an array over several lines, JSON lines', async () => {
    const law = { Nc: 2e12, alphaN: 0.1, Sc: 5e3, alphaS: 0.65, Bstar: 2.1e8, alphaB: 0.21 };
    const pts = [1e6, 1e7, 1e8].flatMap((N) => [300, 1000, 3000, 10000].map((S) => ({ N, S, L: lossAt(N, S, law) })));
    const files = {
      obj: JSON.stringify({ points: pts }, null, 2),
      arr: JSON.stringify(pts, null, 2),
      lines: pts.map((p) => JSON.stringify(p)).join('\n'),
    };
    for (const [name, text] of Object.entries(files)) {
      writeFileSync(join(dir, `p-${name}.json`), text);
      const fit = JSON.parse(await run(['fit', '--points', join(dir, `p-${name}.json`), '--json']));
      expect(fit.points).toBe(12);
      expect(fit.law.alphaN).toBeCloseTo(0.1, 6);
    }
    writeFileSync(join(dir, 'p-bad.json'), '{"N": 1,\n "S": oops}');
    await expect(run(['fit', '--points', join(dir, 'p-bad.json')])).rejects.toThrow(/neither one JSON value [\s\S]* nor JSON lines/);
  });
});

describe('9. numbers: the unit is chosen after rounding', () => {
  test('fmtCount and fmtFlops', () => {
    expect(fmtCount(999.96e6)).toBe('1.00B');
    expect(fmtCount(999.4e6)).toBe('999M');
    expect(fmtCount(999.7)).toBe('1.00k');
    expect(fmtCount(23200)).toBe('23.2k');
    expect(fmtCount(0.000311)).toBe('0.000311');
    expect(fmtCount(2e15)).toBe('2.00e+15');
    expect(fmtFlops(999.999e18)).toBe('1.00 ZFLOP');
    expect(fmtFlops(999.994e18)).toBe('999.99 EFLOP');
    expect(fmtFlops(999.996)).toBe('1.00 KFLOP');
    expect(fmtFlops(950)).toBe('950.00 FLOP');
    expect(fmtFlops(2.17e19)).toBe('21.70 EFLOP');
    expect(fmtFlops(3e26)).toBe('300.00 YFLOP');
    expect(fmtFlops(999.999e24)).toBe('1.00e+27 FLOP');
  });

  test('plan --target-loss 5.13 --stages 1 shows 1.00B tokens', async () => {
    const out = await run(['plan', '--target-loss', '5.13', '--stages', '1']);
    expect(out).not.toMatch(/e\+3[kMBT]/);
    expect(out).toMatch(/11\.5k\s+1\.00B\s/);
  });
});

describe('10. degenerate plans', () => {
  test('a final size above the one-stage optimum whose final stage would not train is refused', async () => {
    for (const stages of ['2', '3'])
      await expect(run(['plan', '--target-loss', '3', '--final-size', '1e12', '--stages', stages])).rejects.toThrow(
        /final stage would train 0 steps .*above the one-stage optimum 1\.626e\+8/,
      );
  });

  test('a final size above the optimum that does train: a note on what the saving compares', async () => {
    const out = await run(['plan', '--target-loss', '3', '--final-size', '3e8']);
    expect(out).toMatch(/note: the final size 3\.000e\+8 is above the one-stage optimum 1\.626e\+8/);
  });

  test('growth factors are only the given ones (no folded ×64)', () => {
    for (const stages of [2, 3, 4])
      for (const finalSize of ['optimal', 'free', 3e8] as const) {
        const p = planStages({ targetLoss: 3, stages, factors: { kind: 'set', values: [2, 4, 8] }, finalSize });
        for (const s of p.stages.slice(1)) expect([2, 4, 8].some((f) => Math.abs((s.factor as number) / f - 1) < 1e-9)).toBe(true);
        expect(p.stages.every((s) => s.steps > 0 || s.empty)).toBe(true);
      }
  });

  test('free final size: growths that would train 0 steps are left out, with a note', () => {
    const p = planStages({ targetLoss: 3, stages: 4, factors: { kind: 'set', values: [64] }, finalSize: 'free' });
    expect(p.stages).toHaveLength(3);
    expect(p.stages.every((s) => !s.empty && s.steps > 1000)).toBe(true);
    expect(p.notes.join('\n')).toMatch(/the best plan has 3 stages, not 4/);
    expect(p.sameSizeSingleStage.params).toBe(p.stages[2].params);
  });

  test('×1 stages (--factor-range 1:1.0000001) are one stage, said so', async () => {
    const out = await run(['plan', '--target-loss', '3', '--factor-range', '1:1.0000001', '--stages', '3']);
    expect(out).toMatch(/, 1 stage,/);
    expect(out).not.toMatch(/0\.000311/);
    expect(out).toMatch(/note: stages 1–3 of the 3-stage search have one size \(growth ×1 is no growth\)/);
    expect(out).toMatch(/saving 0\.0%/);
  });
});

describe('11. argument errors name the argument; points are numbered from 1', () => {
  test('--run FILE:1e, FILE:0', async () => {
    await expect(run(['fit', '--run', 'x.jsonl:1e'])).rejects.toThrow(/--run 'x\.jsonl:1e': N must be a positive number .*got '1e'/);
    await expect(run(['fit', '--run', 'x.jsonl:0'])).rejects.toThrow(/--run 'x\.jsonl:0': N must be a positive number/);
  });

  test('a point without S: numbered from 1, with its source', async () => {
    const f = join(dir, 'nos.json');
    writeFileSync(
      f,
      JSON.stringify([1, 2, 3, 4, 5, 6].map((i) => (i === 2 ? { N: 1e6, tokens: 100, L: 4 } : { N: 1e6 * i, S: 100 * i, L: 4 }))),
    );
    await expect(run(['fit', '--points', f])).rejects.toThrow(new RegExp(`fit: point 2 of --points .*nos\\.json has neither S nor tokens`));
    // numbered in the file, not in what --min-steps keeps (point 1, at step 100, is left out)
    await expect(run(['fit', '--points', f, '--min-steps', '150'])).rejects.toThrow(
      new RegExp(`fit: point 2 of --points .*nos\\.json has neither S nor tokens`),
    );
  });
});

describe('12. slope --help on the x smoothing', () => {
  test('says what the default does and that none is the spec’s literal σ', () => {
    const program = new Command();
    registerSlope(program);
    const help = program.commands.find((c) => c.name() === 'slope')?.helpInformation() ?? '';
    const flat = help.replace(/\s+/g, ' ');
    expect(flat).toMatch(/mean \(the default, as the trainer\): log10 compute averaged over the window/);
    expect(flat).toMatch(/none: .*the spec's literal recipe/);
  });
});
