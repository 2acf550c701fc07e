// gpu-vs-torch.sh's comparison: its ratio lines, the README's GPU table, and the lines to leave out.
import { formatGpuTable, parseBenchLines, ratioLines } from '../../bench/gpu-table';

const lines = [
  {
    impl: 'staged-lm',
    model: '124M',
    batch: 16,
    seq: 1024,
    ms_per_step: 40,
    tokens_per_s: 409600,
    peak_mem_gib: 18,
    peak_mem_kind: 'allocated',
  },
  {
    impl: 'pytorch-eager',
    torch: '2.11.0+cu130',
    device: 'NVIDIA H200',
    model: '124M',
    batch: 16,
    seq: 1024,
    ms_per_step: 50,
    tokens_per_s: 327680,
    peak_mem_gib: 20,
  },
  {
    impl: 'staged-lm-cuda-graph',
    model: '124M',
    batch: 16,
    seq: 1024,
    ms_per_step: 39,
    tokens_per_s: 420103,
    peak_mem_gib: 22,
    peak_mem_kind: 'reserved',
  },
  { shape: '124M b16x1024', impl: 'staged-lm', tokens_per_s_ratio: 1.25 },
  {
    impl: 'staged-lm',
    model: 'tiny',
    batch: 16,
    seq: 256,
    ms_per_step: 8,
    tokens_per_s: 512000,
    peak_mem_gib: 1,
    peak_mem_kind: 'allocated',
  },
  {
    impl: 'pytorch-eager',
    device: 'NVIDIA H200',
    model: 'tiny',
    batch: 16,
    seq: 256,
    ms_per_step: 10,
    tokens_per_s: 409600,
    peak_mem_gib: 1.25,
  },
  { impl: 'staged-lm-cuda-graph', model: 'tiny', failed: true },
]
  .map((r) => JSON.stringify(r))
  .join('\n');

