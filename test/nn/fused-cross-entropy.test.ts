// The fused CUDA cross-entropy (native/kernels/cross_entropy.cu, float32CrossEntropy's kernel
// 'fused'): against the float64 formulas computed here in JS from the very values the tensors hold,
// and against the libtorch ('aten') path it replaces — every dtype, the 16-byte-load path
// (columns a multiple of 8 / 4) and the one-value path (any other width), ignored and
// out-of-range targets, extreme logits, non-contiguous input, and a model trained both ways. The
// GPU parts run where libtorch sees a GPU and the build has the kernels. Everywhere else the very
// kernel source runs on the CPU under test/kernels/simt.h (threads, barriers and shuffles emulated,
// built with the host's g++): its logic is checked on every machine, its speed only on a GPU. The
// choice of kernel and its refusals are checked everywhere.
import { cudaAvailable, float32CrossEntropy, lossKernelInfo, tensor, tidy, zeros, type LossKernel, type Tensor } from '../../lib';
import { crossEntropyReference, expectRelClose, flat, itWhen, jsUniform } from '../helpers';
import { bf16TrainLosses } from './cuda-training';
import { emulatedHarness, formatValues, itEmulated, parseLines } from '../kernels/emulation';

const itFused = itWhen(cudaAvailable() && lossKernelInfo().available, 'no CUDA device, or no staged-lm CUDA kernels in this build');

const reference = crossEntropyReference;

/** Random logits on CUDA, rounded to dtype, requiring grad; the targets with one ignored row. */
function problem(
  dtype: 'bfloat16' | 'float16' | 'float32',
  rows: number,
  cols: number,
  seed: number,
  spread = 6,
): { x: Tensor; t: Tensor; targets: number[] } {
  const x = tensor(jsUniform(rows * cols, seed, -spread, spread))
    .reshape(rows, cols)
    .to({ dtype, device: 'cuda' })
    .requiresGrad_();
  const targets = jsUniform(rows, seed + 1, 0, cols).map(Math.floor);
  targets[Math.min(2, rows - 1)] = -100;
  return { x, t: tensor(targets, { dtype: 'int64', device: 'cuda' }), targets };
}

/** Loss and logits gradient (g = 3) of one kernel on fresh copies of x. */
function run(x: Tensor, t: Tensor, kernel: LossKernel, ignoreIndex = -100): { loss: number; grad: number[] } {
  return tidy(() => {
    const leaf = x.detach().clone().requiresGrad_();
    const loss = float32CrossEntropy(leaf, t, { kernel, ignoreIndex });
    expect(loss.dtype).toBe('float32');
    expect(loss.shape).toEqual([]);
    loss.mul(3).backward();
    expect(leaf.grad!.dtype).toBe(x.dtype);
    return { loss: loss.item(), grad: flat(leaf.grad!.float()) };
  });
}

