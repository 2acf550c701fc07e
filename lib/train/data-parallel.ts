// What the trainer does differently as one rank of a data-parallel job: every rank starts from
// rank 0's parameters and moments, gradients are averaged over ranks (bucketed, overlapped with
// backward), decisions (grow now, stop now) are rank 0's, and after a growth every rank proves it
// holds the same state. Rank 0 alone writes files (see Trainer).
import type { Device } from '../dtype';
import { tensor } from '../factories';
import { stack } from '../functional';
import { allReduce, barrier, broadcast, GradientReducer, type ProcessGroupInfo } from '../distributed/process-group';
import type { TrainState } from '../growth';
import { noGrad } from '../autograd';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';

export class DataParallel {
  private reducer: GradientReducer | null = null;

  constructor(
    readonly group: ProcessGroupInfo,
    /** Where collective buffers live: the training device (NCCL needs CUDA tensors). */
    readonly device: Device,
    readonly bucketBytes = 25 * 1024 * 1024,
  ) {}

  get rank(): number {
    return this.group.rank;
  }

  get worldSize(): number {
    return this.group.worldSize;
  }

  /**
   * Makes every rank hold rank 0's parameters and moments, and (re)builds the gradient buckets
   * for this parameter set: at the start, after a resume, after a growth.
   */
  adopt(state: TrainState): void {
    const tensors = [...Object.values(state.params), ...Object.values(state.moments).flatMap((m) => [m.expAvg, m.expAvgSq])];
    noGrad(() => {
      for (const group of byDtype(tensors)) broadcast(group, 0);
    });
    this.attach(Object.values(state.params));
  }

  /** New buckets and hooks for a new parameter set (the old hooks are removed). */
  attach(params: Tensor[]): void {
    this.reducer?.dispose();
    this.reducer = new GradientReducer(params, this.bucketBytes);
  }

  /** Arms the gradient all-reduce for the next backward (the last micro-batch of a step). */
  prepareBackward(): void {
    this.reducer!.prepare();
  }

  /** Waits for the all-reduce: every .grad now holds the mean over ranks. */
  finishBackward(): void {
    this.reducer!.finish();
  }

  /** The mean over ranks of each value. */
  mean(values: Tensor): Tensor {
    return tidy(() => {
      const t = values.to({ device: this.device, dtype: 'float64' }).contiguous().clone();
      allReduce([t], 'mean');
      return t;
    });
  }

  /** The sums over ranks of plain numbers (fp64). */
  sum(values: number[]): number[] {
    return tidy(() => {
      const t = tensor(values, { device: this.device, dtype: 'float64' });
      allReduce([t], 'sum');
      return t.toNumberArray();
    });
  }

  /**
   * Every rank's bytes, on every rank (index = rank): small payloads such as generator states.
   * An all-reduce sum in which each rank fills its own row (fp64 holds every byte value exactly).
   */
  allGatherBytes(bytes: Uint8Array): Uint8Array[] {
    const n = this.worldSize;
    const lengths = this.sum(Array.from({ length: n }, (_, r) => (r === this.rank ? bytes.length : 0)));
    const width = Math.max(...lengths);
    const rows = Array.from({ length: n * width }, (_, i) => {
      const r = Math.floor(i / width);
      const j = i % width;
      return r === this.rank && j < bytes.length ? bytes[j] : 0;
    });
    const all = tidy(() => {
      const t = tensor(rows, { device: this.device, dtype: 'float64' });
      allReduce([t], 'sum');
      return t.toNumberArray();
    });
    return lengths.map((len, r) => Uint8Array.from(all.slice(r * width, r * width + len)));
  }

  /** Rank 0's answer, on every rank (the growth trigger, the end of a stage). */
  agree(flag: boolean): boolean {
    return tidy(() => {
      const t = tensor([flag ? 1 : 0], { device: this.device, dtype: 'float64' });
      broadcast([t], 0);
      return t.toNumberArray()[0] === 1;
    });
  }

  /** Whether any rank says yes (a stop request that reached some ranks only). */
  any(flag: boolean): boolean {
    return tidy(() => {
      const t = tensor([flag ? 1 : 0], { device: this.device, dtype: 'float64' });
      allReduce([t], 'max');
      return t.toNumberArray()[0] === 1;
    });
  }

  /**
   * Checks that every rank holds the same parameters and moments: per-tensor fp64 checksums
   * (sum, sum of squares), reduced by min and by max over ranks, must agree exactly. Throws naming
   * the tensors that differ.
   */
  checkIdentical(state: TrainState, when: string): void {
    const named: [string, Tensor][] = [
      ...Object.entries(state.params),
      ...Object.entries(state.moments).flatMap(([n, m]): [string, Tensor][] => [
        [`${n}.exp_avg`, m.expAvg],
        [`${n}.exp_avg_sq`, m.expAvgSq],
      ]),
    ];
    const [lo, hi] = tidy(() => {
      const sums = stack(
        named.flatMap(([, t]) => {
          const x = t.to({ device: this.device, dtype: 'float64' });
          return [x.sum(), x.mul(x).sum()];
        }),
      );
      const min = sums.clone();
      const max = sums.clone();
      allReduce([min], 'min');
      allReduce([max], 'max');
      return [min.toNumberArray(), max.toNumberArray()];
    });
    const differ = named.filter((_, i) => lo[2 * i] !== hi[2 * i] || lo[2 * i + 1] !== hi[2 * i + 1]).map(([n]) => n);
    if (differ.length > 0) {
      throw new Error(
        `data parallel: the ranks' states differ ${when} (${differ.length} tensors, e.g. ${differ.slice(0, 3).join(', ')}): ` +
          'every rank must apply the same operator to the same state',
      );
    }
  }

  barrier(): void {
    barrier();
  }

  dispose(): void {
    this.reducer?.dispose();
    this.reducer = null;
  }
}

/** Tensors grouped by dtype (a collective takes one dtype at a time). */
function byDtype(ts: Tensor[]): Tensor[][] {
  const m = new Map<string, Tensor[]>();
  for (const t of ts) {
    const k = `${t.dtype}@${t.device}`;
    m.set(k, [...(m.get(k) ?? []), t]);
  }
  return [...m.values()];
}
