// metrics.jsonl: one JSON object per line. Training records carry
//   {step, tokens, flops, loss, lr, gradNorm, tokensPerSec, elapsedSec}
// and, at evaluation steps, valLoss (with valOffInterval: true at a session's end off the interval);
// under loss scaling, skipped: true on skipped updates and lossScale at each log interval's end;
// other events (growth, interrupt, resume) carry `event`.
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { makeDirectory } from '../data/atomic';
import { dirname } from 'node:path';

export interface StepRecord {
  step: number;
  tokens: number;
  flops: number;
  /** Kaplan compute so far: 6·N·tokens with N = kaplanParams, summed over stages (the slope trigger's x). */
  compute: number;
  loss: number;
  lr: number;
  gradNorm: number | null;
  tokensPerSec?: number;
  elapsedSec?: number;
  valLoss?: number;
  /**
   * true where valLoss is the evaluation at the end of a session (the run's last step, or where it
   * was interrupted), not one on eval.interval: the slope trigger's curve leaves it out, so that a
   * resumed run grows where an uninterrupted one does.
   */
  valOffInterval?: boolean;
  /**
   * Loss scaling: true where this step's update was skipped (its gradients overflowed at the loss
   * scale; their norm, gradNorm, is then not finite: null in the file, as JSON has no Infinity).
   */
  skipped?: boolean;
  /** Loss scaling: the scale after this step (on the last record of each log interval). */
  lossScale?: number;
}

export type MetricsRecord = StepRecord | ({ event: string; step: number } & Record<string, unknown>);

export class MetricsLog {
  constructor(readonly path: string) {
    makeDirectory(dirname(path));
  }

  /**
   * Drops the records after `step` (0: all of them): a fresh run into a used directory starts a new
   * log, and a resumed run drops what the interrupted one logged after its checkpoint, which it is
   * about to redo. Rewrites the file atomically (temporary file + rename). Returns the step of the
   * last record kept (null: none).
   */
  truncateAfter(step: number, stage?: number): number | null {
    if (!existsSync(this.path)) return null;
    const lines = readFileSync(this.path, 'utf8').split('\n');
    const kept = lines.filter((l) => {
      if (l.trim() === '') return false;
      try {
        const r = JSON.parse(l) as { step?: unknown; event?: unknown; stage?: unknown };
        // (at 0 every record goes, a fine-tune's `init` event too: the run writes its own)
        if (typeof r.step !== 'number' || r.step > step || step === 0) return false;
        // a growth at the resumed step that the checkpoint predates (the run was stopped before
        // the grown state was saved) happens again: its first record goes
        return !(stage !== undefined && r.step === step && r.event === 'growth' && typeof r.stage === 'number' && r.stage > stage);
      } catch {
        return false; // a torn last line from a crash
      }
    });
    const last = kept.length === 0 ? null : (JSON.parse(kept[kept.length - 1]) as { step: number }).step;
    if (kept.length === lines.filter((l) => l.trim() !== '').length) return last;
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, kept.length ? kept.join('\n') + '\n' : '');
    renameSync(tmp, this.path);
    return last;
  }

  append(records: MetricsRecord[]): void {
    if (records.length === 0) return;
    appendFileSync(this.path, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
}
