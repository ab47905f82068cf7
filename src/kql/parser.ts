import type { KqlLiteral, KqlNode, KqlRangeOperator, KqlTerm } from './ast.js';

/**
 * A query that is not KQL. `line` and `column` are 1-based and point at the first character the parser could
 * not accept (the furthest it got); `found` is the text there ("end of input" at the end); `expected` lists
 * what would have been accepted there.
 */
export class KqlSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly column: number,
    readonly found: string,
    readonly expected: string[],
  ) {
    super(
      `KQL syntax error at line ${line}, column ${column}: expected ${describeExpected(expected)} but found ${
        found === END_OF_INPUT ? found : JSON.stringify(found)
      }`,
    );
    this.name = 'KqlSyntaxError';
  }
}

const END_OF_INPUT = 'end of input';

function describeExpected(expected: readonly string[]): string {
  if (expected.length === 0) return 'nothing more';
  if (expected.length === 1) return expected[0]!;
  return `${expected.slice(0, -1).join(', ')} or ${expected[expected.length - 1]}`;
}

/** Characters that end an unquoted literal unless escaped with a backslash. */
const SPECIAL = new Set(['\\', '(', ')', ':', '<', '>', '"', '*', '{', '}']);
/** SPECIAL by character code, for the scanning loop. */
const SPECIAL_CODE = new Uint8Array(128);
for (const c of SPECIAL) SPECIAL_CODE[c.charCodeAt(0)] = 1;
const isSpecialCode = (code: number): boolean => code < 128 && SPECIAL_CODE[code] === 1;
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const HEX = /^[0-9a-fA-F]{4}$/;
/**
 * Kibana's test for an unquoted value that becomes a number (so `007` and `1e3` stay strings), written
 * without ambiguous repetitions so that a long run of digits cannot make it backtrack.
 */
const NUMBER_PATTERN = /^-?[1-9]\d*(?:\.\d+)?$|^-?0\.\d*[1-9]$|^0$|^0\.0$|^\.\d+$/;
/** Parentheses, lists and nested queries deeper than this are refused (the parser is recursive). */
export const MAX_NESTING = 256;

const EXPECT = {
  value: 'a value',
  field: 'a field name',
  quote: '"\\""',
  closingQuote: 'closing "\\""',
  open: '"("',
  close: '")"',
  openBrace: '"{"',
  closeBrace: '"}"',
  colon: '":"',
  range: '"<", "<=", ">", ">="',
  and: '"and"',
  or: '"or"',
  not: '"not"',
  end: END_OF_INPUT,
  escape: 'an escape sequence (\\\\ \\( \\) \\: \\< \\> \\" \\* \\{ \\} \\t \\r \\n \\uXXXX \\and \\or \\not)',
} as const;

type Result<T> = { value: T; end: number } | null;
type Applied = (field: KqlTerm) => KqlNode;

/**
 * A recursive-descent parser with the PEG semantics of Kibana's kuery grammar (ordered choice, backtracking):
 *   query      = space* (or space*)?                    — empty: match everything
 *   or         = and (space+ "or" space+ or)?           — keywords in any letter case
 *   and        = not (space+ "and" space+ and)?
 *   not        = "not" space+ sub | sub
 *   sub        = "(" space* or space* ")" | nested
 *   nested     = field space* ":" space* "{" space* or space* "}" | expression
 *   expression = field space* rangeOp space* literal | field space* ":" space* list | value
 *   list       = "(" space* orList space* ")" | value  (orList/andList/notList as above, over values)
 * Errors report the furthest position reached and what was expected there, as peggy does.
 */
class Parser {
  private furthest = 0;
  private depth = 0;
  private expected = new Set<string>();

  constructor(private readonly input: string) {}

  parse(): KqlNode {
    const start = this.skipSpace(0);
    if (start === this.input.length) return { type: 'match_all' };
    const query = this.orQuery(start);
    if (query !== null) {
      const end = this.skipSpace(query.end);
      if (end === this.input.length) return query.value;
      this.fail(end, EXPECT.end);
    }
    throw this.error();
  }

