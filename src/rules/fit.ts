import { KNOWN_FIELD_NAMES } from '../ecs/known-fields.js';
import { PROCESS_ACTION_TYPE, PROCESS_EVENT_CONSTANTS, type ProcessAction } from '../ecs/types.js';
import { junctionOperands, parseEql, printEqlExpression, unwrapParens, type EqlEventFilter, type EqlExpression } from '../eql/index.js';
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
  /** When the condition is a plain list of values (no wildcard): them, and whether case counts. */
  readonly terms?: RequiredTerms;
}

/** Values one of which a field must hold for a rule to match: exact, or equal after case folding (foldCase). */
export interface RequiredTerms {
  readonly values: readonly string[];
  readonly caseInsensitive: boolean;
}

/**
 * A rule query's top-level conditions, read once per rule: per filter (an event query's one; a sequence's
 * stages, missing-event ones included, then `until`), and which filters must match for the rule to fire
 * (not missing-event stages, not `until`).
 */
export interface QueryConditions {
  readonly filters: readonly { readonly conditions: readonly FieldCondition[]; readonly mustMatch: boolean }[];
}

export function queryConditions(language: 'kuery' | 'eql', query: string): QueryConditions {
  return { filters: language === 'eql' ? eqlFilterConditions(query) : [{ conditions: kqlConditions(query), mustMatch: true }] };
}

/**
 * The warning for a top-level condition the sensor's events can never satisfy, if any: a value of a
 * constant field no event has (fork and end events count: a rule naming them gets them), or an event.action
 * and event.type that no event has together.
 */
export function impossibleConditionRemark(ruleName: string, query: QueryConditions): string | undefined {
  for (const filter of query.filters) {
    if (!filter.mustMatch) continue;
    for (const condition of filter.conditions) {
      const produced = PROCESS_EVENT_CONSTANTS[condition.field];
      if (produced === undefined || produced.some(condition.accepts)) continue;
      const values = produced.map((value) => JSON.stringify(value)).join(', ');
      return `rule ${JSON.stringify(ruleName)} can never match here: it requires ${condition.text}, but ${condition.field} is ${produced.length === 1 ? 'always' : 'one of'} ${values} in execsentry's events`;
    }
    if (filterActions(filter.conditions)?.length === 0) {
      const texts = filter.conditions.filter((condition) => condition.field === 'event.action' || condition.field === 'event.type').map((condition) => condition.text);
      return `rule ${JSON.stringify(ruleName)} can never match here: it requires ${texts.join(' and ')}, which no event of execsentry's has together (exec and fork events are of event.type "start", end events of "end")`;
    }
  }
  return undefined;
}

const PROCESS_ACTIONS: readonly ProcessAction[] = ['exec', 'fork', 'end'];

/**
 * The process events a rule is evaluated on, and so the fork and end events the sensor must produce for it:
 * per filter (a sequence's stages, missing-event ones and `until` included: their events matter), the
 * actions its top-level event.action and event.type conditions let through; a filter with neither takes exec
 * events only. A fork is named only by an event.action condition (`event.type:start` alone keeps to execs);
 * an end by either (`event.type == "end"`).
 *
 * Elasticsearch on Elastic Defend data would match a query without such conditions (`process.name:bash`)
 * against fork and end events too. Here such a rule sees execs only (unless `sensor.events` makes every
 * rule see them): its alerts do not change with the other rules loaded, and the common exec-only rule set
 * costs no fork or end events at all.
 */
export function namedActions(query: QueryConditions): ProcessAction[] {
  const named = new Set<ProcessAction>();
  for (const filter of query.filters) for (const action of filterActions(filter.conditions) ?? ['exec']) named.add(action);
  return PROCESS_ACTIONS.filter((action) => named.has(action));
}

/** The actions a filter's top-level event.action / event.type conditions let through; undefined when it has none. */
function filterActions(conditions: readonly FieldCondition[]): ProcessAction[] | undefined {
  const onAction = conditions.filter((condition) => condition.field === 'event.action');
  const onType = conditions.filter((condition) => condition.field === 'event.type');
  if (onAction.length === 0 && onType.length === 0) return undefined;
  return PROCESS_ACTIONS.filter(
    (action) =>
      (onAction.length > 0 || action !== 'fork') &&
      onAction.every((condition) => condition.accepts(action)) &&
      onType.every((condition) => condition.accepts(PROCESS_ACTION_TYPE[action])),
  );
}

/**
 * The values `field` must hold for the query to match, when a top-level condition of every filter lists
 * them plainly (`process.name:(bash or sh)`, `process.name in ("bash", "sh")`, `process.name : "bash"`);
 * undefined when some filter can match other values. A necessary condition only: the engine uses it to skip
 * rules an event cannot match, and still evaluates the rest in full. For a sequence every filter counts,
 * missing-event stages and `until` too: their events matter.
 */
