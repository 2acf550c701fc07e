// The CPU block cache (native/cpu_allocator.cc): tensor blocks of 1 MiB and more are mapped apart
// from the malloc heap and reused; what it maps stays within twice the most ever in use; a tensor kept
// across steps (a loss with its graph, a detached scalar) no longer grows the process.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { empty, emptyCache, memoryStats, ones, resetPeakMemory, zeros, type CpuBlockStats } from '../lib';

const MiB = 2 ** 20;
const LIB = join(__dirname, '..', 'dist', 'lib');

function cpu(): CpuBlockStats {
  const s = memoryStats().cpu;
  if (s === null) throw new Error('the CPU block cache is not installed (STAGED_LM_DEFAULT_MALLOC set?)');
  return s;
}

/** A float32 tensor of `bytes` bytes. */
function block(bytes: number) {
  return empty([bytes / 4]);
}

describe('CPU block cache', () => {
  beforeEach(() => emptyCache());

  it('serves a freed block again to the next allocation of its size, without a new mapping', () => {
    const a = block(4 * MiB);
    const s0 = cpu();
    expect(s0.allocated).toBeGreaterThanOrEqual(4 * MiB);
    a.dispose();
    const s1 = cpu();
    expect(s1.allocated).toBe(s0.allocated - 4 * MiB);
    expect(s1.reserved).toBe(s0.reserved); // cached, not unmapped
    const b = block(4 * MiB);
    const s2 = cpu();
    expect(s2.hits).toBe(s1.hits + 1);
    expect(s2.misses).toBe(s1.misses);
    expect(s2.reserved).toBe(s1.reserved);
    b.dispose();
  });

  it('serves a request up to 1/8 smaller from a cached block, not a much smaller one', () => {
    block(4 * MiB).dispose();
    const s0 = cpu();
    const near = block(3.75 * MiB); // 4 MiB is 1/15 larger
    expect(cpu().hits).toBe(s0.hits + 1);
    near.dispose();
    const s1 = cpu();
    const small = block(2 * MiB); // 4 MiB would waste half
    expect(cpu().misses).toBe(s1.misses + 1);
    small.dispose();
  });

  // In a fresh process: the mark is the process's all-time most in use, which earlier tests in this
  // worker may have raised.
  it('never maps more than twice the most ever in use at once: a miss unmaps cached blocks first', () => {
    const script = `
      const S = require(${JSON.stringify(LIB)});
      const MiB = 2 ** 20, block = (bytes) => S.empty([bytes / 4]);
      const three = [block(4 * MiB), block(4 * MiB), block(4 * MiB)]; // 12 MiB in use at once
      const mark = S.memoryStats().cpu.peakAllocated;
      three.forEach((t) => t.dispose());
      const cached = S.memoryStats().cpu;
      const mid = block(7 * MiB); // fits none of them; 12 + 7 MiB mapped is within twice the mark
      const afterMid = S.memoryStats().cpu;
      mid.dispose();
      const big = block(16 * MiB); // raises the mark to 16 MiB: 23 + 16 MiB is not within 32
      console.log(JSON.stringify({ mark, cached, afterMid, afterBig: S.memoryStats().cpu }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as {
      mark: number;
      cached: CpuBlockStats;
      afterMid: CpuBlockStats;
      afterBig: CpuBlockStats;
    };
    expect(out.mark).toBe(12 * MiB);
    expect(out.cached.reserved).toBe(12 * MiB); // all three cached
    expect(out.afterMid.reserved).toBe(19 * MiB); // nothing unmapped
    expect(out.afterBig.allocated).toBe(16 * MiB);
    // largest first: the 7 MiB block goes (19 + 16 > 32), then 12 + 16 fits: the 4 MiB ones stay
    expect(out.afterBig.reserved).toBe(16 * MiB + 12 * MiB);
    expect(out.afterBig.reserved).toBeLessThanOrEqual(2 * out.afterBig.peakAllocated);
  });

  it('returns every cached block on emptyCache(), keeping those in use', () => {
    const kept = block(2 * MiB);
    block(4 * MiB).dispose();
    expect(cpu().reserved).toBeGreaterThan(cpu().allocated);
    emptyCache();
    const s = cpu();
    expect(s.reserved).toBe(s.allocated);
    expect(s.allocated).toBeGreaterThanOrEqual(2 * MiB);
    kept.dispose();
  });

  it('keeps the peak until resetPeakMemory()', () => {
    resetPeakMemory();
    const s0 = cpu();
    expect(s0.peakAllocated).toBe(s0.allocated);
    const t = block(8 * MiB);
    t.dispose();
    const s1 = cpu();
    expect(s1.allocated).toBe(s0.allocated);
    expect(s1.peakAllocated).toBe(s0.allocated + 8 * MiB);
    resetPeakMemory();
    expect(cpu().peakAllocated).toBe(cpu().allocated);
  });

  it('takes a tensor of exactly 1 MiB, and leaves one byte less to malloc', () => {
    const s0 = cpu();
    const at = empty([MiB], { dtype: 'uint8' });
    const s1 = cpu();
    expect(s1.allocated).toBe(s0.allocated + MiB);
    const under = empty([MiB - 1], { dtype: 'uint8' });
    const s2 = cpu();
    expect(s2.allocated).toBe(s1.allocated);
    expect(s2.hits + s2.misses).toBe(s1.hits + s1.misses);
    at.dispose();
    under.dispose();
  });

  it('hands out blocks whose contents are the tensor’s own (reuse, resize, clone)', () => {
    const a = ones([MiB]); // 4 MiB
    expect(a.sum().item()).toBe(MiB);
    a.dispose();
    const b = zeros([MiB]); // the same block, zero-filled again
    expect(b.sum().item()).toBe(0);
    const c = b.add(2).clone();
    expect(c.mean().item()).toBe(2);
    b.dispose();
    c.dispose();
  });

  // In a plain Node process over the built library (as memory.test.ts's RSS checks): kept losses
  // must not grow the resident heap. With the earlier glibc tuning (large blocks in the heap, no
  // trimming) the first 100 kept graphs over 8 MiB logits grew it by 136 MB here (1.4 MiB a step;
  // 100 kept scalars first: 64 MB, then the graphs nothing more); PyTorch grows it by nothing.
  it('a loss kept with its graph, or a kept scalar, holds no freed logits’ memory', () => {
    const script = `
      const fs = require('node:fs');
      const S = require(${JSON.stringify(LIB)});
      S.setNumThreads(1);
      const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      const N = 2048, C = 1024; // 8 MiB logits
      const leaf = S.randn([N, C]).requiresGrad_(true);
      const targets = S.randint(0, C, [N]);
      const kept = [];
      const step = (how) => {
        const x = leaf.mul(1.5);
        const loss = S.crossEntropy(x, targets);
        loss.backward();
        x.dispose();
        if (how === 'graph') kept.push(loss);
        else { kept.push(loss.detach()); loss.dispose(); }
      };
      for (let i = 0; i < 5; i++) step('scalar');
      const r0 = anon();
      for (let i = 0; i < 100; i++) step('graph');
      const r1 = anon();
      for (let i = 0; i < 100; i++) step('scalar');
      const r2 = anon();
      console.log(JSON.stringify({ graph: (r1 - r0) / 100, scalar: (r2 - r1) / 100, cpu: S.memoryStats().cpu }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as {
      graph: number;
      scalar: number;
      cpu: CpuBlockStats;
    };
    // a few kB a step is the kept tensors' own metadata and glibc's bins settling
    expect(out.graph).toBeLessThan(0.1 * MiB);
    expect(out.scalar).toBeLessThan(0.1 * MiB);
    expect(out.cpu.hits).toBeGreaterThan(out.cpu.misses); // the steps reuse their blocks
  });

  it('is left out with STAGED_LM_DEFAULT_MALLOC=1: memoryStats().cpu is null and tensors work', () => {
    const script = `
      const S = require(${JSON.stringify(LIB)});
      const t = S.ones([1 << 20]);
      console.log(JSON.stringify({ cpu: S.memoryStats().cpu, sum: t.sum().item() }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, STAGED_LM_DEFAULT_MALLOC: '1' } }),
    ) as { cpu: CpuBlockStats | null; sum: number };
    expect(out.cpu).toBeNull();
    expect(out.sum).toBe(MiB);
  });
});
