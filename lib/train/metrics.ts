// metrics.jsonl: one JSON object per line. Training records carry
//   {step, tokens, flops, loss, lr, gradNorm, tokensPerSec, elapsedSec}
// and, at evaluation steps, valLoss; other events (growth, interrupt) carry `event`.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StepRecord {
  step: number;
  tokens: number;
  flops: number;
  loss: number;
  lr: number;
  gradNorm: number | null;
  tokensPerSec?: number;
  elapsedSec?: number;
  valLoss?: number;
}

export type MetricsRecord = StepRecord | ({ event: string; step: number } & Record<string, unknown>);

export class MetricsLog {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  append(records: MetricsRecord[]): void {
    if (records.length === 0) return;
    appendFileSync(this.path, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
}
