// Memory scopes. Native tensors are invisible to the JS garbage collector, so the everyday
// discipline is tidy(): every tensor created inside the callback is freed when it returns, except
// the tensors it returns (moved to the enclosing scope) and those passed to keep().

export interface Scoped {
  dispose(): void;
}

// Each open scope lists the tensors created in it, in order. Arrays, not Sets: every op creates a
// tensor, and a Set (or a WeakSet of kept ones) hashes each new object, which cost a fifth of a
// small op's host time (callgrind). A tensor is in at most one scope, once.
const scopes: Scoped[][] = [];

/** Called by every Tensor constructor: the tensor belongs to the innermost open scope. */
export function track(t: Scoped): void {
  if (scopes.length > 0) scopes[scopes.length - 1].push(t);
}

/**
 * Exempts tensors from every open scope: they live until dispose() (or, as a safety net, until
 * the garbage collector finalizes them). Returns its argument.
 */
export function keep<T extends Scoped>(t: T): T {
  // a tensor sits in one scope at most: innermost first, from the end (keep() usually follows
  // the tensor's creation)
  for (let k = scopes.length - 1; k >= 0; k--) {
    const i = scopes[k].lastIndexOf(t);
    if (i >= 0) {
      scopes[k].splice(i, 1);
      break;
    }
  }
  return t;
}

/**
 * Collects the tensors reachable from a value: a tensor, and arrays, Sets, Maps and plain objects
 * of them at any depth — and the own fields of class instances when `instances` (a tidy() result:
 * a step's result object keeps its tensors). Typed arrays are skipped, each object is visited once.
 */
function collect(
  value: unknown,
  out: Set<Scoped>,
  isTensor: (v: unknown) => v is Scoped,
  instances: boolean,
  seen = new Set<object>(),
): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (isTensor(value)) {
    out.add(value);
  } else if (Array.isArray(value) || value instanceof Set) {
    for (const v of value) collect(v, out, isTensor, instances, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, isTensor, instances, seen);
  } else if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return;
  } else if (instances || Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    for (const v of Object.values(value)) collect(v, out, isTensor, instances, seen);
  }
}

let tensorCheck: (v: unknown) => v is Scoped = (_v): _v is Scoped => false;
/** Frees a batch of scoped objects; tensor.ts installs one native call for all tensors in it. */
let disposeAll: (items: Scoped[]) => void = (items) => {
  for (const t of items) t.dispose();
};
/** tensor.ts registers how to recognise a tensor (avoids an import cycle). */
export function setTensorCheck(check: (v: unknown) => v is Scoped): void {
  tensorCheck = check;
}

/** tensor.ts registers how to free many at once. */
export function setDisposeAll(fn: (items: Scoped[]) => void): void {
  disposeAll = fn;
}

/**
 * Runs fn in a new scope and frees every tensor created inside that is neither returned nor
 * kept. Synchronous only: a Promise-returning fn is refused (its tensors would be freed under it).
 */
export function tidy<R>(fn: () => R): R {
  if (typeof fn !== 'function') throw new TypeError(`Expected a function for fn but received ${typeof fn}`);
  const scope: Scoped[] = [];
  scopes.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    disposeAll(scope);
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    disposeAll(scope);
    throw new TypeError('tidy() takes a synchronous function: await outside it, or keep() what must survive');
  }
  const parent = scopes[scopes.length - 1];
  // the common results without a Set: nothing, or one tensor
  if (result === undefined || result === null || typeof result !== 'object') {
    disposeAll(scope);
  } else if (tensorCheck(result)) {
    const dead: Scoped[] = [];
    for (const t of scope) {
      if (t !== result) dead.push(t);
      else if (parent !== undefined) parent.push(t);
    }
    disposeAll(dead);
  } else {
    const returned = new Set<Scoped>();
    collect(result, returned, tensorCheck, true);
    const dead: Scoped[] = [];
    for (const t of scope) {
      if (!returned.has(t)) dead.push(t);
      else if (parent !== undefined) parent.push(t);
    }
    disposeAll(dead);
  }
  return result;
}

/** Frees one tensor, or every tensor in an array, Set, Map or plain object (at any depth). */
export function dispose(value: unknown): void {
  const all = new Set<Scoped>();
  collect(value, all, tensorCheck, false);
  disposeAll([...all]);
}

/** Number of open scopes (for tests and diagnostics). */
export function scopeDepth(): number {
  return scopes.length;
}
