// addLayerNorm: the residual add and the LayerNorm after it as one op. The libtorch path ('aten',
// every machine) against the ops it stands for and against finite differences; the fused CUDA
// kernels (native/kernels/add_layer_norm.cu) against the float64 formulas computed here in JS from
// the very values the kernels read — on a GPU where there is one, and everywhere as their source
// run on the CPU under test/kernels/simt.h — and against the 'aten' path, alone and inside a GPT
// that trains, eagerly and as a replayed CUDA graph.
import {
  addLayerNorm,
  cudaAvailable,
  layerNorm,
  manualSeed,
  normKernelInfo,
  randn,
  tensor,
  tidy,
  withAutocast,
  zeros,
  type NormKernel,
  type Tensor,
} from '../../lib';
import { cudaGraphsAvailable } from '../../lib/cuda-graph';
import { expectRelClose, flat, gradCheck, itWhen, jsUniform } from '../helpers';
import { bf16TrainLosses } from './cuda-training';
import { emulatedHarness, formatValues, itEmulated, parseLines } from '../kernels/emulation';

const itFused = itWhen(cudaAvailable() && normKernelInfo().available, 'no CUDA device, or no staged-lm CUDA kernels in this build');
const itFusedGraphs = itWhen(
  cudaAvailable() && normKernelInfo().available && cudaGraphsAvailable(),
  'no CUDA device, no staged-lm CUDA kernels or no CUDA graphs in this build',
);

type Dtype = 'float32' | 'float16' | 'bfloat16';

/** The float64 LayerNorm of rows of a (rows × cols) and its backward for dz and dA (null: none). */
function reference(
  a: number[],
  w: number[],
  b: number[] | null,
  dz: number[],
  dA: number[] | null,
  cols: number,
  eps: number,
): { z: number[]; mean: number[]; rstd: number[]; dh: number[]; dw: number[]; db: number[] } {
  const rows = a.length / cols;
  const z: number[] = [];
  const dh: number[] = [];
  const mean: number[] = [];
  const rstd: number[] = [];
  const dw = new Array<number>(cols).fill(0);
  const db = new Array<number>(cols).fill(0);
  for (let r = 0; r < rows; r++) {
    const x = a.slice(r * cols, (r + 1) * cols);
    const mu = x.reduce((s, v) => s + v, 0) / cols;
    const rs = 1 / Math.sqrt(x.reduce((s, v) => s + (v - mu) ** 2, 0) / cols + eps);
    mean.push(mu);
    rstd.push(rs);
    const xhat = x.map((v) => (v - mu) * rs);
    const d = dz.slice(r * cols, (r + 1) * cols);
    const g = d.map((v, j) => v * w[j]);
    const meanG = g.reduce((s, v) => s + v, 0) / cols;
    const meanGX = g.reduce((s, v, j) => s + v * xhat[j], 0) / cols;
    for (let j = 0; j < cols; j++) {
      z.push(xhat[j] * w[j] + (b?.[j] ?? 0));
      dh.push((dA?.[r * cols + j] ?? 0) + rs * (g[j] - meanG - xhat[j] * meanGX));
      dw[j] += d[j] * xhat[j];
      db[j] += d[j];
    }
  }
  return { z, mean, rstd, dh, dw, db };
}

/** |x − ref| ≤ rel·|ref| + tol·max|ref| elementwise: one rounding to the output's type, float32 sums. */
function expectNear(actual: number[], expected: number[], rel: number, what: string, tol = 2e-5): void {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expectRelClose(actual, expected, rel, tol * scale + 1e-30, what);
}

const ulp = (t: Dtype) => (t === 'bfloat16' ? 2 ** -8 : t === 'float16' ? 2 ** -10 : 1e-5);