export function requiredTerms(query: QueryConditions, field: string): RequiredTerms | undefined {
  const all: RequiredTerms[] = [];
  for (const filter of query.filters) {
    const found = filter.conditions.find((condition) => condition.field === field && condition.terms !== undefined)?.terms;
    if (found === undefined) return undefined;
    all.push(found);
  }
  if (all.length === 0) return undefined;
  // mixed case rules: fold everything, which is still necessary for the case-sensitive ones
  const caseInsensitive = all.some((terms) => terms.caseInsensitive);
  return { values: all.flatMap((terms) => terms.values), caseInsensitive };
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
  const values: string[] = [];
  let plain = true;
  let field: string | undefined;
  for (const alternative of alternatives) {
    if (alternative.type !== 'is' || alternative.field === null || alternative.field.kind !== 'literal') return undefined;
    if (field !== undefined && alternative.field.text !== field) return undefined;
    field = alternative.field.text;
    const value = alternative.value;
    if (value.kind === 'wildcard') {
      tests.push(compileWildcard(value.parts));
      plain = false;
    } else if (typeof value.value === 'string') {
      const wanted = value.value;
      tests.push((candidate) => candidate === wanted);
      values.push(wanted);
    } else return undefined;
  }
  if (field === undefined) return undefined;
  return {
    field,
    text: printKql(node),
    accepts: (value) => tests.some((test) => test(value)),
    ...(plain ? { terms: { values, caseInsensitive: false } } : {}),
  };
}

// ---- EQL --------------------------------------------------------------------------------------------------

/** Each filter's top-level conditions, and whether the filter must match (see QueryConditions). */
function eqlFilterConditions(query: string): QueryConditions['filters'] {
  const tree = parseEql(query);
  const filters: { filter: EqlEventFilter; mustMatch: boolean }[] =
    tree.type === 'event'
      ? [{ filter: tree.filter, mustMatch: true }]
      : [
          ...tree.stages.map((stage) => ({ filter: stage.filter, mustMatch: !stage.missing })),
          ...(tree.until === null ? [] : [{ filter: tree.until.filter, mustMatch: false }]),
        ];
  return filters.map(({ filter, mustMatch }) => ({
    mustMatch,
    conditions: junctionOperands(filter.condition, 'and').flatMap((conjunct) => {
      const condition = eqlCondition(conjunct);
      return condition === undefined ? [] : [condition];
    }),
  }));
}

/** `f == "v"`, `f in ("a", "b")`, `f : "p*"` (and `in~`, `like`, `like~`), or an or of them on one field. */
function eqlCondition(e: EqlExpression, text: string = printEqlExpression(e)): FieldCondition | undefined {
  const inner = unwrapParens(e);
  if (inner.type === 'or') {
    const left = eqlCondition(inner.left, text);
    const right = eqlCondition(inner.right, text);
    if (left === undefined || right === undefined || left.field !== right.field) return undefined;
    const terms =
      left.terms !== undefined && right.terms !== undefined && left.terms.caseInsensitive === right.terms.caseInsensitive
        ? { values: [...left.terms.values, ...right.terms.values], caseInsensitive: left.terms.caseInsensitive }
        : undefined;
    return { field: left.field, text, accepts: (value) => left.accepts(value) || right.accepts(value), ...(terms === undefined ? {} : { terms }) };
  }
  const field = (x: EqlExpression): string | undefined => {
    const f = unwrapParens(x);
    return f.type === 'field' ? f.name : undefined;
  };
  const strings = (values: readonly EqlExpression[]): string[] | undefined => {
    const texts = values.map((value) => unwrapParens(value)).map((value) => (value.type === 'literal' && typeof value.value === 'string' ? value.value : undefined));
    return texts.every((value) => value !== undefined) ? (texts as string[]) : undefined;
  };
  if (inner.type === 'compare' && inner.operator === '==') {
    const name = field(inner.left);
    const wanted = strings([inner.right]);
    if (name === undefined || wanted === undefined) return undefined;
    return { field: name, text, accepts: (value) => value === wanted[0], terms: { values: wanted, caseInsensitive: false } };
  }
  if (inner.type === 'in' && !inner.negated) {
    const name = field(inner.value);
    const wanted = strings(inner.list);
    if (name === undefined || wanted === undefined) return undefined;
    const fold = inner.caseInsensitive ? foldCase : (value: string) => value;
    const set = new Set(wanted.map(fold));
    return { field: name, text, accepts: (value) => set.has(fold(value)), terms: { values: wanted, caseInsensitive: inner.caseInsensitive } };
  }
  if (inner.type === 'match' && inner.operator !== 'regex') {
    const name = field(inner.value);
    const patterns = strings(inner.patterns);
    if (name === undefined || patterns === undefined) return undefined;
    const caseInsensitive = inner.caseInsensitive || inner.operator === ':';
    const tests = patterns.map((pattern) => compileEqlWildcard(pattern, { caseInsensitive }));
    const plain = patterns.every((pattern) => !/[*?]/.test(pattern));
    return { field: name, text, accepts: (value) => tests.some((test) => test(value)), ...(plain ? { terms: { values: patterns, caseInsensitive } } : {}) };
  }
  return undefined;
}
