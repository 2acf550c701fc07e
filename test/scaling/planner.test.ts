// The multi-stage planner (../shared/spec/schedule.md, "The planner") and its reference numbers.
import {
  KAPLAN,
  criticalBatch,
  lossAt,
  optimalGrowthPoint,
  optimiseGrowthLosses,
  planFlops,
  planStages,
  singleStageOptimum,
  stepsToLoss,
  type Plan,
} from '../../lib/scaling';
import { fmtFlops } from '../../lib/cli/common';

const ratio = (L: number, stages: number, factors: Parameters<typeof planStages>[0]['factors']) =>
  planStages({ targetLoss: L, stages, factors }).computeRatio;

describe('planner reference numbers', () => {
  test('one stage recovers the single-stage optimum (N = 1.63e8, S = 23.2k, 0.294 PF-days)', () => {
    const p = planStages({ targetLoss: 3.0, stages: 1 });
    const o = singleStageOptimum(3.0);
    expect(p.stages).toHaveLength(1);
    expect(p.stages[0].params).toBeCloseTo(o.params, 0);
    expect(p.stages[0].params / 1.63e8).toBeCloseTo(1, 2);
    expect(p.stages[0].steps / 1000).toBeCloseTo(23.2, 1);
    expect(p.totalPfDays).toBeCloseTo(0.294, 3);
    expect(p.computeRatio).toBeCloseTo(1, 12);
    expect(p.saving).toBeCloseTo(0, 12);
  });

  test('one stage with a free final size finds the optimum by itself', () => {
    const p = planStages({ targetLoss: 3.0, stages: 1, finalSize: 'free' });
    expect(p.stages[0].params / singleStageOptimum(3.0).params).toBeCloseTo(1, 5);
    expect(p.computeRatio).toBeCloseTo(1, 9);
  });

  for (const L of [3.0, 2.5]) {
    test(`L = ${L}: one ×2 growth → 0.902, one ×4 growth → 0.863`, () => {
      expect(Math.abs(ratio(L, 2, { kind: 'set', values: [2] }) - 0.902)).toBeLessThan(0.002);
      expect(Math.abs(ratio(L, 2, { kind: 'set', values: [4] }) - 0.863)).toBeLessThan(0.002);
    });

    test(`L = ${L}: three stages → 0.833 (×4, ×4 with the depth/width factors {2, 4}); four unconstrained → 0.823`, () => {
      const three = planStages({ targetLoss: L, stages: 3, factors: { kind: 'set', values: [2, 4] } });
      expect(Math.abs(three.computeRatio - 0.833)).toBeLessThan(0.002);
      expect(three.stages.map((s) => s.factor)).toEqual([null, 4, 4]);
      // with the 'both' operator (×8) available it does a little better
      expect(ratio(L, 3, { kind: 'set', values: [2, 4, 8] })).toBeLessThan(three.computeRatio);
      const four = planStages({ targetLoss: L, stages: 4, factors: { kind: 'range', min: 1, max: 1000 } });
      expect(Math.abs(four.computeRatio - 0.823)).toBeLessThan(0.002);
      expect(four.stages).toHaveLength(4);
    });
  }

  test('scale-free: the same ratios at L = 3.0 and 2.5', () => {
    for (const values of [[2], [4], [8], [2, 4, 8]])
      expect(ratio(3.0, 3, { kind: 'set', values })).toBeCloseTo(ratio(2.5, 3, { kind: 'set', values }), 7);
  });

  test('more stages never cost more', () => {
    const r = [1, 2, 3, 4].map((K) => ratio(3.0, K, { kind: 'set', values: [2, 4, 8] }));
    for (let i = 1; i < r.length; i++) expect(r[i]).toBeLessThanOrEqual(r[i - 1] + 1e-12);
  });
});

