import { PROCESS_EVENT_CONSTANTS, type ProcessAction, type RuleSeverity } from '../ecs/types.js';
import type { DateMath } from '../engine/date-math.js';
import { compileEql, EqlCompileError, EqlSyntaxError, EqlUnsupportedError, type CompiledSequenceQuery } from '../eql/index.js';
import { compileKql, fieldRead, KqlSyntaxError, termReader } from '../kql/index.js';
import { impossibleConditionRemark, namedActions, queryConditions, requiredTerms, unknownFieldRemark, type QueryConditions, type RequiredTerms } from './fit.js';
import type { RuleCandidate } from './formats.js';
import { describeValue, type RuleProblem } from './problem.js';
import { RULE_LANGUAGE, RuleSchema, SUPPORTED_TYPES, type RuleThreat, type SupportedRuleType } from './schema.js';


/**
 * A rule's compiled query: a predicate on one event (KQL, EQL event queries), or an EQL sequence, whose
 * matcher the engine creates per rule.
 */
export type RuleQuery =
  | { readonly kind: 'event'; readonly fields: readonly string[]; matches(doc: object): boolean; explain(doc: object): string | undefined }
  | CompiledSequenceQuery;

/** A rule ready to run: validated, its query compiled, its times parsed. */
export interface LoadedRule {
  ruleId: string;
  /** Kibana's saved-object id when the rule came from an export, else the rule_id. */
  uuid: string;
  name: string;
  description: string;
  type: SupportedRuleType;
  query: string;
  compiled: RuleQuery;
  /** EQL rules: the field whose date orders and spaces a sequence's events (Kibana's timestamp_field). */
  timestampField: string;
  /** EQL rules: the field `CATEGORY where` reads (Kibana's event_category_override; event.category by default). */
  eventCategoryField: string;
  /**
   * Values one of which a field must hold for the query to match, when its top level says so plainly
   * (see requiredTerms; the first of INDEX_FIELDS that has them): the engine skips the rule for other events.
   */
  indexTerms?: RequiredTerms & { readonly field: string };
  /**
   * The process events (event.action) the rule is evaluated on, from its query (fit.ts namedActions): exec
   * for most; fork and end only for rules that name them, and the sensor produces those for such rules.
   */
  eventActions: readonly ProcessAction[];
  severity: RuleSeverity;
  riskScore: number;
  version: number;
  enabled: boolean;
  /** Alerts per rule per interval are capped at maxSignals. */
  intervalMs: number;
  maxSignals: number;
  /** Kibana's look-back; parsed so a typo is caught, not used by a streaming engine. */
  from: DateMath;
  author: string[];
  license?: string;
  tags: string[];
  references: string[];
  threat: RuleThreat[];
  newTerms?: {
    fields: readonly string[];
    /** Per field, its values as Elasticsearch aggregates them (see termReader). */
    readers: readonly ((doc: unknown) => unknown[])[];
    historyWindowStart: DateMath;
  };
  /** Where the rule was read from, for messages. */
  source: { file: string; line?: number };
  /** Load-time remarks worth a warning (for example exception lists that are not applied). */
  remarks: string[];
}

export type ValidationOutcome =
  | { kind: 'rule'; rule: LoadedRule }
  | { kind: 'problem'; problems: RuleProblem[] }
  | { kind: 'unsupported'; problem: RuleProblem };

