import { describe, expect, it } from 'vitest';
import { KqlSyntaxError, parseKql, printKql, type KqlNode } from '../../src/kql/index.js';

const lit = (value: string | number | boolean | null, quoted = false, text = String(value)) => ({ kind: 'literal', value, quoted, text });
const field = (name: string) => lit(name);
const is = (name: string | null, value: unknown): KqlNode => ({ type: 'is', field: name === null ? null : field(name), value }) as KqlNode;

function syntaxError(query: string): KqlSyntaxError {
  try {
    parseKql(query);
  } catch (err) {
    expect(err).toBeInstanceOf(KqlSyntaxError);
    return err as KqlSyntaxError;
  }
  throw new Error(`expected a syntax error for ${JSON.stringify(query)}`);
}

describe('KQL parser: boolean structure', () => {
  it('parses a field:value pair', () => {
    expect(parseKql('process.name:bash')).toEqual(is('process.name', lit('bash')));
  });

  it('accepts and/or/not in any letter case', () => {
    const expected = { type: 'or', children: [is('a', lit(1)), { type: 'and', children: [is('b', lit(2)), { type: 'not', child: is('c', lit(3)) }] }] };
    expect(parseKql('a:1 or b:2 and not c:3')).toEqual(expected);
    expect(parseKql('a:1 OR b:2 AnD NOT c:3')).toEqual(expected);
    expect(parseKql('a:1 oR b:2 aND nOt c:3')).toEqual(expected);
  });

  it('gives not precedence over and, and over or', () => {
    expect(printKql(parseKql('not a:1 and b:2 or c:3'))).toBe('not a:1 and b:2 or c:3');
    expect(parseKql('not a:1 and b:2 or c:3')).toMatchObject({ type: 'or', children: [{ type: 'and', children: [{ type: 'not' }, {}] }, {}] });
  });

  it('groups with parentheses at any depth', () => {
    const node = parseKql('(a:1 or (b:2 and (c:3 or not (d:4))))');
    expect(node).toMatchObject({ type: 'or', children: [{}, { type: 'and', children: [{}, { type: 'or', children: [{}, { type: 'not' }] }] }] });
  });

  it('flattens chains of the same operator', () => {
    expect(parseKql('a:1 and b:2 and c:3')).toMatchObject({ type: 'and', children: [{}, {}, {}] });
  });

  it('accepts any whitespace, newlines included, around every token', () => {
    const node = parseKql('\n\t a : 1\r\n  and\n\n  b\t:\t2 \n');
    expect(node).toEqual({ type: 'and', children: [is('a', lit(1)), is('b', lit(2))] });
  });

  it('treats the empty query as match-all', () => {
    expect(parseKql('')).toEqual({ type: 'match_all' });
    expect(parseKql('  \n ')).toEqual({ type: 'match_all' });
  });
});

describe('KQL parser: values', () => {
  it('keeps a multi-word unquoted value as one value', () => {
    expect(parseKql('process.name:Google Chrome')).toEqual(is('process.name', lit('Google Chrome')));
  });

  it('trims unquoted values', () => {
    expect(parseKql('a:(  spaced value  )')).toEqual(is('a', lit('spaced value')));
  });

  it('reads quoted values with \\" and \\\\ escapes', () => {
    expect(parseKql('a:"say \\"hi\\" \\\\o/"')).toEqual(is('a', lit('say "hi" \\o/', true)));
  });

  it('keeps keywords, specials and whitespace inside quotes', () => {
    expect(parseKql('a:"x and y or not (z): <>{}*"')).toEqual(is('a', lit('x and y or not (z): <>{}*', true)));
  });

  it('reads \\t \\r \\n and \\uXXXX inside quotes, and keeps unknown escapes literally', () => {
    expect(parseKql('a:"1\\t2\\r3\\n4\\u00e9\\q"')).toEqual(is('a', lit('1\t2\r3\n4é\\q', true)));
  });

  it('reads every escape in unquoted values', () => {
    const node = parseKql('a:\\\\\\(\\)\\:\\<\\>\\"\\*\\{\\}x\\ty\\rz\\nw\\u0041');
    expect(node).toEqual(is('a', lit('\\():<>"*{}x\ty\rz\nwA')));
  });

  it('reads escaped keywords as plain words', () => {
    expect(parseKql('a:cats \\and dogs')).toEqual(is('a', lit('cats and dogs')));
    expect(parseKql('a:this \\OR that')).toEqual(is('a', lit('this OR that')));
    expect(parseKql('a:\\NOT here')).toEqual(is('a', lit('NOT here')));
    // as in Kibana's grammar, \n is the newline escape before it can be the escaped keyword \not
    expect(parseKql('a:x \\not here')).toEqual(is('a', lit('x \not here')));
    expect(parseKql('a:\\u006eot here')).toEqual(is('a', lit('not here')));
  });

  it('turns unquoted true, false, null and numbers into those literals; quoted stays text', () => {
    expect(parseKql('a:true')).toEqual(is('a', lit(true)));
    expect(parseKql('a:false')).toEqual(is('a', lit(false)));
    expect(parseKql('a:null')).toEqual(is('a', lit(null)));
    expect(parseKql('a:42')).toEqual(is('a', lit(42)));
    expect(parseKql('a:-1.5')).toEqual(is('a', lit(-1.5)));
    expect(parseKql('a:"true"')).toEqual(is('a', lit('true', true)));
    expect(parseKql('a:"42"')).toEqual(is('a', lit('42', true)));
    // Kibana's number pattern: leading zeros and exponents stay strings
    expect(parseKql('a:007')).toEqual(is('a', lit('007')));
    expect(parseKql('a:1e3')).toEqual(is('a', lit('1e3')));
    expect(parseKql('a:TRUE')).toEqual(is('a', lit('TRUE')));
  });

  it('expands value lists with or, and, not and nested parentheses onto the field', () => {
    expect(parseKql('user.name:(daemon or bin)')).toEqual({ type: 'or', children: [is('user.name', lit('daemon')), is('user.name', lit('bin'))] });
    expect(parseKql('a:(x and not y)')).toEqual({ type: 'and', children: [is('a', lit('x')), { type: 'not', child: is('a', lit('y')) }] });
    expect(parseKql('a:(x or (y and (z or not w)))')).toEqual({
      type: 'or',
      children: [
        is('a', lit('x')),
        { type: 'and', children: [is('a', lit('y')), { type: 'or', children: [is('a', lit('z')), { type: 'not', child: is('a', lit('w')) }] }] },
      ],
    });
  });
});