  // ---- boolean structure -------------------------------------------------------------------------------

  private orQuery(pos: number): Result<KqlNode> {
    return this.binary(pos, 'or', (p) => this.andQuery(p));
  }

  private andQuery(pos: number): Result<KqlNode> {
    return this.binary(pos, 'and', (p) => this.notQuery(p));
  }

  /** `operand (keyword operand)*`, flattened into one node (and/or are associative). */
  private binary<T extends KqlNode>(pos: number, keyword: 'and' | 'or', operand: (p: number) => Result<T>): Result<KqlNode> {
    const first = operand(pos);
    if (first === null) return null;
    const children: KqlNode[] = [first.value];
    let end = first.end;
    for (;;) {
      const afterKeyword = this.infixKeyword(end, keyword);
      if (afterKeyword < 0) break;
      const next = operand(afterKeyword);
      if (next === null) break;
      children.push(next.value);
      end = next.end;
    }
    return { value: children.length === 1 ? children[0]! : flatten(keyword, children), end };
  }

  private notQuery(pos: number): Result<KqlNode> {
    const afterNot = this.prefixNot(pos);
    if (afterNot >= 0) {
      const sub = this.subQuery(afterNot);
      if (sub !== null) return { value: { type: 'not', child: sub.value }, end: sub.end };
    }
    return this.subQuery(pos);
  }

  private subQuery(pos: number): Result<KqlNode> {
    if (this.input[pos] === '(') {
      const inner = this.deeper(pos, () => this.orQuery(this.skipSpace(pos + 1)));
      if (inner !== null) {
        const close = this.skipSpace(inner.end);
        if (this.input[close] === ')') return { value: inner.value, end: close + 1 };
        this.fail(close, EXPECT.close);
      }
    } else {
      this.fail(pos, EXPECT.open);
    }
    return this.nestedQuery(pos);
  }

  private nestedQuery(pos: number): Result<KqlNode> {
    const field = this.literal(pos, 'field');
    if (field !== null) {
      const colon = this.skipSpace(field.end);
      if (this.input[colon] === ':') {
        const brace = this.skipSpace(colon + 1);
        if (this.input[brace] === '{') {
          const inner = this.deeper(brace, () => this.orQuery(this.skipSpace(brace + 1)));
          if (inner !== null) {
            const close = this.skipSpace(inner.end);
            if (this.input[close] === '}') return { value: { type: 'nested', path: field.value, query: inner.value }, end: close + 1 };
            this.fail(close, EXPECT.closeBrace);
          }
        } else {
          this.fail(brace, EXPECT.openBrace);
        }
      }
    }
    return this.expression(pos);
  }

  private expression(pos: number): Result<KqlNode> {
    const field = this.literal(pos, 'field');
    if (field !== null) {
      const afterField = this.skipSpace(field.end);
      const operator = this.rangeOperator(afterField);
      if (operator !== null) {
        const value = this.literal(this.skipSpace(operator.end), 'value');
        if (value !== null) {
          const literal: KqlLiteral =
            value.value.kind === 'literal' ? value.value : { kind: 'literal', value: value.value.parts.join('*'), quoted: false, text: value.value.parts.join('*') };
          return { value: { type: 'range', field: field.value, operator: operator.value, value: literal }, end: value.end };
        }
      } else if (this.input[afterField] === ':') {
        const list = this.listOfValues(this.skipSpace(afterField + 1));
        if (list !== null) return { value: list.value(field.value), end: list.end };
      } else {
        this.fail(afterField, EXPECT.colon);
        this.fail(afterField, EXPECT.range);
      }
    }
    const value = this.value(pos);
    if (value === null) return null;
    return { value: value.value(null), end: value.end };
  }

  // ---- value lists ----------------------------------------------------------------------------------------

