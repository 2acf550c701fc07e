import { cudaAvailable, tidy } from '../../lib';
import { BatchLoader, evalBatchCount, evalBatches, evalTailTokens, type Batch } from '../../lib/data';
import { itWhen, flat } from '../helpers';

// token i is i % 50000: every window of < 50000 tokens is identified by its first token
const data = Uint16Array.from({ length: 5000 }, (_, i) => i % 50000);

function rows(b: Batch): { x: number[][]; y: number[][] } {
  const [B, T] = b.x.shape;
  const split = (v: number[]) => Array.from({ length: B }, (_, r) => v.slice(r * T, (r + 1) * T));
  return { x: split(flat(b.x)), y: split(flat(b.y)) };
}

/** The x rows of n batches, as plain numbers. */
function draw(loader: BatchLoader, n: number): number[][][] {
  return Array.from({ length: n }, () => tidy(() => rows(loader.next()).x));
}

describe('BatchLoader', () => {
  test('x and y are int64 [B, T]; each row a contiguous window and y is x shifted by one', () => {
    const loader = new BatchLoader(data, { batchSize: 4, seqLen: 16, seed: 1 });
    tidy(() => {
      const b = loader.next();
      expect(b.x.shape).toEqual([4, 16]);
      expect(b.y.shape).toEqual([4, 16]);
      expect(b.x.dtype).toBe('int64');
      expect(b.y.dtype).toBe('int64');
      expect(b.x.device).toBe('cpu');
      const { x, y } = rows(b);
      for (let r = 0; r < 4; r++) {
        const start = x[r][0];
        expect(x[r]).toEqual(Array.from(data.subarray(start, start + 16)));
        expect(y[r]).toEqual(Array.from(data.subarray(start + 1, start + 17)));
      }
    });
    expect(loader.batches).toBe(1);
  });

  test('windows reach both ends of the data and never past it', () => {
    const small = data.subarray(0, 12); // T = 8: starts 0 … 3
    const loader = new BatchLoader(small, { batchSize: 8, seqLen: 8, seed: 3 });
    const starts = new Set(draw(loader, 10).flatMap((b) => b.map((r) => r[0])));
    expect([...starts].sort()).toEqual([0, 1, 2, 3]);
    // exactly T + 1 tokens: one window
    expect(draw(new BatchLoader(data.subarray(0, 9), { batchSize: 2, seqLen: 8 }), 1)[0].map((r) => r[0])).toEqual([0, 0]);
  });

  test('the same seed gives the same batches, another seed different ones', () => {
    const opts = { batchSize: 4, seqLen: 8 };
    const a = draw(new BatchLoader(data, { ...opts, seed: 7 }), 5);
    expect(draw(new BatchLoader(data, { ...opts, seed: 7 }), 5)).toEqual(a);
    expect(draw(new BatchLoader(data, { ...opts, seed: 8 }), 5)).not.toEqual(a);
  });

  test('state() through JSON and restore() continue exactly where the run stopped', () => {
    const opts = { batchSize: 3, seqLen: 8, seed: 11 };
    const run = new BatchLoader(data, opts);
    draw(run, 4);
    const saved = JSON.parse(JSON.stringify(run.state()));
    expect(saved.batches).toBe(4);
    const rest = draw(run, 6);
    const resumed = new BatchLoader(data, { ...opts, seed: 999 }); // the state overrides the seed
    resumed.restore(saved);
    expect(resumed.batches).toBe(4);
    expect(draw(resumed, 6)).toEqual(rest);
  });

  test('restore() rejects malformed states and states of other data or sizes', () => {
    const loader = new BatchLoader(data, { batchSize: 2, seqLen: 8 });
    const s = loader.state();
    expect(() => loader.restore({ ...s, rng: { algorithm: 'xoshiro128**', s: [1, 2] } })).toThrow(/invalid loader state at rng\.s/);
    expect(() => loader.restore({ ...s, batches: -1 })).toThrow(/at batches/);
    expect(() => loader.restore(null)).toThrow(/invalid loader state/);
    expect(() => loader.restore({ ...s, seqLen: 16 })).toThrow(/seqLen 16 but this loader has 8/);
    expect(() => loader.restore({ ...s, dataLength: 10 })).toThrow(/data of 10 tokens but this loader has 5000/);
    expect(() => loader.restore({ ...s, rng: { algorithm: 'xoshiro128**', s: [0, 0, 0, 0] } })).toThrow(/not all zero/);
  });

  test('restore() tells other data of the same length apart; a state from before the fingerprint restores', () => {
    const s = new BatchLoader(data, { batchSize: 2, seqLen: 8 }).state();
    const shifted = Uint16Array.from(data, (t) => (t + 1) % 50000); // another tokenization, say
    const reordered = Uint16Array.from([...data.subarray(2500), ...data.subarray(0, 2500)]); // another shard order
    for (const other of [shifted, reordered])
      expect(() => new BatchLoader(other, { batchSize: 2, seqLen: 8 }).restore(s)).toThrow(
        /saved for other data of the same length \(5000 tokens, different contents\)/,
      );
    const old: Partial<typeof s> = { ...s };
    delete old.dataFingerprint;
    const loader = new BatchLoader(shifted, { batchSize: 2, seqLen: 8 });
    loader.restore(old);
    expect(loader.batches).toBe(0);
  });

  test('validates B, T and the data length with clear errors', () => {
    expect(() => new BatchLoader(data, { batchSize: 0, seqLen: 8 })).toThrow(
      'BatchLoader: expected a positive integer for batchSize but received 0',
    );
    expect(() => new BatchLoader(data, { batchSize: 2, seqLen: -1 })).toThrow(/positive integer for seqLen but received -1/);
    expect(() => new BatchLoader(data, { batchSize: 2, seqLen: 1.5 })).toThrow(TypeError);
    expect(() => new BatchLoader(data.subarray(0, 8), { batchSize: 1, seqLen: 8 })).toThrow(
      'BatchLoader: the data has 8 tokens, too few for one window of seqLen + 1 = 9 tokens',
    );
    expect(() => new BatchLoader(Array.from(data) as unknown as Uint16Array, { batchSize: 1, seqLen: 8 })).toThrow(/Uint16Array/);
    expect(() => new BatchLoader(data, { batchSize: 1, seqLen: 8, seed: -2 })).toThrow(/seed but received -2/);
  });

  const onCuda = itWhen(cudaAvailable(), 'no CUDA device');
  onCuda('CUDA: batches staged in pinned memory equal the CPU batches', () => {
    const opts = { batchSize: 4, seqLen: 32, seed: 5 };
    const cpu = new BatchLoader(data, opts);
    const gpu = new BatchLoader(data, { ...opts, device: 'cuda' });
    tidy(() => {
      const a = cpu.next();
      const b = gpu.next();
      expect(b.x.device).toMatch(/^cuda/);
      expect(b.x.dtype).toBe('int64');
      expect(flat(b.x)).toEqual(flat(a.x));
      expect(flat(b.y)).toEqual(flat(a.y));
    });
  });
});

