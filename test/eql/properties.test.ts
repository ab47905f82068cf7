import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EQL_FUNCTION_NAMES, type EqlEventFilter, type EqlExpression, type EqlField, type EqlLiteral, type EqlQuery, type EqlSequenceStage } from '../../src/eql/ast.js';
import { EqlSyntaxError, parseEql, parseEqlExpression } from '../../src/eql/parser.js';
import { printEql, printEqlExpression } from '../../src/eql/printer.js';

/** EQL_PROPERTY_RUNS raises the run count for a deeper search (default keeps `npm test` quick). */
const RUNS = Number(process.env.EQL_PROPERTY_RUNS ?? 300);

const at = { line: 1, column: 1 };

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== 'at').map(([key, v]) => [key, strip(v)]));
}

// ---- 1. the parser only ever throws its own error ---------------------------------------------------------

const eqlAlphabet = fc.constantFrom(
  'process', ' where ', 'any', 'sequence', ' by ', 'with', 'maxspan', '=', '==', '!=', '<', '>=', 'runs', 'until', '[', ']', '![', '(', ')', ',', '.',
  '|', ' head ', 'tail', 'unique', 'sample', 'join', 'not', ' and ', ' or ', ' in ', 'in~', ':', 'like~', 'regex', '?', '`', '``', '"', '"""', "'",
  '\\', '\\u{', '41}', '\\n', '5s', '1', '-2.5', '1e9', '.5', 'a', 'x.y', '@timestamp', 'length(', 'startsWith~(', 'foo(', 'descendant of', '+', '-',
  '*', '/', '%', '//', '/*', '*/', '\n', '\t', 'é', '\u0000', '\ud800', '~', '!', '0',
);
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.array(eqlAlphabet, { maxLength: 30 }).map((parts) => parts.join('')));

function onlySyntaxErrors(parse: () => unknown): void {
  try {
    parse();
  } catch (err) {
    if (!(err instanceof EqlSyntaxError)) throw err;
    expect(err.line).toBeGreaterThanOrEqual(1);
    expect(err.column).toBeGreaterThanOrEqual(1);
    expect(err.expected.length).toBeGreaterThan(0);
    expect(err.found.length).toBeGreaterThan(0);
    expect(err.message).not.toContain('\n');
  }
}

describe('property: the parser never crashes', () => {
  it('returns a tree or throws EqlSyntaxError for arbitrary strings', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        onlySyntaxErrors(() => parseEql(text));
        onlySyntaxErrors(() => parseEqlExpression(text));
      }),
      { numRuns: RUNS * 10 },
    );
  });

  it('prints whatever it parses to text that parses back to the same tree', () => {
    fc.assert(
      fc.property(fc.array(eqlAlphabet, { maxLength: 30 }).map((parts) => `process where ${parts.join('')}`), (text) => {
        let tree: EqlQuery;
        try {
          tree = parseEql(text);
        } catch (err) {
          if (err instanceof EqlSyntaxError) return;
          throw err;
        }
        expect(strip(parseEql(printEql(tree)))).toEqual(strip(tree));
      }),
      { numRuns: RUNS * 5 },
    );
  });
});

// ---- 2. print → parse round trip on generated trees ----------------------------------------------------------

