import {
  EQL_FUNCTION_NAMES,
  type EqlArithmeticOperator,
  type EqlComparisonOperator,
  type EqlEventFilter,
  type EqlExpression,
  type EqlFunctionName,
  type EqlLiteral,
  type EqlPipe,
  type EqlPosition,
  type EqlQuery,
  type EqlSequenceQuery,
  type EqlSequenceStage,
  type EqlTimespan,
} from './ast.js';

/**
 * Text that is not EQL as Elasticsearch accepts it. `line` and `column` are 1-based (column in UTF-16 code
 * units) and point at the offending token; `found` is its text ("end of input" at the end); `expected` lists
 * what would have been accepted there. `reason`, when set, is the rule that was broken (a construct
 * Elasticsearch's builders refuse, or one execsentry does not support) and replaces the expected/found wording.
 */
export class EqlSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly column: number,
    readonly found: string,
    readonly expected: string[],
    readonly reason: string | null = null,
  ) {
    super(
      `EQL syntax error at line ${line}, column ${column}: ${
        reason ?? `expected ${describeExpected(expected)} but found ${found === END_OF_INPUT ? found : JSON.stringify(found)}`
      }`,
    );
    this.name = 'EqlSyntaxError';
  }
}

/**
 * A query Elasticsearch accepts that execsentry does not run (`sample`): rule loading counts it as an
 * unsupported rule (skippable with --skip-unsupported) rather than a broken one.
 */
export class EqlUnsupportedError extends EqlSyntaxError {
  constructor(line: number, column: number, found: string, reason: string) {
    super(line, column, found, ['a query execsentry runs'], reason);
    this.name = 'EqlUnsupportedError';
  }
}

const END_OF_INPUT = 'end of input';

function describeExpected(expected: readonly string[]): string {
  if (expected.length === 1) return expected[0]!;
  return `${expected.slice(0, -1).join(', ')} or ${expected[expected.length - 1]}`;
}

/** Parentheses, function calls, lists and prefix operators nested deeper than this are refused (the parser recurses). */
export const MAX_NESTING = 256;

/**
 * The words EqlBase.g4's lexer turns into keyword tokens. Its rules are case-sensitive literals (no
 * case-insensitive stream), so `AND` or `Where` are plain identifiers, and a keyword is never a field name
 * unless backtick-quoted.
 */
export const EQL_KEYWORDS: ReadonlySet<string> = new Set([
  'and', 'any', 'by', 'false', 'in', 'join', 'like', 'maxspan', 'not', 'null', 'of', 'or', 'regex', 'sample',
  'sequence', 'true', 'until', 'where', 'with',
]);

const FUNCTIONS = new Map<string, EqlFunctionName>(EQL_FUNCTION_NAMES.map((name) => [name.toLowerCase(), name]));

/** As LogicalPlanBuilder's maxspan units: case-sensitive, exactly these. */
const TIME_UNITS = new Map<string, number>([
  ['ms', 1],
  ['s', 1000],
  ['m', 60_000],
  ['h', 3_600_000],
  ['d', 86_400_000],
]);

const MAX_RUNS = 100;
const MAX_PIPE_COUNT = 2 ** 31 - 1;
const LONG_MAX = 9223372036854775807n;

const EXPECT = {
  expression: 'an expression',
  constant: 'a constant (string, number, true, false or null)',
  field: 'a field name',
  category: 'an event category (a name or a string)',
  comparison: 'a comparison (==, !=, <, <=, >, >=)',
  arithmetic: 'an arithmetic operator (+, -, *, /, %)',
  predicate: 'a predicate (in, in~, not in, not in~, :, like, like~, regex, regex~)',
  stage: '"[" or "!["',
  pipeName: 'a pipe name (head, tail)',
  integer: 'an integer',
  escape: 'an escape sequence (\\t \\b \\f \\n \\r \\" \\\' \\\\ \\u{hex})',
  token: 'a name, number, string, operator or bracket',
  end: END_OF_INPUT,
} as const;

type TokenKind = 'ident' | 'quoted' | 'tilde' | 'keyword' | 'string' | 'int' | 'decimal' | 'punct' | 'eof';

/**
 * `value`: identifiers and keywords their word (a `~` function name without the `~`), quoted identifiers and
 * strings their unescaped text, punctuation its symbol. Numbers carry `number` and, for integers, `long`
 * (whether Elasticsearch would type it integer/long rather than double).
 */
interface Token {
  readonly kind: TokenKind;
  readonly value: string;
  readonly start: number;
  readonly end: number;
  readonly number?: number;
  readonly long?: boolean;
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isLetter = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isIdentifierPart = (c: number): boolean => isLetter(c) || isDigit(c) || c === 0x5f;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

const SINGLE_PUNCT = new Set([':', '+', '-', '*', '/', '%', '.', ',', '[', ']', '(', ')', '|', '?']);
const STRING_ESCAPES: Record<string, string> = { t: '\t', b: '\b', f: '\f', n: '\n', r: '\r', '"': '"', "'": "'", '\\': '\\' };

/** Offsets to 1-based line and column (lines end at \n, as ANTLR counts them). */
class Positions {
  private readonly lineStarts: number[] = [0];

