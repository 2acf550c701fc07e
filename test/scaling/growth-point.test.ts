// The optimal growth point between N and r·N (../shared/spec/schedule.md, "The three points").
import { KAPLAN, curveSlope, optimalGrowthPoint, stepsToLoss } from '../../lib/scaling';

describe('optimal growth point', () => {
  test('×2: σ_pre = −0.0598, S_pre/S_target = 1.580; ×4: −0.0519, 2.493 (B = Bcrit(L) along the curve)', () => {
    const two = optimalGrowthPoint(1e8, 2);
    expect(two.sigmaPre).toBeCloseTo(-0.0598, 4);
    expect(two.stepRatio).toBeCloseTo(1.58, 3);
    const four = optimalGrowthPoint(1e8, 4);
    expect(four.sigmaPre).toBeCloseTo(-0.0519, 4);
    expect(four.stepRatio).toBeCloseTo(2.493, 3);
    const eight = optimalGrowthPoint(1e8, 8);
    expect(eight.sigmaPre).toBeCloseTo(-0.0444, 4);
    expect(eight.stepRatio).toBeCloseTo(3.924, 3);
  });

  test('scale-free: the same σ and ratio for N = 1e6 … 1e10 to 3 decimals (and far better)', () => {
    for (const r of [2, 4, 8]) {
      const ref = optimalGrowthPoint(1e8, r);
      for (const N of [1e6, 1e7, 1e9, 1e10]) {
        const p = optimalGrowthPoint(N, r);
        expect(p.sigmaPre.toFixed(3)).toBe(ref.sigmaPre.toFixed(3));
        expect(p.stepRatio.toFixed(3)).toBe(ref.stepRatio.toFixed(3));
        expect(Math.abs(p.sigmaPre - ref.sigmaPre)).toBeLessThan(1e-9);
        expect(Math.abs(p.stepRatio / ref.stepRatio - 1)).toBeLessThan(1e-9);
      }
    }
  });

  test('the point satisfies dL/dC(small) = dL/dC(large) at the same loss, and its fields are consistent', () => {
    const p = optimalGrowthPoint(3e7, 2);
    const dCdL = (N: number) => {
      const h = 1e-6 * p.loss;
      const C = (L: number) => 6 * N * (KAPLAN.Bstar / Math.pow(L, 1 / KAPLAN.alphaB)) * stepsToLoss(N, L);
      return (C(p.loss + h) - C(p.loss - h)) / (2 * h);
    };
    expect(dCdL(p.nSmall) / dCdL(p.nLarge)).toBeCloseTo(1, 6);
    expect(p.sPre).toBeCloseTo(stepsToLoss(p.nSmall, p.loss), 6);
    expect(p.sTarget).toBeCloseTo(stepsToLoss(p.nLarge, p.loss), 6);
    expect(p.sigmaPre).toBeCloseTo(curveSlope(p.nSmall, p.loss), 12);
    expect(p.sigmaTarget).toBeLessThan(p.sigmaPre); // the large model is steeper at the same loss
  });

  test('with one fixed batch the condition gives other numbers (the planner’s growth points)', () => {
    const p = optimalGrowthPoint(1e8, 2, { batch: 'fixed' });
    // closed form: (L − u_s)/(L − u_l) = r^(−αS/(1+αS)) ⇒ S_pre/S_target = r^(1/(1+αS))
    expect(p.stepRatio).toBeCloseTo(Math.pow(2, 1 / 1.76), 9);
    expect(p.sigmaPre).toBeCloseTo(-0.0974, 4);
  });

  test('rejects factors ≤ 1', () => {
    expect(() => optimalGrowthPoint(1e8, 1)).toThrow(/factor/);
  });
});
