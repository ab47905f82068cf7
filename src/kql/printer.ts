import type { KqlIs, KqlNode, KqlTerm } from './ast.js';

/**
 * Prints a tree as KQL that parses back to the same tree. Values are printed as written (quoted stays quoted)
 * with whatever escapes the grammar needs; `or` of values on one field is printed as a list `f:(a or b)`.
 */
export function printKql(node: KqlNode): string {
  switch (node.type) {
    case 'match_all':
      return '*';
    case 'is':
      return node.field === null ? printTerm(node.value) : `${printTerm(node.field)}:${printTerm(node.value)}`;
    case 'exists':
      return `${printTerm(node.field)}:*`;
    case 'range':
      return `${printTerm(node.field)} ${RANGE_SYMBOL[node.operator]} ${printTerm(node.value)}`;
    case 'nested':
      return `${printTerm(node.path)}:{ ${printKql(node.query)} }`;
    case 'not':
      return `not ${printOperand(node.child, 'not')}`;
    case 'and':
      return node.children.map((child) => printOperand(child, 'and')).join(' and ');
    case 'or': {
      // An `or` inside an `or` prints without parentheses and parses back into its parent: print it flat,
      // so a value list shows up the same way before and after a round trip.
      const children = flatOr(node.children);
      const list = valueList(children);
      if (list !== null) return list;
      return children.map((child) => printOperand(child, 'or')).join(' or ');
    }
  }
}

function flatOr(children: readonly KqlNode[]): KqlNode[] {
  return children.flatMap((child) => (child.type === 'or' ? flatOr(child.children) : [child]));
}

const RANGE_SYMBOL = { lt: '<', lte: '<=', gt: '>', gte: '>=' } as const;

/** Parenthesises a child whose operator binds less tightly than its parent's (not > and > or). */
function printOperand(child: KqlNode, parent: 'not' | 'and' | 'or'): string {
  const text = printKql(child);
  if (child.type === 'or' && parent !== 'or' && valueList(flatOr(child.children)) === null) return `(${text})`;
  if (child.type === 'and' && parent === 'not') return `(${text})`;
  // `not not x` is not KQL: the inner not needs parentheses
  if (child.type === 'not' && parent === 'not') return `(${text})`;
  return text;
}

/** `f:(a or b or c)` when every child is an `is` on the same (printed) field. */
function valueList(children: readonly KqlNode[]): string | null {
  const first = children[0];
  if (first?.type !== 'is' || first.field === null) return null;
  const field = printTerm(first.field);
  const values: string[] = [];
  for (const child of children) {
    if (child.type !== 'is' || child.field === null || printTerm(child.field) !== field) return null;
    values.push(printTerm((child as KqlIs).value));
  }
  return `${field}:(${values.join(' or ')})`;
}

export function printTerm(term: KqlTerm): string {
  if (term.kind === 'wildcard') return term.parts.map(escapeUnquoted).join('*');
  if (term.quoted) return `"${escapeQuoted(term.text)}"`;
  return escapeUnquoted(term.text);
}

function escapeQuoted(text: string): string {
  return text.replace(/[\\"\t\r\n]/g, (c) => QUOTED_ESCAPES[c]!);
}

const QUOTED_ESCAPES: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\t': '\\t', '\r': '\\r', '\n': '\\n' };

/**
 * Escapes special characters and whitespace control characters, and the keywords where they would end the
 * literal: `or`/`and` after whitespace, `not` before whitespace or at the end (the printer may follow it with a space).
 */
function escapeUnquoted(text: string): string {
  return text
    .replace(/[\\():<>"*{}]/g, (c) => `\\${c}`)
    .replace(/(?<=\s)(or|and)(?=\s|$)/gi, '\\$1')
    // `\not` would read as a newline escape followed by "ot": escape the n as a code point instead
    .replace(/(n)(ot)(?=\s|$)/gi, (_m, n: string, rest: string) => (n === 'n' ? `\\u006e${rest}` : `\\${n}${rest}`))
    .replace(/[\t\r\n]/g, (c) => QUOTED_ESCAPES[c]!);
}
