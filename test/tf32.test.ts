// The TF32 switch for CUDA float32 matmuls: the process-wide setting, a run's `tf32` (set for the
// trainer's lifetime, put back at dispose), and on a GPU that it really changes the matmul.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cudaAvailable, noGrad, randn, setTF32, tf32Enabled, tidy } from '../lib';
import { parseRunConfig } from '../lib/train/config';
import { Trainer } from '../lib/train/trainer';
import { itWhen } from './helpers';

// libtorch reads this variable at start and then reports TF32 on whatever is set
const switchable = process.env.TORCH_ALLOW_TF32_CUBLAS_OVERRIDE === undefined;
const itSwitchable = itWhen(switchable, 'TORCH_ALLOW_TF32_CUBLAS_OVERRIDE forces TF32 on');
const itCuda = itWhen(
  cudaAvailable() && switchable,
  cudaAvailable() ? 'TORCH_ALLOW_TF32_CUBLAS_OVERRIDE forces TF32 on' : 'no CUDA device',
);
const tinyRun = { model: { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 8 }, steps: 1, batchSize: 1 };
const ones = { name: 'ones', train: new Uint16Array(64).fill(1), val: new Uint16Array(64).fill(1) };

afterEach(() => setTF32(false));

itSwitchable('is off by default (as in PyTorch), switches both ways and refuses what is not a boolean', () => {
  expect(tf32Enabled()).toBe(false);
  setTF32(true);
  expect(tf32Enabled()).toBe(true);
  setTF32(false);
  expect(tf32Enabled()).toBe(false);
  expect(() => setTF32(1 as unknown as boolean)).toThrow(/Expected a boolean for enabled but received number/);
  expect(tf32Enabled()).toBe(false);
});

itSwitchable("a run's tf32 holds for the trainer's lifetime and is put back at dispose; absent, the process setting stands", () => {
  expect(() => parseRunConfig({ steps: 1, tf32: 'yes' })).toThrow(/tf32/);
  expect(parseRunConfig({ steps: 1 }).tf32).toBeUndefined();
  for (const [before, run, during] of [
    [false, true, true],
    [true, false, false],
    [true, undefined, true],
  ] as const) {
    setTF32(before);
    const t = Trainer.create({ ...tinyRun, ...(run === undefined ? {} : { tf32: run }) }, ones);
    try {
      expect(tf32Enabled()).toBe(during);
      const r = t.step();
      r.loss.dispose();
      r.gradNorm?.dispose();
      r.skipped?.dispose();
      expect(tf32Enabled()).toBe(during);
    } finally {
      t.dispose();
    }
    expect(tf32Enabled()).toBe(before);
  }
});

itSwitchable('Trainer.resume keeps the saved tf32 unless told otherwise (train --resume --tf32 / --no-tf32)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'staged-lm-tf32-'));
  try {
    const t = Trainer.create({ ...tinyRun, tf32: true }, ones);
    t.save(dir);
    t.dispose();
    for (const [override, expected] of [
      [undefined, true],
      [false, false],
    ] as const) {
      const r = Trainer.resume(dir, override === undefined ? {} : { tf32: override }, ones);
      try {
        expect(r.config.tf32).toBe(expected);
        expect(tf32Enabled()).toBe(expected);
      } finally {
        r.dispose();
      }
      expect(tf32Enabled()).toBe(false);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

itCuda('on a GPU it trades float32 matmul precision for speed: ~1e-3 relative error on, float32 rounding off', () => {
  // relative error of a 512×512×512 float32 matmul against the same product in float64
  const relError = (): number =>
    tidy(() =>
      noGrad(() => {
        const a = randn([512, 512], { device: 'cuda' });
        const b = randn([512, 512], { device: 'cuda' });
        const exact = a.to({ dtype: 'float64' }).matmul(b.to({ dtype: 'float64' }));
        const diff = a.matmul(b).to({ dtype: 'float64' }).sub(exact).abs().mean().item();
        return diff / exact.abs().mean().item();
      }),
    );
  setTF32(false);
  const ieee = relError();
  setTF32(true);
  const tf32 = relError();
  expect(ieee).toBeLessThan(1e-5);
  // TF32 keeps 10 mantissa bits of each input (2^-11 relative rounding): ~1e-4–1e-3 after the sums
  expect(tf32).toBeGreaterThan(3e-5);
  expect(tf32).toBeLessThan(5e-3);
});