  constructor(input: string) {
    for (let i = input.indexOf('\n'); i >= 0; i = input.indexOf('\n', i + 1)) this.lineStarts.push(i + 1);
  }

  at(offset: number): EqlPosition {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - this.lineStarts[low]! + 1 };
  }
}

/** EqlBase.g4's lexer, one token at a time, so that a lexical error is reported in text order among syntax errors. */
class Lexer {
  private pos = 0;

  constructor(
    private readonly input: string,
    private readonly positions: Positions,
  ) {}

  next(): Token {
    this.skipHidden();
    const input = this.input;
    const start = this.pos;
    if (start >= input.length) return { kind: 'eof', value: '', start, end: start };
    const c = input.charCodeAt(start);
    if (isLetter(c) || c === 0x5f || c === 0x40) return this.word(start);
    if (isDigit(c) || (c === 0x2e && isDigit(input.charCodeAt(start + 1)))) return this.number(start);
    const ch = input[start]!;
    const next = input[start + 1];
    switch (ch) {
      case '"':
        return this.doubleQuoted(start);
      case "'":
        // As AbstractBuilder.checkForSingleQuotedString: the lexer takes '…' but the builder refuses it.
        throw this.error(start, "'", ['"\\""'], "strings are written in double quotes (\"…\"), not single quotes ('…')");
      case '`':
        return this.backquoted(start);
      case '?':
        if ((next === '"' || next === "'") && this.oldStyleString(start + 1)) {
          // As AbstractBuilder.unquoteString: the old ?"…" raw strings are lexed, then refused.
          throw this.error(start, `?${next}`, ['"\\"\\"\\""'], `raw strings are written in triple double quotes ("""…"""), not ?${next}…${next}`);
        }
        return this.punct('?', start, 1);
      case '=':
        return next === '=' ? this.punct('==', start, 2) : this.punct('=', start, 1);
      case '!':
        if (next === '=') return this.punct('!=', start, 2);
        if (next === '[') return this.punct('![', start, 2);
        throw this.error(start, '!', ['"!="', '"!["']);
      case '<':
      case '>':
        return next === '=' ? this.punct(`${ch}=`, start, 2) : this.punct(ch, start, 1);
      default:
        if (SINGLE_PUNCT.has(ch)) return this.punct(ch, start, 1);
        throw this.error(start, String.fromCodePoint(input.codePointAt(start)!), [EXPECT.token]);
    }
  }

  /** Whitespace, `// …` to the end of the line and `/* … *\/` (which nest, as BRACKETED_COMMENT does). */
  private skipHidden(): void {
    const input = this.input;
    for (;;) {
      const c = input.charCodeAt(this.pos);
      if (isSpace(c)) {
        this.pos++;
      } else if (c === 0x2f && input[this.pos + 1] === '/') {
        while (this.pos < input.length && input[this.pos] !== '\n' && input[this.pos] !== '\r') this.pos++;
      } else if (c === 0x2f && input[this.pos + 1] === '*') {
        const open = this.pos;
        let depth = 0;
        let i = this.pos;
        while (i < input.length) {
          if (input[i] === '/' && input[i + 1] === '*') {
            depth++;
            i += 2;
          } else if (input[i] === '*' && input[i + 1] === '/') {
            depth--;
            i += 2;
            if (depth === 0) break;
          } else {
            i++;
          }
        }
        if (depth > 0) throw this.error(open, '/*', ['"*/" closing the comment']);
        this.pos = i;
      } else {
        return;
      }
    }
  }

  private punct(symbol: string, start: number, length: number): Token {
    this.pos = start + length;
    return { kind: 'punct', value: symbol, start, end: this.pos };
  }

  /** IDENTIFIER, a keyword, or TILDE_IDENTIFIER (`name~`, a letter first) unless it is in~, like~ or regex~. */
  private word(start: number): Token {
    const input = this.input;
    let end = start + 1;
    while (isIdentifierPart(input.charCodeAt(end))) end++;
    const word = input.slice(start, end);
    if (input[end] === '~' && isLetter(input.charCodeAt(start))) {
      this.pos = end + 1;
      if (word === 'in' || word === 'like' || word === 'regex') return { kind: 'keyword', value: `${word}~`, start, end: this.pos };
      return { kind: 'tilde', value: word, start, end: this.pos };
    }
    this.pos = end;
    return { kind: EQL_KEYWORDS.has(word) ? 'keyword' : 'ident', value: word, start, end };
  }

