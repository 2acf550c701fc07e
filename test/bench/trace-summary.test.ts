// bench/trace-summary.ts: the side-by-side table of two traces' splits (ours and PyTorch's).
import { markdownTable } from '../../bench/trace-summary';
import type { TraceSummary } from '../../lib/train/trace-summary';

const summary = (by: Record<string, number>, kernels: number): TraceSummary => ({
  measure: 'GPU kernel time',
  ms_per_step: Object.values(by).reduce((s, v) => s + v, 0),
  kernels_per_step: kernels,
  by_kind_ms: by,
  top: [],
});

it('puts the kinds side by side, larger first, with ratios (– where PyTorch spends nothing) and the totals', () => {
  const ours = summary({ gemm: 20, loss: 1, normalization: 0.5 }, 300);
  const pytorch = summary({ gemm: 20.5, loss: 6, 'copy/cast': 2 }, 400);
  expect(markdownTable(ours, pytorch).split('\n')).toEqual([
    '| kind of work (GPU kernel time, ms/step) | staged-lm | PyTorch | ratio |',
    '| --- | --- | --- | --- |',
    '| gemm | 20.000 | 20.500 | 0.98 |',
    '| loss | 1.000 | 6.000 | 0.17 |',
    '| copy/cast | 0.000 | 2.000 | 0.00 |',
    '| normalization | 0.500 | 0.000 | – |',
    '| **all** | **21.500** | **28.500** | **0.75** |',
    '| kernels per step | 300 | 400 | 0.75 |',
  ]);
});