describe('KQL parser: wildcards, existence, ranges, field names, nested', () => {
  it('turns unescaped * into a wildcard value, leading ones included', () => {
    expect(parseKql('a:/tmp/*')).toEqual(is('a', { kind: 'wildcard', parts: ['/tmp/', ''] }));
    expect(parseKql('a:*bash')).toEqual(is('a', { kind: 'wildcard', parts: ['', 'bash'] }));
    expect(parseKql('a:x*y*z')).toEqual(is('a', { kind: 'wildcard', parts: ['x', 'y', 'z'] }));
  });

  it('keeps a quoted or escaped * literal', () => {
    expect(parseKql('a:"/tmp/*"')).toEqual(is('a', lit('/tmp/*', true)));
    expect(parseKql('a:x\\*y*')).toEqual(is('a', { kind: 'wildcard', parts: ['x*y', ''] }));
  });

  it('makes field:* an existence test and a lone * match-all', () => {
    expect(parseKql('process.parent.executable:*')).toEqual({ type: 'exists', field: field('process.parent.executable') });
    expect(parseKql('*')).toEqual({ type: 'match_all' });
    expect(parseKql('*:*')).toEqual({ type: 'match_all' });
    expect(parseKql('a:"*"')).toEqual(is('a', lit('*', true)));
  });

  it('parses the four range operators with numbers, dates and strings', () => {
    expect(parseKql('a < 5')).toEqual({ type: 'range', field: field('a'), operator: 'lt', value: lit(5) });
    expect(parseKql('a<=5')).toMatchObject({ operator: 'lte' });
    expect(parseKql('a >5')).toMatchObject({ operator: 'gt' });
    expect(parseKql('a>= 5')).toMatchObject({ operator: 'gte' });
    expect(parseKql('@timestamp >= "2024-01-01T00:00:00Z"')).toMatchObject({ value: lit('2024-01-01T00:00:00Z', true) });
    expect(parseKql('@timestamp > now-1d/d')).toMatchObject({ value: lit('now-1d/d') });
    expect(parseKql('name >= m')).toMatchObject({ value: lit('m') });
  });

  it('reads wildcard and quoted field names', () => {
    expect(parseKql('process.*:bash')).toEqual({ type: 'is', field: { kind: 'wildcard', parts: ['process.', ''] }, value: lit('bash') });
    expect(parseKql('"odd field":x')).toEqual({ type: 'is', field: lit('odd field', true), value: lit('x') });
  });

  it('reads a value with no field', () => {
    expect(parseKql('bash')).toEqual(is(null, lit('bash')));
    expect(parseKql('"two words"')).toEqual(is(null, lit('two words', true)));
    expect(parseKql('*sh')).toEqual(is(null, { kind: 'wildcard', parts: ['', 'sh'] }));
  });

  it('parses nested queries, nested inside nested', () => {
    expect(parseKql('threat.enrichments:{ indicator.ip:1.2.3.4 and matched.field:host.ip }')).toEqual({
      type: 'nested',
      path: field('threat.enrichments'),
      query: { type: 'and', children: [is('indicator.ip', lit('1.2.3.4')), is('matched.field', lit('host.ip'))] },
    });
    expect(parseKql('a:{ b:{ c:1 } }')).toEqual({ type: 'nested', path: field('a'), query: { type: 'nested', path: field('b'), query: is('c', lit(1)) } });
  });

  it('parses the built-in rule and prints it back to the same tree', async () => {
    const { DEFAULT_RULE_QUERY, FORTY_LINE_QUERY } = await import('../../bench/kql-fixtures.js');
    for (const query of [DEFAULT_RULE_QUERY, FORTY_LINE_QUERY]) {
      const tree = parseKql(query);
      expect(parseKql(printKql(tree))).toEqual(tree);
    }
  });
});