  /**
   * INTEGER_VALUE and DECIMAL_VALUE (`1.`, `.5`, `1e3`, `1.5E-2`). As ExpressionBuilder.visitIntegerLiteral,
   * an integer beyond a long is read as a double instead, and a number beyond a double is an error.
   */
  private number(start: number): Token {
    const input = this.input;
    let i = start;
    while (isDigit(input.charCodeAt(i))) i++;
    let decimal = false;
    if (input[i] === '.') {
      decimal = true;
      i++;
      while (isDigit(input.charCodeAt(i))) i++;
    }
    if (input[i] === 'e' || input[i] === 'E') {
      let j = i + 1;
      if (input[j] === '+' || input[j] === '-') j++;
      if (isDigit(input.charCodeAt(j))) {
        while (isDigit(input.charCodeAt(j))) j++;
        i = j;
        decimal = true;
      }
    }
    this.pos = i;
    const text = input.slice(start, i);
    const number = Number(text);
    if (!Number.isFinite(number)) throw this.error(start, text, ['a smaller number'], `the number ${text} is too large`);
    const long = !decimal && BigInt(text) <= LONG_MAX;
    return { kind: decimal ? 'decimal' : 'int', value: text, start, end: i, number, long };
  }

  /**
   * `"…"` with the escapes STRING allows (\t \b \f \n \r \" \' \\ and \u{hex}; no raw line breaks), or a raw
   * `"""…"""` on one line (after the closing `"""` up to two more quotes still belong to the string, as in the
   * grammar). Escapes decode as AbstractBuilder.unquoteString does.
   */
  private doubleQuoted(start: number): Token {
    const input = this.input;
    if (input.startsWith('"""', start)) {
      let i = start + 3;
      while (i < input.length && input[i] !== '\n' && input[i] !== '\r' && !input.startsWith('"""', i)) i++;
      if (input.startsWith('"""', i)) {
        let end = i + 3;
        if (input[end] === '"') end++;
        if (input[end] === '"') end++;
        this.pos = end;
        return { kind: 'string', value: input.slice(start + 3, end - 3), start, end };
      }
      // no closing """ on the line: the grammar's other alternative reads `""`, an empty string
    }
    let text = '';
    let run = start + 1;
    let i = start + 1;
    for (;;) {
      if (i >= input.length) throw this.error(i, END_OF_INPUT, ['closing "\\""']);
      const ch = input[i]!;
      if (ch === '"') {
        this.pos = i + 1;
        return { kind: 'string', value: text + input.slice(run, i), start, end: i + 1 };
      }
      if (ch === '\n' || ch === '\r') {
        throw this.error(i, ch, ['closing "\\""'], 'a string cannot span lines (write \\n or \\r inside it)');
      }
      if (ch !== '\\') {
        i++;
        continue;
      }
      text += input.slice(run, i);
      const escaped = input[i + 1];
      if (escaped !== undefined && escaped in STRING_ESCAPES) {
        text += STRING_ESCAPES[escaped];
        i += 2;
      } else if (escaped === 'u' && input[i + 2] === '{') {
        const decoded = this.unicodeEscape(i);
        text += decoded.text;
        i = decoded.end;
      } else {
        throw this.error(i, escaped === undefined ? '\\' : `\\${escaped}`, [EXPECT.escape]);
      }
      run = i;
    }
  }

  /** `\u{hex}` at `i`: as AbstractBuilder.handleUnicodePoints, 2 to 8 hex digits naming a code point that is not a surrogate. */
  private unicodeEscape(i: number): { text: string; end: number } {
    const input = this.input;
    let j = i + 3;
    while (isHex(input.charCodeAt(j))) j++;
    const hex = input.slice(i + 3, j);
    if (hex === '' || input[j] !== '}') throw this.error(j, input[j] ?? END_OF_INPUT, [hex === '' ? 'a hex digit' : '"}"']);
    const escape = input.slice(i, j + 1);
    if (hex.length < 2 || hex.length > 8) {
      throw this.error(i, escape, ['2 to 8 hex digits'], `a unicode escape takes 2 to 8 hex digits; ${escape} has ${hex.length}`);
    }
    const code = parseInt(hex, 16);
    if (code >= 0xd800 && code <= 0xdfff) {
      throw this.error(i, escape, ['a code point that is not a surrogate'], `${escape} is a surrogate, not a character`);
    }
    if (code > 0x10ffff) throw this.error(i, escape, ['a code point up to 10FFFF'], `${escape} is not a unicode code point`);
    return { text: String.fromCodePoint(code), end: j + 1 };
  }

  /** Whether `?` is followed (at `quote`) by a complete old-style ?"…" or ?'…' string on the same line. */
  private oldStyleString(quote: number): boolean {
    const input = this.input;
    const q = input[quote]!;
    for (let i = quote + 1; i < input.length; i++) {
      const ch = input[i]!;
      if (ch === '\n' || ch === '\r') return false;
      if (ch === '\\' && input[i + 1] === q) i++;
      else if (ch === q) return true;
    }
    return false;
  }