describe('addLayerNorm with libtorch kernels (every machine)', () => {
  it('is h + y, then layerNorm over the last dimension, in value and gradient', () => {
    tidy(() => {
      manualSeed(3);
      const h = randn([2, 5, 8], { dtype: 'float64' });
      const y = randn([2, 5, 8], { dtype: 'float64' });
      const w = randn([8], { dtype: 'float64' });
      const b = randn([8], { dtype: 'float64' });
      const [a, z] = addLayerNorm(h, y, w, b, { eps: 1e-3, kernel: 'aten' });
      expect(a.dtype).toBe('float64');
      expect(z.shape).toEqual([2, 5, 8]);
      expect(flat(a)).toEqual(flat(h.add(y)));
      expect(flat(z)).toEqual(flat(layerNorm(h.add(y), [8], w, b, 1e-3)));
      // both outputs feed the loss, as in a model (a onward to the next add, z to a matmul)
      const upA = randn([2, 5, 8], { dtype: 'float64' });
      const upZ = randn([2, 5, 8], { dtype: 'float64' });
      const input = (t: Tensor) => ({ data: flat(t), shape: t.shape });
      const check = gradCheck([input(h), input(y), input(w), input(b)], ([hh, yy, ww, bb]) => {
        const [aa, zz] = addLayerNorm(hh, yy, ww, bb, { eps: 1e-3 });
        return aa.mul(upA).sum().add(zz.mul(upZ).sum());
      });
      expect(check.relError).toBeLessThan(1e-7);
    });
  });

  it('keeps h dtype for a narrower y, and refuses bad shapes, dtypes and eps by name', () => {
    tidy(() => {
      const h = randn([3, 8]);
      const [a, z] = addLayerNorm(h, randn([3, 8]).to({ dtype: 'bfloat16' }), randn([8]), null);
      expect([a.dtype, z.dtype]).toEqual(['float32', 'float32']); // no autocast on the CPU
      // a wider branch, or two half types, promote as add does (libtorch's kernels)
      expect(addLayerNorm(h.to({ dtype: 'bfloat16' }), h, randn([8]), null)[0].dtype).toBe('float32');
      expect(addLayerNorm(h.to({ dtype: 'float16' }), h.to({ dtype: 'bfloat16' }), randn([8]), null)[0].dtype).toBe('float32');
      expect(() => addLayerNorm(h, h.to({ dtype: 'int64' }), randn([8]), null)).toThrow(/h and y must be floating, got float32 and int64/);
      expect(() => addLayerNorm(h, h.narrow(1, 0, 4), randn([8]), null)).toThrow(/same shape, got \[3, 8\] and \[3, 4\]/);
      expect(() => addLayerNorm(h, h, randn([4]), null)).toThrow(/weight must be 1-D with h's last size/);
      expect(() => addLayerNorm(h, h, randn([8]), randn([3]))).toThrow(/bias must have weight's shape \[8\], got \[3\]/);
      expect(() => addLayerNorm(h, h, randn([8]), null, { eps: 0 })).toThrow(/eps must be positive/);
    });
  });
});

describe('the fused CUDA add + LayerNorm', () => {
  /** h (float32 or dtype), y (yType), w, b on CUDA; ones that require grad. */
  function problem(rows: number, cols: number, hType: Dtype, yType: Dtype, seed: number, offset = 0) {
    const make = (n: number, s: number, lo: number, hi: number, dtype: Dtype, shape: number[]) =>
      tensor(jsUniform(n, s, lo, hi))
        .reshape(...shape)
        .to({ dtype, device: 'cuda' })
        .requiresGrad_();
    return {
      h: make(rows * cols, seed, offset - 3, offset + 3, hType, [rows, cols]),
      y: make(rows * cols, seed + 1, -1, 1, yType, [rows, cols]),
      w: make(cols, seed + 2, 0.5, 1.5, hType, [cols]),
      b: make(cols, seed + 3, -0.5, 0.5, hType, [cols]),
    };
  }

  /** Outputs and gradients (for fixed upstream gradients of a and z) of one kernel. */
  function run(p: ReturnType<typeof problem>, kernel: NormKernel, autocast: Dtype | null) {
    return tidy(() => {
      const leaves = [p.h, p.y, p.w, p.b].map((t) => t.detach().clone().requiresGrad_());
      const [h, y, w, b] = leaves;
      const [a, z] =
        autocast === null || autocast === 'float32'
          ? addLayerNorm(h, y, w, b, { kernel })
          : withAutocast(autocast, () => addLayerNorm(h, y, w, b, { kernel }));
      const upA = tensor(jsUniform(a.numel, 77, -1, 1))
        .reshape(...a.shape)
        .to({ device: 'cuda', dtype: a.dtype });
      const upZ = tensor(jsUniform(z.numel, 78, -1, 1))
        .reshape(...z.shape)
        .to({ device: 'cuda', dtype: z.dtype });
      a.mul(upA).sum().add(z.mul(upZ).float().sum()).backward();
      return {
        dtypes: [a.dtype, z.dtype],
        a: flat(a.float()),
        z: flat(z.float()),
        grads: leaves.map((l) => flat(l.grad!.float())),
        gradTypes: leaves.map((l) => l.grad!.dtype),
      };
    });
  }

  for (const [hType, yType, autocast] of [
    ['float32', 'float32', null],
    ['float32', 'bfloat16', 'bfloat16'],
    ['float32', 'float16', 'float16'],
    ['bfloat16', 'bfloat16', null],
    ['float16', 'float16', null],
  ] as const)
    for (const cols of [768, 100])
      itFused(`${hType} h, ${yType} y${autocast ? ' under autocast' : ''}, ${cols} columns: as libtorch's add, LayerNorm and cast`, () => {
        const p = problem(33, cols, hType, yType, cols, 2);
        try {
          const aten = run(p, 'aten', autocast);
          const fused = run(p, 'fused', autocast);
          expect(fused.dtypes).toEqual(aten.dtypes);
          expect(fused.gradTypes).toEqual(aten.gradTypes);
          const zType = aten.dtypes[1] as Dtype;
          expectNear(fused.a, aten.a, ulp(hType), 'a');
          expectNear(fused.z, aten.z, 2 * ulp(zType), 'z');
          // half-precision gradients: libtorch adds a's two gradients in that precision (two
          // roundings where the fused kernel has one), so allow an ulp of the largest term
          for (const [i, name] of ['dh', 'dy', 'dw', 'db'].entries()) {
            const type = i === 1 ? yType : hType;
            expectNear(fused.grads[i], aten.grads[i], 2 * ulp(type), name, type === 'float32' ? 1e-4 : 2 * ulp(type));
          }
        } finally {
          for (const t of Object.values(p)) t.dispose();
        }
      });

  itFused('a 3-D input whose storage starts off a 16-byte boundary, and gradients that reach only z', () => {
    const p = problem(2 * 7, 64, 'float32', 'bfloat16', 5);
    const storage = zeros([2 * 7 * 64 + 1], { device: 'cuda' });
    try {
      const [viaView, viaCopy] = [true, false].map((offset) =>
        tidy(() => {
          const h0 = p.h.detach().reshape(-1);
          let h = h0.clone().reshape(2, 7, 64);
          if (offset) {
            storage.narrow(0, 1, h0.numel).copy_(h0);
            h = storage.narrow(0, 1, h0.numel).view(2, 7, 64);
          }
          const y = p.y.detach().reshape(2, 7, 64).clone().requiresGrad_();
          const [, z] = withAutocast('bfloat16', () => addLayerNorm(h, y, p.w, p.b, { kernel: 'fused' }));
          z.float().square().sum().backward();
          return { z: flat(z.float()), dy: flat(y.grad!.float()) };
        }),
      );
      expect(viaView.z).toEqual(viaCopy.z);
      expect(viaView.dy).toEqual(viaCopy.dy);
    } finally {
      for (const t of [...Object.values(p), storage]) t.dispose();
    }
  });

  itFused(
    'refuses what it cannot take, by name: a width that is not a multiple of 4 or 0, mixed parameter types, a wider branch, a bias on the CPU',
    () => {
      tidy(() => {
        const h = randn([4, 6], { device: 'cuda' });
        expect(() => addLayerNorm(h, h, randn([6], { device: 'cuda' }), null, { kernel: 'fused' })).toThrow(
          /normalised size 6 is not a multiple of 4/,
        );
        const g = randn([4, 8], { device: 'cuda' });
        expect(() => addLayerNorm(g, g, randn([8], { device: 'cuda', dtype: 'bfloat16' }), null, { kernel: 'fused' })).toThrow(
          /dtypes .* are not one of/,
        );
        // a branch wider than the stream, a zero width, a bias elsewhere: named, no launch
        expect(() =>
          addLayerNorm(g.to({ dtype: 'bfloat16' }), g, randn([8], { device: 'cuda', dtype: 'bfloat16' }), null, { kernel: 'fused' }),
        ).toThrow(/the branch \(float32\) is wider than the input \(bfloat16\)/);
        const empty = randn([4, 0], { device: 'cuda' });
        expect(() => addLayerNorm(empty, empty, randn([0], { device: 'cuda' }), null, { kernel: 'fused' })).toThrow(/normalised size 0/);
        expect(() => addLayerNorm(g, g, randn([8], { device: 'cuda' }), randn([8]))).toThrow(
          /expected every tensor on cuda:0, got one on cpu/,
        );
      });
    },
  );

  itFused('a bf16-autocast GPT trains the same with either kernel (8 steps)', () => {
    const aten = bf16TrainLosses({ norm: 'aten' });
    const fused = bf16TrainLosses({ norm: 'fused' });
    expect(fused[7]).toBeLessThan(fused[0]);
    expectRelClose(fused, aten, 2e-3, 0, 'step');
  });

  itFusedGraphs('inside a captured CUDA graph: replays give the eager steps’ losses', () => {
    const eager = bf16TrainLosses({ norm: 'fused' });
    const replayed = bf16TrainLosses({ norm: 'fused' }, true);
    // the graph's update takes its rate from a float32 tensor (cuda-graph.test.ts allows the same)
    expectRelClose(replayed, eager, 1e-4, 0, 'step');
  });
});

// ---- the kernels' source on the CPU (test/kernels/simt.h) ----

describe('the fused add + LayerNorm kernels, emulated on the CPU', () => {
  const harness = emulatedHarness('add-layer-norm-emulated');
  beforeAll(() => harness.build(), 60_000);
  afterAll(() => harness.remove());

  interface Case {
    types: [Dtype, Dtype, Dtype];
    rows: number;
    cols: number;
    blocks: number;
    threads?: number; // 0 / absent: the launcher's shape
    packs?: number;
    bias?: boolean;
    withDA?: boolean;
    eps?: number;
    h?: number[];
    y?: number[];
  }

  function emulate(c: Case) {
    const n = c.rows * c.cols;
    const bias = c.bias ?? true;
    const withDA = c.withDA ?? true;
    const arrays = [
      c.h ?? jsUniform(n, c.cols, -3, 3),
      c.y ?? jsUniform(n, c.cols + 1, -1, 1),
      jsUniform(c.cols, c.cols + 2, 0.5, 1.5),
      ...(bias ? [jsUniform(c.cols, c.cols + 3, -0.5, 0.5)] : []),
      jsUniform(n, c.cols + 4, -1, 1),
      ...(withDA ? [jsUniform(n, c.cols + 5, -1, 1)] : []),
    ];
    const head = [...c.types, c.rows, c.cols, c.eps ?? 1e-5, c.blocks, c.threads ?? 0, c.packs ?? 0, bias ? 1 : 0, withDA ? 1 : 0].join(
      ' ',
    );
    const out = parseLines(harness.run([head, ...arrays.map(formatValues)].join('\n')));
    const ref = reference(out.a, out.w, bias ? out.b : null, out.dz, withDA ? out.dA : null, c.cols, c.eps ?? 1e-5);
    return { out, ref };
  }

  function expectMatches(c: Case): void {
    const { out, ref } = emulate(c);
    const [hType, yType, zType] = c.types;
    // a = h + y rounded once to h's type
    expectNear(
      out.a,
      out.h.map((v, i) => v + out.y[i]),
      ulp(hType),
      'a',
      1e-7,
    );
    expectNear(out.mean, ref.mean, 1e-5, 'mean');
    expectNear(out.rstd, ref.rstd, 1e-5, 'rstd');
    expectNear(out.z, ref.z, ulp(zType), 'z');
    expectNear(out.dh, ref.dh, ulp(hType), 'dh');
    expectNear(out.dy, ref.dh, ulp(yType), 'dy');
    expectNear(out.dw, ref.dw, ulp(hType), 'dw');
    if (c.bias ?? true) expectNear(out.db, ref.db, ulp(hType), 'db');
  }

  for (const types of [
    ['float32', 'float32', 'float32'],
    ['float32', 'bfloat16', 'bfloat16'],
    ['float32', 'float16', 'float16'],
    ['bfloat16', 'bfloat16', 'bfloat16'],
    ['float16', 'float16', 'float16'],
  ] as const)
    itEmulated(
      `${types.join(' / ')}: a, z, mean, rstd and every gradient as the float64 formulas (the launcher's shape, rows over fewer blocks)`,
      () => {
        expectMatches({ types: [...types], rows: 7, cols: 64, blocks: 3 });
      },
    );

  for (const [threads, packs, cols] of [
    [32, 2, 256], // two packs a thread, every thread busy
    [32, 2, 200], // the second pack only for some threads
    [32, 4, 480], // four packs, a ragged last sweep
    [64, 1, 132], // one pack, most of the second warp idle
  ] as const)
    itEmulated(`${packs} pack(s) a thread over ${threads} threads, ${cols} columns`, () => {
      expectMatches({ types: ['float32', 'bfloat16', 'bfloat16'], rows: 5, cols, blocks: 2, threads, packs });
    });

  itEmulated('no bias, no gradient from above a, another eps, one block for every row', () => {
    expectMatches({ types: ['float32', 'float32', 'float32'], rows: 6, cols: 96, blocks: 1, bias: false, withDA: false, eps: 1e-2 });
    expectMatches({ types: ['float32', 'float32', 'float32'], rows: 4, cols: 32, blocks: 4 });
  });

  itEmulated('a large common offset (mean 1e4, spread 1) keeps the variance exact; a constant row normalises to the bias', () => {
    const cols = 64;
    // E[x²] − E[x]² in float32 would lose the variance (~1/3) to rounding at 1e8; two passes keep it
    const { out, ref } = emulate({
      types: ['float32', 'float32', 'float32'],
      rows: 1,
      cols,
      blocks: 1,
      h: jsUniform(cols, 1, 1e4 - 1, 1e4 + 1),
    });
    expectNear(out.rstd, ref.rstd, 1e-4, 'rstd');
    // the mean's float32 sum near 1e4 is off by ~1e-4 of the spread: so is z
    expectNear(out.z, ref.z, 1e-3, 'z', 1e-3);
    // h + y constant: var 0, rstd = 1/√eps, x̂ = 0, so z = b exactly and dw = 0
    const constant = emulate({
      types: ['float32', 'float32', 'float32'],
      rows: 2,
      cols,
      blocks: 1,
      h: new Array<number>(2 * cols).fill(2),
      y: new Array<number>(2 * cols).fill(0.5),
      eps: 1e-4,
    });
    expectRelClose(constant.out.rstd, [100, 100], 1e-6);
    expect(constant.out.z).toEqual([...constant.out.b, ...constant.out.b]);
    expect(constant.out.dw.every((v) => v === 0)).toBe(true);
    expectNear(constant.out.dh, constant.ref.dh, 1e-5, 'dh');
  });

  itEmulated('a NaN in a row makes that row (and only it) NaN, and dw NaN; db (Σ dz) stays finite', () => {
    const cols = 32;
    const h = jsUniform(3 * cols, 2, -1, 1);
    h[cols + 5] = NaN;
    const { out } = emulate({ types: ['float32', 'bfloat16', 'bfloat16'], rows: 3, cols, blocks: 2, h });
    const row = (xs: number[], r: number) => xs.slice(r * cols, (r + 1) * cols);
    expect(row(out.z, 1).every(Number.isNaN)).toBe(true);
    expect(row(out.dh, 1).every(Number.isNaN)).toBe(true);
    for (const r of [0, 2]) {
      expect(row(out.z, r).every(Number.isFinite)).toBe(true);
      expect(row(out.dh, r).every(Number.isFinite)).toBe(true);
    }
    expect(out.dw.every(Number.isNaN)).toBe(true);
    expect(out.db.every(Number.isFinite)).toBe(true);
  });

  itEmulated("the launcher's block shape: one pack a thread up to 4096 columns, then two, then four, up to 16384", () => {
    const lines = harness
      .run('shape 4 64 100 768 1024 4096 4100 8192 8196 16384')
      .trim()
      .split('\n')
      .map((l) => l.split(' ').map(Number));
    expect(lines).toEqual([
      [4, 1, 32],
      [64, 1, 32],
      [100, 1, 32],
      [768, 1, 192],
      [1024, 1, 256],
      [4096, 1, 1024],
      [4100, 2, 544],
      [8192, 2, 1024],
      [8196, 4, 544],
      [16384, 4, 1024],
    ]);
    for (const [cols, packs, threads] of lines) {
      expect(threads % 32).toBe(0);
      expect(4 * packs * threads).toBeGreaterThanOrEqual(cols);
    }
  });
});
