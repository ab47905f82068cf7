import { describe, expect, it } from 'vitest';
import type { EqlExpression, EqlQuery } from '../../src/eql/ast.js';
import { EqlSyntaxError, MAX_NESTING, parseEql, parseEqlExpression } from '../../src/eql/parser.js';
import { printEql, printEqlExpression } from '../../src/eql/printer.js';

/** The tree without positions, for comparisons. */
function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== 'at').map(([key, v]) => [key, strip(v)]));
}

const expr = (text: string): unknown => strip(parseEqlExpression(text));
const query = (text: string): unknown => strip(parseEql(text));
const field = (name: string, optional = false) => ({ type: 'field', name, optional });
const int = (value: number) => ({ type: 'literal', value, integer: true });
const lit = (value: string | number | boolean | null) => ({ type: 'literal', value, integer: false });

function syntaxError(parse: () => unknown): EqlSyntaxError {
  try {
    parse();
  } catch (err) {
    expect(err).toBeInstanceOf(EqlSyntaxError);
    return err as EqlSyntaxError;
  }
  throw new Error('expected an EqlSyntaxError');
}
const queryError = (text: string) => syntaxError(() => parseEql(text));
const exprError = (text: string) => syntaxError(() => parseEqlExpression(text));

/** Printing gives text that parses back to the same tree. */
function roundTrips(text: string): void {
  const tree = parseEql(text);
  const printed = printEql(tree);
  expect(strip(parseEql(printed))).toEqual(strip(tree));
  expect(printEql(parseEql(printed))).toBe(printed);
}

describe('EQL parser: event queries', () => {
  it('parses CATEGORY where CONDITION with positions', () => {
    const q = parseEql('process where process.name == "bash"') as Extract<EqlQuery, { type: 'event' }>;
    expect(strip(q)).toEqual({
      type: 'event',
      filter: { category: 'process', condition: { type: 'compare', operator: '==', left: field('process.name'), right: lit('bash') } },
      pipes: [],
    });
    expect(q.filter.at).toEqual({ line: 1, column: 1 });
    const condition = q.filter.condition as Extract<EqlExpression, { type: 'compare' }>;
    expect(condition.right.at).toEqual({ line: 1, column: 31 });
  });

  it('takes any, an identifier or a string as the category', () => {
    expect(parseEql('any where true')).toMatchObject({ filter: { category: null } });
    expect(parseEql('"my-category" where true')).toMatchObject({ filter: { category: 'my-category' } });
    expect(parseEql('"""raw.cat""" where true')).toMatchObject({ filter: { category: 'raw.cat' } });
    expect(parseEql('Process where true')).toMatchObject({ filter: { category: 'Process' } });
    // eventValue is STRING | IDENTIFIER: no backticks
    expect(queryError('`process` where true').expected).toContain('an event category (a name or a string)');
    expect(queryError('process true').message).toBe('EQL syntax error at line 1, column 9: expected "where" but found "true"');
  });

  it('refuses join and sample, naming them', () => {
    expect(queryError('join [a where true] [b where true]').message).toMatch(/join queries are not supported/);
    expect(queryError('sample by host.id [a where true] [b where true]').message).toMatch(/sample queries are not supported by execsentry/);
  });
});

