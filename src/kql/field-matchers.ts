import { EXECSENTRY_FIELD_TYPES } from '../ecs/execsentry-fields.js';
import { ECS_FIELD_TYPES, type EcsFieldType } from '../ecs/field-types.js';
import { MULTI_FIELDS, type MultiFieldType } from '../ecs/multi-fields.js';
import type { KqlLiteral, KqlRangeOperator, KqlTerm } from './ast.js';
import { parseDate, parseDateMath, usesNow } from './date.js';
import { getField, someLeaf, type ValueTest } from './field-path.js';
import { parseIp, parseIpOrCidr } from './ip.js';
import { analyze, containsPhrase, luceneLowercase } from './text.js';
import { compileWildcard } from './wildcard.js';

/**
 * How one value in a document matches one value of a query, per Elasticsearch field type — the answers
 * Elasticsearch gives with Elastic's logs mappings (strings as keyword with ignore_above 1024, ignore_malformed
 * on, so a value that cannot be indexed is as if absent).
 */

/**
 * 'keyword': ECS keyword fields and every field neither ECS nor execsentry's typed fields define; 'caseless': a keyword multi-field with
 * the lowercase normalizer (Elastic Defend's `*.caseless`).
 */
export type FieldKind = EcsFieldType | MultiFieldType | 'keyword';

export function fieldKind(name: string): FieldKind {
  return ECS_FIELD_TYPES.get(name) ?? EXECSENTRY_FIELD_TYPES.get(name) ?? 'keyword';
}

/** Where a queried field's values come from and how they match. */
export interface FieldSource {
  /** The field to read: the name itself, or for a multi-field its parent (documents never hold multi-fields). */
  readonly read: string;
  readonly kind: FieldKind;
}

/**
 * `name` as Elasticsearch resolves it: `process.name.caseless` is indexed from `process.name`'s value, so it
 * is read there and matched as the multi-field's type. `prefix` is the nested-query path `name` is relative
 * to ('' at the top); `read` keeps that relativity.
 */
export function fieldSource(prefix: string, name: string): FieldSource {
  const fullName = prefix + name;
  const dot = fullName.lastIndexOf('.');
  if (dot > prefix.length) {
    const kind = MULTI_FIELDS.get(fullName.slice(0, dot))?.get(fullName.slice(dot + 1));
    if (kind !== undefined) return { read: name.slice(0, dot - prefix.length), kind };
  }
  return { read: name, kind: fieldKind(fullName) };
}

/** Field types a terms aggregation refuses: analyzed text, objects, geo points. */
const NOT_AGGREGATABLE: ReadonlySet<FieldKind> = new Set<FieldKind>(['text', 'object', 'nested', 'geo_point']);

/**
 * The values `field` contributes to a terms aggregation (what new_terms rules compare), read as a query
 * reads it (a multi-field from its parent) and as the field indexes them: a keyword value over ignore_above
 * has no term, a caseless value is lowercased. Undefined when Elasticsearch cannot aggregate on the field.
 */
export function termReader(field: string): ((doc: unknown) => unknown[]) | undefined {
  const { read, kind } = fieldSource('', field);
  if (NOT_AGGREGATABLE.has(kind)) return undefined;
  if (kind !== 'caseless' && kind !== 'keyword') return (doc) => getField(doc, read);
  return (doc) => {
    const terms: unknown[] = [];
    for (const value of getField(doc, read)) {
      const term = typeof value === 'string' ? keywordTerm(kind, value) : value;
      if (term !== undefined) terms.push(term);
    }
    return terms;
  };
}

/** The field a query or a terms aggregation on `field` reads: the field, or a multi-field's parent. */
export function fieldRead(field: string): string {
  return fieldSource('', field).read;
}

/** The multi-fields indexed from the field at `path` (full dotted path), with their types; undefined when none. */
export function multiFieldsOf(path: string): ReadonlyMap<string, MultiFieldType> | undefined {
  return MULTI_FIELDS.get(path);
}

/** Elastic's templates map keyword fields with ignore_above 1024: longer strings are not indexed. */
export const KEYWORD_IGNORE_ABOVE = 1024;

const NEVER: ValueTest = () => false;
const STRICT_NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

function keywordLimit(kind: FieldKind): number {
  return kind === 'keyword' || kind === 'caseless' ? KEYWORD_IGNORE_ABOVE : Number.POSITIVE_INFINITY;
}

/**
 * The term a keyword or caseless field indexes for a string value: none over ignore_above (counted before
 * normalization, as in Elasticsearch), lowercased by a caseless field's normalizer.
 */
function keywordTerm(kind: 'keyword' | 'caseless', value: string): string | undefined {
  if (value.length > KEYWORD_IGNORE_ABOVE) return undefined;
  return kind === 'caseless' ? luceneLowercase(value) : value;
}