describe('gpu-table', () => {
  it('reads only bench rows: not ratio lines, other output or a line cut short', () => {
    const rows = parseBenchLines('build: 30 s\n' + lines + '\n{"impl":"staged-lm","model":"350M","ba\n');
    expect(rows).toHaveLength(6);
  });

  it('writes one row per shape with ratios to PyTorch eager, and marks a failed graph run', () => {
    const table = formatGpuTable(parseBenchLines(lines), '2026-12-01').split('\n');
    expect(table[0]).toBe(
      'Measured 2026-12-01 on one **NVIDIA H200** (PyTorch 2.11.0+cu130), same run for all columns (`bash bench/gpu-vs-torch.sh`):',
    );
    expect(table[4]).toBe('| GPT-2 124M, 16×1024 | 50.00 | 40.00 (1.250×) | 39.00 (1.282×) | 0.90 (1.10 reserved) |');
    expect(table[5]).toBe('| tiny 4×256, 16×256 | 10.00 | 8.00 (1.250×) | failed or not run | 0.80 (–) |');
    expect(table).toHaveLength(6);
  });

  it('has one ratio line per run of ours that PyTorch eager ran the shape of', () => {
    expect(ratioLines(parseBenchLines(lines))).toEqual([
      {
        shape: '124M b16x1024',
        impl: 'staged-lm',
        tokens_per_s_ratio: 1.25,
        ms_per_step: { ours: 40, pytorch: 50 },
        peak_mem_ratio: 0.9,
        final_loss: { ours: undefined, pytorch: undefined },
        device: 'NVIDIA H200',
      },
      {
        shape: '124M b16x1024',
        impl: 'staged-lm-cuda-graph',
        tokens_per_s_ratio: 1.282,
        ms_per_step: { ours: 39, pytorch: 50 },
        peak_mem_ratio: 1.1,
        final_loss: { ours: undefined, pytorch: undefined },
        device: 'NVIDIA H200',
      },
      {
        shape: 'tiny b16x256',
        impl: 'staged-lm',
        tokens_per_s_ratio: 1.25,
        ms_per_step: { ours: 8, pytorch: 10 },
        peak_mem_ratio: 0.8,
        final_loss: { ours: undefined, pytorch: undefined },
        device: 'NVIDIA H200',
      },
    ]);
  });

  it('shows a missing number as – and has no rows without a PyTorch run to compare with', () => {
    const rows = parseBenchLines(lines);
    const noRate = rows.map((r) => (r.impl === 'staged-lm' ? { ...r, tokens_per_s: undefined } : r));
    expect(formatGpuTable(noRate, 'D').split('\n')[4]).toContain('| 40.00 (–) |');
    const ours = rows.filter((r) => r.impl !== 'pytorch-eager');
    expect(formatGpuTable(ours, 'D').split('\n')).toHaveLength(4);
  });

  it('adds the fused-loss columns when such runs are there', () => {
    const fusedRuns = [
      {
        impl: 'staged-lm+fused-loss',
        model: '124M',
        batch: 16,
        seq: 1024,
        ms_per_step: 36,
        tokens_per_s: 455111,
        peak_mem_gib: 15,
        peak_mem_kind: 'allocated',
      },
      {
        impl: 'staged-lm-cuda-graph+fused-loss',
        model: '124M',
        batch: 16,
        seq: 1024,
        ms_per_step: 35,
        tokens_per_s: 468114,
        peak_mem_gib: 19,
        peak_mem_kind: 'reserved',
      },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n');
    const table = formatGpuTable(parseBenchLines(lines + '\n' + fusedRuns), '2026-12-01').split('\n');
    expect(table[2]).toMatch(/\| eager, fused loss: ms\/step \(ratio; memory\) \| CUDA graph, fused loss \|$/);
    expect(table[3]).toBe('| --- | --- | --- | --- | --- | --- | --- |');
    expect(table[4]).toBe(
      '| GPT-2 124M, 16×1024 | 50.00 | 40.00 (1.250×) | 39.00 (1.282×) | 0.90 (1.10 reserved) | 36.00 (1.389×; 0.75) | 35.00 (1.429×; 0.95 reserved) |',
    );
    expect(table[5]).toBe(
      '| tiny 4×256, 16×256 | 10.00 | 8.00 (1.250×) | failed or not run | 0.80 (–) | failed or not run | failed or not run |',
    );
    expect(ratioLines(parseBenchLines(fusedRuns + '\n' + lines)).map((l) => (l as { impl: string }).impl)).toEqual([
      'staged-lm+fused-loss',
      'staged-lm-cuda-graph+fused-loss',
      'staged-lm',
      'staged-lm-cuda-graph',
      'staged-lm',
    ]);
  });

  it('gives each combination of fused kernels its own two columns, named by the kernels', () => {
    const runs = [
      { impl: 'staged-lm+fused-loss', ms_per_step: 36, tokens_per_s: 455111, peak_mem_gib: 15, peak_mem_kind: 'allocated' },
      { impl: 'staged-lm+fused-loss+fused-norm', ms_per_step: 32, tokens_per_s: 512000, peak_mem_gib: 14, peak_mem_kind: 'allocated' },
      {
        impl: 'staged-lm-cuda-graph+fused-loss+fused-norm',
        ms_per_step: 31,
        tokens_per_s: 528516,
        peak_mem_gib: 18,
        peak_mem_kind: 'reserved',
      },
    ]
      .map((r) => JSON.stringify({ model: '124M', batch: 16, seq: 1024, ...r }))
      .join('\n');
    const table = formatGpuTable(parseBenchLines(lines + '\n' + runs), 'D').split('\n');
    expect(table[2]).toMatch(
      /\| eager, fused loss: ms\/step \(ratio; memory\) \| CUDA graph, fused loss \| eager, fused loss \+ norm: ms\/step \(ratio; memory\) \| CUDA graph, fused loss \+ norm \|$/,
    );
    expect(table[3]).toBe('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    expect(table[4]).toMatch(
      /\| 36\.00 \(1\.389×; 0\.75\) \| failed or not run \| 32\.00 \(1\.563×; 0\.70\) \| 31\.00 \(1\.613×; 0\.90 reserved\) \|$/,
    );
  });
});