describe('EQL parser: operators and precedence', () => {
  it('binds not tighter than and, and tighter than or (left-associative)', () => {
    expect(expr('not a or b and c')).toEqual({
      type: 'or',
      left: { type: 'not', operand: field('a') },
      right: { type: 'and', left: field('b'), right: field('c') },
    });
    expect(expr('a or b or c')).toMatchObject({ type: 'or', left: { type: 'or' }, right: field('c') });
    expect(expr('not not a')).toEqual({ type: 'not', operand: { type: 'not', operand: field('a') } });
    expect(expr('not a == 1')).toMatchObject({ type: 'not', operand: { type: 'compare' } });
  });

  it('parses every comparison, once (no chaining)', () => {
    for (const op of ['==', '!=', '<', '<=', '>', '>=']) expect(expr(`a ${op} 1`)).toEqual({ type: 'compare', operator: op, left: field('a'), right: int(1) });
    const err = exprError('a == b == c');
    expect([err.line, err.column, err.found]).toEqual([1, 8, '==']);
    expect(err.expected).toContain('"and"');
  });

  it('refuses a single = suggesting ==', () => {
    const err = exprError('a = 1');
    expect([err.line, err.column, err.found, err.expected]).toEqual([1, 3, '=', ['"=="']]);
    expect(err.message).toMatch(/use "==" to compare/);
  });

  it('gives * / % precedence over + -, and unary minus over both', () => {
    expect(expr('1 + 2 * 3 - 4 % 5 / 6')).toEqual({
      type: 'arithmetic',
      operator: '-',
      left: { type: 'arithmetic', operator: '+', left: int(1), right: { type: 'arithmetic', operator: '*', left: int(2), right: int(3) } },
      right: { type: 'arithmetic', operator: '/', left: { type: 'arithmetic', operator: '%', left: int(4), right: int(5) }, right: int(6) },
    });
    expect(expr('-a * b')).toEqual({ type: 'arithmetic', operator: '*', left: { type: 'negate', operand: field('a') }, right: field('b') });
    expect(expr('+a')).toEqual(field('a'));
    expect(expr('- -a')).toEqual({ type: 'negate', operand: { type: 'negate', operand: field('a') } });
    expect(expr('a + 1 < b * 2')).toMatchObject({ type: 'compare', left: { type: 'arithmetic' }, right: { type: 'arithmetic' } });
  });

  it('keeps parentheses as written', () => {
    expect(expr('(a or b) and c')).toEqual({ type: 'and', left: { type: 'paren', expression: { type: 'or', left: field('a'), right: field('b') } }, right: field('c') });
  });

  it('attaches a predicate to the primary before it', () => {
    expect(expr('-a in (1)')).toMatchObject({ type: 'negate', operand: { type: 'in', value: field('a') } });
    expect(expr('a + b in (1)')).toMatchObject({ type: 'arithmetic', right: { type: 'in', value: field('b') } });
  });
});

describe('EQL parser: predicates', () => {
  it('parses in, in~, not in, not in~ with any expressions', () => {
    expect(expr('a in (1, "x", b)')).toEqual({ type: 'in', value: field('a'), list: [int(1), lit('x'), field('b')], caseInsensitive: false, negated: false });
    expect(expr('a in~ ("X")')).toMatchObject({ type: 'in', caseInsensitive: true, negated: false });
    expect(expr('a not in (1)')).toMatchObject({ type: 'in', caseInsensitive: false, negated: true });
    expect(expr('a not in~ ("x")')).toMatchObject({ type: 'in', caseInsensitive: true, negated: true });
    expect(exprError('a in ()').expected).toEqual(['an expression']);
    expect(exprError('a not like "x"').expected).toEqual(['"in"', '"in~"']);
  });

  it('parses :, like, like~, regex, regex~ with one constant or a list', () => {
    expect(expr('a : "x*"')).toEqual({ type: 'match', operator: ':', caseInsensitive: true, value: field('a'), patterns: [lit('x*')], list: false });
    expect(expr('a : ("x", "y")')).toMatchObject({ operator: ':', patterns: [lit('x'), lit('y')], list: true });
    expect(expr('a like "x"')).toMatchObject({ operator: 'like', caseInsensitive: false, list: false });
    expect(expr('a like~ ("x")')).toMatchObject({ operator: 'like', caseInsensitive: true, list: true });
    expect(expr('a regex "x.*"')).toMatchObject({ operator: 'regex', caseInsensitive: false });
    expect(expr('a regex~ "x"')).toMatchObject({ operator: 'regex', caseInsensitive: true });
    // the grammar takes any constant; types are checked later
    expect(expr('a : 1')).toMatchObject({ patterns: [int(1)] });
    expect(exprError('a : b').expected).toEqual(['"("', 'a constant (string, number, true, false or null)']);
    expect(exprError('a like ("x", b)').found).toBe('b');
  });
});

