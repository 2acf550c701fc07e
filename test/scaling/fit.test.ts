// Fitting (Nc, αN, Sc, αS) to validation curves (../shared/spec/schedule.md, "Own scaling laws").
import { fitScalingLaw, lossAt, type FitPoint, type ScalingLaw } from '../../lib/scaling';

/** Deterministic uniform [0, 1) generator (mulberry32) and a standard normal from it. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TRUTH: ScalingLaw = { Nc: 2e12, alphaN: 0.1, Sc: 5e3, alphaS: 0.65, Bstar: 2.1e8, alphaB: 0.21 };

function curves(law: ScalingLaw, noise: number, seed: number): FitPoint[] {
  const u = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const pts: FitPoint[] = [];
  for (const N of [1e5, 1e6, 1e7, 1e8, 1e9])
    for (let i = 0; i < 40; i++) {
      const S = 100 * Math.pow(10, (i * 3) / 39);
      pts.push({ N, S, L: lossAt(N, S, law) * (1 + noise * gauss()) });
    }
  return pts;
}

describe('scaling-law fit', () => {
  test('exact curves: the constants are recovered to high precision', () => {
    const r = fitScalingLaw(curves(TRUTH, 0, 1));
    expect(r.law.Nc / TRUTH.Nc).toBeCloseTo(1, 5);
    expect(r.law.alphaN / TRUTH.alphaN).toBeCloseTo(1, 6);
    expect(r.law.Sc / TRUTH.Sc).toBeCloseTo(1, 6);
    expect(r.law.alphaS / TRUTH.alphaS).toBeCloseTo(1, 6);
    expect(r.rmsRelativeError).toBeLessThan(1e-8);
    expect(r.converged).toBe(true);
  });

  test('0.5% multiplicative noise: constants within a few percent, fit error ≈ the noise', () => {
    const r = fitScalingLaw(curves(TRUTH, 0.005, 7));
    expect(Math.abs(r.law.Nc / TRUTH.Nc - 1)).toBeLessThan(0.05);
    expect(Math.abs(r.law.alphaN / TRUTH.alphaN - 1)).toBeLessThan(0.02);
    expect(Math.abs(r.law.Sc / TRUTH.Sc - 1)).toBeLessThan(0.02);
    expect(Math.abs(r.law.alphaS / TRUTH.alphaS - 1)).toBeLessThan(0.02);
    expect(r.rmsRelativeError).toBeGreaterThan(0.004);
    expect(r.rmsRelativeError).toBeLessThan(0.006);
    expect(r.maxRelativeError).toBeLessThan(0.025);
    expect(r.points).toBe(200);
    expect(r.law.Bstar).toBe(2.1e8);
  });

  test('the Kaplan constants from a few small runs given in tokens', () => {
    const kaplan: ScalingLaw = { Nc: 8.8e13, alphaN: 0.076, Sc: 2.1e3, alphaS: 0.76, Bstar: 2.1e8, alphaB: 0.21 };
    const B = 5e5;
    const pts = curves(kaplan, 0.002, 3).map((p) => ({ N: p.N, tokens: (p.S as number) * B, L: p.L }));
    const r = fitScalingLaw(pts, { batchTokens: B, Bstar: 1e8, alphaB: 0.3 });
    expect(Math.abs(r.law.alphaN / 0.076 - 1)).toBeLessThan(0.02);
    expect(Math.abs(r.law.alphaS / 0.76 - 1)).toBeLessThan(0.02);
    expect(Math.abs(r.law.Sc / 2.1e3 - 1)).toBeLessThan(0.03);
    expect(Math.abs(Math.log(r.law.Nc / 8.8e13))).toBeLessThan(0.1);
    expect(r.law.Bstar).toBe(1e8);
    expect(r.law.alphaB).toBe(0.3);
  });

  test('errors: too few points, one size, missing steps', () => {
    expect(() => fitScalingLaw(curves(TRUTH, 0, 1).slice(0, 4))).toThrow(/at least 5 points/);
    expect(() => fitScalingLaw(curves(TRUTH, 0, 1).filter((p) => p.N === 1e6))).toThrow(/2 different sizes/);
    expect(() => fitScalingLaw([...curves(TRUTH, 0, 1), { N: 1e6, tokens: 5, L: 3 }])).toThrow(/neither S nor tokens/);
    expect(() => fitScalingLaw([...curves(TRUTH, 0, 1), { N: 1e6, S: 5, L: -3 }])).toThrow(/L must be positive/);
  });

  test('runs of nearly the same size do not determine the law: refused, not a law with Nc = Infinity', () => {
    // the larger of two sizes 1% apart has the higher loss: the best fit sends αN to 0, Nc to infinity
    const pts = curves(TRUTH, 0, 1)
      .filter((p) => p.N === 1e6)
      .flatMap((p) => [p, { ...p, N: 1.01e6, L: p.L * 1.05 }]);
    expect(() => fitScalingLaw(pts)).toThrow(/fit: these points do not determine the law \(.*\): the runs span a factor 1\.01 in size/);
  });
});
