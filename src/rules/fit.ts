import { KNOWN_FIELD_NAMES } from '../ecs/known-fields.js';
import { PROCESS_ACTION_TYPE, PROCESS_EVENT_CONSTANTS, type ProcessAction } from '../ecs/types.js';
import { junctionOperands, parseEql, printEqlExpression, unwrapParens, type EqlEventFilter, type EqlExpression } from '../eql/index.js';
import { foldCase } from '../eql/regex.js';
import { compileEqlWildcard } from '../eql/wildcard.js';
import { parseKql, printKql, type KqlNode, type KqlTerm } from '../kql/index.js';
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
  readonly filters: readonly {
    readonly conditions: readonly FieldCondition[];
    readonly mustMatch: boolean;
    /** The process events (event.action) the filter can match and needs: see namedActions. */
    readonly actions: readonly ProcessAction[];
  }[];
}

export function queryConditions(language: 'kuery' | 'eql', query: string): QueryConditions {
  if (language === 'eql') return { filters: eqlFilterConditions(query) };
  const root = parseKql(query);
  return { filters: [{ conditions: kqlConditions(root), mustMatch: true, actions: namedBy(kqlLevels(root)) }] };
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
    if (filter.actions.length === 0) {
      const texts = filter.conditions.filter((condition) => condition.field === 'event.action' || condition.field === 'event.type').map((condition) => condition.text);
      const required = texts.length > 0 ? texts.join(' and ') : 'event.action and event.type values';
      return `rule ${JSON.stringify(ruleName)} can never match here: it requires ${required}, which no event of execsentry's has together (exec and fork events are of event.type "start", end events of "end")`;
    }
  }
  return undefined;
}

const PROCESS_ACTIONS: readonly ProcessAction[] = ['exec', 'fork', 'end'];

/**
 * The process events a rule is evaluated on, and so the fork and end events the sensor must produce for it:
 * the union of what each filter names (a sequence's stages, missing-event ones and `until` included: their
 * events matter). The engine evaluates the whole rule on them: once one stage of a sequence names fork, its
 * other stages see fork events too, as in Elasticsearch.
 *
 * What a filter names, over-approximated (producing fork or end events a rule turns out not to need costs CPU;
 * missing them loses detections):
 * - a condition on event.action names the actions it lets through; one on event.type names exec for "start"
 *   and end for "end", but no fork (`event.type:start` alone keeps to execs, see below);
 * - `and` keeps what every operand lets through, `or` names what any operand names (`(event.action:fork and
 *   …) or (event.action:end and …)` names fork and end);
 * - a negation of, or any other use of event.action or event.type (`!=`, `not in`, a function, a regular
 *   expression, a field pattern or free text that may be either) names all three;
 * - reading process.exit_code or process.end, which only end events carry, names end;
 * - a filter that names nothing else takes exec events.
 *
 * Elasticsearch on Elastic Defend data would match a query without such conditions (`process.name:bash`)
 * against fork and end events too. Here such a rule sees execs only (unless `sensor.events` makes every
 * rule see them): its alerts do not change with the other rules loaded, and the common exec-only rule set
 * costs no fork or end events at all.
 */
export function namedActions(query: QueryConditions): ProcessAction[] {
  const named = new Set(query.filters.flatMap((filter) => filter.actions));
  return PROCESS_ACTIONS.filter((action) => named.has(action));
}

/**
 * Per action, what a (sub)query says of it: 0 it cannot match that action's events; 1 it may, but does not
 * name them (no condition on event.action, or `event.type:start` for forks); 2 it names them.
 */
type ActionLevel = 0 | 1 | 2;
type ActionLevels = Readonly<Record<ProcessAction, ActionLevel>>;
/** No condition on the action: exec events, as every rule gets them; fork and end only if named elsewhere. */
const UNCONSTRAINED: ActionLevels = { exec: 2, fork: 1, end: 1 };
const EVERY_ACTION: ActionLevels = { exec: 2, fork: 2, end: 2 };
const READS_END_FIELD: ActionLevels = { exec: 2, fork: 1, end: 2 };
const ACTION_FIELDS = ['event.action', 'event.type'];
/** Fields only end events carry. */
const END_FIELDS = ['process.exit_code', 'process.end'];

function bothLevels(a: ActionLevels, b: ActionLevels): ActionLevels {
  const level = (action: ProcessAction): ActionLevel => (a[action] === 0 || b[action] === 0 ? 0 : (Math.max(a[action], b[action]) as ActionLevel));
  return { exec: level('exec'), fork: level('fork'), end: level('end') };
}