  private listOfValues(pos: number): Result<Applied> {
    if (this.input[pos] === '(') {
      const inner = this.deeper(pos, () => this.orList(this.skipSpace(pos + 1)));
      if (inner !== null) {
        const close = this.skipSpace(inner.end);
        if (this.input[close] === ')') return { value: inner.value, end: close + 1 };
        this.fail(close, EXPECT.close);
      }
    } else {
      this.fail(pos, EXPECT.open);
    }
    const value = this.value(pos);
    return value === null ? null : { value: (field) => value.value(field), end: value.end };
  }

  private orList(pos: number): Result<Applied> {
    return this.binaryList(pos, 'or', (p) => this.andList(p));
  }

  private andList(pos: number): Result<Applied> {
    return this.binaryList(pos, 'and', (p) => this.notList(p));
  }

  private binaryList(pos: number, keyword: 'and' | 'or', operand: (p: number) => Result<Applied>): Result<Applied> {
    const first = operand(pos);
    if (first === null) return null;
    const parts: Applied[] = [first.value];
    let end = first.end;
    for (;;) {
      const afterKeyword = this.infixKeyword(end, keyword);
      if (afterKeyword < 0) break;
      const next = operand(afterKeyword);
      if (next === null) break;
      parts.push(next.value);
      end = next.end;
    }
    if (parts.length === 1) return first;
    return { value: (field) => flatten(keyword, parts.map((apply) => apply(field))), end };
  }

  private notList(pos: number): Result<Applied> {
    const afterNot = this.prefixNot(pos);
    if (afterNot >= 0) {
      const inner = this.listOfValues(afterNot);
      if (inner !== null) return { value: (field) => ({ type: 'not', child: inner.value(field) }), end: inner.end };
    }
    return this.listOfValues(pos);
  }

  /** One value applied to a field: `*` alone is an existence test (or match-all without a field). */
  private value(pos: number): Result<(field: KqlTerm | null) => KqlNode> {
    const term = this.literal(pos, 'value');
    if (term === null) return null;
    const value = term.value;
    if (value.kind === 'wildcard' && value.parts.every((part) => part === '')) {
      // `*` (or `**`): any value at all
      return {
        value: (field) =>
          field === null || (field.kind === 'wildcard' && field.parts.every((part) => part === ''))
            ? { type: 'match_all' }
            : { type: 'exists', field },
        end: term.end,
      };
    }
    return { value: (field) => ({ type: 'is', field, value }), end: term.end };
  }

  // ---- lexical ----------------------------------------------------------------------------------------------

  /** A quoted string or an unquoted literal (which may hold wildcards). */
  private literal(pos: number, role: 'field' | 'value'): Result<KqlTerm> {
    if (this.input[pos] === '"') return this.quoted(pos);
    this.fail(pos, EXPECT.quote);
    return this.unquoted(pos, role);
  }

  private quoted(pos: number): Result<KqlTerm> {
    const input = this.input;
    // Runs between escapes are copied whole: a character at a time makes a deep rope of a long phrase,
    // and a 4 MB one cost seconds.
    let text = '';
    let runStart = pos + 1;
    let i = pos + 1;
    while (i < input.length) {
      const c = input[i]!;
      if (c === '"') {
        text += input.slice(runStart, i);
        return { value: { kind: 'literal', value: text, quoted: true, text }, end: i + 1 };
      }
      if (c === '\\') {
        const escaped = this.escapeInQuotes(i);
        if (escaped !== null) {
          text += input.slice(runStart, i) + escaped.value;
          i = escaped.end;
          runStart = i;
          continue;
        }
      }
      // an unknown escape inside quotes is a literal backslash, as in Kibana
      i++;
    }
    this.fail(i, EXPECT.closingQuote);
    return null;
  }

  private escapeInQuotes(i: number): Result<string> {
    const next = this.input[i + 1];
    if (next === 't') return { value: '\t', end: i + 2 };
    if (next === 'r') return { value: '\r', end: i + 2 };
    if (next === 'n') return { value: '\n', end: i + 2 };
    if (next === '\\' || next === '"') return { value: next, end: i + 2 };
    return this.unicodeEscape(i);
  }