/** A test on caseless (lowercase-normalized keyword) values: `test` sees document strings as indexed terms. */
function normalizedTest(test: ValueTest): ValueTest {
  return (v, depth) => {
    if (typeof v !== 'string') return test(v, depth);
    const term = keywordTerm('caseless', v);
    return term !== undefined && test(term, depth);
  };
}

/** The query value as a caseless field's normalizer turns it into a term. */
function lowercaseLiteral(literal: KqlLiteral): KqlLiteral {
  return typeof literal.value === 'string' ? { ...literal, value: luceneLowercase(literal.value) } : literal;
}

/** The query value as keyword text: numbers as JSON prints them (Kibana sends `1.0` as 1), null as nothing. */
function literalText(literal: KqlLiteral): string | undefined {
  return literal.value === null ? undefined : String(literal.value);
}

function parseNumber(text: string): number | undefined {
  if (!STRICT_NUMBER.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function literalNumber(literal: KqlLiteral): number | undefined {
  if (typeof literal.value === 'number') return literal.value;
  if (typeof literal.value === 'string') return parseNumber(literal.value.trim());
  return undefined;
}

/** A document value as a number of a numeric field type (coerced like Elasticsearch), or undefined. */
function documentNumber(value: unknown, kind: FieldKind): number | undefined {
  let n: number | undefined;
  if (typeof value === 'number') n = Number.isFinite(value) ? value : undefined;
  else if (typeof value === 'string') n = parseNumber(value.trim());
  if (n === undefined) return undefined;
  if (kind === 'integer') return Math.trunc(n);
  if (kind === 'float') return Math.fround(n);
  return n;
}

function toBoolean(value: unknown): boolean | undefined {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false' || value === '') return false;
  return undefined;
}

function documentDate(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : undefined;
  if (typeof value === 'string') return parseDate(value, false) ?? undefined;
  return undefined;
}

function documentIp(value: unknown): bigint | undefined {
  return typeof value === 'string' ? (parseIp(value) ?? undefined) : undefined;
}

/**
 * The value a script reads from a field of `kind` for one JSON value (its doc value), or undefined when the
 * field would not index it. Fields typed keyword are read as JSON gives them: that is every field ECS does not
 * define, which Elasticsearch maps dynamically (a number stays a number), and ECS keyword fields, which
 * hold strings in the documents execsentry reads.
 */
export function docValue(kind: FieldKind, value: unknown): string | number | boolean | undefined {
  switch (kind) {
    case 'keyword':
      if (typeof value === 'string') return value.length <= KEYWORD_IGNORE_ABOVE ? value : undefined;
      return typeof value === 'number' ? (Number.isFinite(value) ? value : undefined) : typeof value === 'boolean' ? value : undefined;
    case 'caseless':
      return typeof value === 'string' ? keywordTerm('caseless', value) : textOf(value);
    case 'wildcard':
    case 'text':
    case 'flattened':
      return textOf(value);
    case 'integer':
    case 'float':
    case 'double':
      return documentNumber(value, kind);
    case 'boolean':
      return toBoolean(value);
    case 'date':
      return documentDate(value);
    case 'ip':
      return typeof value === 'string' && documentIp(value) !== undefined ? value : undefined;
    case 'nested':
    case 'object':
    case 'geo_point':
      return undefined;
  }
}

/** Lucene orders terms by UTF-8 bytes, i.e. by code point; this compares UTF-16 strings that way. */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // move surrogates above the rest of the BMP so pairs sort as the code points they encode
    ca = ca >= 0xe000 ? ca - 0x800 : ca >= 0xd800 ? ca + 0x2000 : ca;
    cb = cb >= 0xe000 ? cb - 0x800 : cb >= 0xd800 ? cb + 0x2000 : cb;
    return ca - cb;
  }
  return a.length - b.length;
}

function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

// ---- term queries (`field:value`) ---------------------------------------------------------------------------

