// `--set PATH=VALUE`: one field of a run config from the command line, as nanoGPT's configurator
// and Hydra do it, without writing a JSON file. The value is read as JSON when it parses (numbers,
// booleans, null, arrays, objects) and as a string otherwise; the run config's schema then checks it
// like any other field, naming the path when it is wrong.
import { InvalidArgumentError } from 'commander';

export interface Override {
  path: string[];
  value: unknown;
  /** As given, for messages. */
  text: string;
}

// object keys are identifiers, array entries indices: never __proto__ or an empty segment
const SEGMENT = /^([A-Za-z_][A-Za-z0-9_]*|\d+)$/;

/** commander's parser for a repeatable `--set`: collects the overrides in order. */
export function collectOverride(text: string, previous: Override[] = []): Override[] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--set takes PATH=VALUE, e.g. lr.peak=6e-4 (got '${text}')`);
  const path = text.slice(0, eq).split('.');
  const bad = path.find((s) => !SEGMENT.test(s) || s === '__proto__' || s === 'constructor' || s === 'prototype');
  if (bad !== undefined)
    throw new InvalidArgumentError(`--set ${text}: '${bad}' is not a field name (letters, digits, _) or an array index`);
  const raw = text.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // not JSON: the string itself (a path, a preset name, 'cosine')
  }
  return [...previous, { path, value, text }];
}

/**
 * Sets each override's field in `config` (a plain JSON object, changed in place), creating the
 * objects on its path; an index into an array must name an entry that exists or the next one.
 */
export function applyOverrides(config: Record<string, unknown>, overrides: Override[]): void {
  for (const o of overrides) {
    let node: unknown = config;
    o.path.forEach((key, i) => {
      const last = i === o.path.length - 1;
      const where = o.path.slice(0, i).join('.');
      if (Array.isArray(node)) {
        if (!/^\d+$/.test(key)) throw new Error(`--set ${o.text}: ${where} is an array: give an index, not '${key}'`);
        const idx = Number(key);
        if (idx > node.length) throw new Error(`--set ${o.text}: ${where} has ${node.length} entries: index ${idx} would leave a gap`);
        if (last) node[idx] = o.value;
        else node = node[idx] = descend(node[idx], o, i);
        return;
      }
      const obj = node as Record<string, unknown>;
      if (last) obj[key] = o.value;
      else node = obj[key] = descend(obj[key], o, i);
    });
  }
}

/**
 * The container at path[0..i] to go on into: the one there, or a new one where nothing is (an array
 * when the next segment is an index, as in stages.0.…); a value there is not overwritten.
 */
function descend(v: unknown, o: Override, i: number): unknown {
  if (v === undefined) return /^\d+$/.test(o.path[i + 1]) ? [] : {};
  if (typeof v === 'object' && v !== null) return v;
  throw new Error(`--set ${o.text}: ${o.path.slice(0, i + 1).join('.')} is ${JSON.stringify(v)}, not an object with fields`);
}