function ruleLabel(fields: Record<string, unknown>): string | undefined {
  if (typeof fields['name'] === 'string' && fields['name'] !== '') return fields['name'];
  if (typeof fields['rule_id'] === 'string' && fields['rule_id'] !== '') return fields['rule_id'];
  return undefined;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let at = root;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

/** Why a rule cannot run here at all (type, language, Kibana filters), before its keys are checked. */
function unsupportedReason(fields: Record<string, unknown>): { key: string; why: string } | undefined {
  const type = fields['type'];
  if (typeof type === 'string' && !(SUPPORTED_TYPES as readonly string[]).includes(type)) {
    return { key: 'type', why: `rule type ${describeValue(type)} is not supported (execsentry evaluates ${SUPPORTED_TYPES.slice(0, -1).join(', ')} and ${SUPPORTED_TYPES[SUPPORTED_TYPES.length - 1]} rules)` };
  }
  const language = fields['language'];
  const wanted = typeof type === 'string' ? RULE_LANGUAGE[type as SupportedRuleType] : undefined;
  if (language !== undefined && wanted !== undefined && language !== wanted) {
    return { key: 'language', why: `query language ${describeValue(language)} is not supported for ${type} rules (only ${wanted})` };
  }
  const filters = fields['filters'];
  if (Array.isArray(filters) && filters.length > 0) {
    return { key: 'filters', why: 'Kibana query filters are not supported; move the conditions into the query' };
  }
  return undefined;
}

export function validateCandidate(candidate: RuleCandidate): ValidationOutcome {
  const { file } = candidate;
  const at = (path: readonly PropertyKey[], why: string, rule: string | undefined, column?: number): RuleProblem => ({
    file,
    line: candidate.keyLine(path) ?? candidate.line,
    column,
    rule,
    key: candidate.keyName(path),
    why,
  });
  const raw = candidate.fields;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { kind: 'problem', problems: [{ file, line: candidate.line, why: `a rule must be an object, not ${describeValue(raw)}` }] };
  }
  const fields = raw as Record<string, unknown>;
  const label = ruleLabel(fields);

  const identity = {
    ...(typeof fields['rule_id'] === 'string' ? { ruleId: fields['rule_id'] } : {}),
    ...(typeof fields['type'] === 'string' ? { ruleType: fields['type'] } : {}),
  };
  const unsupported = unsupportedReason(fields);
  if (unsupported !== undefined) return { kind: 'unsupported', problem: { ...at([unsupported.key], unsupported.why, label), ...identity } };

  const parsed = RuleSchema.safeParse(fields);
  if (!parsed.success) {
    // every problem of the rule at once, the query's too, so that one run of `rules validate` lists them all
    const problems = parsed.error.issues.map((issue) => {
      const got = valueAt(fields, issue.path);
      // Parsers of settings (date math, intervals) quote the value in their own message.
      const why =
        got === undefined ? (issue.code === 'invalid_type' ? 'required' : issue.message) : issue.code === 'custom' ? issue.message : `${issue.message} (got ${describeValue(got)})`;
      return at(issue.path, why, label);
    });
    const type = fields['type'];
    const query = fields['query'];
    const override = typeof fields['event_category_override'] === 'string' ? fields['event_category_override'] : undefined;
    if (typeof query === 'string' && (type === 'query' || type === 'new_terms' || type === 'eql') && !problems.some((problem) => problem.key === candidate.keyName(['query']))) {
      const compiled = compileRuleQuery(candidate, label ?? '', type, query, override);
      if ('problem' in compiled) problems.push(compiled.problem);
    }
    return { kind: 'problem', problems };
  }
  const rule = parsed.data;

  let newTerms: LoadedRule['newTerms'];
  if (rule.type === 'new_terms') {
    if (rule.new_terms_fields === undefined) return { kind: 'problem', problems: [at(['new_terms_fields'], 'required for a new_terms rule', rule.name)] };
    if (new Set(rule.new_terms_fields).size !== rule.new_terms_fields.length) {
      return { kind: 'problem', problems: [at(['new_terms_fields'], `lists a field twice: ${describeValue(rule.new_terms_fields)}`, rule.name)] };
    }
    if (rule.history_window_start === undefined) {
      return { kind: 'problem', problems: [at(['history_window_start'], 'required for a new_terms rule', rule.name)] };
    }
    const readers: ((doc: unknown) => unknown[])[] = [];
    for (const [index, field] of rule.new_terms_fields.entries()) {
      const reader = termReader(field);
      if (reader === undefined) {
        const why = `"${field}" is a text, object or geo_point field, which Elasticsearch cannot aggregate on; new_terms needs keyword, numeric, date, boolean or ip fields`;
        return { kind: 'problem', problems: [at(['new_terms_fields', index], why, rule.name)] };
      }
      readers.push(reader);
    }
    newTerms = { fields: rule.new_terms_fields, readers, historyWindowStart: rule.history_window_start };
  }

  const outcome = compileRuleQuery(candidate, rule.name, rule.type, rule.query, rule.event_category_override);
  if ('problem' in outcome) {
    return outcome.unsupported ? { kind: 'unsupported', problem: { ...outcome.problem, ...identity } } : { kind: 'problem', problems: [outcome.problem] };
  }
  const compiled = outcome.compiled;
  if (rule.type === 'eql') {
    // the categories are values of the category field: compared with what the sensor puts there, when the
    // field is one of its constant ones (an override naming another field cannot be judged here)
    const categoryField = rule.event_category_override ?? 'event.category';
    const produced = PROCESS_EVENT_CONSTANTS[categoryField];
    const categories = (compiled as { categories: readonly string[] | null }).categories;
    const foreign = produced === undefined ? [] : (categories?.filter((category) => !produced.includes(category)) ?? []);
    if (foreign.length > 0) {
      const what = categoryField === 'event.category' ? `${foreign.map((category) => JSON.stringify(category)).join(', ')} events` : `${categoryField} ${foreign.map((category) => JSON.stringify(category)).join(', ')}`;
      const shown = produced!.map((c) => JSON.stringify(c)).join(', ');
      const why = `its query reads ${what}, which execsentry does not produce (${categoryField === 'event.category' ? `its events are of category ${shown}` : `its events' ${categoryField} is ${shown}`})`;
      return { kind: 'unsupported', problem: { ...at(['query'], why, rule.name), ...identity } };
    }
  }

  const remarks = notApplied(fields).map((what) => `rule ${JSON.stringify(rule.name)} has ${what}, which execsentry does not apply`);
  const unknownFields = unknownFieldRemark(rule.name, [...compiled.fields, ...(newTerms?.fields ?? []).map(fieldRead)]);
  if (unknownFields !== undefined) remarks.push(unknownFields);
  const conditions = queryConditions(RULE_LANGUAGE[rule.type], rule.query);
  const impossible = impossibleConditionRemark(rule.name, conditions);
  if (impossible !== undefined) remarks.push(impossible);
  return {
    kind: 'rule',
    rule: {
      ruleId: rule.rule_id,
      uuid: rule.id ?? rule.rule_id,
      name: rule.name,
      description: rule.description,
      type: rule.type,
      query: rule.query,
      compiled,
      timestampField: rule.timestamp_field ?? '@timestamp',
      eventCategoryField: rule.event_category_override ?? 'event.category',
      indexTerms: indexTerms(conditions),
      eventActions: namedActions(conditions),
      severity: rule.severity,
      riskScore: rule.risk_score,
      version: rule.version,
      enabled: rule.enabled,
      intervalMs: rule.interval,
      maxSignals: rule.max_signals,
      from: rule.from,
      author: rule.author,
      license: rule.license,
      tags: rule.tags,
      references: rule.references,
      threat: rule.threat,
      newTerms,
      source: { file, line: candidate.line },
      remarks,
    },
  };
}

