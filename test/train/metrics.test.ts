// metrics.jsonl keeps one history per run directory: a fresh run starts it anew, a resumed run drops
// what was logged after its checkpoint (and a torn last line), atomically.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsLog } from '../../lib/train/metrics';
import { Trainer } from '../../lib/train/trainer';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'slm-metrics-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const steps = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { step: number }).step);

describe('metrics.jsonl', () => {
  it('truncateAfter keeps records up to a step and drops a torn line', () => {
    const path = join(dir, 'metrics.jsonl');
    const log = new MetricsLog(path);
    log.append([1, 2, 3, 4].map((step) => ({ step, tokens: 0, flops: 0, loss: 1, lr: 0, gradNorm: null })));
    log.append([{ event: 'growth', step: 2 }]);
    writeFileSync(path, readFileSync(path, 'utf8') + '{"step": 5, "lo');
    log.truncateAfter(2);
    expect(steps(path)).toEqual([1, 2, 2]);
    log.truncateAfter(0);
    expect(readFileSync(path, 'utf8')).toBe('');
  });

  it('a second fresh run into the same directory does not append to the first one', async () => {
    const cfg = { model: { nLayer: 1, nHead: 2, nEmbd: 16, contextLength: 16 }, batchSize: 2, seqLen: 16, steps: 4, logInterval: 1 };
    for (let i = 0; i < 2; i++) {
      const t = Trainer.create(cfg);
      await t.train({ out: dir, progress: false });
      t.dispose();
    }
    expect(steps(join(dir, 'metrics.jsonl'))).toEqual([1, 2, 3, 4]);
  });
});
