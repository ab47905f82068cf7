import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileKql, getField, KqlSyntaxError, parseKql, printKql, type KqlLiteral, type KqlNode, type KqlTerm } from '../../src/kql/index.js';

/** KQL_PROPERTY_RUNS raises the run count for a deeper search (default keeps `npm test` quick). */
const RUNS = Number(process.env.KQL_PROPERTY_RUNS ?? 400);

// ---- 1. the parser only ever throws its own error ---------------------------------------------------------

const kqlAlphabet = fc.constantFrom(
  'a', 'b', 'x.y', ' ', '\n', '\t', ':', '(', ')', '{', '}', '<', '>', '=', '"', '\\', '*', 'and', 'or', 'not', 'AND', 'Or',
  'NoT', 'true', 'null', '1', '-2.5', '\\u00e9', '\\u12', '\\*', '\\and', 'é', '\u0000', '\ud800',
);

describe('property: the parser never crashes', () => {
  it('returns a tree or throws KqlSyntaxError for arbitrary strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.array(kqlAlphabet, { maxLength: 25 }).map((parts) => parts.join(''))), (text) => {
        try {
          parseKql(text);
        } catch (err) {
          if (!(err instanceof KqlSyntaxError)) throw err;
          expect(err.line).toBeGreaterThanOrEqual(1);
          expect(err.column).toBeGreaterThanOrEqual(1);
          expect(err.expected.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: RUNS * 5 },
    );
  });

  it('compiles whatever it parses, and the compiled query answers without throwing', () => {
    fc.assert(
      fc.property(fc.array(kqlAlphabet, { maxLength: 25 }).map((parts) => parts.join('')), fc.jsonValue(), (text, doc) => {
        let tree: KqlNode;
        try {
          tree = parseKql(text);
        } catch (err) {
          if (err instanceof KqlSyntaxError) return;
          throw err;
        }
        const compiled = compileKql(tree);
        expect(typeof compiled.matches({ x: { y: doc }, a: doc })).toBe('boolean');
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

// ---- 2. parse → print → parse is stable ---------------------------------------------------------------------

/** What the grammar makes of an unquoted text (Kibana's rule), the test's own statement of it. */
function unquotedLiteral(text: string): KqlLiteral {
  let value: string | number | boolean | null = text;
  if (text === 'true') value = true;
  else if (text === 'false') value = false;
  else if (text === 'null') value = null;
  else if (/^(-?[1-9]+\d*([.]\d+)?)$|^(-?0[.]\d*[1-9]+)$|^0$|^0.0$|^[.]\d{1,}$/.test(text)) value = Number(text);
  return { kind: 'literal', value, quoted: false, text };
}

const anyText = fc.string({ unit: fc.oneof(fc.constantFrom(' ', '\t', '\n', '\r', 'o', 'r', 'a', 'n', 'd', 't', '*', '\\', '"', ':', '(', ')'), fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' })), maxLength: 12 });
const unquoted = anyText.map((s) => s.trim()).filter((s) => s !== '').map(unquotedLiteral);
const quoted = anyText.map((text): KqlLiteral => ({ kind: 'literal', value: text, quoted: true, text }));
const wildcard = fc.array(anyText, { minLength: 2, maxLength: 4 }).map((parts): KqlTerm => {
  const trimmed = [...parts];
  trimmed[0] = trimmed[0]!.trimStart();
  trimmed[trimmed.length - 1] = trimmed[trimmed.length - 1]!.trimEnd();
  return { kind: 'wildcard', parts: trimmed };
}).filter((term) => term.kind === 'wildcard' && term.parts.some((part) => part !== ''));
const fieldTerm: fc.Arbitrary<KqlTerm> = fc.oneof(fc.constantFrom('process.name', 'user.name', 'a', 'x.y.z').map(unquotedLiteral), unquoted, quoted, wildcard);
const valueTerm: fc.Arbitrary<KqlTerm> = fc.oneof(unquoted, quoted, wildcard);
const literal: fc.Arbitrary<KqlLiteral> = fc.oneof(unquoted, quoted);

const tree = fc.letrec<{ node: KqlNode; leaf: KqlNode }>((tie) => ({
  leaf: fc.oneof(
    fc.record({ type: fc.constant('is' as const), field: fc.oneof(fieldTerm, fc.constant(null)), value: valueTerm }),
    fc.record({ type: fc.constant('exists' as const), field: fieldTerm.filter((f) => f.kind === 'literal' || f.parts.some((p) => p !== '')) }),
    fc.record({ type: fc.constant('range' as const), field: fieldTerm, operator: fc.constantFrom('lt' as const, 'lte' as const, 'gt' as const, 'gte' as const), value: literal }),
  ),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.record({ type: fc.constant('not' as const), child: tie('node') }),
    fc.record({ type: fc.constant('and' as const), children: fc.array(tie('node'), { minLength: 2, maxLength: 3 }) }),
    fc.record({ type: fc.constant('or' as const), children: fc.array(tie('node'), { minLength: 2, maxLength: 3 }) }),
    fc.record({ type: fc.constant('nested' as const), path: fieldTerm.filter((f) => f.kind === 'literal'), query: tie('node') }),
  ),
})).node;

/** The tree the parser builds for the same meaning: and/or flattened, `*:*`-like leaves as the parser reads them. */
function normalise(node: KqlNode): KqlNode {
  switch (node.type) {
    case 'and':
    case 'or': {
      const children: KqlNode[] = [];
      for (const child of node.children.map(normalise)) {
        if (child.type === node.type) children.push(...child.children);
        else children.push(child);
      }
      return { type: node.type, children };
    }
    case 'not':
      return { type: 'not', child: normalise(node.child) };
    case 'nested':
      return { type: 'nested', path: node.path, query: normalise(node.query) };
    case 'range':
      // a range value is a literal; a wildcard-looking one keeps its text
      return node;
    default:
      return node;
  }
}

describe('property: printing round-trips', () => {
  it('parse(print(tree)) equals the tree', () => {
    fc.assert(
      fc.property(tree, (node) => {
        const printed = printKql(node);
        const reparsed = parseKql(printed);
        expect(reparsed).toEqual(normalise(node));
        expect(printKql(reparsed)).toBe(printed);
      }),
      { numRuns: RUNS },
    );
  });
});

// ---- 3. agreement with a reference evaluator ----------------------------------------------------------------

/** Documents over fields ECS does not define (keyword semantics), nested objects, dotted keys and arrays. */
const FIELDS = ['k.a', 'k.b', 'k.c.d', 'k.c.e'];
const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '/', '-', ' ', 'é', '\u{1F600}', '\uff21'), maxLength: 5 });
const fieldValue = fc.oneof(word, fc.array(word, { maxLength: 3 }), fc.constant(null), fc.constant([]));
const documentArb = fc.record({ 'k.a': fieldValue, 'k.b': fieldValue, 'k.c.d': fieldValue, 'k.c.e': fieldValue }, { requiredKeys: [] });

/** Builds the document in one of three shapes (nested, dotted keys, mixed). */
function shape(values: Record<string, unknown>, style: number): Record<string, unknown> {
  const doc: Record<string, any> = {};
  for (const [path, value] of Object.entries(values)) {
    if (style === 1) {
      doc[path] = value;
      continue;
    }
    const segments = path.split('.');
    if (style === 2 && segments.length > 2) {
      doc.k ??= {};
      doc.k[segments.slice(1).join('.')] = value;
      continue;
    }
    let at = doc;
    for (const segment of segments.slice(0, -1)) at = at[segment] ??= {};
    at[segments[segments.length - 1]!] = value;
  }
  return doc;
}

function referenceValues(values: Record<string, unknown>, field: string): string[] {
  const value = values[field];
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]) as string[];
}

const codePoints = (s: string): number[] => [...s].map((c) => c.codePointAt(0)!);
function compareReference(a: string, b: string): number {
  const x = codePoints(a);
  const y = codePoints(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

type RefQuery =
  | { kind: 'is'; field: string; value: string; quoted: boolean }
  | { kind: 'glob'; field: string; parts: string[] }
  | { kind: 'exists'; field: string }
  | { kind: 'range'; field: string; op: '<' | '<=' | '>' | '>='; value: string }
  | { kind: 'not'; child: RefQuery }
  | { kind: 'and' | 'or'; children: RefQuery[] };

function referenceMatches(q: RefQuery, values: Record<string, unknown>): boolean {
  switch (q.kind) {
    case 'is':
      return referenceValues(values, q.field).includes(q.value);
    case 'glob': {
      const source = q.parts.map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
      const regex = new RegExp(`^${source}$`, 'su');
      return referenceValues(values, q.field).some((v) => regex.test(v));
    }
    case 'exists':
      return referenceValues(values, q.field).length > 0;
    case 'range':
      return referenceValues(values, q.field).some((v) => {
        const c = compareReference(v, q.value);
        return q.op === '<' ? c < 0 : q.op === '<=' ? c <= 0 : q.op === '>' ? c > 0 : c >= 0;
      });
    case 'not':
      return !referenceMatches(q.child, values);
    case 'and':
      return q.children.every((child) => referenceMatches(child, values));
    case 'or':
      return q.children.some((child) => referenceMatches(child, values));
  }
}

function quote(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function toKql(q: RefQuery): string {
  switch (q.kind) {
    case 'is':
      return `${q.field}:${quote(q.value)}`;
    case 'glob':
      return `${q.field}:${q.parts.map((part) => part.replace(/[\\():<>"*{} ]/g, (c) => (c === ' ' ? '\\u0020' : `\\${c}`))).join('*')}`;
    case 'exists':
      return `${q.field}:*`;
    case 'range':
      return `${q.field} ${q.op} ${quote(q.value)}`;
    case 'not':
      return `not (${toKql(q.child)})`;
    case 'and':
    case 'or':
      return `(${q.children.map(toKql).join(` ${q.kind} `)})`;
  }
}

/** Queries whose values come from the document itself (so they match often), plus some other words. */
function queryFor(values: Record<string, unknown>): fc.Arbitrary<RefQuery> {
  const seen = FIELDS.flatMap((field) => referenceValues(values, field));
  const someValue = seen.length > 0 ? fc.oneof(fc.constantFrom(...seen), word) : word;
  const fieldArb = fc.constantFrom(...FIELDS);
  const globOf = (text: string, cuts: number[]): string[] => {
    const chars = [...text];
    const positions = [...new Set(cuts.map((c) => c % (chars.length + 1)))].sort((a, b) => a - b);
    const parts: string[] = [];
    let from = 0;
    for (const at of positions) {
      parts.push(chars.slice(from, at).join(''));
      from = at;
    }
    parts.push(chars.slice(from).join(''));
    if (parts.length === 1) parts.unshift('');
    // an unquoted value is trimmed as a whole (escaped whitespace too), so a pattern cannot start or end with it
    parts[0] = parts[0]!.trimStart();
    parts[parts.length - 1] = parts[parts.length - 1]!.trimEnd();
    return parts;
  };
  const leaf: fc.Arbitrary<RefQuery> = fc.oneof(
    fc.record({ kind: fc.constant('is' as const), field: fieldArb, value: someValue, quoted: fc.boolean() }),
    fc.tuple(fieldArb, someValue, fc.array(fc.nat(), { minLength: 1, maxLength: 3 })).map(([field, text, cuts]): RefQuery => ({ kind: 'glob', field, parts: globOf(text, cuts) })),
    fc.record({ kind: fc.constant('exists' as const), field: fieldArb }),
    fc.record({ kind: fc.constant('range' as const), field: fieldArb, op: fc.constantFrom('<' as const, '<=' as const, '>' as const, '>=' as const), value: someValue }),
  );
  return fc.letrec<{ q: RefQuery }>((tie) => ({
    q: fc.oneof(
      { depthSize: 'small' },
      leaf,
      tie('q').map((child): RefQuery => ({ kind: 'not', child })),
      fc.record({ kind: fc.constantFrom('and' as const, 'or' as const), children: fc.array(tie('q'), { minLength: 2, maxLength: 3 }) }),
    ),
  })).q;
}

describe('property: agreement with a reference evaluator', () => {
  it('answers as the reference on random documents and queries built from their values', () => {
    fc.assert(
      fc.property(
        documentArb.chain((values) => fc.tuple(fc.constant(values), queryFor(values), fc.integer({ min: 0, max: 2 }))),
        ([values, query, style]) => {
          const doc = shape(values, style);
          const compiled = compileKql(toKql(query));
          const expected = referenceMatches(query, values);
          expect(compiled.matches(doc)).toBe(expected);
          expect(compiled.matchesAccessor((field) => getField(doc, field))).toBe(expected);
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });
});