  /** QUOTED_IDENTIFIER: backticks, a doubled backtick standing for one; may be empty and may span lines. */
  private backquoted(start: number): Token {
    const input = this.input;
    let text = '';
    let run = start + 1;
    let i = start + 1;
    for (;;) {
      const close = input.indexOf('`', i);
      if (close < 0) throw this.error(input.length, END_OF_INPUT, ['closing "`"']);
      if (input[close + 1] === '`') {
        text += input.slice(run, close + 1);
        i = close + 2;
        run = i;
        continue;
      }
      this.pos = close + 1;
      return { kind: 'quoted', value: text + input.slice(run, close), start, end: close + 1 };
    }
  }

  error(offset: number, found: string, expected: string[], reason: string | null = null): EqlSyntaxError {
    const { line, column } = this.positions.at(offset);
    return new EqlSyntaxError(line, column, found, expected, reason);
  }
}

interface Term {
  readonly stage: EqlSequenceStage;
  /** Where the stage's own `by` is (the stage itself when it has none), for the key-count error. */
  readonly keysAt: Token;
}

/**
 * A recursive-descent parser for EqlBase.g4's singleStatement and singleExpression, applying the checks that
 * Elasticsearch's EqlParser post-processor and its Logical/ExpressionBuilder make while building the plan.
 * Precedence, loosest first, as the grammar's left-recursive alternatives order it:
 *   or < and < not < comparison (one, not chained) < + - < * / % < unary - + < predicate (in, :, like, regex) < primary
 */
class Parser {
  private readonly positions: Positions;
  private readonly lexer: Lexer;
  private readonly tokens: Token[] = [];
  private index = 0;
  private depth = 0;
  private expectedAt = -1;
  private expected = new Set<string>();

  constructor(private readonly input: string) {
    this.positions = new Positions(input);
    this.lexer = new Lexer(input, this.positions);
  }

  // ---- statements -------------------------------------------------------------------------------------------

  statement(): EqlQuery {
    const first = this.peek();
    let query: EqlQuery;
    if (this.isKeyword('sequence')) {
      query = this.sequence();
    } else if (first.kind === 'keyword' && first.value === 'join') {
      // LogicalPlanBuilder has no plan for join: Elasticsearch refuses it.
      throw this.refuse(first, 'join queries are not supported by Elasticsearch EQL');
    } else if (first.kind === 'keyword' && first.value === 'sample') {
      const { line, column } = this.positions.at(first.start);
      throw new EqlUnsupportedError(line, column, this.text(first), 'sample queries are not supported by execsentry');
    } else {
      const filter = this.eventFilter();
      query = { type: 'event', filter, pipes: [] };
    }
    const pipes: EqlPipe[] = [];
    while (this.isPunct('|')) pipes.push(this.pipe());
    this.expectEnd();
    return { ...query, pipes };
  }

  singleExpression(): EqlExpression {
    const expression = this.expression();
    this.expectEnd();
    return expression;
  }

  private expectEnd(): void {
    if (this.peek().kind === 'eof') return;
    this.note(EXPECT.end);
    this.fail();
  }

  private eventFilter(): EqlEventFilter {
    const token = this.peek();
    let category: string | null;
    // eventValue is STRING or IDENTIFIER: a backtick-quoted category is not accepted.
    if (token.kind === 'keyword' && token.value === 'any') category = null;
    else if (token.kind === 'ident' || token.kind === 'string') category = token.value;
    else {
      this.note('"any"');
      this.note(EXPECT.category);
      this.fail();
    }
    this.advance();
    this.expectKeyword('where');
    return { category, condition: this.expression(), at: this.at(token) };
  }

  /**
   * `sequence [by keys] [with maxspan=N unit] stage+ [until stage]`, with LogicalPlanBuilder.visitSequence's
   * rules: `by` before `with`, the same number of keys in every stage and the until, at least two queries once
   * `runs` are counted.
   */
  private sequence(): EqlSequenceQuery {
    const keyword = this.advance();
    let by: EqlExpression[] = [];
    let maxspan: EqlTimespan | null = null;
    if (this.isKeyword('by')) {
      this.advance();
      by = this.joinKeys();
      if (this.isKeyword('with')) maxspan = this.maxspan();
    } else if (this.isKeyword('with')) {
      maxspan = this.maxspan();
      const late = this.peek();
      if (late.kind === 'keyword' && late.value === 'by') throw this.refuse(late, 'write "sequence by …" before "with maxspan", not after');
    }
    const terms: Term[] = [this.sequenceTerm()];
    while (this.startsStage()) terms.push(this.sequenceTerm());
    let until: Term | null = null;
    let untilKeyword: Token | null = null;
    if (this.isKeyword('until')) {
      untilKeyword = this.advance();
      until = this.sequenceTerm();
      if (until.stage.missing) throw this.refuse(untilKeyword, 'the until of a sequence cannot be a missing event');
      if (until.stage.runsWritten) throw this.refuse(untilKeyword, 'the until of a sequence cannot have runs');
    }

    const keyCount = terms[0]!.stage.by.length;
    for (const term of until === null ? terms : [...terms, until]) {
      if (term.stage.by.length !== keyCount) {
        throw this.refuse(term.keysAt, `every stage needs the same number of join keys: expected ${keyCount} but found ${term.stage.by.length}`);
      }
    }
    const stages = terms.map((term) => term.stage);
    const queries = stages.reduce((sum, stage) => sum + stage.runs, 0);
    if (queries < 2) throw this.refuse(keyword, `a sequence needs at least 2 queries (runs included); found ${queries}`);
    const missing = stages.find((stage) => stage.missing);
    if (missing !== undefined) {
      if (maxspan === null) throw this.refuseAt(missing.at, '![', 'a sequence with missing events needs "with maxspan"');
      if (stages.every((stage) => stage.missing)) throw this.refuseAt(missing.at, '![', 'a sequence needs at least one event that is not missing');
    }
    return {
      type: 'sequence',
      by,
      maxspan,
      stages,
      until: until === null ? null : { filter: until.stage.filter, by: until.stage.by, at: this.at(untilKeyword!) },
      pipes: [],
    };
  }