describe('KQL printer', () => {
  it.each([
    ['a:1 and (b:2 or c:3)', 'a:1 and (b:2 or c:3)'],
    ['not (a:1 and b:2)', 'not (a:1 and b:2)'],
    ['a:(x or y or z)', 'a:(x or y or z)'],
    ['a:"q \\" \\\\ *"', 'a:"q \\" \\\\ *"'],
    ['a:x\\*y*', 'a:x\\*y*'],
    ['a:cats \\and dogs', 'a:cats \\and dogs'],
    ['a:\\NOT here', 'a:\\NOT here'],
    ['a:"not x"', 'a:"not x"'],
    ['a:\\u006eot here', 'a:\\u006eot here'],
    ['not (not a:1)', 'not (not a:1)'],
    ['a:{ b:1 or c:2 }', 'a:{ b:1 or c:2 }'],
    ['a >= 5', 'a >= 5'],
    ['process.*:*', 'process.*:*'],
    ['', '*'],
  ])('prints %j as %j', (query, printed) => {
    expect(printKql(parseKql(query))).toBe(printed);
  });

  it('prints an `or` nested in an `or` as the flat list it parses back to (found by the round-trip property)', () => {
    const value = (text: string): KqlNode => ({ type: 'is', field: { kind: 'literal', value: 'f', quoted: false, text: 'f' }, value: { kind: 'literal', value: text, quoted: false, text } });
    const tree: KqlNode = { type: 'not', child: { type: 'or', children: [{ type: 'or', children: [value('a'), value('b')] }, value('c')] } };
    expect(printKql(tree)).toBe('not f:(a or b or c)');
    expect(printKql(parseKql(printKql(tree)))).toBe(printKql(tree));
    const mixed: KqlNode = { type: 'and', children: [{ type: 'or', children: [{ type: 'or', children: [value('a')] }, value('b')] }, value('c')] };
    expect(printKql(mixed)).toBe('f:(a or b) and f:c');
  });
});

describe('KQL parser errors', () => {
  it.each([
    ['a:', 1, 3, 'end of input', ['"("', '"\\""', 'a value']],
    ['a:1 and ', 1, 9, 'end of input', ['"("', '"not"', 'a value']],
    ['(a:1', 1, 5, 'end of input', ['")"']],
    ['a:1)', 1, 4, ')', ['end of input']],
    ['a:"open', 1, 8, 'end of input', ['closing "\\""']],
    ['a:x\\q', 1, 4, '\\', ['an escape sequence']],
    ['a:{ b:1', 1, 8, 'end of input', ['"}"']],
    ['a:(x or\n  y', 2, 4, 'end of input', ['")"']],
    ['a:1 and\n\n  b:)', 3, 5, ')', ['"("', 'a value']],
    ['a < ', 1, 5, 'end of input', ['a value']],
    ['not not a:1', 1, 5, 'not', ['a value']],
    ['a:1 b:2', 1, 6, ':', []],
    ['a:<5', 1, 3, '<', ['a value']],
  ])('%j fails at line %i, column %i', (query, line, column, found, expected) => {
    const err = syntaxError(query);
    expect({ line: err.line, column: err.column, found: err.found }).toEqual({ line, column, found });
    for (const item of expected) expect(err.expected.some((e) => e.startsWith(item))).toBe(true);
    expect(err.message).toContain(`line ${line}, column ${column}`);
    expect(err.message).not.toContain('\n');
  });

  it('names what was expected in the message', () => {
    expect(syntaxError('(a:1').message).toBe('KQL syntax error at line 1, column 5: expected ")" but found end of input');
  });

  it('treats a trailing keyword without a following space as part of the value, as Kibana does', () => {
    // the grammar only knows `and` as a keyword between spaces: `a:1 and` is the value "1 and"
    expect(parseKql('a:x and')).toEqual(is('a', lit('x and')));
  });

  it('rejects a non-string query with a TypeError, not a crash', () => {
    expect(() => parseKql(undefined as unknown as string)).toThrow(TypeError);
  });
});