function checkChain(p: Plan): void {
  const L = p.targetLoss;
  p.stages.forEach((s, i) => {
    expect(s.index).toBe(i + 1);
    if (i === 0) {
      expect(s.startLoss).toBeNull();
      expect(s.startStep).toBe(0);
      expect(s.factor).toBeNull();
    } else {
      const prev = p.stages[i - 1];
      expect(s.startLoss).toBe(prev.endLoss);
      expect(s.params).toBeGreaterThanOrEqual(prev.params);
      expect(s.factor).toBeCloseTo(s.params / prev.params, 9);
      // perfect dynamics preservation: the stage starts where its size reaches the start loss from scratch
      expect(s.startStep).toBeCloseTo(stepsToLoss(s.params, s.startLoss as number, p.law), 6);
      expect(lossAt(s.params, s.startStep, p.law)).toBeCloseTo(s.startLoss as number, 10);
    }
    expect(lossAt(s.params, s.startStep + s.steps, p.law)).toBeCloseTo(s.endLoss, 10);
    expect(s.tokens).toBeCloseTo(s.batchTokens * s.steps, 0);
    expect(s.flops / (6 * s.params * s.batchTokens * s.steps)).toBeCloseTo(1, 12);
    expect(s.pfDays).toBeCloseTo(s.flops / 8.64e19, 12);
  });
  expect(p.stages[p.stages.length - 1].endLoss).toBe(L);
  expect(p.totalFlops / p.stages.reduce((a, s) => a + s.flops, 0)).toBeCloseTo(1, 12);
  expect(p.saving).toBeCloseTo(1 - p.computeRatio, 12);
}

