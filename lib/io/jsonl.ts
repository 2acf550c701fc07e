// JSON Lines as the trainer appends them (metrics.jsonl): one JSON value per line. A run killed
// while appending leaves its last line torn (no newline after it); readers skip that line, as the
// trainer does when it resumes, and report any other line that is not JSON.

/** The values of a JSON Lines text with their 1-based line numbers; `what` names it in errors. */
export function parseJsonLines(text: string, what: string): { value: unknown; line: number }[] {
  const lines = text.split(/\r?\n/);
  const torn = text.length > 0 && !text.endsWith('\n') ? lines.length - 1 : -1;
  const out: { value: unknown; line: number }[] = [];
  lines.forEach((l, i) => {
    if (l.trim() === '') return;
    try {
      out.push({ value: JSON.parse(l), line: i + 1 });
    } catch (e) {
      if (i === torn) return; // cut off mid-write
      throw new Error(`${what} line ${i + 1}: not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  });
  return out;
}
