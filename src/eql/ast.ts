/**
 * The EQL query tree, as Elasticsearch's EQL grammar (x-pack/plugin/eql/src/main/antlr/EqlBase.g4) shapes
 * it: a query (one event filter, or a sequence of them) with pipes, and expressions inside the filters.
 * Sugar is kept as written where printing needs it (`runs=N`, `not in`, lists after `:`/`like`/`regex`);
 * the compiler gives it meaning.
 */

/** Where a node starts in the query text: 1-based line and column (in UTF-16 code units). */
export interface EqlPosition {
  readonly line: number;
  readonly column: number;
}

export type EqlLiteralValue = string | number | boolean | null;

/**
 * A constant. `integer` tells `1` from `1.0` (Elasticsearch types them integer/long vs double, which decides
 * integer division in `divide`). Strings hold their unescaped text.
 */
export interface EqlLiteral {
  readonly type: 'literal';
  readonly value: EqlLiteralValue;
  readonly integer: boolean;
  readonly at: EqlPosition;
}

/**
 * A field reference: its dotted name as written (backtick-escaped segments already unescaped). `optional`:
 * written `?name` — Elasticsearch then accepts a field its mapping does not have, as null.
 */
export interface EqlField {
  readonly type: 'field';
  readonly name: string;
  readonly optional: boolean;
  readonly at: EqlPosition;
}

/**
 * A function call. `name` is the function's canonical name (`startsWith`, `cidrMatch`, …: Elasticsearch looks
 * names up case-insensitively); `caseInsensitive` is the `~` suffix (`startsWith~(…)`).
 */
export interface EqlFunctionCall {
  readonly type: 'function';
  readonly name: EqlFunctionName;
  readonly caseInsensitive: boolean;
  readonly args: readonly EqlExpression[];
  readonly at: EqlPosition;
}

export const EQL_FUNCTION_NAMES = [
  'add',
  'between',
  'cidrMatch',
  'concat',
  'divide',
  'endsWith',
  'indexOf',
  'length',
  'modulo',
  'multiply',
  'number',
  'startsWith',
  'string',
  'stringContains',
  'substring',
  'subtract',
] as const;
export type EqlFunctionName = (typeof EQL_FUNCTION_NAMES)[number];

export type EqlComparisonOperator = '==' | '!=' | '<' | '<=' | '>' | '>=';

export interface EqlComparison {
  readonly type: 'compare';
  readonly operator: EqlComparisonOperator;
  readonly left: EqlExpression;
  readonly right: EqlExpression;
  readonly at: EqlPosition;
}

export type EqlArithmeticOperator = '+' | '-' | '*' | '/' | '%';

/** `a + b` and friends (the same functions as add, subtract, multiply, divide, modulo). */
export interface EqlArithmetic {
  readonly type: 'arithmetic';
  readonly operator: EqlArithmeticOperator;
  readonly left: EqlExpression;
  readonly right: EqlExpression;
  readonly at: EqlPosition;
}

/** Unary minus (`-x`); a unary plus leaves no node. */
export interface EqlNegate {
  readonly type: 'negate';
  readonly operand: EqlExpression;
  readonly at: EqlPosition;
}

/** `value in (a, b, …)`, `in~`; `not in` is written `negated` (and printed back as `not in`). */
export interface EqlIn {
  readonly type: 'in';
  readonly value: EqlExpression;
  readonly list: readonly EqlExpression[];
  readonly caseInsensitive: boolean;
  readonly negated: boolean;
  readonly at: EqlPosition;
}

/**
 * `value : "p"`, `like`, `like~`, `regex`, `regex~`, with one pattern or a parenthesised list (any matches).
 * `:` is always case-insensitive; `list` tells `x like ("a")` from `x like "a"` for printing.
 */
