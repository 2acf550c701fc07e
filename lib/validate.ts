// Options and configs are checked with zod; a failed check becomes one line that names what was
// being read and each field at fault (zod's own error prints a JSON array of issues).
import type { z } from 'zod';

/** zod's issues as `path: message; …` (`root` names a problem with the whole value). */
export function formatIssues(error: z.ZodError, root = '(root)', prefix?: string): string {
  // (prefix: where the validated value sits in a larger one, e.g. 'model' in a run config)
  return error.issues
    .map((i) => {
      const path = [...(prefix === undefined ? [] : [prefix]), ...i.path].join('.');
      return `${path || root}: ${message(i)}`;
    })
    .join('; ');
}

/**
 * An issue's message. zod says only "Invalid input" when a value fits none of a union's types; where
 * each alternative failed on the value itself (not inside it), their reasons say what was expected.
 */
function message(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return issue.message;
  const direct = issue.errors.every((branch) => branch.length === 1 && branch[0].path.length === 0);
  if (!direct) return issue.message;
  return 'Invalid input: ' + issue.errors.map((branch) => branch[0].message.replace(/^Invalid input: /, '')).join(', or ');
}

/** schema.parse(input), failing with `what: path: message; …`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new Error(`${what}: ${formatIssues(r.error)}`);
  return r.data;
}