describe('EQL parser: literals', () => {
  it('reads integers, decimals, booleans and null', () => {
    expect(expr('42')).toEqual(int(42));
    expect(expr('007')).toEqual(int(7));
    expect(expr('1.5')).toEqual(lit(1.5));
    expect(expr('1.')).toEqual(lit(1));
    expect(expr('.5')).toEqual(lit(0.5));
    expect(expr('1e3')).toEqual(lit(1000));
    expect(expr('2.5E-1')).toEqual(lit(0.25));
    expect(expr('true')).toEqual(lit(true));
    expect(expr('false')).toEqual(lit(false));
    expect(expr('null')).toEqual(lit(null));
  });

  it('types an integer beyond a long as a double, and refuses one beyond a double', () => {
    expect(expr('9223372036854775807')).toEqual(int(9223372036854775807));
    expect(expr('9223372036854775808')).toEqual(lit(9223372036854775808));
    expect(exprError('1' + '0'.repeat(400)).message).toMatch(/too large/);
  });

  it('unescapes exactly the escapes Elasticsearch allows', () => {
    expect(expr('"\\t\\b\\f\\n\\r\\"\\\'\\\\"')).toEqual(lit('\t\b\f\n\r"\'\\'));
    expect(expr('"\\u{41}\\u{1F600}\\u{0000e9}"')).toEqual(lit('A\u{1F600}é'));
    const bad = exprError('"a\\w"');
    expect([bad.column, bad.found]).toEqual([3, '\\w']);
    expect(exprError('"\\u0041"').found).toBe('\\u');
    expect(exprError('"\\u{1}"').message).toMatch(/2 to 8 hex digits/);
    expect(exprError('"\\u{123456789}"').message).toMatch(/2 to 8 hex digits/);
    expect(exprError('"\\u{d800}"').message).toMatch(/surrogate/);
    expect(exprError('"\\u{110000}"').message).toMatch(/not a unicode code point/);
    expect(exprError('"\\u{}"').expected).toEqual(['a hex digit']);
    expect(exprError('"\\u{41"').expected).toEqual(['"}"']);
  });

  it('refuses raw line breaks and unterminated strings', () => {
    const err = exprError('"a\nb"');
    expect([err.line, err.column]).toEqual([1, 3]);
    expect(exprError('"abc').found).toBe('end of input');
  });

  it('reads raw strings without escapes, extra closing quotes included', () => {
    expect(expr('"""a\\w"b"""')).toEqual(lit('a\\w"b'));
    expect(expr('""""""')).toEqual(lit(''));
    expect(expr('"""a""""')).toEqual(lit('a"'));
    expect(expr('""')).toEqual(lit(''));
  });

  it('refuses single-quoted and ?"…" strings with their own messages', () => {
    expect(exprError("'x'").message).toMatch(/double quotes/);
    expect(exprError('?"x"').message).toMatch(/triple double quotes/);
    expect(exprError("?'x'").message).toMatch(/triple double quotes/);
  });
});

describe('EQL parser: fields and functions', () => {
  it('reads dotted, backtick-quoted, @-prefixed and optional field names', () => {
    expect(expr('process.parent.name')).toEqual(field('process.parent.name'));
    expect(expr('@timestamp')).toEqual(field('@timestamp'));
    expect(expr('`my-field`.`6x`.`a``b`')).toEqual(field('my-field.6x.a`b'));
    expect(expr('?a.b')).toEqual(field('a.b', true));
    expect(expr('?`x y`')).toEqual(field('x y', true));
    expect(expr('`where`')).toEqual(field('where'));
    expect(expr('AND')).toEqual(field('AND'));
    expect(exprError('where').expected).toEqual(['an expression']);
    expect(exprError('a.1').found).toBe('.1');
    expect(exprError('a.where').expected).toEqual(['a field name']);
  });

  it('refuses array indexes and process relationships as Elasticsearch does', () => {
    const index = exprError('a.b[0] == 1');
    expect([index.column, index.found]).toEqual([5, '0']);
    expect(index.message).toMatch(/array indexes/);
    for (const relation of ['descendant', 'child', 'event']) {
      const err = exprError(`${relation} of [process where true]`);
      expect(err.message).toMatch(/process relationships/);
      expect(err.found).toBe(relation);
    }
  });

  it('maps function names case-insensitively to their canonical names', () => {
    expect(expr('STARTSWITH(a, "x")')).toEqual({ type: 'function', name: 'startsWith', caseInsensitive: false, args: [field('a'), lit('x')] });
    expect(expr('cidrmatch~(a)')).toMatchObject({ name: 'cidrMatch', caseInsensitive: true });
    expect(expr('length()')).toMatchObject({ name: 'length', args: [] });
    const unknown = exprError('x and safe(a)');
    expect([unknown.column, unknown.found]).toEqual([7, 'safe']);
    expect(unknown.message).toMatch(/unknown function \[safe\]/);
    expect(exprError('startsWith~ a').expected).toEqual(['"("']);
  });
});

