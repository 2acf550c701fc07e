// A small seeded PRNG in TypeScript, so batch sampling is reproducible across platforms and
// libtorch versions, and its whole state is four numbers that a checkpoint can store.
// xoshiro128** (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c) on 32-bit
// integer arithmetic, seeded by splitmix32 as the authors recommend.

/** The complete generator state: JSON-serializable, restored exactly by Xoshiro128.fromState. */
export interface RngState {
  algorithm: 'xoshiro128**';
  s: [number, number, number, number];
}

const TWO_32 = 2 ** 32;
const TWO_53 = 2 ** 53;

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

export class Xoshiro128 {
  private s: Uint32Array;

  private constructor(s: ArrayLike<number>) {
    this.s = Uint32Array.from(s);
  }

  /** A generator seeded from any non-negative safe integer; equal seeds give equal streams. */
  static fromSeed(seed: number): Xoshiro128 {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new TypeError(`Expected a non-negative safe integer for seed but received ${seed}`);
    // fold the high bits in, so a seed above 2^32 differs from its own low 32 bits (the state is 32
    // bits: 2^32 streams, so some pairs of seeds share one, 0 and 6949403057 say)
    let x = (seed >>> 0) ^ Math.imul(Math.floor(seed / TWO_32), 0x9e3779b1);
    const splitmix32 = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    return new Xoshiro128([splitmix32(), splitmix32(), splitmix32(), splitmix32()]);
  }

  static fromState(state: RngState): Xoshiro128 {
    const s = state.s;
    if (state.algorithm !== 'xoshiro128**' || s.length !== 4 || !s.every((v) => Number.isInteger(v) && v >= 0 && v < TWO_32)) {
      throw new TypeError(`Expected an xoshiro128** state of four uint32 but received ${JSON.stringify(state)}`);
    }
    // the all-zero state is a fixed point that would only ever produce 0
    if (s.every((v) => v === 0)) throw new TypeError('Expected an xoshiro128** state that is not all zero');
    return new Xoshiro128(s);
  }

  state(): RngState {
    return { algorithm: 'xoshiro128**', s: [this.s[0], this.s[1], this.s[2], this.s[3]] };
  }

  /** The next uniform uint32. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** An integer uniform in [0, n), without modulo bias (rejection sampling); n ≤ 2^53. */
  nextInt(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) throw new TypeError(`Expected a positive safe integer for n but received ${n}`);
    const range = n <= TWO_32 ? TWO_32 : TWO_53;
    const limit = range - (range % n);
    for (;;) {
      const x = range === TWO_32 ? this.nextUint32() : (this.nextUint32() >>> 5) * 2 ** 26 + (this.nextUint32() >>> 6);
      if (x < limit) return x % n;
    }
  }
}
