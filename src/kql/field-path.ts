/**
 * Reading a field from a JSON document the way Elasticsearch indexes it: `process.parent.name` may be
 * nested objects, dotted keys (`{"process.parent.name": …}`, `{"process": {"parent.name": …}}`) or any mix,
 * and every array on the way is flattened (an array of objects contributes each object's value, an array of
 * arrays each element). null and undefined are absent, like a missing field.
 *
 * This is the one implementation of field reading in execsentry: the KQL evaluator and the engine
 * (new_terms fields) both use it.
 */

/** A field name split once, with every candidate key precomputed (no string building while reading). */
export interface FieldPath {
  readonly name: string;
  readonly length: number;
  /** keys[i][j] = segments i..i+j joined with dots: the keys that can continue the path at segment i. */
  readonly keys: readonly (readonly string[])[];
}

const cache = new Map<string, FieldPath>();
const CACHE_LIMIT = 10_000;

export function fieldPath(name: string): FieldPath {
  let path = cache.get(name);
  if (path === undefined) {
    const segments = name.split('.');
    const keys = segments.map((_, start) => segments.slice(start).map((__, j) => segments.slice(start, start + j + 1).join('.')));
    path = { name, length: segments.length, keys };
    if (cache.size < CACHE_LIMIT) cache.set(name, path);
  }
  return path;
}

/**
 * Own enumerable property only: a document parsed from JSON has Object.prototype, so `doc.constructor` or
 * `doc.__proto__` would otherwise read the prototype's members.
 */
function own(object: object, key: string): unknown {
  const value = (object as Record<string, unknown>)[key];
  if (value === undefined) return undefined;
  if (typeof value === 'function' || key === '__proto__') return Object.hasOwn(object, key) ? value : undefined;
  return value;
}

/**
 * Documents nested deeper than this (objects and arrays together) are read only down to it: Elasticsearch
 * refuses JSON nested beyond 1000 levels, and the readers below recurse.
 */
export const MAX_DOCUMENT_DEPTH = 1000;

/** Whether any value at `path` (from segment `from`) satisfies `test`. Allocates nothing. */
export function someAtPath(node: unknown, path: FieldPath, from: number, test: (value: unknown) => boolean, depth = 0): boolean {
  if (node === null || typeof node !== 'object' || depth > MAX_DOCUMENT_DEPTH) return false;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) if (someAtPath(node[i], path, from, test, depth + 1)) return true;
    return false;
  }
  const candidates = path.keys[from]!;
  for (let j = 0; j < candidates.length; j++) {
    const value = own(node, candidates[j]!);
    if (value === undefined || value === null) continue;
    const next = from + j + 1;
    if (next === path.length ? someValue(value, test, depth + 1) : someAtPath(value, path, next, test, depth + 1)) return true;
  }
  return false;
}

/** Whether `value` (an array is flattened, null is absent) has an element satisfying `test`. */
export function someValue(value: unknown, test: (value: unknown) => boolean, depth = 0): boolean {
  if (value === null || value === undefined) return false;
  if (Array.isArray(value)) {
    if (depth > MAX_DOCUMENT_DEPTH) return false;
    for (let i = 0; i < value.length; i++) if (someValue(value[i], test, depth + 1)) return true;
    return false;
  }
  return test(value);
}

/** Every value at a dotted path, arrays flattened (array order kept; within one object the shorter key is read first); [] when the field is absent. */
export function getField(doc: unknown, path: string): unknown[] {
  const values: unknown[] = [];
  someAtPath(doc, fieldPath(path), 0, (value) => {
    values.push(value);
    return false;
  });
  return values;
}

/**
 * Calls `visit(path, value)` for every leaf (non-object value) under `node`, `prefix` being node's own path
 * ('' for the document). Arrays are flattened (their elements keep the array's path); empty objects and
 * arrays have no leaves. Stops and returns true as soon as `visit` returns true.
 */
export function someLeaf(node: unknown, prefix: string, visit: (path: string, value: unknown) => boolean, depth = 0): boolean {
  if (node === null || node === undefined) return false;
  if (typeof node !== 'object') return visit(prefix, node);
  if (depth > MAX_DOCUMENT_DEPTH) return false;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) if (someLeaf(node[i], prefix, visit, depth + 1)) return true;
    return false;
  }
  for (const key of Object.keys(node)) {
    if (someLeaf((node as Record<string, unknown>)[key], prefix === '' ? key : `${prefix}.${key}`, visit, depth + 1)) return true;
  }
  return false;
}