const text = fc.string({ unit: fc.oneof(fc.constantFrom('a', '.', '`', '"', '\\', ' ', '\n', '\t', '\b', '\u0001', '\u007f', 'é', '\u{1F600}', '*', '~'), fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' })), maxLength: 10 });
const word = fc.constantFrom('process', 'a', 'x_1', '@timestamp', 'where', 'and', 'any', 'AND', 'runs', 'length', '1a', 'my-field', '');
const name = fc.oneof(word, text, fc.array(word, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('.')));

const literal: fc.Arbitrary<EqlLiteral> = fc.oneof(
  fc.oneof(fc.nat(), fc.constant(2 ** 53 + 2), fc.constant(9223372036854775807)).map((value) => ({ type: 'literal' as const, value, integer: true, at })),
  fc.oneof(fc.double({ min: 0, noNaN: true, noDefaultInfinity: true, max: 1e300 }), fc.constant(1e21), fc.constant(0.5)).map((value) => ({ type: 'literal' as const, value: Object.is(value, -0) ? 0 : value, integer: false, at })),
  text.map((value) => ({ type: 'literal' as const, value, integer: false, at })),
  fc.constantFrom(true, false, null).map((value) => ({ type: 'literal' as const, value, integer: false, at })),
);
const fieldArb: fc.Arbitrary<EqlField> = fc.record({ type: fc.constant('field' as const), name, optional: fc.boolean(), at: fc.constant(at) });

const expression = fc.letrec<{ e: EqlExpression }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    literal,
    fieldArb,
    fc.record({ type: fc.constant('function' as const), name: fc.constantFrom(...EQL_FUNCTION_NAMES), caseInsensitive: fc.boolean(), args: fc.array(tie('e'), { maxLength: 3 }), at: fc.constant(at) }),
    fc.record({ type: fc.constantFrom('and' as const, 'or' as const), left: tie('e'), right: tie('e'), at: fc.constant(at) }),
    fc.record({ type: fc.constant('compare' as const), operator: fc.constantFrom('==' as const, '!=' as const, '<' as const, '<=' as const, '>' as const, '>=' as const), left: tie('e'), right: tie('e'), at: fc.constant(at) }),
    fc.record({ type: fc.constant('arithmetic' as const), operator: fc.constantFrom('+' as const, '-' as const, '*' as const, '/' as const, '%' as const), left: tie('e'), right: tie('e'), at: fc.constant(at) }),
    fc.record({ type: fc.constantFrom('not' as const, 'negate' as const), operand: tie('e'), at: fc.constant(at) }),
    fc.record({ type: fc.constant('paren' as const), expression: tie('e'), at: fc.constant(at) }),
    fc.record({ type: fc.constant('in' as const), value: tie('e'), list: fc.array(tie('e'), { minLength: 1, maxLength: 3 }), caseInsensitive: fc.boolean(), negated: fc.boolean(), at: fc.constant(at) }),
    fc.tuple(fc.constantFrom(':' as const, 'like' as const, 'regex' as const), fc.boolean(), tie('e'), fc.array(literal, { minLength: 1, maxLength: 3 }), fc.boolean()).map(
      ([operator, caseInsensitive, value, patterns, list]): EqlExpression => ({
        type: 'match',
        operator,
        caseInsensitive: operator === ':' ? true : caseInsensitive,
        value,
        patterns: list ? patterns : patterns.slice(0, 1),
        list,
        at,
      }),
    ),
  ),
})).e;

/** The test's own statement of the grammar's precedence: loosest first, and what each operand position accepts. */
const LEVEL: Record<EqlExpression['type'], number> = { or: 1, and: 2, not: 3, compare: 4, arithmetic: 0, negate: 7, in: 8, match: 8, literal: 9, field: 9, function: 9, paren: 9 };
const levelOf = (e: EqlExpression): number => (e.type === 'arithmetic' ? (e.operator === '+' || e.operator === '-' ? 5 : 6) : LEVEL[e.type]);

/** The tree the parser builds from the printed text: `paren` nodes wherever the grammar needs grouping. */
function grouped(e: EqlExpression, minimum = 1): EqlExpression {
  const inner = groupChildren(e);
  return levelOf(inner) < minimum ? { type: 'paren', expression: inner, at } : inner;
}