/** The test for `field:value` on a field of `kind` (value not `*` alone: that is an existence test). */
export function equalsTest(kind: FieldKind, value: KqlTerm, nowMs: () => number): ValueTest {
  if (value.kind === 'wildcard') return wildcardTest(kind, value.parts);
  switch (kind) {
    case 'keyword':
    case 'wildcard':
      return keywordEquals(value, keywordLimit(kind));
    case 'caseless':
      return normalizedTest(keywordEquals(lowercaseLiteral(value), Number.POSITIVE_INFINITY));
    case 'flattened':
      return flattenedTest(keywordEquals(value, Number.POSITIVE_INFINITY));
    case 'text':
      return textEquals(value);
    case 'integer':
    case 'float':
    case 'double': {
      let query = literalNumber(value);
      if (query === undefined || (kind === 'integer' && !Number.isInteger(query))) return NEVER;
      if (kind === 'float') query = Math.fround(query);
      const wanted = query;
      return (v) => documentNumber(v, kind) === wanted;
    }
    case 'boolean': {
      const wanted = toBoolean(value.value);
      return wanted === undefined ? NEVER : (v) => toBoolean(v) === wanted;
    }
    case 'date': {
      const text = literalText(value);
      if (text === undefined) return NEVER;
      const within = (v: unknown, low: number | null, high: number | null): boolean => {
        const at = documentDate(v);
        return at !== undefined && low !== null && high !== null && at >= low && at <= high;
      };
      if (usesNow(text)) return (v) => within(v, parseDateMath(text, false, nowMs()), parseDateMath(text, true, nowMs()));
      const low = parseDateMath(text, false, 0);
      const high = parseDateMath(text, true, 0);
      return low === null || high === null ? NEVER : (v) => within(v, low, high);
    }
    case 'ip': {
      const text = literalText(value);
      const range = text === undefined ? null : parseIpOrCidr(text);
      if (range === null) return NEVER;
      return (v) => {
        const ip = documentIp(v);
        return ip !== undefined && ip >= range.low && ip <= range.high;
      };
    }
    case 'nested':
    case 'object':
    case 'geo_point':
      return NEVER;
  }
}

function keywordEquals(value: KqlLiteral, limit: number): ValueTest {
  const text = literalText(value);
  if (text === undefined) return NEVER;
  const number = literalNumber(value);
  const indexable = text.length <= limit;
  return (v) => {
    if (typeof v === 'string') return indexable && v === text;
    // a number in the document (a field ECS does not define, mapped dynamically) compares numerically
    if (typeof v === 'number') return number !== undefined && v === number;
    if (typeof v === 'boolean') return text === (v ? 'true' : 'false');
    return false;
  };
}

/** One test for `field:(a or b or …)` of plain values on a keyword-like field: a Set lookup. */
export function keywordSetTest(kind: FieldKind, values: readonly KqlLiteral[]): ValueTest {
  if (kind === 'caseless') return normalizedTest(keywordSetTest('wildcard', values.map(lowercaseLiteral)));
  const limit = keywordLimit(kind);
  const texts = new Set<string>();
  const numbers = new Set<number>();
  for (const value of values) {
    const text = literalText(value);
    if (text === undefined) continue;
    if (text.length <= limit) texts.add(text);
    const number = literalNumber(value);
    if (number !== undefined) numbers.add(number);
  }
  const test: ValueTest = (v) => {
    if (typeof v === 'string') return texts.has(v);
    if (typeof v === 'number') return numbers.has(v);
    if (typeof v === 'boolean') return texts.has(v ? 'true' : 'false');
    return false;
  };
  return kind === 'flattened' ? flattenedTest(test) : test;
}

/** A flattened field indexes every leaf of its object as a keyword. */
function flattenedTest(leafTest: ValueTest): ValueTest {
  return (v, depth) => (v !== null && typeof v === 'object' ? someLeaf(v, '', (_path, leaf, leafDepth) => leafTest(leaf, leafDepth), depth) : leafTest(v, depth));
}

function wildcardTest(kind: FieldKind, parts: readonly string[]): ValueTest {
  switch (kind) {
    case 'caseless':
      // the normalizer applies to the pattern as to the values
      return normalizedTest(wildcardTest('wildcard', parts.map(luceneLowercase)));
    case 'keyword':
    case 'wildcard':
    case 'flattened': {
      const matches = compileWildcard(parts);
      const limit = keywordLimit(kind);
      const test: ValueTest = (v) => {
        if (typeof v === 'string') return v.length <= limit && matches(v);
        const text = textOf(v);
        return text !== undefined && matches(text);
      };
      return kind === 'flattened' ? flattenedTest(test) : test;
    }
    case 'text': {
      // query_string lowercases the pattern (the field's normalizer) and matches it against each token
      const matches = compileWildcard(parts.map(luceneLowercase));
      return (v) => {
        const text = textOf(v);
        return text !== undefined && analyze(text).some(matches);
      };
    }
    default:
      // numeric, date, boolean, ip fields reject wildcard queries in Elasticsearch: nothing matches
      return NEVER;
  }
}

function textEquals(value: KqlLiteral): ValueTest {
  const text = literalText(value);
  if (text === undefined) return NEVER;
  const queryTokens = analyze(text);
  if (queryTokens.length === 0) return NEVER;
  if (value.quoted) {
    // quoted: match_phrase, the tokens in order and adjacent
    return (v) => {
      const docText = textOf(v);
      return docText !== undefined && containsPhrase(analyze(docText), queryTokens);
    };
  }
  // unquoted: match, any of the query's tokens (the match query's default operator is or)
  const wanted = new Set(queryTokens);
  return (v) => {
    const docText = textOf(v);
    return docText !== undefined && analyze(docText).some((token) => wanted.has(token));
  };
}

