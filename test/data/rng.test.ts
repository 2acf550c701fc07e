import { Xoshiro128 } from '../../lib/data';

describe('Xoshiro128 (xoshiro128**)', () => {
  test('matches the reference C implementation from state {1, 2, 3, 4}', () => {
    // outputs 1–6 and 1001 of prng.di.unimi.it/xoshiro128starstar.c, compiled and run with this state
    const g = Xoshiro128.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 4] });
    expect(Array.from({ length: 6 }, () => g.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
    for (let i = 0; i < 994; i++) g.nextUint32();
    expect(g.nextUint32()).toBe(136054147);
  });

  test('equal seeds give equal streams, different seeds different ones; large seeds use their high bits', () => {
    const take = (seed: number) => {
      const g = Xoshiro128.fromSeed(seed);
      return Array.from({ length: 8 }, () => g.nextUint32());
    };
    expect(take(42)).toEqual(take(42));
    expect(take(42)).not.toEqual(take(43));
    expect(take(2 ** 32 + 7)).not.toEqual(take(7));
  });

  test('state() restores exactly, through JSON', () => {
    const g = Xoshiro128.fromSeed(5);
    g.nextUint32();
    const saved = JSON.parse(JSON.stringify(g.state()));
    const a = Array.from({ length: 5 }, () => g.nextInt(1000));
    const h = Xoshiro128.fromState(saved);
    expect(Array.from({ length: 5 }, () => h.nextInt(1000))).toEqual(a);
  });

  test('nextInt stays in range and reaches every value, also above 2^32', () => {
    const g = Xoshiro128.fromSeed(1);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = g.nextInt(7);
      expect(v >= 0 && v < 7 && Number.isInteger(v)).toBe(true);
      seen.add(v);
    }
    expect(seen.size).toBe(7);
    const big = 3 * 2 ** 40 + 1;
    let max = 0;
    for (let i = 0; i < 200; i++) {
      const v = g.nextInt(big);
      expect(v >= 0 && v < big && Number.isInteger(v)).toBe(true);
      max = Math.max(max, v);
    }
    expect(max).toBeGreaterThan(2 ** 32); // the high bits are used
  });

  test('bad seeds and states are rejected with the value', () => {
    expect(() => Xoshiro128.fromSeed(-1)).toThrow(/seed but received -1/);
    expect(() => Xoshiro128.fromSeed(1.5)).toThrow(TypeError);
    expect(() => Xoshiro128.fromState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] })).toThrow(/not all zero/);
    expect(() => Xoshiro128.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 2 ** 32] })).toThrow(/four uint32/);
    expect(() => Xoshiro128.fromSeed(1).nextInt(0)).toThrow(/positive safe integer for n/);
  });
});
