// handleStops: the first SIGINT/SIGTERM asks to stop, a later one quits at once, and the same stop
// delivered twice within DUPLICATE_SIGNAL_MS (a scheduler beside launch's forward, a wrapper) is one.
// Signals are emitted on `process` (its listeners run as for a real signal, nothing is sent).
import { DUPLICATE_SIGNAL_MS, handleStops, stopRequested } from '../../lib/cli/stop-signals';

describe('handleStops', () => {
  it('a duplicate within the window is the first stop; a later signal quits', () => {
    let now = 1_000_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    const first: string[] = [];
    const again: string[] = [];
    const remove = handleStops(
      (s) => first.push(s),
      (s) => again.push(s),
    );
    try {
      expect(stopRequested()).toBe(false);
      process.emit('SIGTERM', 'SIGTERM');
      expect(stopRequested()).toBe(true);
      now += 50;
      process.emit('SIGTERM', 'SIGTERM'); // the launcher's forward of the scheduler's signal
      now += DUPLICATE_SIGNAL_MS - 100;
      process.emit('SIGINT', 'SIGINT');
      expect(first).toEqual(['SIGTERM']);
      expect(again).toEqual([]);
      now += 100; // a person's second Ctrl-C
      process.emit('SIGINT', 'SIGINT');
      expect(again).toEqual(['SIGINT']);
    } finally {
      remove();
      clock.mockRestore();
    }
    expect(stopRequested()).toBe(false);
  });
});
