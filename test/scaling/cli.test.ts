// `staged-lm plan`, `fit` and `slope`, run in-process on a Commander program with only these commands.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lossAt } from '../../lib/scaling';

import { runScalingCli } from './run-cli';
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'scaling-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runScalingCli;

/** A law curve as metrics.jsonl records (a fixed batch of 5e5 tokens), with train records in between. */
function metricsLog(N: number, maxStep: number): string {
  const lines: string[] = [];
  for (let s = 50; s <= maxStep; s += 50) {
    const rec = { step: s, tokens: s * 5e5, flops: 6 * N * 5e5 * s, loss: lossAt(N, s) + 0.01, lr: 1e-3, gradNorm: 1 };
    lines.push(JSON.stringify(s % 100 === 0 ? { ...rec, valLoss: lossAt(N, s) } : rec));
  }
  lines.splice(10, 0, JSON.stringify({ event: 'interrupt', step: 250 }));
  return lines.join('\n') + '\n';
}

describe('staged-lm plan', () => {
  test('--json: the stages and the saving against one stage', async () => {
    const one = JSON.parse(await run(['plan', '--target-loss', '3', '--stages', '1', '--json']));
    expect(one.stages).toHaveLength(1);
    expect(one.stages[0].params / 1.63e8).toBeCloseTo(1, 2);
    expect(one.totalPfDays).toBeCloseTo(0.294, 3);
    expect(one.lawSource).toBe('kaplan');
    const two = JSON.parse(await run(['plan', '--target-loss', '3', '--factors', '2', '--json']));
    expect(Math.abs(two.computeRatio - 0.902)).toBeLessThan(0.002);
    expect(two.stages.map((s: { factor: number | null }) => s.factor)).toEqual([null, 2]);
    const four = JSON.parse(await run(['plan', '--target-loss', '2.5', '--stages', '4', '--free-factors', '--json']));
    expect(Math.abs(four.computeRatio - 0.823)).toBeLessThan(0.002);
  });

  test('human output: a stage table, the single stage and the saving', async () => {
    const out = await run(['plan', '--target-loss', '3.0', '--stages', '3']);
    expect(out).toMatch(/^target loss 3 \(law: kaplan\), 3 stages/);
    expect(out).toMatch(/stage\s+params\s+growth/);
    expect(out).toMatch(/scratch → /);
    expect(out).toMatch(/single stage: N = 1\.626e\+8, 23\.2k steps/);
    expect(out).toMatch(/saving 16\.9%/);
  });

  test('usage errors', async () => {
    await expect(run(['plan'])).rejects.toThrow(/target-loss/);
    await expect(run(['plan', '--target-loss', '-3'])).rejects.toThrow(/positive number/);
    await expect(run(['plan', '--target-loss', '3', '--stages', '9'])).rejects.toThrow(/at most 8/);
    await expect(run(['plan', '--target-loss', '3', '--factors', '2,1'])).rejects.toThrow(/numbers > 1/);
    await expect(run(['plan', '--target-loss', '3', '--factors', '2', '--free-factors'])).rejects.toThrow(/only one of/);
    await expect(run(['plan', '--target-loss', '3', '--law', join(dir, 'missing.json')])).rejects.toThrow(/cannot read law file/);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ Nc: 1 }));
    await expect(run(['plan', '--target-loss', '3', '--law', join(dir, 'bad.json')])).rejects.toThrow(/alphaN/);
  });
});

