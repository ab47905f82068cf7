import { KNOWN_FIELD_NAMES } from '../ecs/known-fields.js';
import { PROCESS_EVENT_CONSTANTS } from '../ecs/types.js';
import { parseEql, printEqlExpression, type EqlEventFilter, type EqlExpression } from '../eql/index.js';
import { foldCase } from '../eql/regex.js';
import { compileEqlWildcard } from '../eql/wildcard.js';
import { parseKql, printKql, type KqlNode } from '../kql/index.js';
import { compileWildcard } from '../kql/wildcard.js';

/**
 * Whether a valid rule fits the events execsentry produces: warnings (never refusals) for a field that is
 * neither ECS, nor Elastic Defend's, nor execsentry's own (a misspelling, or another data source's field),
 * and for a top-level condition on a constant field of the process event that asks for a value the sensor
 * never emits (`event.category:file`, `event.action == "fork"`), which makes the whole query impossible.
 */

let knownPrefixes: ReadonlySet<string> | undefined;

/** Object paths of known fields (`process.parent` of `process.parent.name`): reading one is reading a field. */
function isKnownPrefix(name: string): boolean {
  knownPrefixes ??= new Set(
    [...KNOWN_FIELD_NAMES].flatMap((field) => {
      const parts = field.split('.');
      return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('.'));
    }),
  );
  return knownPrefixes.has(name);
}

export function isKnownField(name: string): boolean {
  return KNOWN_FIELD_NAMES.has(name) || name.startsWith('execsentry.') || name.includes('*') || isKnownPrefix(name);
}

/** The warning for fields no event of execsentry's carries under those names, if any. */
export function unknownFieldRemark(ruleName: string, fields: readonly string[]): string | undefined {
  const unknown = [...new Set(fields.filter((field) => !isKnownField(field)))];
  if (unknown.length === 0) return undefined;
  const list = unknown.map((field) => JSON.stringify(field)).join(', ');
  return `rule ${JSON.stringify(ruleName)} reads ${list}, which ${unknown.length === 1 ? 'is' : 'are'} neither ECS nor Elastic Defend fields nor execsentry's (misspelled, or from another data source?): execsentry's events never carry ${unknown.length === 1 ? 'it' : 'them'}`;
}

/** One top-level condition on a single field: the field, what it asks (as written) and which values pass. */
interface FieldCondition {
  readonly field: string;
  readonly text: string;
  readonly accepts: (value: string) => boolean;
}

/** The warning for a top-level condition the sensor's events can never satisfy, if any. */
export function impossibleConditionRemark(ruleName: string, language: 'kuery' | 'eql', query: string): string | undefined {
  const conditions = language === 'eql' ? eqlConditions(query) : kqlConditions(query);
  for (const condition of conditions) {
    const produced = PROCESS_EVENT_CONSTANTS[condition.field];
    if (produced === undefined || produced.some(condition.accepts)) continue;
    const values = produced.map((value) => JSON.stringify(value)).join(', ');
    return `rule ${JSON.stringify(ruleName)} can never match here: it requires ${condition.text}, but ${condition.field} is always ${values} in execsentry's events`;
  }
  return undefined;
}

// ---- KQL --------------------------------------------------------------------------------------------------

function kqlConditions(query: string): FieldCondition[] {
  const root = parseKql(query);
  const conjuncts = root.type === 'and' ? root.children : [root];
  return conjuncts.flatMap((conjunct) => {
    const condition = kqlCondition(conjunct);
    return condition === undefined ? [] : [condition];
  });
}

/** `f:v` or `f:(a or b)` (an or of `is` on one literal field), as KQL compares keywords: exactly, `*` patterns. */
function kqlCondition(node: KqlNode): FieldCondition | undefined {
  const alternatives = node.type === 'or' ? node.children : [node];
  const tests: ((value: string) => boolean)[] = [];
  let field: string | undefined;
  for (const alternative of alternatives) {
    if (alternative.type !== 'is' || alternative.field === null || alternative.field.kind !== 'literal') return undefined;
    if (field !== undefined && alternative.field.text !== field) return undefined;
    field = alternative.field.text;
    const value = alternative.value;
    if (value.kind === 'wildcard') tests.push(compileWildcard(value.parts));
    else if (typeof value.value === 'string') {
      const wanted = value.value;
      tests.push((candidate) => candidate === wanted);
    } else return undefined;
  }
  if (field === undefined) return undefined;
  return { field, text: printKql(node), accepts: (value) => tests.some((test) => test(value)) };
}

// ---- EQL --------------------------------------------------------------------------------------------------

/** The top-level conditions of every stage that must match (an event query's one filter, a sequence's stages). */
function eqlConditions(query: string): FieldCondition[] {
  const tree = parseEql(query);
  const filters: EqlEventFilter[] = tree.type === 'event' ? [tree.filter] : tree.stages.filter((stage) => !stage.missing).map((stage) => stage.filter);
  return filters.flatMap((filter) => splitAnd(filter.condition).flatMap((conjunct) => {
    const condition = eqlCondition(conjunct);
    return condition === undefined ? [] : [condition];
  }));
}

function unwrap(e: EqlExpression): EqlExpression {
  while (e.type === 'paren') e = e.expression;
  return e;
}

function splitAnd(e: EqlExpression): EqlExpression[] {
  const inner = unwrap(e);
  return inner.type === 'and' ? [...splitAnd(inner.left), ...splitAnd(inner.right)] : [inner];
}

/** `f == "v"`, `f in ("a", "b")`, `f : "p*"` (and `in~`, `like`, `like~`), or an or of them on one field. */
function eqlCondition(e: EqlExpression, text: string = printEqlExpression(e)): FieldCondition | undefined {
  const inner = unwrap(e);
  if (inner.type === 'or') {
    const left = eqlCondition(inner.left, text);
    const right = eqlCondition(inner.right, text);
    if (left === undefined || right === undefined || left.field !== right.field) return undefined;
    return { field: left.field, text, accepts: (value) => left.accepts(value) || right.accepts(value) };
  }
  const field = (x: EqlExpression): string | undefined => {
    const f = unwrap(x);
    return f.type === 'field' ? f.name : undefined;
  };
  const strings = (values: readonly EqlExpression[]): string[] | undefined => {
    const texts = values.map((value) => unwrap(value)).map((value) => (value.type === 'literal' && typeof value.value === 'string' ? value.value : undefined));
    return texts.every((value) => value !== undefined) ? (texts as string[]) : undefined;
  };
  if (inner.type === 'compare' && inner.operator === '==') {
    const name = field(inner.left);
    const wanted = strings([inner.right]);
    if (name === undefined || wanted === undefined) return undefined;
    return { field: name, text, accepts: (value) => value === wanted[0] };
  }
  if (inner.type === 'in' && !inner.negated) {
    const name = field(inner.value);
    const wanted = strings(inner.list);
    if (name === undefined || wanted === undefined) return undefined;
    const fold = inner.caseInsensitive ? foldCase : (value: string) => value;
    const set = new Set(wanted.map(fold));
    return { field: name, text, accepts: (value) => set.has(fold(value)) };
  }
  if (inner.type === 'match' && inner.operator !== 'regex') {
    const name = field(inner.value);
    const patterns = strings(inner.patterns);
    if (name === undefined || patterns === undefined) return undefined;
    const tests = patterns.map((pattern) => compileEqlWildcard(pattern, { caseInsensitive: inner.caseInsensitive || inner.operator === ':' }));
    return { field: name, text, accepts: (value) => tests.some((test) => test(value)) };
  }
  return undefined;
}
