// Line-by-line progress (stderr not a terminal): step, loss, lr, tokens/s and the time left.
import { Progress, formatDuration } from '../../lib/train/progress';
import { withStderr } from '../helpers';

describe('progress', () => {
  it('formats durations as seconds, minutes or hours', () => {
    expect([0, 45.4, 60, 725, 3600, 11225].map(formatDuration)).toEqual(['0s', '45s', '1m00s', '12m05s', '1h00m', '3h07m']);
    expect(formatDuration(NaN)).toBe('-');
  });

  it('each line ends with the time left at the pace so far', async () => {
    const now = jest.spyOn(performance, 'now');
    const tty = process.stderr.isTTY;
    process.stderr.isTTY = false; // (line by line even when jest runs in a terminal)
    try {
      await withStderr((lines) => {
        now.mockReturnValue(1000);
        const p = new Progress(100, 20, true); // a resumed run: 80 steps in this session
        now.mockReturnValue(11000); // 10 s for 10 steps: 70 left, 70 s
        p.update(30, { loss: 2.5, lr: 1e-3, tokensPerSec: 1234.4 });
        expect(lines).toEqual(['step 30/100  loss 2.5000  lr 1.00e-3  1234 tok/s  ETA 1m10s\n']);
        expect(p.eta(20)).toBe('-');
      });
    } finally {
      process.stderr.isTTY = tty;
      now.mockRestore();
    }
  });
});