describe('staged-lm fit → plan --law', () => {
  test('fits runs and points, writes a law file that plan reads', async () => {
    const law = { Nc: 2e12, alphaN: 0.1, Sc: 5e3, alphaS: 0.65, Bstar: 2.1e8, alphaB: 0.21 };
    const runs: string[] = [];
    for (const N of [1e5, 1e6, 1e7]) {
      const lines: string[] = [];
      for (let i = 0; i < 30; i++) {
        const S = Math.round(100 * Math.pow(10, (i * 3) / 29));
        lines.push(JSON.stringify({ step: S, tokens: S, flops: S, loss: 5, lr: 1e-3, gradNorm: 1, valLoss: lossAt(N, S, law) }));
      }
      writeFileSync(join(dir, `run-${N}.jsonl`), lines.join('\n') + '\n');
      runs.push('--run', `${join(dir, `run-${N}.jsonl`)}:${N}`);
    }
    const pts = [1e8, 1e9].flatMap((N) => [300, 3000, 30000].map((S) => ({ N, S, L: lossAt(N, S, law) })));
    writeFileSync(join(dir, 'points.json'), JSON.stringify(pts));
    const lawFile = join(dir, 'law.json');
    const fit = JSON.parse(await run(['fit', ...runs, '--points', join(dir, 'points.json'), '--out', lawFile, '--json']));
    expect(fit.points).toBe(96);
    expect(fit.law.alphaN).toBeCloseTo(0.1, 6);
    expect(fit.law.alphaS).toBeCloseTo(0.65, 6);
    expect(fit.rmsRelativeError).toBeLessThan(1e-8);
    const human = await run(['fit', '--points', join(dir, 'points.json'), ...runs]);
    expect(human).toMatch(/fitted on 96 points: Nc = 2\.0000e\+12, αN = 0\.1000/);
    const plan = JSON.parse(await run(['plan', '--target-loss', '3.5', '--law', lawFile, '--json']));
    expect(plan.lawSource).toBe(lawFile);
    expect(plan.law.Nc / 2e12).toBeCloseTo(1, 5);
    expect(plan.computeRatio).toBeLessThan(1);
    await expect(run(['fit'])).rejects.toThrow(/--points FILE and\/or --run/);
    await expect(run(['fit', '--run', 'x.jsonl'])).rejects.toThrow(/FILE:N/);
  });
});

describe('staged-lm slope', () => {
  test('metrics.jsonl: where to grow, S_target and the implied saving', async () => {
    const file = join(dir, 'metrics.jsonl');
    writeFileSync(file, metricsLog(1e7, 40000));
    const r = JSON.parse(await run(['slope', '--log', file, '--json']));
    expect(r.reached).toBe(true);
    expect(r.points).toBe(400);
    expect(Math.abs(r.step - 22858)).toBeLessThanOrEqual(500);
    expect(r.sTarget).toBeCloseTo(r.step / 1.412, 6);
    expect(r.saving).toBeGreaterThan(0);
    const human = await run(['slope', '--log', file, '--op', 'depth', '--final-steps', '100000']);
    expect(human).toMatch(/grow at step \d+: val loss \d\.\d{4}, σ = -0\.05\d\d/);
    expect(human).toMatch(/S_target = S_pre \/ c_op = \d+ \/ 1\.412 = \d+/);
    expect(human).toMatch(/implied saving \d+\.\d% = \(S_target − S_pre\/2\) \/ S_opt, S_opt = 100000 \(given\)/);
    const width = JSON.parse(await run(['slope', '--log', file, '--op', 'width', '--json']));
    expect(width.reached).toBe(true);
    expect(width.step).toBeGreaterThan(r.step);
    const notYet = await run(['slope', '--log', file, '--op', 'both']);
    expect(notYet).toMatch(/not reached: σ = -0\.0\d+ at the last point/);
  });

  test('TensorBoard CSV: needs --params and --tokens-per-step', async () => {
    const file = join(dir, 'val.csv');
    const rows = ['Wall time,Step,Value'];
    for (let s = 100; s <= 40000; s += 100) rows.push(`${1.7e9 + s},${s},${lossAt(1e7, s)}`);
    writeFileSync(file, rows.join('\n') + '\n');
    await expect(run(['slope', '--log', file])).rejects.toThrow(/give --params N .* and --tokens-per-step T/);
    const r = JSON.parse(await run(['slope', '--log', file, '--params', '1e7', '--tokens-per-step', '524288', '--json']));
    expect(r.reached).toBe(true);
    expect(r.compute).toBeCloseTo(6 * 1e7 * 524288 * r.step, -3);
    expect(Math.abs(r.step - 22858)).toBeLessThanOrEqual(500);
  });

  test('errors: missing file, empty log, bad options', async () => {
    await expect(run(['slope', '--log', join(dir, 'nope.jsonl')])).rejects.toThrow(/cannot read log/);
    writeFileSync(join(dir, 'empty.jsonl'), JSON.stringify({ step: 1, loss: 3 }) + '\n');
    await expect(run(['slope', '--log', join(dir, 'empty.jsonl')])).rejects.toThrow(/no validation points/);
    await expect(run(['slope', '--log', 'x', '--op', 'mlp'])).rejects.toThrow(/width, depth or both/);
    await expect(run(['slope', '--log', 'x', '--threshold', '0.1'])).rejects.toThrow(/negative number/);
    writeFileSync(join(dir, 'bad.csv'), 'a,b\n1,2\n');
    await expect(run(['slope', '--log', join(dir, 'bad.csv'), '--params', '1', '--tokens-per-step', '1'])).rejects.toThrow(
      /'Step' and 'Value'/,
    );
  });
});
