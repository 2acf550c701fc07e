// metrics.jsonl keeps one history per run directory: a fresh run starts it anew, a resumed run drops
// what was logged after its checkpoint (and a torn last line), atomically.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsLog } from '../../lib/train/metrics';
import { parseJsonLines } from '../../lib/io/jsonl';
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
    log.append([1, 2, 3, 4].map((step) => ({ step, tokens: 0, flops: 0, compute: 0, loss: 1, lr: 0, gradNorm: null })));
    log.append([{ event: 'growth', step: 2 }]);
    writeFileSync(path, readFileSync(path, 'utf8') + '{"step": 5, "lo');
    log.truncateAfter(2);
    expect(steps(path)).toEqual([1, 2, 2]);
    log.truncateAfter(0);
    expect(readFileSync(path, 'utf8')).toBe('');
    // records at step 0 (a fine-tune's init event) go too: a run at step 0 writes its own
    log.append([{ event: 'init', step: 0, from: '/models/a' }]);
    expect(log.truncateAfter(0)).toBeNull();
    expect(readFileSync(path, 'utf8')).toBe('');
  });

  it('truncateAfter(step, stage) drops a growth at that step which the checkpoint (stage) predates', () => {
    const path = join(dir, 'metrics.jsonl');
    const log = new MetricsLog(path);
    log.append([29, 30].map((step) => ({ step, tokens: 0, flops: 0, compute: 0, loss: 1, lr: 0, gradNorm: null })));
    log.append([{ event: 'growth', step: 30, stage: 1 }]);
    log.truncateAfter(30, 1); // a checkpoint saved after the growth: the event stays
    expect(steps(path)).toEqual([29, 30, 30]);
    log.truncateAfter(30, 0); // one saved before it: the resumed run grows again and logs it again
    expect(steps(path)).toEqual([29, 30]);
  });

  it('the readers of metrics.jsonl skip a torn last line and name any other bad line', () => {
    const text = '{"step":1,"loss":2}\n{"step":2,"loss":1}\n{"step":3,"lo';
    expect(parseJsonLines(text, 'metrics').map((r) => r.line)).toEqual([1, 2]);
    expect(() => parseJsonLines('{"step":1}\n{"st\n{"step":3}\n', 'metrics')).toThrow(/metrics line 2: not JSON/);
    // ended by a newline, the last line was written whole: not JSON there is an error too
    expect(() => parseJsonLines('{"step":1}\n{"st\n', 'm')).toThrow(/m line 2: not JSON/);
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