describe('EQL parser: sequences', () => {
  const stage = (category: string, by: unknown[] = [], extra: object = {}) => ({
    filter: { category, condition: lit(true) },
    by,
    runs: 1,
    runsWritten: false,
    missing: false,
    ...extra,
  });

  it('parses by, maxspan, stages, by keys, runs and until', () => {
    expect(query('sequence by host.id with maxspan=30s [a where true] by x [b where true] by y with runs=3 until [c where true] by z | head 5')).toEqual({
      type: 'sequence',
      by: [field('host.id')],
      maxspan: { value: 30, unit: 's', milliseconds: 30_000 },
      stages: [stage('a', [field('x')]), stage('b', [field('y')], { runs: 3, runsWritten: true })],
      until: { filter: { category: 'c', condition: lit(true) }, by: [field('z')] },
      pipes: [{ type: 'head', count: 5 }],
    });
  });

  it('converts every maxspan unit to milliseconds', () => {
    const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
    for (const [unit, factor] of Object.entries(units)) {
      expect(parseEql(`sequence with maxspan=2${unit} [a where true] [b where true]`)).toMatchObject({ maxspan: { value: 2, unit, milliseconds: 2 * factor } });
    }
    expect(parseEql('sequence with maxspan = 2 h [a where true] [b where true]')).toMatchObject({ maxspan: { milliseconds: 7_200_000 } });
  });

  it('refuses a bad maxspan', () => {
    expect(queryError('sequence with maxspan=5 [a where true] [b where true]').message).toMatch(/needs a time unit/);
    expect(queryError('sequence with maxspan=5S [a where true] [b where true]').message).toMatch(/unknown time unit \[S\]/);
    expect(queryError('sequence with maxspan=1.5s [a where true] [b where true]').message).toMatch(/not the decimal 1.5/);
    expect(queryError('sequence with maxspan=0s [a where true] [b where true]').message).toMatch(/must be positive/);
    expect(queryError('sequence with maxspan==5s [a where true] [b where true]').expected).toEqual(['"="']);
  });

  it('wants by before with', () => {
    expect(parseEql('sequence by a with maxspan=1m [x where true] [y where true]')).toMatchObject({ by: [field('a')], maxspan: { milliseconds: 60_000 } });
    const err = queryError('sequence with maxspan=1m by a [x where true] [y where true]');
    expect([err.column, err.found]).toEqual([26, 'by']);
    expect(err.message).toMatch(/before "with maxspan"/);
  });

  it('needs two queries, runs counted, the until aside', () => {
    expect(queryError('sequence [a where true]').message).toMatch(/at least 2 queries.*found 1/);
    expect(queryError('sequence [a where true] until [b where true]').message).toMatch(/found 1/);
    expect(parseEql('sequence [a where true] with runs=2')).toMatchObject({ stages: [{ runs: 2, runsWritten: true }] });
    expect(queryError('sequence until [a where true]').expected).toContain('"[" or "!["');
  });

  it('checks runs', () => {
    expect(queryError('sequence [a where true] with runs=0 [b where true]').message).toMatch(/runs must be an integer from 1 to 100/);
    expect(queryError('sequence [a where true] with runs=101 [b where true]').message).toMatch(/from 1 to 100/);
    expect(queryError('sequence [a where true] with runs=1.5 [b where true]').message).toMatch(/from 1 to 100/);
    expect(queryError('sequence [a where true] with repeat=2 [b where true]').message).toMatch(/unknown stage option \[repeat\]/);
    expect(queryError('sequence [a where true] with runs=2 by x [b where true]').found).toBe('by');
    expect(queryError('sequence [a where true] [b where true] until [c where true] with runs=2').message).toMatch(/until .* cannot have runs/);
  });

  it('requires the same number of keys in every stage and the until', () => {
    expect(parseEql('sequence by a [x where true] by b, c [y where true] by d, e until [z where true] by f, g')).toMatchObject({ by: [field('a')] });
    const err = queryError('sequence [x where true] by a\n  [y where true] by b, c');
    expect([err.line, err.column, err.found]).toEqual([2, 18, 'by']);
    expect(err.message).toMatch(/expected 1 but found 2/);
    expect(queryError('sequence [x where true] by a [y where true]').message).toMatch(/expected 1 but found 0/);
    expect(queryError('sequence [x where true] by a [y where true] by b until [z where true]').message).toMatch(/expected 1 but found 0/);
  });

  it('wants join keys to be fields', () => {
    expect(parseEql('sequence by (a) [x where true] [y where true]')).toMatchObject({ by: [{ type: 'paren', expression: field('a') }] });
    expect(queryError('sequence by a == 1 [x where true] [y where true]').message).toMatch(/join key must be a field/);
    expect(queryError('sequence [x where true] by length(a) [y where true] by b').message).toMatch(/join key must be a field/);
  });

  it('parses missing-event stages, first and last included, which need maxspan', () => {
    expect(parseEql('sequence with maxspan=1h ![a where true] [b where true] ![c where true]')).toMatchObject({
      stages: [{ missing: true }, { missing: false }, { missing: true }],
    });
    expect(queryError('sequence [a where true] ![b where true]').message).toMatch(/missing events needs "with maxspan"/);
    expect(queryError('sequence with maxspan=1h ![a where true] ![b where true]').message).toMatch(/at least one event that is not missing/);
    expect(queryError('sequence with maxspan=1h [a where true] [b where true] until ![c where true]').message).toMatch(/until .* cannot be a missing event/);
  });
});

