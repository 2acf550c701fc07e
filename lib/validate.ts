// Options and configs are checked with zod; a failed check becomes one line that names what was
// being read and each field at fault (zod's own error prints a JSON array of issues).
import type { z } from 'zod';

/** zod's issues as `path: message; …` (`root` names a problem with the whole value). */
export function formatIssues(error: z.ZodError, root = '(root)'): string {
  return error.issues.map((i) => `${i.path.join('.') || root}: ${i.message}`).join('; ');
}

/** schema.parse(input), failing with `what: path: message; …`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new Error(`${what}: ${formatIssues(r.error)}`);
  return r.data;
}
