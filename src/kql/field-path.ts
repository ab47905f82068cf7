/**
 * Reading a field from a JSON document the way Elasticsearch indexes it: `process.parent.name` may be
 * nested objects, dotted keys (`{"process.parent.name": …}`, `{"process": {"parent.name": …}}`) or any mix,
 * and every array on the way is flattened (an array of objects contributes each object's value, an array of
 * arrays each element). null and undefined are absent, like a missing field.
 *
 * This is the one implementation of field reading in execsentry: the KQL evaluator and the engine
 * (new_terms fields) both use it.
 */

/**
 * A field name prepared for reading. Names of up to SHORT_SEGMENTS segments (every ECS name) have every
 * candidate key precomputed, so reading builds no strings; longer ones are matched against each object's
 * own keys instead, since their candidate keys would grow with the cube of the name (a name of 3,000 `a.`
 * segments has 4.5 million of them).
 */
export interface FieldPath {
  readonly name: string;
  /** The number of segments. */
  readonly length: number;
  /**
   * Short names only: keys[offset] = the keys that can continue the path where a segment starts at
   * `offset` in `name` (the segment, it and the next one joined with a dot, …; shortest first).
   */
  readonly keys: readonly (readonly string[] | undefined)[] | undefined;
}

const SHORT_SEGMENTS = 8;
const SHORT_LENGTH = 256;

const cache = new Map<string, FieldPath>();
const CACHE_LIMIT = 10_000;

export function fieldPath(name: string): FieldPath {
  let path = cache.get(name);
  if (path === undefined) {
    let length = 1;
    for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) length++;
    let keys: (readonly string[] | undefined)[] | undefined;
    if (length <= SHORT_SEGMENTS && name.length <= SHORT_LENGTH) {
      keys = [];
      const segments = name.split('.');
      let offset = 0;
      for (let start = 0; start < length; start++) {
        keys[offset] = segments.slice(start).map((_, j) => segments.slice(start, start + j + 1).join('.'));
        offset += segments[start]!.length + 1;
      }
    }
    path = { name, length, keys };
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
 * Documents are read down to this many levels of objects and arrays (the document itself is the first):
 * Elasticsearch refuses JSON nested deeper, and the readers below recurse. A reader given `depth` objects
 * and arrays around a node reads into it only while depth < MAX_DOCUMENT_DEPTH.
 */
export const MAX_DOCUMENT_DEPTH = 1000;

/**
 * A test on one value at a path; `depth` is the number of objects and arrays around it, for the tests that
 * read inside an object value.
 */
export type ValueTest = (value: unknown, depth: number) => boolean;

/**
 * `object`'s own keys that continue `name` at `offset`: the rest of the name, or a part of it ending at a
 * dot. Shortest first, as for short names.
 */
function ownKeysContinuing(object: object, name: string, offset: number): string[] {
  return Object.keys(object)
    .filter((key) => name.startsWith(key, offset) && (offset + key.length === name.length || name.charCodeAt(offset + key.length) === 0x2e))
    .sort((a, b) => a.length - b.length);
}

/**
 * Whether any value at `path`, from the segment starting at `offset` in its name, satisfies `test`.
 * `depth`: the number of objects and arrays around `node`. Allocates nothing for short names.
 */
export function someAtPath(node: unknown, path: FieldPath, offset: number, test: ValueTest, depth = 0): boolean {
  if (node === null || typeof node !== 'object' || depth >= MAX_DOCUMENT_DEPTH) return false;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) if (someAtPath(node[i], path, offset, test, depth + 1)) return true;
    return false;
  }
  const candidates = path.keys === undefined ? ownKeysContinuing(node, path.name, offset) : path.keys[offset]!;
  for (let j = 0; j < candidates.length; j++) {
    const key = candidates[j]!;
    const value = own(node, key);
    if (value === undefined || value === null) continue;
    const end = offset + key.length;
    if (end === path.name.length ? someValue(value, test, depth + 1) : someAtPath(value, path, end + 1, test, depth + 1)) return true;
  }
  return false;
}

/** Whether `value` (an array is flattened, null is absent) has an element satisfying `test`. */
export function someValue(value: unknown, test: ValueTest, depth = 0): boolean {
  if (value === null || value === undefined) return false;
  if (Array.isArray(value)) {
    if (depth >= MAX_DOCUMENT_DEPTH) return false;
    for (let i = 0; i < value.length; i++) if (someValue(value[i], test, depth + 1)) return true;
    return false;
  }
  return test(value, depth);
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
 * Calls `visit(path, value, depth)` for every leaf (non-object value) under `node`, `prefix` being node's
 * own path ('' for the document). Arrays are flattened (their elements keep the array's path); empty objects
 * and arrays have no leaves. Stops and returns true as soon as `visit` returns true.
 */
export function someLeaf(node: unknown, prefix: string, visit: (path: string, value: unknown, depth: number) => boolean, depth = 0): boolean {
  if (node === null || node === undefined) return false;
  if (typeof node !== 'object') return visit(prefix, node, depth);
  if (depth >= MAX_DOCUMENT_DEPTH) return false;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) if (someLeaf(node[i], prefix, visit, depth + 1)) return true;
    return false;
  }
  for (const key of Object.keys(node)) {
    if (someLeaf((node as Record<string, unknown>)[key], prefix === '' ? key : `${prefix}.${key}`, visit, depth + 1)) return true;
  }
  return false;
}
