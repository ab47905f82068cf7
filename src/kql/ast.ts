/**
 * The query tree. Like Kibana's kuery package, a small set of node types; value lists such as
 * `f:(a or b)` are expanded at parse time into `or`/`and`/`not` of `is` nodes, so every leaf names its field.
 */

/** A value or field name as written: a plain literal, or a pattern with `*` wildcards. */
export type KqlTerm = KqlLiteral | KqlWildcard;

/**
 * A literal. Unquoted `true`, `false`, `null` and numbers (as Kibana recognises them) become those JSON
 * values; everything quoted stays a string. `text` keeps the unescaped text as written (for printing).
 */
export interface KqlLiteral {
  readonly kind: 'literal';
  readonly value: string | number | boolean | null;
  readonly quoted: boolean;
  readonly text: string;
}

/** An unquoted value with at least one unescaped `*`: `parts` are the literal runs between the stars. */
export interface KqlWildcard {
  readonly kind: 'wildcard';
  readonly parts: readonly string[];
}

export interface KqlIs {
  readonly type: 'is';
  /** null: a value with no field, matched against every leaf value of the document. */
  readonly field: KqlTerm | null;
  readonly value: KqlTerm;
}

export interface KqlExists {
  readonly type: 'exists';
  readonly field: KqlTerm;
}

export type KqlRangeOperator = 'lt' | 'lte' | 'gt' | 'gte';

export interface KqlRange {
  readonly type: 'range';
  readonly field: KqlTerm;
  readonly operator: KqlRangeOperator;
  readonly value: KqlLiteral;
}

export interface KqlNested {
  readonly type: 'nested';
  /** The path of the objects; field names inside `query` are relative to it. */
  readonly path: KqlTerm;
  readonly query: KqlNode;
}

export interface KqlAnd {
  readonly type: 'and';
  readonly children: readonly KqlNode[];
}

export interface KqlOr {
  readonly type: 'or';
  readonly children: readonly KqlNode[];
}

export interface KqlNot {
  readonly type: 'not';
  readonly child: KqlNode;
}

/** The empty query and `*` / `*:*`. */
export interface KqlMatchAll {
  readonly type: 'match_all';
}

export type KqlNode = KqlIs | KqlExists | KqlRange | KqlNested | KqlAnd | KqlOr | KqlNot | KqlMatchAll;

/** The text a term stands for, stars included (for field names and error messages). */
export function termText(term: KqlTerm): string {
  return term.kind === 'literal' ? term.text : term.parts.join('*');
}