  private startsStage(): boolean {
    const token = this.peek();
    if (token.kind === 'punct' && (token.value === '[' || token.value === '![')) return true;
    this.note(EXPECT.stage);
    return false;
  }

  /** `[filter]` or `![filter]` (a missing event), then `by keys`, then `with runs=N`. */
  private sequenceTerm(): Term {
    const open = this.peek();
    if (!this.startsStage()) this.fail();
    this.advance();
    const filter = this.eventFilter();
    this.expectPunct(']');
    let keysAt = open;
    let by: EqlExpression[] = [];
    if (this.isKeyword('by')) {
      keysAt = this.advance();
      by = this.joinKeys();
    }
    let runs = 1;
    let runsWritten = false;
    if (this.isKeyword('with')) {
      this.advance();
      const key = this.peek();
      if (key.kind !== 'ident') {
        this.note('"runs"');
        this.fail();
      }
      this.advance();
      if (key.value !== 'runs') throw this.refuse(key, `unknown stage option [${key.value}]; the only one is [runs]`);
      this.expectPunct('=');
      const count = this.numberToken();
      if (count.kind !== 'int' || count.number! < 1 || count.number! > MAX_RUNS) {
        throw this.refuse(count, `runs must be an integer from 1 to ${MAX_RUNS}; found ${count.value}`);
      }
      runs = count.number!;
      runsWritten = true;
    }
    return { stage: { filter, by, runs, runsWritten, missing: open.value === '![', at: this.at(open) }, keysAt };
  }

  /** `with maxspan=N unit`, read as LogicalPlanBuilder.visitSequenceParams does (a positive integer and a known unit). */
  private maxspan(): EqlTimespan {
    this.advance();
    this.expectKeyword('maxspan');
    this.expectPunct('=');
    const number = this.numberToken();
    if (number.kind === 'decimal') throw this.refuse(number, `maxspan must be a positive integer, not the decimal ${number.value}`);
    if (number.number! <= 0) throw this.refuse(number, `maxspan must be positive; found ${number.value}`);
    const unitToken = this.peek();
    if (unitToken.kind !== 'ident') {
      throw this.refuse(unitToken, `maxspan needs a time unit (ms, s, m, h or d), as in ${number.value}s`, ['a time unit (ms, s, m, h, d)']);
    }
    this.advance();
    const factor = TIME_UNITS.get(unitToken.value);
    if (factor === undefined) {
      throw this.refuse(unitToken, `unknown time unit [${unitToken.value}] in maxspan; use ms, s, m, h or d`, ['a time unit (ms, s, m, h, d)']);
    }
    const milliseconds = number.number! * factor;
    if (!Number.isSafeInteger(milliseconds)) throw this.refuse(number, `maxspan ${number.value}${unitToken.value} is too long`);
    return { value: number.number!, unit: unitToken.value, milliseconds, at: this.at(number) };
  }

  private numberToken(): Token {
    const token = this.peek();
    if (token.kind !== 'int' && token.kind !== 'decimal') {
      this.note(EXPECT.integer);
      this.fail();
    }
    return this.advance();
  }

  /** `by e1, e2…`: as ExpressionBuilder.visitJoinKeys, each key must be a field (parentheses around it are kept). */
  private joinKeys(): EqlExpression[] {
    const keys: EqlExpression[] = [];
    do {
      if (keys.length > 0) this.advance();
      const start = this.peek();
      const key = this.expression();
      let inner = key;
      while (inner.type === 'paren') inner = inner.expression;
      if (inner.type !== 'field') throw this.refuse(start, 'a join key must be a field', [EXPECT.field]);
      keys.push(key);
    } while (this.isPunct(','));
    return keys;
  }

