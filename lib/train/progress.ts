// Progress on stderr: a live bar (cli-progress) on a terminal, one line per log interval otherwise.
// stdout stays free for --json output.
import { SingleBar } from 'cli-progress';

export interface ProgressFields {
  loss: number;
  lr: number;
  tokensPerSec: number;
}

export class Progress {
  private bar: SingleBar | null = null;

  constructor(
    private readonly total: number,
    private readonly start: number,
    private readonly enabled: boolean,
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

  update(step: number, f: ProgressFields): void {
    if (!this.enabled) return;
    const payload = { loss: f.loss.toFixed(4), lr: f.lr.toExponential(2), tps: Math.round(f.tokensPerSec) };
    if (this.bar !== null) this.bar.update(step, payload);
    else process.stderr.write(`step ${step}/${this.total}  loss ${payload.loss}  lr ${payload.lr}  ${payload.tps} tok/s\n`);
  }

  log(line: string): void {
    if (!this.enabled) return;
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