  private unicodeEscape(i: number): Result<string> {
    if (this.input[i + 1] !== 'u') return null;
    const hex = this.input.slice(i + 2, i + 6);
    if (!HEX.test(hex)) return null;
    return { value: String.fromCharCode(parseInt(hex, 16)), end: i + 6 };
  }

  /** Escapes allowed in unquoted literals (an escaped `*` is a literal star, not a wildcard). */
  private escapeUnquoted(i: number): Result<string> {
    const input = this.input;
    const next = input[i + 1];
    if (next === undefined) return null;
    if (next === 't') return { value: '\t', end: i + 2 };
    if (next === 'r') return { value: '\r', end: i + 2 };
    if (next === 'n') return { value: '\n', end: i + 2 };
    if (SPECIAL.has(next)) return { value: next, end: i + 2 };
    const unicode = this.unicodeEscape(i);
    if (unicode !== null) return unicode;
    for (const keyword of ['and', 'or', 'not']) {
      if (this.wordAt(i + 1, keyword)) return { value: input.slice(i + 1, i + 1 + keyword.length), end: i + 1 + keyword.length };
    }
    return null;
  }

  private unquoted(pos: number, role: 'field' | 'value'): Result<KqlTerm> {
    const input = this.input;
    // parts[k] collects the text after the k-th unescaped star
    const parts: string[] = [''];
    let i = pos;
    while (i < input.length) {
      const c = input[i]!;
      if (c === '\\') {
        const escaped = this.escapeUnquoted(i);
        if (escaped === null) {
          this.fail(i, EXPECT.escape);
          break;
        }
        parts[parts.length - 1] += escaped.value;
        i = escaped.end;
        continue;
      }
      if (c === '*') {
        parts.push('');
        i++;
        continue;
      }
      if (SPECIAL.has(c) || this.keywordAt(i)) break;
      // take the run of ordinary characters up to the next one that needs a look
      let end = i + 1;
      while (end < input.length && !isSpecialCode(input.charCodeAt(end)) && !this.keywordAt(end)) end++;
      parts[parts.length - 1] += input.slice(i, end);
      i = end;
    }
    if (i === pos) {
      this.fail(pos, role === 'field' ? EXPECT.field : EXPECT.value);
      return null;
    }
    // Kibana trims the unescaped sequence as a whole (so even an escaped trailing \t goes)
    parts[0] = parts[0]!.trimStart();
    parts[parts.length - 1] = parts[parts.length - 1]!.trimEnd();
    if (parts.length > 1) return { value: { kind: 'wildcard', parts }, end: i };
    const text = parts[0]!;
    if (text === '') {
      // only whitespace: not a literal (the spaces belong to the surrounding structure)
      this.fail(pos, role === 'field' ? EXPECT.field : EXPECT.value);
      return null;
    }
    let value: string | number | boolean | null = text;
    if (text === 'true') value = true;
    else if (text === 'false') value = false;
    else if (text === 'null') value = null;
    else if (NUMBER_PATTERN.test(text)) value = Number(text);
    return { value: { kind: 'literal', value, quoted: false, text }, end: i };
  }

  /** Whether an unquoted literal must stop here: ` or `, ` and ` (spaces both sides) or `not ` begins. */
  private keywordAt(i: number): boolean {
    const c = this.input.charCodeAt(i);
    // only a space can start ` or `/` and `, only an n can start `not `
    if (c === 0x6e || c === 0x4e) return this.prefixNot(i, false) >= 0;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
    return this.infixKeyword(i, 'or', false) >= 0 || this.infixKeyword(i, 'and', false) >= 0;
  }