  /**
   * `| name args`. As LogicalPlanBuilder.pipe: head and tail take exactly one argument, a constant integer that
   * is not negative; count, filter, sort, unique and unique_count are known but refused; anything else is unknown.
   */
  private pipe(): EqlPipe {
    const bar = this.advance();
    const name = this.peek();
    if (name.kind !== 'ident') {
      this.note(EXPECT.pipeName);
      this.fail();
    }
    this.advance();
    const args: EqlExpression[] = [];
    const next = this.peek();
    if (!(next.kind === 'eof' || (next.kind === 'punct' && next.value === '|'))) {
      this.note('"|"');
      this.note(EXPECT.end);
      args.push(this.expression());
      while (this.isPunct(',')) {
        this.advance();
        args.push(this.expression());
      }
    }
    if (name.value === 'head' || name.value === 'tail') {
      if (args.length !== 1) throw this.refuse(name, `the ${name.value} pipe takes exactly one argument; found ${args.length}`, [EXPECT.integer]);
      const count = foldInteger(args[0]!);
      if (count === null || count < 0 || count > MAX_PIPE_COUNT) {
        throw this.refuseAt(args[0]!.at, 'argument', `the ${name.value} pipe needs an integer that is not negative`, [EXPECT.integer]);
      }
      return { type: name.value as EqlPipe['type'], count, at: this.at(bar) };
    }
    if (['count', 'filter', 'sort', 'unique', 'unique_count'].includes(name.value)) {
      throw this.refuse(name, `the ${name.value} pipe is not supported by Elasticsearch EQL`, [EXPECT.pipeName]);
    }
    throw this.refuse(name, `unknown pipe [${name.value}]`, [EXPECT.pipeName]);
  }

  // ---- expressions ------------------------------------------------------------------------------------------

  private expression(): EqlExpression {
    return this.deeper(() => this.or());
  }

  private or(): EqlExpression {
    let left = this.and();
    while (this.isKeyword('or')) {
      this.advance();
      left = { type: 'or', left, right: this.and(), at: left.at };
    }
    return left;
  }

  private and(): EqlExpression {
    let left = this.not();
    while (this.isKeyword('and')) {
      this.advance();
      left = { type: 'and', left, right: this.not(), at: left.at };
    }
    return left;
  }

  private not(): EqlExpression {
    const token = this.peek();
    if (token.kind === 'keyword' && token.value === 'not') {
      this.advance();
      return { type: 'not', operand: this.deeper(() => this.not()), at: this.at(token) };
    }
    const following = this.peek(1);
    if (token.kind === 'ident' && following.kind === 'keyword' && following.value === 'of') {
      // As EqlParser's post-processor: `descendant of [...]` and friends parse, then are refused.
      throw this.refuse(token, `process relationships (${token.value} of [...]) are not supported`);
    }
    return this.comparison();
  }

  /** One comparison at most: the grammar's comparison operands are arithmetic, so `a == b == c` is not EQL. */
  private comparison(): EqlExpression {
    const left = this.additive();
    const token = this.peek();
    if (token.kind === 'punct' && token.value === '=') {
      throw this.refuse(token, 'use "==" to compare; a single "=" is not an operator', ['"=="']);
    }
    if (token.kind === 'punct' && ['==', '!=', '<', '<=', '>', '>='].includes(token.value)) {
      this.advance();
      return { type: 'compare', operator: token.value as EqlComparisonOperator, left, right: this.additive(), at: left.at };
    }
    this.note(EXPECT.comparison);
    return left;
  }

  private additive(): EqlExpression {
    let left = this.multiplicative();
    for (;;) {
      const token = this.peek();
      if (token.kind !== 'punct' || (token.value !== '+' && token.value !== '-')) break;
      this.advance();
      left = { type: 'arithmetic', operator: token.value, left, right: this.multiplicative(), at: left.at };
    }
    return left;
  }

  private multiplicative(): EqlExpression {
    let left = this.unary();
    for (;;) {
      const token = this.peek();
      if (token.kind !== 'punct' || (token.value !== '*' && token.value !== '/' && token.value !== '%')) {
        this.note(EXPECT.arithmetic);
        break;
      }
      this.advance();
      left = { type: 'arithmetic', operator: token.value, left, right: this.unary(), at: left.at };
    }
    return left;
  }

  private unary(): EqlExpression {
    const token = this.peek();
    if (token.kind === 'punct' && (token.value === '-' || token.value === '+')) {
      this.advance();
      const operand = this.deeper(() => this.unary());
      return token.value === '-' ? { type: 'negate', operand, at: this.at(token) } : operand;
    }
    return this.predicated();
  }