describe('the fused CUDA cross-entropy', () => {
  // 1000 columns: the one-value path for every dtype; 1024: 16-byte loads (8 halves, 4 floats)
  for (const cols of [1000, 1024])
    for (const dtype of ['bfloat16', 'float16', 'float32'] as const)
      itFused(`${dtype}, ${cols} columns: loss and gradient as the float64 formulas`, () => {
        const { x, t, targets } = problem(dtype, 37, cols, cols + 7);
        try {
          const xs = tidy(() => flat(x.float()));
          const ref = reference(xs, cols, targets, -100, 3);
          const fused = run(x, t, 'fused');
          expectRelClose([fused.loss], [ref.loss], 1e-5);
          // one rounding of a float32 result into the logits' type
          const ulp = dtype === 'bfloat16' ? 2 ** -8 : dtype === 'float16' ? 2 ** -10 : 1e-5;
          expectRelClose(fused.grad, ref.grad, ulp, dtype === 'float16' ? 1e-7 : 1e-9, 'gradient element');
          // the ignored row (2) is exactly 0
          expect(fused.grad.slice(2 * cols, 3 * cols).every((v) => v === 0)).toBe(true);
        } finally {
          x.dispose();
          t.dispose();
        }
      });

  itFused("agrees with libtorch's kernels (the 'aten' path) in value and gradient, with another ignoreIndex", () => {
    const { x, t } = problem('bfloat16', 64, 512, 3);
    try {
      const aten = run(x, t, 'aten', 7);
      const fused = run(x, t, 'fused', 7);
      expectRelClose([fused.loss], [aten.loss], 1e-5);
      expectRelClose(fused.grad, aten.grad, 2 ** -7, 1e-9, 'gradient element');
    } finally {
      x.dispose();
      t.dispose();
    }
  });

  itFused('extreme logits (±1e4 in float32) stay finite and exact', () => {
    const { x, t, targets } = problem('float32', 9, 333, 5, 1e4);
    try {
      const ref = reference(
        tidy(() => flat(x)),
        333,
        targets,
        -100,
        3,
      );
      const fused = run(x, t, 'fused');
      expect(Number.isFinite(fused.loss)).toBe(true);
      expectRelClose([fused.loss], [ref.loss], 1e-5);
      expectRelClose(fused.grad, ref.grad, 1e-4, 1e-6, 'gradient element');
    } finally {
      x.dispose();
      t.dispose();
    }
  });

  itFused('every target ignored: NaN loss and a zero gradient (as the aten path)', () => {
    const { x } = problem('bfloat16', 5, 64, 9);
    const t = tensor([-100, -100, -100, -100, -100], { dtype: 'int64', device: 'cuda' });
    try {
      const fused = run(x, t, 'fused');
      expect(Number.isNaN(fused.loss)).toBe(true);
      expect(fused.grad.every((v) => v === 0)).toBe(true);
    } finally {
      x.dispose();
      t.dispose();
    }
  });

  itFused('a target outside [0, C) makes the loss and its row of the gradient NaN (no out-of-bounds read, the process lives on)', () => {
    const { x } = problem('bfloat16', 3, 64, 10);
    const t = tensor([1, 64, 2], { dtype: 'int64', device: 'cuda' });
    try {
      const out = run(x, t, 'fused');
      expect(Number.isNaN(out.loss)).toBe(true);
      expect(out.grad.slice(64, 128).every(Number.isNaN)).toBe(true);
      expect(out.grad.slice(0, 64).every(Number.isFinite)).toBe(true);
      // and the device is still usable
      expect(tidy(() => x.float().sum().item())).toBeDefined();
    } finally {
      x.dispose();
      t.dispose();
    }
  });

  itFused('logits whose storage starts off a 16-byte boundary take the one-value path, same result', () => {
    // 2 bytes into their storage: rows not 16-byte aligned, where 16-byte loads would fault
    const { x, t } = problem('bfloat16', 6, 256, 13);
    const n = 6 * 256;
    const storage = zeros([n + 1], { dtype: 'bfloat16', device: 'cuda' });
    try {
      tidy(() => storage.narrow(0, 1, n).copy_(x.detach().reshape(-1)));
      storage.requiresGrad_();
      const shifted = tidy(() => {
        const loss = float32CrossEntropy(storage.narrow(0, 1, n).view(6, 256), t, { kernel: 'fused' });
        loss.mul(3).backward();
        return { loss: loss.item(), grad: flat(storage.grad!.narrow(0, 1, n).float()) };
      });
      const aligned = run(x, t, 'fused');
      // the same formulas; only the order of the float32 sums differs between the two paths
      expectRelClose([shifted.loss], [aligned.loss], 1e-6);
      expectRelClose(shifted.grad, aligned.grad, 2 ** -8, 1e-9, 'gradient element');
    } finally {
      for (const v of [x, t, storage]) v.dispose();
    }
  });

  itFused('non-contiguous (transposed) logits: the same as their contiguous copy', () => {
    const { x, t } = problem('bfloat16', 48, 48, 12);
    try {
      const [strided, copy] = tidy(() => {
        const xt = x.detach().transpose(0, 1);
        return [
          float32CrossEntropy(xt, t, { kernel: 'fused' }).item(),
          float32CrossEntropy(xt.contiguous(), t, { kernel: 'fused' }).item(),
        ];
      });
      expect(strided).toBe(copy);
    } finally {
      x.dispose();
      t.dispose();
    }
  });

  itFused("a bf16-autocast GPT trains the same with either kernel (8 steps, the model's default loss)", () => {
    const aten = bf16TrainLosses({ loss: 'aten' });
    const fused = bf16TrainLosses({ loss: 'fused' });
    expect(fused[7]).toBeLessThan(fused[0]);
    expectRelClose(fused, aten, 2e-3, 0, 'step');
  });
});

// ---- the kernels' source on the CPU (test/kernels/simt.h) ----

