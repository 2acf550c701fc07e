// `train --profile`: a few steps of a real run recorded with libtorch's profiler (a Chrome trace
// and its time by kind of work), after some steps of warm-up so that set-up, first-step
// allocations and a CUDA graph's capture are not what it shows.
import { checkProfiling, Profiler } from '../profile';
import { readTrace, summarizeTrace, type TraceSummary } from './trace-summary';

export interface ProfileOptions {
  /** Where the Chrome trace goes. */
  trace: string;
  /** Steps to record (default 3). */
  steps?: number;
  /** Steps of this invocation to run first (default 5). */
  after?: number;
}

export type ProfileResult = TraceSummary & {
  trace: string;
  /** The first recorded step (the run's step count). */
  fromStep: number;
  /** Steps recorded: fewer than asked when the run ended inside the window. */
  steps: number;
};

export class ProfileWindow {
  private readonly steps: number;
  private readonly after: number;
  private seen = 0;
  private recorded = 0;
  private fromStep = 0;
  private recording: Profiler | null = null;
  private done = false;

  /** Checks everything before the run: Kineto in this libtorch, the counts, a writable path. */
  constructor(
    private readonly opts: ProfileOptions,
    private readonly cuda: boolean,
  ) {
    checkProfiling(opts.trace, 'profile');
    this.steps = opts.steps ?? 3;
    this.after = opts.after ?? 5;
    if (!Number.isInteger(this.steps) || this.steps < 1) throw new Error(`profile: steps must be a positive integer, not ${this.steps}`);
    if (!Number.isInteger(this.after) || this.after < 0)
      throw new Error(`profile: after must be a non-negative integer, not ${this.after}`);
  }

  /** Before a step (`step`: the run's step count so far): opens the window when its turn comes. */
  beforeStep(step: number): void {
    if (this.done || this.recording !== null || this.seen < this.after) return;
    this.recording = Profiler.start(this.opts.trace, { cuda: this.cuda });
    this.fromStep = step + 1;
  }

  /** After a step: the result once the window is full (the trace written), else null. */
  afterStep(): ProfileResult | null {
    this.seen += 1;
    if (this.recording === null) return null;
    this.recorded += 1;
    return this.recorded === this.steps ? this.finish() : null;
  }

  /** Writes what was recorded, if a window is open (a run that ended inside it); else null. */
  finish(): ProfileResult | null {
    if (this.recording === null) return null;
    const recording = this.recording;
    this.recording = null;
    this.done = true;
    if (this.recorded === 0) {
      recording.discard();
      return null;
    }
    recording.stop();
    return {
      trace: this.opts.trace,
      fromStep: this.fromStep,
      steps: this.recorded,
      ...summarizeTrace(readTrace(this.opts.trace), this.recorded),
    };
  }

  /** Drops an open recording (the run failed). */
  discard(): void {
    this.recording?.discard();
    this.recording = null;
    this.done = true;
  }
}

/** One line for the progress log: where the trace went and the largest kinds of work. */
export function describeProfile(p: ProfileResult): string {
  const kinds = Object.entries(p.by_kind_ms)
    .slice(0, 5)
    .map(([k, ms]) => `${k} ${ms}`)
    .join(', ');
  return `profile of steps ${p.fromStep}–${p.fromStep + p.steps - 1}: ${p.trace}; ${p.measure} ${p.ms_per_step} ms/step (${kinds})`;
}