  /** A primary and at most one predicate after it (so `-a in (1)` is `-(a in (1))`, as in the grammar). */
  private predicated(): EqlExpression {
    const value = this.primary();
    const token = this.peek();
    const negated = token.kind === 'keyword' && token.value === 'not';
    const inToken = negated ? this.peek(1) : token;
    if (inToken.kind === 'keyword' && (inToken.value === 'in' || inToken.value === 'in~')) {
      if (negated) this.advance();
      this.advance();
      this.expectPunct('(');
      const list = [this.expression()];
      while (this.isPunct(',')) {
        this.advance();
        list.push(this.expression());
      }
      this.expectPunct(')');
      return { type: 'in', value, list, caseInsensitive: inToken.value === 'in~', negated, at: value.at };
    }
    if (negated) {
      this.advance();
      this.note('"in"');
      this.note('"in~"');
      this.fail();
    }
    const operator = matchOperator(token);
    if (operator === null) {
      this.note(EXPECT.predicate);
      return value;
    }
    this.advance();
    // The grammar takes any constant here (type checks come later in Elasticsearch, and in the compiler here).
    if (this.isPunct('(')) {
      this.advance();
      const patterns = [this.constant()];
      while (this.isPunct(',')) {
        this.advance();
        patterns.push(this.constant());
      }
      this.expectPunct(')');
      return { type: 'match', ...operator, value, patterns, list: true, at: value.at };
    }
    return { type: 'match', ...operator, value, patterns: [this.constant()], list: false, at: value.at };
  }

  private primary(): EqlExpression {
    const token = this.peek();
    switch (token.kind) {
      case 'int':
      case 'decimal':
      case 'string':
        return this.constant();
      case 'keyword':
        if (token.value === 'true' || token.value === 'false' || token.value === 'null') return this.constant();
        break;
      case 'punct':
        if (token.value === '(') {
          this.advance();
          const expression = this.expression();
          this.expectPunct(')');
          return { type: 'paren', expression, at: this.at(token) };
        }
        if (token.value === '?') return this.field();
        break;
      case 'tilde':
        return this.functionCall();
      case 'ident': {
        const following = this.peek(1);
        return following.kind === 'punct' && following.value === '(' ? this.functionCall() : this.field();
      }
      case 'quoted':
        return this.field();
    }
    this.note(EXPECT.expression);
    return this.fail();
  }

  private constant(): EqlLiteral {
    const token = this.peek();
    const at = this.at(token);
    switch (token.kind) {
      case 'int':
      case 'decimal':
        this.advance();
        return { type: 'literal', value: token.number!, integer: token.long === true, at };
      case 'string':
        this.advance();
        return { type: 'literal', value: token.value, integer: false, at };
      case 'keyword':
        if (token.value === 'true' || token.value === 'false' || token.value === 'null') {
          this.advance();
          return { type: 'literal', value: token.value === 'null' ? null : token.value === 'true', integer: false, at };
        }
    }
    this.note(EXPECT.constant);
    return this.fail();
  }

  /**
   * `name(args)` or `name~(args)`. Elasticsearch resolves names case-insensitively, and only later (in its
   * analyzer, not the parser) refuses unknown ones; arity and whether `~` is allowed are left to the compiler.
   */
  private functionCall(): EqlExpression {
    const name = this.advance();
    this.expectPunct('(');
    const args: EqlExpression[] = [];
    if (!this.isPunct(')')) {
      this.note(EXPECT.expression);
      args.push(this.expression());
      while (this.isPunct(',')) {
        this.advance();
        args.push(this.expression());
      }
    }
    this.expectPunct(')');
    const canonical = FUNCTIONS.get(name.value.toLowerCase());
    if (canonical === undefined) {
      throw this.refuse(name, `unknown function [${name.value}]`, [`a function (${EQL_FUNCTION_NAMES.join(', ')})`]);
    }
    return { type: 'function', name: canonical, caseInsensitive: name.kind === 'tilde', args, at: this.at(name) };
  }

  /** `[?]segment(.segment)*`; as EqlParser's post-processor, `name[0]` parses but array indexes are refused. */
  private field(): EqlExpression {
    const start = this.peek();
    const optional = start.kind === 'punct' && start.value === '?';
    if (optional) this.advance();
    const segments = [this.segment()];
    for (;;) {
      const token = this.peek();
      if (token.kind === 'punct' && token.value === '.') {
        this.advance();
        segments.push(this.segment());
        continue;
      }
      const index = this.peek(1);
      if (token.kind === 'punct' && token.value === '[' && index.kind === 'int') {
        throw this.refuse(index, `array indexes (${segments.join('.')}[${index.value}]) are not supported`);
      }
      break;
    }
    return { type: 'field', name: segments.join('.'), optional, at: this.at(start) };
  }

  private segment(): string {
    const token = this.peek();
    if (token.kind !== 'ident' && token.kind !== 'quoted') {
      this.note(EXPECT.field);
      this.fail();
    }
    this.advance();
    return token.value;
  }

  // ---- tokens and errors ------------------------------------------------------------------------------------