describe('the fused cross-entropy kernels, emulated on the CPU', () => {
  const harness = emulatedHarness('cross-entropy-emulated');
  beforeAll(() => harness.build(), 60_000);
  afterAll(() => harness.remove());

  type Dtype = 'float32' | 'float16' | 'bfloat16';
  /** Runs both kernels on logits (rows × cols, rounded to dtype by the harness) and the targets. */
  function emulate(dtype: Dtype, cols: number, targets: number[], logits: number[], path: 'vector' | 'scalar', ignoreIndex = -100, g = 3) {
    const input = [`${dtype} ${targets.length} ${cols} ${ignoreIndex} ${g} ${path}`, targets.join(' '), formatValues(logits)].join('\n');
    const lines = parseLines(harness.run(input)) as Record<'x' | 'stats' | 'grad', number[]>;
    const rows = targets.length;
    const lse = lines.stats.slice(0, rows);
    const rowLoss = lines.stats.slice(rows, 2 * rows);
    const counted = lines.stats.slice(2 * rows);
    const count = counted.reduce((a, b) => a + b, 0);
    return { x: lines.x, lse, rowLoss, counted, loss: rowLoss.reduce((a, b) => a + b, 0) / count, grad: lines.grad };
  }
  const ulpOf = (dtype: Dtype) => (dtype === 'bfloat16' ? 2 ** -8 : dtype === 'float16' ? 2 ** -10 : 1e-5);

  for (const dtype of ['bfloat16', 'float16', 'float32'] as const)
    for (const [path, cols] of [
      ['vector', 64],
      ['scalar', 37],
      ['vector', 8200], // 16-byte packs beyond one sweep of the block's 512 threads
      ['scalar', 1100], // values beyond one sweep
    ] as const)
      itEmulated(`${dtype}, ${path} path, ${cols} columns: loss, lse and gradient as the float64 formulas`, () => {
        const rows = 5;
        const targets = jsUniform(rows, cols, 0, cols).map(Math.floor);
        targets[3] = -100;
        const out = emulate(dtype, cols, targets, jsUniform(rows * cols, cols + 1, -8, 8), path);
        const ref = reference(out.x, cols, targets, -100, 3);
        expectRelClose([out.loss], [ref.loss], 1e-5);
        expect(out.counted).toEqual([1, 1, 1, 0, 1]);
        expect(out.rowLoss[3]).toBe(0);
        expectRelClose(out.grad, ref.grad, ulpOf(dtype), dtype === 'float16' ? 1e-7 : 1e-9, 'gradient element');
        expect(out.grad.slice(3 * cols, 4 * cols).every((v) => v === 0)).toBe(true);
        for (let r = 0; r < rows; r++) {
          const row = out.x.slice(r * cols, (r + 1) * cols);
          const max = Math.max(...row);
          expectRelClose([out.lse[r]], [max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0))], 1e-6, 0, `lse of row ${r}`);
        }
      });

  itEmulated('another ignoreIndex, and an upstream gradient of 0.25', () => {
    const cols = 24;
    const targets = [7, 0, 23, 7];
    const out = emulate('float32', cols, targets, jsUniform(4 * cols, 4, -3, 3), 'vector', 7, 0.25);
    const ref = reference(out.x, cols, targets, 7, 0.25);
    expect(out.counted).toEqual([0, 1, 1, 0]);
    expectRelClose([out.loss], [ref.loss], 1e-6);
    expectRelClose(out.grad, ref.grad, 1e-5, 1e-9, 'gradient element');
  });

  itEmulated('extreme and masked logits: ±1e4 stays exact, −∞ entries count as probability 0', () => {
    const cols = 40;
    const logits = jsUniform(3 * cols, 8, -1e4, 1e4);
    for (const j of [0, 5, 39]) logits[cols + j] = -Infinity; // row 1: three masked entries
    const targets = [3, 7, 20];
    for (const path of ['vector', 'scalar'] as const) {
      const out = emulate('float32', cols, targets, logits, path);
      const ref = reference(out.x, cols, targets, -100, 3);
      expect(Number.isFinite(out.loss)).toBe(true);
      expectRelClose([out.loss], [ref.loss], 1e-6);
      expectRelClose(out.grad, ref.grad, 1e-5, 1e-9, 'gradient element');
      for (const j of [0, 5, 39]) expect(out.grad[cols + j]).toBe(0);
    }
  });

  itEmulated('a NaN logit makes its row NaN (and only its row); a target outside [0, C) makes its row NaN', () => {
    const cols = 16;
    const logits = jsUniform(3 * cols, 9, -2, 2);
    logits[cols + 4] = NaN; // row 1
    for (const path of ['vector', 'scalar'] as const) {
      const out = emulate('bfloat16', cols, [1, 2, 16], logits, path); // row 2: target 16 of 16 columns
      expect(Number.isFinite(out.rowLoss[0])).toBe(true);
      expect(Number.isNaN(out.lse[1]) && Number.isNaN(out.rowLoss[1])).toBe(true);
      expect(Number.isFinite(out.lse[2])).toBe(true);
      expect(Number.isNaN(out.rowLoss[2])).toBe(true);
      expect(Number.isNaN(out.loss)).toBe(true);
      // the out-of-range row's gradient is NaN too (nothing learnt from it silently); row 0's is not
      expect(out.grad.slice(2 * cols).every(Number.isNaN)).toBe(true);
      expect(out.grad.slice(0, cols).every(Number.isFinite)).toBe(true);
    }
  });

  itEmulated('every target ignored: nothing counts (the loss is 0/0 = NaN) and the gradient is exactly 0', () => {
    const out = emulate('float16', 32, [-100, -100], jsUniform(64, 10, -4, 4), 'vector');
    expect(out.counted).toEqual([0, 0]);
    expect(Number.isNaN(out.loss)).toBe(true);
    expect(out.grad.every((v) => v === 0)).toBe(true);
  });
});
