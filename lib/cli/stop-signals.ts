// Ctrl-C and SIGTERM for a command that stops gracefully (train saves a checkpoint, prepare keeps the
// old shard set): the first signal asks it to stop, a second one quits at once — unless it comes so
// soon after the first that it is the same stop delivered twice: a scheduler that signals every
// process of a job (systemd, Slurm, pkill) beside launch's forward, a wrapper (npm, timeout) that
// forwards what the terminal already sent, or launch's watch of a launcher that died while its ranks
// were already stopping. A person's second Ctrl-C comes later than that.

/** Signals within this long of the first are that first stop again. */
export const DUPLICATE_SIGNAL_MS = 1500;

let firstAt: number | null = null;

/** Whether a stop was asked for (watchLauncher does not ask again). */
export function stopRequested(): boolean {
  return firstAt !== null;
}

/**
 * Calls `onFirst` on the first of `signals` (SIGINT and SIGTERM unless given) and `onAgain` on a
 * later one (not a duplicate, see above). Returns the function that removes the handlers.
 */
export function handleStops(
  onFirst: (signal: NodeJS.Signals) => void,
  onAgain: (signal: NodeJS.Signals) => void,
  signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): () => void {
  const handler = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (firstAt === null) {
      firstAt = now;
      onFirst(signal);
    } else if (now - firstAt >= DUPLICATE_SIGNAL_MS) onAgain(signal);
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
    firstAt = null;
  };
}