describe('planner mechanics', () => {
  test('stages chain: S_eff, end losses, tokens, FLOPs, totals', () => {
    for (const p of [
      planStages({ targetLoss: 3.0, stages: 4 }),
      planStages({ targetLoss: 2.5, stages: 3, factors: { kind: 'range', min: 1.5, max: 6 } }),
      planStages({ targetLoss: 3.0, stages: 3, batch: 'per-stage' }),
    ])
      checkChain(p);
  });

  test('the growth loss of a ×2 plan is the fixed-batch optimal growth point', () => {
    const p = planStages({ targetLoss: 3.0, stages: 2, factors: { kind: 'set', values: [2] } });
    const g = optimalGrowthPoint(p.stages[0].params, 2, { batch: 'fixed' });
    expect(p.stages[0].endLoss).toBeCloseTo(g.loss, 9);
  });

  test('the closed form of the growth losses equals the coordinate-descent search', () => {
    const N = singleStageOptimum(3.0).params;
    for (const sizes of [
      [N / 2, N],
      [N / 8, N / 2, N],
      [N / 64, N / 16, N / 4, N],
      [N / 3.3, N / 1.7, N],
      // out-of-order pairwise optima: the pooled (zero-length middle stage) solution
      [N / 8, N / 8, N],
      [N / 64, N / 1.01, N],
      [N / 4, N / 2, N / 2, N],
      [N / 1000, N / 900, N / 3, N],
    ]) {
      const closed = optimiseGrowthLosses(sizes, 3.0, KAPLAN, 'target');
      const search = optimiseGrowthLosses(sizes, 3.0, KAPLAN, 'target', { closedForm: false });
      expect(search.flops / closed.flops).toBeCloseTo(1, 9);
      // and it is a minimum: moving any growth loss (where the order allows) costs more
      closed.losses.forEach((_, i) => {
        for (const d of [-1e-3, 1e-3]) {
          const moved = closed.losses.slice();
          moved[i] += d;
          expect(planFlops(sizes, moved, 3.0, KAPLAN, 'target')).toBeGreaterThanOrEqual(closed.flops);
        }
      });
    }
  });

  test('a growth that cannot pay off gives a one-stage plan (zero-length stages are folded)', () => {
    // factor 1.0001 barely changes the size: the optimum is (nearly) not to use the small stage
    const p = planStages({ targetLoss: 3.0, stages: 2, factors: { kind: 'set', values: [1.0001] } });
    expect(p.computeRatio).toBeLessThanOrEqual(1 + 1e-9);
    checkChain(p);
  });

  test('per-stage batches: how much of the saving raising the batch alone gives (2 stages of one size, brute force)', () => {
    const per = planStages({ targetLoss: 3.0, stages: 2, batch: 'per-stage' });
    const N = per.stages[1].params;
    // one size N in two stages, the first ending at loss l: 6·N·[Bcrit(l)·S(l) + Bcrit(3)·(S(3) − S(l))]
    const flops = (l: number) =>
      6 * N * (criticalBatch(l) * stepsToLoss(N, l) + criticalBatch(3) * (stepsToLoss(N, 3) - stepsToLoss(N, l)));
    let best = Infinity;
    for (let l = 3.0001; l < 8; l += 1e-4) best = Math.min(best, flops(l));
    const expected = 1 - best / singleStageOptimum(3.0).flops;
    expect(per.batchOnlySaving as number).toBeCloseTo(expected, 4);
    expect(per.batchOnlySaving as number).toBeGreaterThan(0.1);
    expect(per.batchOnlySaving as number).toBeLessThan(per.saving);
    expect(per.notes).toContainEqual(expect.stringMatching(/2 stages of the final size, raising the batch alone, save 1\d\.\d%/));
    expect(planStages({ targetLoss: 3.0, stages: 2 }).batchOnlySaving).toBeNull();
  });

  test('per-stage batches: every stage at Bcrit of its end loss (cheaper early stages)', () => {
    const target = planStages({ targetLoss: 3.0, stages: 3 });
    const per = planStages({ targetLoss: 3.0, stages: 3, batch: 'per-stage' });
    per.stages.forEach((s) => expect(s.batchTokens / criticalBatch(s.endLoss)).toBeCloseTo(1, 12));
    expect(per.stages[per.stages.length - 1].batchTokens / criticalBatch(3.0)).toBeCloseTo(1, 12);
    expect(per.computeRatio).toBeLessThan(target.computeRatio);
    // the searched growth losses are a minimum of the per-stage objective
    const sizes = per.stages.map((st) => st.params);
    const best = optimiseGrowthLosses(sizes, 3.0, KAPLAN, 'per-stage');
    expect(best.flops / per.totalFlops).toBeCloseTo(1, 9);
    best.losses.forEach((_, i) => {
      for (const d of [-1e-4, 1e-4]) {
        const moved = best.losses.slice();
        moved[i] += d;
        expect(planFlops(sizes, moved, 3.0, KAPLAN, 'per-stage')).toBeGreaterThanOrEqual(best.flops);
      }
    });
    // from a poor start the search ends at the same plan
    expect(optimiseGrowthLosses(sizes, 3.0, KAPLAN, 'per-stage', { closedForm: false }).flops / best.flops).toBeCloseTo(1, 9);
  });

  test('a given final size and a free final size', () => {
    const N = 3e8;
    const p = planStages({ targetLoss: 3.0, stages: 2, finalSize: N });
    expect(p.stages[p.stages.length - 1].params).toBe(N);
    expect(p.sameSizeSingleStage.params).toBe(N);
    const free = planStages({ targetLoss: 3.0, stages: 2, finalSize: 'free' });
    const fixed = planStages({ targetLoss: 3.0, stages: 2 });
    expect(free.totalFlops).toBeLessThanOrEqual(fixed.totalFlops * (1 + 1e-9));
  });

  test('errors: an unreachable target, bad options', () => {
    expect(() => planStages({ targetLoss: 3.0, finalSize: 1e6 })).toThrow(/cannot reach loss 3/);
    expect(() => planStages({ targetLoss: -1 })).toThrow(/targetLoss/);
    expect(() => planStages({ targetLoss: 3, factors: { kind: 'range', min: 4, max: 2 } })).toThrow(/max/);
    expect(() => planStages({ targetLoss: 3, stages: 0 })).toThrow(/stages/);
  });

  test('a fitted (non-Kaplan) law plans too', () => {
    const law = { Nc: 2e12, alphaN: 0.1, Sc: 5e3, alphaS: 0.65, Bstar: 2.1e8, alphaB: 0.21 };
    const p = planStages({ targetLoss: 3.5, stages: 3, law });
    checkChain(p);
    expect(p.computeRatio).toBeLessThan(1);
    expect(p.singleStage.params).toBeCloseTo(singleStageOptimum(3.5, law).params, 0);
  });
});

describe('planner inputs', () => {
  test('a target loss whose model would be below 1e3 or above 1e14 parameters is refused, naming the size', () => {
    expect(() => planStages({ targetLoss: 100, stages: 2 })).toThrow(/target loss 100 asks for a [\d.]+e-\d+-parameter model/);
    expect(() => planStages({ targetLoss: 0.01, stages: 2 })).toThrow(/target loss 0\.01 asks for a [\d.]+e\+\d+-parameter model/);
  });

  test('FLOP counts print with SI prefixes up to Y, then in exponent form', () => {
    expect(fmtFlops(950)).toBe('950.00 FLOP');
    expect(fmtFlops(2.17e19)).toBe('21.70 EFLOP');
    expect(fmtFlops(3e26)).toBe('300.00 YFLOP');
    expect(fmtFlops(1.1426750191941872e48)).toBe('1.14e+48 FLOP');
  });
});