describe('EQL parser: pipes', () => {
  it('parses head and tail with a constant integer', () => {
    expect(parseEql('process where true | head 10 | tail 3')).toMatchObject({ pipes: [{ type: 'head', count: 10 }, { type: 'tail', count: 3 }] });
    expect(parseEql('process where true | head 0')).toMatchObject({ pipes: [{ type: 'head', count: 0 }] });
    expect(parseEql('process where true | tail (2 + 3) * 2')).toMatchObject({ pipes: [{ type: 'tail', count: 10 }] });
  });

  it('refuses bad counts and other pipes', () => {
    expect(queryError('process where true | head -1').message).toMatch(/integer that is not negative/);
    expect(queryError('process where true | head 1.5').message).toMatch(/integer that is not negative/);
    expect(queryError('process where true | head x').message).toMatch(/integer that is not negative/);
    expect(queryError('process where true | head').message).toMatch(/exactly one argument; found 0/);
    expect(queryError('process where true | tail 1, 2').message).toMatch(/exactly one argument; found 2/);
    for (const pipe of ['count', 'filter a', 'sort a', 'unique a', 'unique_count a']) {
      expect(queryError(`process where true | ${pipe}`).message).toMatch(/pipe is not supported by Elasticsearch/);
    }
    const unknown = queryError('process where true | frobnicate 1');
    expect([unknown.column, unknown.found]).toEqual([22, 'frobnicate']);
    expect(unknown.message).toMatch(/unknown pipe \[frobnicate\]/);
    expect(queryError('process where true | where').expected).toEqual(['a pipe name (head, tail)']);
  });
});

