/**
 * The JSON text of process events and alerts, reusing the text of the parts many events share.
 *
 * An exec event's parent, session, group and entry leaders, host, users, groups and capabilities are the
 * same objects from one event to the next (the sensor builds them once per process, identity or host and
 * never changes them once they have left it), and they are more than half of an event's bytes. Encoding
 * them once, at their first use, halves what `JSON.stringify` does per event. The text is exactly
 * JSON.stringify's: the same keys in the same order, undefined values left out, symbol keys unseen.
 *
 * Two marks, both properties of the object itself (a WeakMap look-up per object encoded cost a third of the
 * encoding), not enumerable, so that neither JSON, Object.keys nor a spread copy (`{ ...shared, more }` is
 * another object) sees them:
 * - shared (markShared): its text, null until first encoded;
 * - holding shared parts (markHoldsShared: an event's process): encoded key by key, so that those parts'
 *   text is reused. The document itself always is. Any other object is one JSON.stringify call: searching
 *   every object for shared parts cost as much as it saved.
 */

const TEXT = Symbol('JSON text');
const HOLDS_SHARED = Symbol('holds shared parts');
type Marked = { [TEXT]?: string | null; [HOLDS_SHARED]?: true };

/**
 * Marks `value` as shared and never changed again once encoded: its JSON is computed at its first
 * encoding and reused. Returns value.
 */
export function markShared<T extends object>(value: T): T {
  if (!Object.prototype.hasOwnProperty.call(value, TEXT)) Object.defineProperty(value, TEXT, { value: null, writable: true });
  return value;
}

/** Marks a plain object some of whose values are (or hold) shared objects. Returns value. */
export function markHoldsShared<T extends object>(value: T): T {
  if (!Object.prototype.hasOwnProperty.call(value, HOLDS_SHARED)) Object.defineProperty(value, HOLDS_SHARED, { value: true });
  return value;
}

/** JSON.stringify(document), reusing the text of its shared parts. */
export function documentJson(document: object): string {
  return (isPlainObject(document) ? partsJson(document) : valueJson(document)) ?? 'null';
}

function valueJson(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  const marked = value as Marked;
  const shared = marked[TEXT];
  if (shared !== undefined) {
    if (shared !== null) return shared;
    const text = JSON.stringify(value);
    marked[TEXT] = text;
    return text;
  }
  return marked[HOLDS_SHARED] === true && isPlainObject(value) ? partsJson(value) : JSON.stringify(value);
}

/** Arrays and objects with a toJSON are left to JSON.stringify whole. */
function isPlainObject(value: object): boolean {
  return !Array.isArray(value) && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

function partsJson(value: object): string {
  let out = '{';
  for (const key of Object.keys(value)) {
    const text = valueJson((value as Record<string, unknown>)[key]);
    if (text === undefined) continue;
    out += `${out.length === 1 ? '' : ','}${quotedKey(key)}:${text}`;
  }
  return `${out}}`;
}

/** Field names repeat in every event: each is quoted once. */
const quotedKeys = new Map<string, string>();
const MAX_QUOTED_KEYS = 4096;

function quotedKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (quotedKeys.size < MAX_QUOTED_KEYS) quotedKeys.set(key, quoted);
  }
  return quoted;
}