  /** Whether `word` (lowercase ASCII) is at `pos`, in any letter case. */
  private wordAt(pos: number, word: string): boolean {
    const input = this.input;
    if (pos + word.length > input.length) return false;
    for (let k = 0; k < word.length; k++) {
      // ASCII letters only: setting bit 0x20 lowercases them
      if ((input.charCodeAt(pos + k) | 0x20) !== word.charCodeAt(k)) return false;
    }
    return true;
  }

  /** `space+ keyword space+` at pos: the position after it, or -1. */
  private infixKeyword(pos: number, keyword: 'and' | 'or', record = true): number {
    const input = this.input;
    let i = pos;
    while (isSpace(input[i])) i++;
    if (i === pos) return -1;
    if (!this.wordAt(i, keyword)) {
      if (record) this.fail(i, keyword === 'and' ? EXPECT.and : EXPECT.or);
      return -1;
    }
    let j = i + keyword.length;
    if (!isSpace(input[j])) return -1;
    while (isSpace(input[j])) j++;
    return j;
  }

  /** `not space+` at pos: the position after it, or -1. */
  private prefixNot(pos: number, record = true): number {
    const input = this.input;
    if (!this.wordAt(pos, 'not')) {
      if (record) this.fail(pos, EXPECT.not);
      return -1;
    }
    let j = pos + 3;
    if (!isSpace(input[j])) return -1;
    while (isSpace(input[j])) j++;
    return j;
  }

  private rangeOperator(pos: number): Result<KqlRangeOperator> {
    const two = this.input.slice(pos, pos + 2);
    if (two === '<=') return { value: 'lte', end: pos + 2 };
    if (two === '>=') return { value: 'gte', end: pos + 2 };
    if (this.input[pos] === '<') return { value: 'lt', end: pos + 1 };
    if (this.input[pos] === '>') return { value: 'gt', end: pos + 1 };
    return null;
  }

  /** Runs a nested parse one level deeper; refuses input nested beyond MAX_NESTING. */
  private deeper<T>(pos: number, parse: () => T): T {
    if (this.depth >= MAX_NESTING) {
      const { line, column } = this.position(pos);
      throw new KqlSyntaxError(line, column, this.input[pos]!, [`at most ${MAX_NESTING} levels of parentheses and braces`]);
    }
    this.depth++;
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private skipSpace(pos: number): number {
    while (isSpace(this.input[pos])) pos++;
    return pos;
  }

  private fail(pos: number, expectation: string): void {
    if (pos < this.furthest) return;
    if (pos > this.furthest) {
      this.furthest = pos;
      this.expected = new Set();
    }
    this.expected.add(expectation);
  }

  private error(): KqlSyntaxError {
    const { line, column } = this.position(this.furthest);
    return new KqlSyntaxError(line, column, foundAt(this.input, this.furthest), [...this.expected].sort());
  }

  /** 1-based line and column of an offset (lines end at \n). */
  private position(offset: number): { line: number; column: number } {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < offset; i++) {
      if (this.input[i] === '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    return { line, column: offset - lineStart + 1 };
  }
}

/** The offending text: the special character there, or the run of ordinary characters (at most 40). */
function foundAt(input: string, pos: number): string {
  if (pos >= input.length) return END_OF_INPUT;
  const c = input[pos]!;
  if (SPECIAL.has(c) || isSpace(c)) return c;
  let end = pos;
  while (end < input.length && end - pos < 40 && !SPECIAL.has(input[end]!) && !isSpace(input[end])) end++;
  return input.slice(pos, end);
}

function flatten(type: 'and' | 'or', children: KqlNode[]): KqlNode {
  const flat: KqlNode[] = [];
  for (const child of children) {
    if (child.type === type) flat.push(...child.children);
    else flat.push(child);
  }
  return { type, children: flat };
}

/** Parses a KQL query into its tree; throws KqlSyntaxError for anything that is not KQL. */
export function parseKql(query: string): KqlNode {
  if (typeof query !== 'string') throw new TypeError('parseKql: the query must be a string');
  return new Parser(query).parse();
}