  private peek(ahead = 0): Token {
    while (this.tokens.length <= this.index + ahead) {
      const last = this.tokens[this.tokens.length - 1];
      this.tokens.push(last?.kind === 'eof' ? last : this.lexer.next());
    }
    return this.tokens[this.index + ahead]!;
  }

  private advance(): Token {
    const token = this.peek();
    this.index++;
    return token;
  }

  private isKeyword(word: string): boolean {
    const token = this.peek();
    if (token.kind === 'keyword' && token.value === word) return true;
    this.note(`"${word}"`);
    return false;
  }

  private isPunct(symbol: string): boolean {
    const token = this.peek();
    if (token.kind === 'punct' && token.value === symbol) return true;
    this.note(`"${symbol}"`);
    return false;
  }

  private expectKeyword(word: string): Token {
    if (!this.isKeyword(word)) this.fail();
    return this.advance();
  }

  private expectPunct(symbol: string): Token {
    if (!this.isPunct(symbol)) this.fail();
    return this.advance();
  }

  /** Records what would have been accepted at the current token (the set is kept for one token only). */
  private note(expectation: string): void {
    if (this.expectedAt !== this.index) {
      this.expectedAt = this.index;
      this.expected = new Set();
    }
    this.expected.add(expectation);
  }

  private fail(): never {
    const token = this.peek();
    const expected = this.expectedAt === this.index ? [...this.expected].sort() : [EXPECT.expression];
    const { line, column } = this.positions.at(token.start);
    throw new EqlSyntaxError(line, column, this.text(token), expected);
  }

  private refuse(token: Token, reason: string, expected: string[] = ['something else']): EqlSyntaxError {
    const { line, column } = this.positions.at(token.start);
    return new EqlSyntaxError(line, column, this.text(token), expected, reason);
  }

  private refuseAt(at: EqlPosition, found: string, reason: string, expected: string[] = ['something else']): EqlSyntaxError {
    return new EqlSyntaxError(at.line, at.column, found, expected, reason);
  }

  /** The token as written, cut at 40 characters. */
  private text(token: Token): string {
    if (token.kind === 'eof') return END_OF_INPUT;
    return this.input.slice(token.start, Math.min(token.end, token.start + 40));
  }

  private at(token: Token): EqlPosition {
    return this.positions.at(token.start);
  }

  private deeper<T>(parse: () => T): T {
    if (this.depth >= MAX_NESTING) {
      const token = this.peek();
      const { line, column } = this.positions.at(token.start);
      throw new EqlSyntaxError(line, column, this.text(token), [`at most ${MAX_NESTING} levels of nesting`], `nesting is limited to ${MAX_NESTING} levels`);
    }
    this.depth++;
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }
}

function matchOperator(token: Token): { operator: ':' | 'like' | 'regex'; caseInsensitive: boolean } | null {
  if (token.kind === 'punct' && token.value === ':') return { operator: ':', caseInsensitive: true };
  if (token.kind !== 'keyword') return null;
  switch (token.value) {
    case 'like':
    case 'regex':
      return { operator: token.value, caseInsensitive: false };
    case 'like~':
      return { operator: 'like', caseInsensitive: true };
    case 'regex~':
      return { operator: 'regex', caseInsensitive: true };
    default:
      return null;
  }
}

/**
 * The value of a constant integer expression, or null. Elasticsearch folds a pipe's argument (so `head 2 * 5`
 * is `head 10`) and requires an integer type: a decimal anywhere makes it a double and refused.
 */
function foldInteger(e: EqlExpression): number | null {
  switch (e.type) {
    case 'literal':
      return e.integer && typeof e.value === 'number' ? e.value : null;
    case 'paren':
      return foldInteger(e.expression);
    case 'negate': {
      const operand = foldInteger(e.operand);
      return operand === null ? null : -operand;
    }
    case 'arithmetic': {
      const left = foldInteger(e.left);
      const right = foldInteger(e.right);
      return left === null || right === null ? null : applyInteger(e.operator, left, right);
    }
    default:
      return null;
  }
}

function applyInteger(operator: EqlArithmeticOperator, left: number, right: number): number | null {
  switch (operator) {
    case '+':
      return left + right;
    case '-':
      return left - right;
    case '*':
      return left * right;
    case '/':
      return right === 0 ? null : Math.trunc(left / right);
    case '%':
      return right === 0 ? null : left % right;
  }
}

function checkText(text: unknown, caller: string): asserts text is string {
  if (typeof text !== 'string') throw new TypeError(`${caller}: the query must be a string`);
}

/** Parses an EQL query (an event query or a sequence, with pipes); throws EqlSyntaxError for anything else. */
export function parseEql(text: string): EqlQuery {
  checkText(text, 'parseEql');
  return new Parser(text).statement();
}

/** Parses a bare EQL condition (what follows `where`); throws EqlSyntaxError for anything else. */
export function parseEqlExpression(text: string): EqlExpression {
  checkText(text, 'parseEqlExpression');
  return new Parser(text).singleExpression();
}