function groupChildren(e: EqlExpression): EqlExpression {
  switch (e.type) {
    case 'or':
      return { ...e, left: grouped(e.left, 1), right: grouped(e.right, 2) };
    case 'and':
      return { ...e, left: grouped(e.left, 2), right: grouped(e.right, 3) };
    case 'not':
      return { ...e, operand: grouped(e.operand, 3) };
    case 'compare':
      return { ...e, left: grouped(e.left, 5), right: grouped(e.right, 5) };
    case 'arithmetic':
      return { ...e, left: grouped(e.left, levelOf(e)), right: grouped(e.right, levelOf(e) + 1) };
    case 'negate':
      return { ...e, operand: grouped(e.operand, 7) };
    case 'in':
      return { ...e, value: grouped(e.value, 9), list: e.list.map((x) => grouped(x)) };
    case 'match':
      return { ...e, value: grouped(e.value, 9) };
    case 'paren':
      return { ...e, expression: grouped(e.expression) };
    case 'function':
      return { ...e, args: e.args.map((x) => grouped(x)) };
    default:
      return e;
  }
}

const category = fc.oneof(fc.constant(null), word, text);
const filter: fc.Arbitrary<EqlEventFilter> = fc.record({ category, condition: expression.map((e) => grouped(e)), at: fc.constant(at) });
const pipes = fc.array(fc.record({ type: fc.constantFrom('head' as const, 'tail' as const), count: fc.nat({ max: 2 ** 31 - 1 }), at: fc.constant(at) }), { maxLength: 2 });

const eventQuery: fc.Arbitrary<EqlQuery> = fc.record({ type: fc.constant('event' as const), filter, pipes });

const sequenceQuery: fc.Arbitrary<EqlQuery> = fc
  .record({
    by: fc.array(fieldArb, { maxLength: 2 }),
    keys: fc.nat({ max: 2 }),
    maxspan: fc.option(fc.record({ value: fc.integer({ min: 1, max: 100_000 }), unit: fc.constantFrom('ms', 's', 'm', 'h', 'd') })),
    stages: fc.array(fc.record({ filter, keys: fc.array(fieldArb, { minLength: 2, maxLength: 2 }), runs: fc.option(fc.integer({ min: 1, max: 100 })), missing: fc.boolean() }), { minLength: 2, maxLength: 4 }),
    until: fc.option(fc.record({ filter, keys: fc.array(fieldArb, { minLength: 2, maxLength: 2 }) })),
    pipes,
  })
  .map(({ by, keys, maxspan, stages, until, pipes: queryPipes }): EqlQuery => {
    const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
    const withMaxspan = maxspan === null ? null : { ...maxspan, milliseconds: maxspan.value * factor[maxspan.unit], at };
    // missing stages need maxspan and a stage that is not missing
    const sequenceStages = stages.map(
      (stage, i): EqlSequenceStage => ({
        filter: stage.filter,
        by: stage.keys.slice(0, keys),
        runs: stage.runs ?? 1,
        runsWritten: stage.runs !== null,
        missing: withMaxspan !== null && i > 0 && stage.missing,
        at,
      }),
    );
    return {
      type: 'sequence',
      by,
      maxspan: withMaxspan,
      stages: sequenceStages,
      until: until === null ? null : { filter: until.filter, by: until.keys.slice(0, keys), at },
      pipes: queryPipes,
    };
  });

describe('property: printing round-trips', () => {
  it('parseEqlExpression(printEqlExpression(tree)) equals the tree', () => {
    fc.assert(
      fc.property(expression, (raw) => {
        const tree = grouped(raw);
        const printed = printEqlExpression(tree);
        expect(strip(parseEqlExpression(printed))).toEqual(strip(tree));
        // a tree lacking the parentheses it needs prints with them
        expect(printEqlExpression(raw)).toBe(printed);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('parseEql(printEql(query)) equals the query, for event queries and sequences', () => {
    fc.assert(
      fc.property(fc.oneof(eventQuery, sequenceQuery), (tree) => {
        const printed = printEql(tree);
        const reparsed = parseEql(printed);
        expect(strip(reparsed)).toEqual(strip(tree));
        expect(printEql(reparsed)).toBe(printed);
      }),
      { numRuns: RUNS * 2 },
    );
  });
});
