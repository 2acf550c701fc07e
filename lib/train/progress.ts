// Progress on stderr: a live bar (cli-progress) on a terminal, one line per log interval otherwise.
// stdout stays free for --json output.
import { SingleBar } from 'cli-progress';

export interface ProgressFields {
  loss: number;
  lr: number;
  tokensPerSec: number;
}

/** Seconds as 45s, 12m05s or 3h07m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class Progress {
  private bar: SingleBar | null = null;
  /** When this session's first step began (for the ETA of line-by-line progress). */
  private readonly startedAt = performance.now();

  /**
   * `enabled`: the bar or the per-interval lines; `notes`: events and warnings (a growth, a moved
   * end, a dropped profile), which a run without progress output still prints.
   */
  constructor(
    private total: number,
    private readonly start: number,
    private readonly enabled: boolean,
    private readonly notes = enabled,
  ) {
    if (enabled && process.stderr.isTTY) {
      this.bar = new SingleBar({
        stream: process.stderr,
        format: 'step {value}/{total} [{bar}] loss {loss} | lr {lr} | {tps} tok/s | ETA {eta_formatted}',
        barsize: 24,
        hideCursor: true,
        etaBuffer: 20,
      });
      this.bar.start(total, start, { loss: '-', lr: '-', tps: '-' });
    }
  }

  /** The run's last step moved (a growth in a run that ends with its schedule). */
  setTotal(total: number): void {
    this.total = total;
    this.bar?.setTotal(total);
  }

  update(step: number, f: ProgressFields): void {
    if (!this.enabled) return;
    const payload = { loss: f.loss.toFixed(4), lr: f.lr.toExponential(2), tps: Math.round(f.tokensPerSec) };
    if (this.bar !== null) this.bar.update(step, payload);
    else
      process.stderr.write(
        `step ${step}/${this.total}  loss ${payload.loss}  lr ${payload.lr}  ${payload.tps} tok/s  ETA ${this.eta(step)}\n`,
      );
  }

  /** The time left at this session's mean pace so far (evaluations and saves included). */
  eta(step: number): string {
    const done = step - this.start;
    if (done <= 0) return '-';
    return formatDuration((((performance.now() - this.startedAt) / 1000) * (this.total - step)) / done);
  }

  /** A progress line (shown with the bar or the interval lines). */
  log(line: string): void {
    if (this.enabled) this.write(line);
  }

  /** An event or a warning: shown unless notes are off too. */
  note(line: string): void {
    if (this.notes) this.write(line);
  }

  private write(line: string): void {
    if (this.bar !== null) {
      this.bar.stop();
      process.stderr.write(line + '\n');
      this.bar.start(this.total, this.bar.getProgress() * this.total || this.start);
    } else {
      process.stderr.write(line + '\n');
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