function eitherLevels(a: ActionLevels, b: ActionLevels): ActionLevels {
  return { exec: Math.max(a.exec, b.exec) as ActionLevel, fork: Math.max(a.fork, b.fork) as ActionLevel, end: Math.max(a.end, b.end) as ActionLevel };
}

function namedBy(levels: ActionLevels): ProcessAction[] {
  return PROCESS_ACTIONS.filter((action) => levels[action] === 2);
}

/** A condition on event.action or event.type, or anything else, given which fields the latter reads. */
function leafLevels(condition: FieldCondition | undefined, reads: (fields: readonly string[]) => boolean): ActionLevels {
  if (condition?.field === 'event.action') {
    const level = (action: ProcessAction): ActionLevel => (condition.accepts(action) ? 2 : 0);
    return { exec: level('exec'), fork: level('fork'), end: level('end') };
  }
  if (condition?.field === 'event.type') {
    const start = condition.accepts(PROCESS_ACTION_TYPE.exec);
    return { exec: start ? 2 : 0, fork: start ? 1 : 0, end: condition.accepts(PROCESS_ACTION_TYPE.end) ? 2 : 0 };
  }
  return opaqueLevels(reads);
}

/** A part of a query read as a whole (a negation, a function, a nested query): only which fields it reads counts. */
function opaqueLevels(reads: (fields: readonly string[]) => boolean): ActionLevels {
  if (reads(ACTION_FIELDS)) return EVERY_ACTION;
  return reads(END_FIELDS) ? READS_END_FIELD : UNCONSTRAINED;
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

function kqlConditions(root: KqlNode): FieldCondition[] {
  const conjuncts = root.type === 'and' ? root.children : [root];
  return conjuncts.flatMap((conjunct) => {
    const condition = kqlCondition(conjunct);
    return condition === undefined ? [] : [condition];
  });
}

function kqlLevels(node: KqlNode): ActionLevels {
  switch (node.type) {
    case 'and':
      return node.children.map(kqlLevels).reduce(bothLevels, UNCONSTRAINED);
    case 'or':
      return node.children.map(kqlLevels).reduce(eitherLevels, { exec: 0, fork: 0, end: 0 });
    case 'is':
      return leafLevels(kqlCondition(node), (fields) => kqlReads(node, fields));
    default:
      return opaqueLevels((fields) => kqlReads(node, fields));
  }
}

/** Whether `node` may read one of `fields`: a field pattern or free text (no field) that may be one counts. */
function kqlReads(node: KqlNode, fields: readonly string[], prefix = ''): boolean {
  const names = (term: KqlTerm | null): boolean => {
    if (term === null) return true;
    const matches = term.kind === 'literal' ? (field: string) => field === prefix + term.text : (field: string) => compileWildcard([prefix + (term.parts[0] ?? ''), ...term.parts.slice(1)])(field);
    return fields.some(matches);
  };
  switch (node.type) {
    case 'and':
    case 'or':
      return node.children.some((child) => kqlReads(child, fields, prefix));
    case 'not':
      return kqlReads(node.child, fields, prefix);
    case 'nested':
      return node.path.kind === 'wildcard' || kqlReads(node.query, fields, `${prefix}${node.path.text}.`);
    case 'match_all':
      return false;
    default:
      return names(node.field);
  }
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
    actions: namedBy(eqlLevels(filter.condition)),
  }));
}

function eqlLevels(e: EqlExpression): ActionLevels {
  const inner = unwrapParens(e);
  if (inner.type === 'and') return bothLevels(eqlLevels(inner.left), eqlLevels(inner.right));
  if (inner.type === 'or') return eitherLevels(eqlLevels(inner.left), eqlLevels(inner.right));
  return leafLevels(inner.type === 'not' ? undefined : eqlCondition(inner), (fields) => eqlReads(inner, fields));
}

/** Whether `e` reads one of `fields`. */
function eqlReads(e: EqlExpression, fields: readonly string[]): boolean {
  switch (e.type) {
    case 'field':
      return fields.includes(e.name);
    case 'literal':
      return false;
    case 'function':
      return e.args.some((arg) => eqlReads(arg, fields));
    case 'compare':
    case 'arithmetic':
    case 'and':
    case 'or':
      return eqlReads(e.left, fields) || eqlReads(e.right, fields);
    case 'negate':
    case 'not':
      return eqlReads(e.operand, fields);
    case 'in':
      return eqlReads(e.value, fields) || e.list.some((item) => eqlReads(item, fields));
    case 'match':
      return eqlReads(e.value, fields);
    case 'paren':
      return eqlReads(e.expression, fields);
  }
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