describe('EQL parser: keywords, comments and whitespace', () => {
  it('has case-sensitive keywords', () => {
    expect(queryError('process WHERE true').found).toBe('WHERE');
    expect(exprError('a AND b').found).toBe('AND');
    expect(expr('a and b')).toMatchObject({ type: 'and' });
  });

  it('skips // and nested /* */ comments and any of space, tab, CR, LF', () => {
    expect(query('process /* a /* nested */ comment */ where // to the end\r\n\ttrue')).toEqual(query('process where true'));
    expect(queryError('process where /* open').expected).toEqual(['"*/" closing the comment']);
    expect(queryError('process where\u00a0true').found).toBe('\u00a0');
  });
});

describe('EQL parser: errors', () => {
  it('reports line, column, found and expected in a one-line message', () => {
    const err = queryError('sequence\n  [process where (a == 1 where');
    expect([err.line, err.column, err.found]).toEqual([2, 26, 'where']);
    expect(err.expected).toContain('")"');
    expect(err.message).toMatch(/^EQL syntax error at line 2, column 26: expected .*"\)".* but found "where"$/);
    expect(queryError('process where').found).toBe('end of input');
    expect(queryError('').expected).toEqual(['"any"', '"sequence"', 'an event category (a name or a string)']);
    expect(queryError('process where true )').expected).toContain('end of input');
    expect(exprError('a ~ b').found).toBe('~');
  });

  it('refuses deep nesting instead of overflowing the stack', () => {
    for (const deep of ['('.repeat(100_000), 'not '.repeat(100_000), '-'.repeat(100_000), 'length('.repeat(100_000), 'a in ('.repeat(100_000)]) {
      const err = syntaxError(() => parseEql(`process where ${deep}`));
      expect(err.message).toMatch(new RegExp(`limited to ${MAX_NESTING} levels`));
    }
    const nested = `${'('.repeat(MAX_NESTING - 1)}a${')'.repeat(MAX_NESTING - 1)}`;
    expect(() => parseEqlExpression(nested)).not.toThrow();
  });

  it('takes linear time on long inputs', () => {
    const started = Date.now();
    const long = `process where ${Array.from({ length: 20_000 }, (_, i) => `a${i} == "${'x'.repeat(20)}\\n"`).join(' and ')}`;
    parseEql(long);
    for (const text of ['"'.repeat(200_000), '`'.repeat(200_001), '/*'.repeat(100_000), '?"'.repeat(100_000), `"${'\\u{'.repeat(50_000)}`]) {
      syntaxError(() => parseEql(`process where ${text}`));
    }
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses what is not a string with a TypeError', () => {
    expect(() => parseEql(42 as unknown as string)).toThrow(TypeError);
  });
});

describe('EQL printer', () => {
  it('round-trips every construct', () => {
    for (const text of [
      'process where process.name : ("a*", "b") and not (x in~ ("y") or ?`z z` like~ "q")',
      'any where -a * (b + 1) >= 2 % c and d not in (1, 2.5, null, true) and e regex "x.+"',
      '"my cat" where startsWith~(`a``b`.c, "\\u{01}\\t\\"") and 1e300 > 0.5 and 9223372036854775808 == x',
      'sequence by host.id with maxspan=10m ![a where true] by k [b where x == 1] by k with runs=2 [c where true] by k until [d where true] by k | head 5 | tail 1',
      'process where """raw\\x""" == a',
    ]) {
      roundTrips(text);
    }
  });

  it('prints keywords and odd names quoted, categories as strings', () => {
    expect(printEqlExpression(parseEqlExpression('`where`.`1a`.b == 1'))).toBe('`where`.`1a`.b == 1');
    expect(printEql(parseEql('"any" where true'))).toBe('"any" where true');
    expect(printEql(parseEql('any where true'))).toBe('any where true');
  });

  it('adds the parentheses a hand-built tree needs', () => {
    const at = { line: 1, column: 1 };
    const a = { type: 'field', name: 'a', optional: false, at } as const;
    const tree: EqlExpression = { type: 'not', operand: { type: 'and', left: a, right: { type: 'or', left: a, right: a, at }, at }, at };
    expect(printEqlExpression(tree)).toBe('not (a and (a or a))');
    const negate: EqlExpression = { type: 'negate', operand: { type: 'arithmetic', operator: '+', left: a, right: a, at }, at };
    expect(printEqlExpression(negate)).toBe('-(a + a)');
  });
});