describe('evalBatches', () => {
  test('sequential non-overlapping windows cover the data in order; the last batch may be short', () => {
    const tokens = data.subarray(0, 103); // T = 10: windows cover [0, 100], 10 windows
    const seen: number[] = [];
    const targets: number[] = [];
    const sizes: number[] = [];
    let scored = 0;
    for (const b of evalBatches(tokens, { batchSize: 4, seqLen: 10 })) {
      tidy(() => {
        sizes.push(b.x.shape[0]);
        seen.push(...flat(b.x));
        targets.push(...flat(b.y));
        scored += b.tokens;
        expect(b.index).toBe(sizes.length - 1);
      });
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect(seen).toEqual(Array.from(tokens.subarray(0, 100)));
    expect(targets).toEqual(Array.from(tokens.subarray(1, 101)));
    expect(scored).toBe(100);
    expect(evalBatchCount(tokens.length, { batchSize: 4, seqLen: 10 })).toBe(3);
  });

  test('tail: one more window ends with the data and scores only the targets the whole windows left', () => {
    const tokens = data.subarray(0, 103); // T = 10: whole windows score targets 1 … 100; 101 and 102 are left
    const batches = [...evalBatches(tokens, { batchSize: 4, seqLen: 10, tail: true })];
    const last = batches[batches.length - 1];
    const rows = tidy(() => ({ x: flat(last.x), y: flat(last.y) }));
    batches.forEach((b) => (b.x.dispose(), b.y.dispose()));
    expect(batches.map((b) => b.tokens)).toEqual([40, 40, 22]);
    // the tail window, the batch's third row: inputs 92 … 101, all but its last two targets ignored
    expect(rows.x.slice(20)).toEqual(Array.from(tokens.subarray(92, 102)));
    expect(rows.y.slice(20)).toEqual([...Array(8).fill(-100), tokens[101], tokens[102]]);
    expect(evalTailTokens(103, 10)).toBe(2);
    expect(evalBatchCount(103, { batchSize: 4, seqLen: 10, tail: true })).toBe(3);
    // with a stride, and none left: no extra window
    expect(evalTailTokens(101, 10)).toBe(0);
    expect(evalBatchCount(101, { batchSize: 5, seqLen: 10, tail: true })).toBe(2);
    expect(evalTailTokens(30, 10, 4)).toBe(29 - (10 + 4 * 4));
    expect(evalBatchCount(30, { batchSize: 5, seqLen: 10, stride: 4, tail: true })).toBe(2); // 5 whole + the tail
  });

  test('maxBatches stops early; two passes are identical', () => {
    const pass = () => [...evalBatches(data, { batchSize: 2, seqLen: 16, maxBatches: 3 })].map((b) => tidy(() => flat(b.x)));
    const a = pass();
    expect(a).toHaveLength(3);
    expect(pass()).toEqual(a);
    expect(evalBatchCount(data.length, { batchSize: 2, seqLen: 16, maxBatches: 3 })).toBe(3);
  });

  test('arguments are checked when called, not when first iterated', () => {
    expect(() => evalBatches(data, { batchSize: 0, seqLen: 8 })).toThrow(/batchSize but received 0/);
    expect(() => evalBatches(data.subarray(0, 4), { batchSize: 1, seqLen: 8 })).toThrow(/too few for one window/);
    expect(() => evalBatches(data, { batchSize: 1, seqLen: 8, maxBatches: -1 })).toThrow(/maxBatches but received -1/);
  });
});