export interface EqlPatternMatch {
  readonly type: 'match';
  readonly operator: ':' | 'like' | 'regex';
  readonly caseInsensitive: boolean;
  readonly value: EqlExpression;
  readonly patterns: readonly EqlLiteral[];
  readonly list: boolean;
  readonly at: EqlPosition;
}

export interface EqlAnd {
  readonly type: 'and';
  readonly left: EqlExpression;
  readonly right: EqlExpression;
  readonly at: EqlPosition;
}

export interface EqlOr {
  readonly type: 'or';
  readonly left: EqlExpression;
  readonly right: EqlExpression;
  readonly at: EqlPosition;
}

export interface EqlNot {
  readonly type: 'not';
  readonly operand: EqlExpression;
  readonly at: EqlPosition;
}

/** `(expression)`, kept so printing gives back the grouping as written. */
export interface EqlParenthesized {
  readonly type: 'paren';
  readonly expression: EqlExpression;
  readonly at: EqlPosition;
}

export type EqlExpression =
  | EqlLiteral
  | EqlField
  | EqlFunctionCall
  | EqlComparison
  | EqlArithmetic
  | EqlNegate
  | EqlIn
  | EqlPatternMatch
  | EqlAnd
  | EqlOr
  | EqlNot
  | EqlParenthesized;

/**
 * `CATEGORY where CONDITION`. `category` null = `any`; otherwise the category as written (an identifier or a
 * quoted string, unescaped).
 */
export interface EqlEventFilter {
  readonly category: string | null;
  readonly condition: EqlExpression;
  readonly at: EqlPosition;
}

export interface EqlEventQuery {
  readonly type: 'event';
  readonly filter: EqlEventFilter;
  readonly pipes: readonly EqlPipe[];
}

/**
 * One stage of a sequence: `[filter] by k…` with `runs=N` (the stage repeated N times, N ≥ 1; 1 when not
 * written) or, with `missing`, `![filter]`: a missing-event stage (no matching event may occur there).
 */
export interface EqlSequenceStage {
  readonly filter: EqlEventFilter;
  readonly by: readonly EqlExpression[];
  readonly runs: number;
  /** Whether `with runs=N` was written (so printing keeps it even for N = 1). */
  readonly runsWritten: boolean;
  readonly missing: boolean;
  readonly at: EqlPosition;
}

/** A duration as written (`maxspan=30s`): the number, the unit as written ('' when none) and the milliseconds. */
export interface EqlTimespan {
  readonly value: number;
  readonly unit: string;
  readonly milliseconds: number;
  readonly at: EqlPosition;
}

export interface EqlSequenceQuery {
  readonly type: 'sequence';
  /** The keys after `sequence by`, shared by every stage (each stage's own keys follow them). */
  readonly by: readonly EqlExpression[];
  readonly maxspan: EqlTimespan | null;
  readonly stages: readonly EqlSequenceStage[];
  /** `until [filter] by …`: an event matching it ends the partial sequences it joins. */
  readonly until: { readonly filter: EqlEventFilter; readonly by: readonly EqlExpression[]; readonly at: EqlPosition } | null;
  readonly pipes: readonly EqlPipe[];
}

/** `| head N` (the first N results) and `| tail N` (the last N). */
export interface EqlPipe {
  readonly type: 'head' | 'tail';
  readonly count: number;
  readonly at: EqlPosition;
}

export type EqlQuery = EqlEventQuery | EqlSequenceQuery;

/** The expression inside any parentheses around it. */
export function unwrapParens(e: EqlExpression): EqlExpression {
  while (e.type === 'paren') e = e.expression;
  return e;
}

/** The operands of a chain of `and` (or of `or`), parentheses looked through: `a and (b and c)` → a, b, c. */
export function junctionOperands(e: EqlExpression, type: 'and' | 'or'): EqlExpression[] {
  const inner = unwrapParens(e);
  return inner.type === type ? [...junctionOperands(inner.left, type), ...junctionOperands(inner.right, type)] : [inner];
}