/**
 * Kibana settings that change which alerts a rule raises or how they look, but that this agent does not
 * implement: loading the rule is still right (its query and terms are), the user is told what differs.
 */
const NOT_APPLIED: readonly { key: string; what: string }[] = [
  { key: 'exceptions_list', what: 'exception lists' },
  { key: 'alert_suppression', what: 'alert suppression' },
  { key: 'severity_mapping', what: 'a severity mapping' },
  { key: 'risk_score_mapping', what: 'a risk score mapping' },
];

function notApplied(fields: Record<string, unknown>): string[] {
  return NOT_APPLIED.filter(({ key }) => {
    const value = fields[key];
    return Array.isArray(value) ? value.length > 0 : value !== undefined && value !== null;
  }).map(({ what }) => what);
}

/** The fields rules are indexed by, in order of preference: the program first, as most rules name it. */
const INDEX_FIELDS = ['process.name', 'process.parent.name', 'process.executable', 'process.args'] as const;

function indexTerms(query: QueryConditions): (RequiredTerms & { readonly field: string }) | undefined {
  for (const field of INDEX_FIELDS) {
    const terms = requiredTerms(query, field);
    if (terms !== undefined) return { field, ...terms };
  }
  return undefined;
}

/** The rule's query compiled in its language, or the problem with it (an unsupported construct apart). */
function compileRuleQuery(
  candidate: RuleCandidate,
  ruleName: string,
  type: SupportedRuleType,
  query: string,
  eventCategoryOverride: string | undefined,
): { compiled: RuleQuery } | { problem: RuleProblem; unsupported: boolean } {
  try {
    if (type === 'eql') return { compiled: compileEql(query, eventCategoryOverride === undefined ? {} : { eventCategoryField: eventCategoryOverride }) };
    const kql = compileKql(query);
    return { compiled: { kind: 'event', fields: kql.fields, matches: kql.matches, explain: kql.explain } };
  } catch (err) {
    if (!(err instanceof KqlSyntaxError || err instanceof EqlSyntaxError || err instanceof EqlCompileError)) throw err;
    return { problem: queryProblem(candidate, ruleName, err, type === 'eql' ? 'EQL' : 'KQL'), unsupported: err instanceof EqlUnsupportedError };
  }
}

/** A query error placed in the file when the query is stored verbatim (TOML), else inside the query. */
function queryProblem(candidate: RuleCandidate, rule: string, err: KqlSyntaxError | EqlSyntaxError | EqlCompileError, language: 'KQL' | 'EQL'): RuleProblem {
  const start = candidate.queryStart;
  const why = err instanceof EqlUnsupportedError ? `EQL ${err.reason!}` : `invalid ${language}: ${err.message}`;
  if (start !== undefined) {
    return {
      file: candidate.file,
      line: start.line + err.line - 1,
      column: err.line === 1 ? start.column + err.column - 1 : err.column,
      rule,
      key: candidate.keyName(['query']),
      why,
    };
  }
  return {
    file: candidate.file,
    line: candidate.keyLine(['query']) ?? candidate.line,
    rule,
    key: candidate.keyName(['query']),
    why: `${why} (query line ${err.line}, column ${err.column})`,
  };
}
