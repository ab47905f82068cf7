import type { EqlEventFilter, EqlExpression, EqlLiteral, EqlPipe, EqlQuery, EqlSequenceStage } from './ast.js';
import { EQL_KEYWORDS } from './parser.js';

/**
 * Prints a query tree as EQL that parses back to the same tree (positions aside). Grouping is printed from the
 * tree's `paren` nodes; where a tree built by hand lacks one the grammar needs, parentheses are added (and the
 * text then parses to the tree with that `paren` node). Literal numbers are expected finite and not negative,
 * as the parser makes them (a minus sign is a `negate` node).
 */
export function printEql(query: EqlQuery): string {
  const pipes = query.pipes.map(printPipe).join('');
  if (query.type === 'event') return printFilter(query.filter) + pipes;
  let head = 'sequence';
  if (query.by.length > 0) head += ` by ${printKeys(query.by)}`;
  if (query.maxspan !== null) head += ` with maxspan=${query.maxspan.value}${query.maxspan.unit}`;
  const lines = [head, ...query.stages.map(printStage)];
  if (query.until !== null) lines.push(`until [${printFilter(query.until.filter)}]${query.until.by.length > 0 ? ` by ${printKeys(query.until.by)}` : ''}`);
  return lines.join('\n  ') + pipes;
}

export function printEqlExpression(e: EqlExpression): string {
  return print(e, Level.Or);
}

/** Binding strength, loosest first, as the parser's precedence climbing has it. */
const enum Level {
  Or = 1,
  And,
  Not,
  Compare,
  Additive,
  Multiplicative,
  Unary,
  Predicate,
  Primary,
}

function levelOf(e: EqlExpression): Level {
  switch (e.type) {
    case 'or':
      return Level.Or;
    case 'and':
      return Level.And;
    case 'not':
      return Level.Not;
    case 'compare':
      return Level.Compare;
    case 'arithmetic':
      return e.operator === '+' || e.operator === '-' ? Level.Additive : Level.Multiplicative;
    case 'negate':
      return Level.Unary;
    case 'in':
    case 'match':
      return Level.Predicate;
    default:
      return Level.Primary;
  }
}

/** `e` where the grammar accepts only `minimum` or tighter: parenthesised when it binds more loosely. */
function print(e: EqlExpression, minimum: Level): string {
  const text = printBare(e);
  return levelOf(e) < minimum ? `(${text})` : text;
}

function printBare(e: EqlExpression): string {
  switch (e.type) {
    case 'or':
      return `${print(e.left, Level.Or)} or ${print(e.right, Level.And)}`;
    case 'and':
      return `${print(e.left, Level.And)} and ${print(e.right, Level.Not)}`;
    case 'not':
      return `not ${print(e.operand, Level.Not)}`;
    case 'compare':
      // one comparison, arithmetic on both sides
      return `${print(e.left, Level.Additive)} ${e.operator} ${print(e.right, Level.Additive)}`;
    case 'arithmetic': {
      const level = levelOf(e);
      return `${print(e.left, level)} ${e.operator} ${print(e.right, level + 1)}`;
    }
    case 'negate':
      return `-${print(e.operand, Level.Unary)}`;
    case 'in':
      return `${print(e.value, Level.Primary)} ${e.negated ? 'not ' : ''}in${e.caseInsensitive ? '~' : ''} (${e.list.map(printEqlExpression).join(', ')})`;
    case 'match': {
      // `:` has no `~` form: it is always case-insensitive
      const operator = e.operator === ':' ? ':' : `${e.operator}${e.caseInsensitive ? '~' : ''}`;
      const patterns = e.list || e.patterns.length !== 1 ? `(${e.patterns.map(printLiteral).join(', ')})` : printLiteral(e.patterns[0]!);
      return `${print(e.value, Level.Primary)} ${operator} ${patterns}`;
    }
    case 'paren':
      return `(${printEqlExpression(e.expression)})`;
    case 'literal':
      return printLiteral(e);
    case 'field':
      return (e.optional ? '?' : '') + e.name.split('.').map(printSegment).join('.');
    case 'function':
      return `${e.name}${e.caseInsensitive ? '~' : ''}(${e.args.map(printEqlExpression).join(', ')})`;
  }
}

function printLiteral(literal: EqlLiteral): string {
  const value = literal.value;
  if (value === null) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return printString(value);
  if (literal.integer && Number.isInteger(value)) {
    if (Number.isSafeInteger(value)) return String(value);
    // the longs just below 2^63 read as the double 2^63: print the largest long, which reads back the same
    const exact = BigInt(value);
    return (exact > LONG_MAX ? LONG_MAX : exact).toString();
  }
  // a double must not read back as an integer: give it a point unless it already has one or an exponent
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

const LONG_MAX = 9223372036854775807n;

const NAMED_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\t': '\\t', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r' };

/** A double-quoted string: the named escapes, other control characters as \u{…}, everything else as is. */
function printString(text: string): string {
  const escaped = text.replace(/["\\\u0000-\u001f\u007f]/g, (c) => NAMED_ESCAPES[c] ?? `\\u{${c.charCodeAt(0).toString(16).padStart(2, '0')}}`);
  return `"${escaped}"`;
}

const IDENTIFIER = /^[A-Za-z_@][A-Za-z0-9_]*$/;

/** A name segment bare when it lexes as IDENTIFIER, otherwise in backticks (a backtick doubled). */
function printSegment(segment: string): string {
  return IDENTIFIER.test(segment) && !EQL_KEYWORDS.has(segment) ? segment : `\`${segment.replace(/`/g, '``')}\``;
}

/** A category bare when it lexes as IDENTIFIER; otherwise a string (the grammar takes no backticks there). */
function printFilter(filter: EqlEventFilter): string {
  const category = filter.category === null ? 'any' : IDENTIFIER.test(filter.category) && !EQL_KEYWORDS.has(filter.category) ? filter.category : printString(filter.category);
  return `${category} where ${printEqlExpression(filter.condition)}`;
}

function printKeys(keys: readonly EqlExpression[]): string {
  return keys.map(printEqlExpression).join(', ');
}

function printStage(stage: EqlSequenceStage): string {
  let text = `${stage.missing ? '!' : ''}[${printFilter(stage.filter)}]`;
  if (stage.by.length > 0) text += ` by ${printKeys(stage.by)}`;
  if (stage.runsWritten || stage.runs !== 1) text += ` with runs=${stage.runs}`;
  return text;
}

function printPipe(pipe: EqlPipe): string {
  return ` | ${pipe.type} ${pipe.count}`;
}
