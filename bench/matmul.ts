// A bf16 N×N matmul timed through the Tensor API (default N = 8192, on CUDA): TFLOP/s as JSON.
import { randn, synchronize, tidy, cudaAvailable } from '../lib';

const n = Number(process.argv[2] ?? 8192);
const reps = Number(process.argv[3] ?? 20);
if (!cudaAvailable()) {
  process.stdout.write(JSON.stringify({ bench: 'matmul-bf16', skipped: 'no CUDA' }) + '\n');
} else {
  const a = randn([n, n], { dtype: 'bfloat16', device: 'cuda' });
  const b = randn([n, n], { dtype: 'bfloat16', device: 'cuda' });
  for (let i = 0; i < 3; i++) tidy(() => a.mm(b));
  synchronize();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) tidy(() => a.mm(b));
  synchronize();
  const s = (performance.now() - t0) / 1000 / reps;
  process.stdout.write(
    JSON.stringify({ bench: 'matmul-bf16', n, ms: Math.round(s * 1e6) / 1e3, tflops: Math.round(((2 * n ** 3) / s / 1e12) * 10) / 10 }) +
      '\n',
  );
}
