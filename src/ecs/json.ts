/**
 * The JSON text of process events and alerts, reusing the text of the parts many events share.
 *
 * An exec event's parent, session, group and entry leaders, host and capability lists are the same objects
 * from one event to the next (the sensor builds them once per process or per host and never changes them
 * once they have left it), and they are more than half of an event's bytes. Encoding them once, at their
 * first use, halves what `JSON.stringify` does per event. The text is exactly JSON.stringify's: the same
 * keys in the same order, undefined values left out, symbol keys unseen.
 */

/**
 * A marked object's JSON, null until first encoded: a property of the object itself (a WeakMap look-up per
 * object encoded cost a third of the encoding), not enumerable, so that neither JSON, Object.keys nor a
 * spread copy (`{ ...shared, more }` is not shared) sees it.
 */
const TEXT = Symbol('JSON text');
type Marked = { [TEXT]?: string | null };

/** How deep into plain objects the encoder looks for shared parts (event → process → thread → capabilities). */
const MAX_DEPTH = 4;

/**
 * Marks `value` as shared and never changed again once encoded: its JSON is computed at its first
 * encoding and reused. Returns value.
 */
export function markShared<T extends object>(value: T): T {
  if (!Object.prototype.hasOwnProperty.call(value, TEXT)) Object.defineProperty(value, TEXT, { value: null, writable: true });
  return value;
}

/** JSON.stringify(document), reusing the text of its shared parts. */
export function documentJson(document: object): string {
  return valueJson(document, MAX_DEPTH) ?? 'null';
}

function valueJson(value: unknown, depth: number): string | undefined {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  const shared = (value as Marked)[TEXT];
  if (shared !== undefined) {
    if (shared !== null) return shared;
    const text = JSON.stringify(value);
    (value as Marked)[TEXT] = text;
    return text;
  }
  if (depth === 0 || Array.isArray(value) || typeof (value as { toJSON?: unknown }).toJSON === 'function' || !holdsShared(value, depth)) return JSON.stringify(value);
  let out = '{';
  for (const key of Object.keys(value)) {
    const text = valueJson((value as Record<string, unknown>)[key], depth - 1);
    if (text === undefined) continue;
    out += `${out.length === 1 ? '' : ','}${quotedKey(key)}:${text}`;
  }
  return `${out}}`;
}

/**
 * Whether a marked part lies within `depth` levels of `value`: only then is it taken apart; any other
 * object (user, tty, event, a stream) is one JSON.stringify call rather than one per field.
 */
function holdsShared(value: object, depth: number): boolean {
  for (const key in value) {
    const child = (value as Record<string, unknown>)[key];
    if (typeof child !== 'object' || child === null) continue;
    if ((child as Marked)[TEXT] !== undefined) return true;
    if (depth > 1 && !Array.isArray(child) && holdsShared(child, depth - 1)) return true;
  }
  return false;
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