// ---- range queries ------------------------------------------------------------------------------------------

function compare(operator: KqlRangeOperator, difference: number): boolean {
  switch (operator) {
    case 'lt':
      return difference < 0;
    case 'lte':
      return difference <= 0;
    case 'gt':
      return difference > 0;
    case 'gte':
      return difference >= 0;
  }
}

export function rangeTest(kind: FieldKind, operator: KqlRangeOperator, value: KqlLiteral, nowMs: () => number): ValueTest {
  const text = literalText(value);
  if (text === undefined) return NEVER;
  switch (kind) {
    case 'caseless':
      return normalizedTest(rangeTest('wildcard', operator, lowercaseLiteral(value), nowMs));
    case 'keyword':
    case 'wildcard':
    case 'flattened': {
      const limit = keywordLimit(kind);
      const number = literalNumber(value);
      const test: ValueTest = (v) => {
        if (typeof v === 'string') return v.length <= limit && compare(operator, compareCodePoints(v, text));
        if (typeof v === 'number') return number !== undefined ? compare(operator, v - number) : compare(operator, compareCodePoints(String(v), text));
        if (typeof v === 'boolean') return compare(operator, compareCodePoints(String(v), text));
        return false;
      };
      return kind === 'flattened' ? flattenedTest(test) : test;
    }
    case 'text':
      return (v) => {
        const docText = textOf(v);
        return docText !== undefined && analyze(docText).some((token) => compare(operator, compareCodePoints(token, text)));
      };
    case 'integer':
    case 'float':
    case 'double': {
      let bound = literalNumber(value);
      if (bound === undefined) return NEVER;
      if (kind === 'float') bound = Math.fround(bound);
      const limit = bound;
      return (v) => {
        const n = documentNumber(v, kind);
        return n !== undefined && compare(operator, n - limit);
      };
    }
    case 'date': {
      // Elasticsearch rounds a partial date up for `>` and `<=`, down for `>=` and `<`
      const roundUp = operator === 'gt' || operator === 'lte';
      const within = (v: unknown, bound: number | null): boolean => {
        const at = documentDate(v);
        return at !== undefined && bound !== null && compare(operator, at - bound);
      };
      if (usesNow(text)) return (v) => within(v, parseDateMath(text, roundUp, nowMs()));
      const bound = parseDateMath(text, roundUp, 0);
      return bound === null ? NEVER : (v) => within(v, bound);
    }
    case 'boolean': {
      const bound = toBoolean(value.value);
      if (bound === undefined) return NEVER;
      return (v) => {
        const b = toBoolean(v);
        return b !== undefined && compare(operator, Number(b) - Number(bound));
      };
    }
    case 'ip': {
      const bound = parseIp(text);
      if (bound === null) return NEVER;
      return (v) => {
        const ip = documentIp(v);
        return ip !== undefined && compare(operator, ip < bound ? -1 : ip > bound ? 1 : 0);
      };
    }
    case 'nested':
    case 'object':
    case 'geo_point':
      return NEVER;
  }
}

// ---- existence ----------------------------------------------------------------------------------------------

/**
 * Whether a single (non-array, non-null) value of a field of `kind`, `depth` objects and arrays deep, is
 * indexed, i.e. makes the field exist.
 */
function indexed(kind: FieldKind, value: unknown, path: string, depth: number): boolean {
  if (value !== null && typeof value === 'object') {
    // an object field exists when any field under it does (Elasticsearch's exists query on objects)
    return someLeaf(value, path, (leafPath, leaf, leafDepth) => indexed(fieldKind(leafPath), leaf, leafPath, leafDepth), depth);
  }
  switch (kind) {
    case 'keyword':
    case 'caseless':
      return typeof value === 'string' ? value.length <= KEYWORD_IGNORE_ABOVE : typeof value === 'number' || typeof value === 'boolean';
    case 'wildcard':
    case 'text':
    case 'flattened':
      return textOf(value) !== undefined;
    case 'integer':
    case 'float':
    case 'double':
      return documentNumber(value, kind) !== undefined;
    case 'date':
      return documentDate(value) !== undefined;
    case 'boolean':
      return toBoolean(value) !== undefined;
    case 'ip':
      return documentIp(value) !== undefined;
    case 'geo_point':
      return typeof value === 'string';
    case 'nested':
    case 'object':
      return false;
  }
}

/** `field:*`: some value of the field is indexed (null, [], {} and values Elasticsearch would not index do not count). */
export function existsTest(kind: FieldKind, path: string): ValueTest {
  return (v, depth) => indexed(kind, v, path, depth);
}
