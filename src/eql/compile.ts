import { docValue, equalsTest, existsTest, fieldSource, keywordSetTest, rangeTest, type FieldKind } from '../kql/field-matchers.js';
import { fieldPath, someAtPath, type ValueTest } from '../kql/field-path.js';
import { parseIp, parseIpOrCidr } from '../kql/ip.js';
import type { KqlLiteral, KqlRangeOperator } from '../kql/ast.js';
import type {
  EqlComparisonOperator,
  EqlEventFilter,
  EqlExpression,
  EqlField,
  EqlFunctionCall,
  EqlIn,
  EqlLiteral,
  EqlPatternMatch,
  EqlPipe,
  EqlPosition,
  EqlQuery,
} from './ast.js';
import { junctionOperands, unwrapParens } from './ast.js';
import { parseEql } from './parser.js';
import { printEqlExpression } from './printer.js';
import { compileJavaRegex, compileLuceneRegex, EqlPatternError, foldCase } from './regex.js';
import { arithmetic, compareValues, EQL_FUNCTIONS, EqlScriptError, inList, insensitiveEquals, negate, not, type ArgumentInfo, type ScriptValue } from './script.js';
import { SequenceMatcher, type SequenceMatcherOptions, type SequenceSpec, type SequenceStageSpec } from './sequence.js';
import { compileEqlWildcard, compileEqlWildcardScript } from './wildcard.js';

/**
 * Compiling an EQL query into predicates with the answers Elasticsearch gives.
 *
 * Elasticsearch runs a condition in two ways (x-pack/plugin/eql/.../planner/QueryTranslator.java): what it
 * can translate becomes a Lucene query, the rest a Painless script. The two differ on arrays and missing
 * fields, and execsentry follows both:
 * - A query leaf (a field compared with a constant, `field in (…)`, `:`/like/regex on a field,
 *   `startsWith/endsWith/stringContains(field, "…")`, `cidrMatch(field, …)`, `field == null`) matches a
 *   document when any value of the field does; `not`, `and` and `or` over query leaves combine whole
 *   documents (a bool query), so `not`/`!=` are true when the field is missing.
 * - A script leaf (anything else: `length(f) > 3`, `substring(f, 1) == "x"`, `f + 1 == 2`, a function of a
 *   function) is evaluated once per combination of values of the fields it references — each reference
 *   iterating over its field's values, a missing field being one null — and holds when some combination
 *   gives true (QueryTranslator wraps it in MultiValueAwareScriptQuery; InternalEqlScriptUtils
 *   .multiValueDocValues). Null is not true (QL's nullSafeFilter), so a script is false on a missing field,
 *   negated or not: `not` over a script leaf stays inside the script (QL ExpressionTranslators.Nots).
 */

/** A query that cannot run: a type error, or a construct Elasticsearch refuses when it plans the query. */
export class EqlCompileError extends Error {
  readonly line: number;
  readonly column: number;
  constructor(message: string, at: EqlPosition) {
    super(`EQL error at line ${at.line}, column ${at.column}: ${message}`);
    this.name = 'EqlCompileError';
    this.line = at.line;
    this.column = at.column;
  }
}

export interface EqlCompileOptions {
  /** The field holding the event category (Elasticsearch's `event_category_field`); default `event.category`. */
  readonly eventCategoryField?: string;
  /** The current time for date math in comparisons with dates (epoch ms); default Date.now. */
  readonly now?: () => number;
}

type Predicate = (doc: object) => boolean;

/** What both kinds of compiled query share. */
interface CompiledEqlBase {
  readonly query: EqlQuery;
  /** The fields the query reads (full dotted names; a multi-field as the parent it is read from). */
  readonly fields: readonly string[];
  /**
   * The event categories the query can ever match: every category an event must have for some stage to
   * match (missing-event stages left out); null when a stage matches any category.
   */
  readonly categories: readonly string[] | null;
  readonly pipes: readonly EqlPipe[];
}

export interface CompiledEventQuery extends CompiledEqlBase {
  readonly kind: 'event';
  matches(doc: object): boolean;
  /**
   * Why a document does not match: the first top-level condition it fails (the category, or a conjunct of
   * the top-level `and`, printed as EQL); undefined when it matches. For `rules test --explain`.
   */
  explain(doc: object): string | undefined;
}

export interface CompiledSequenceQuery extends CompiledEqlBase {
  readonly kind: 'sequence';
  readonly spec: SequenceSpec;
  /** Which stages (1-based, as written after runs are expanded) a document matches, for `rules test --explain`. */
  matchingStages(doc: object): number[];
  /** A matcher with state of its own (one per rule, one per CLI run). */
  createMatcher<D extends object>(options: SequenceMatcherOptions): SequenceMatcher<D>;
}

export type CompiledEql = CompiledEventQuery | CompiledSequenceQuery;

export function compileEql(query: string | EqlQuery, options: EqlCompileOptions = {}): CompiledEql {
  const tree = typeof query === 'string' ? parseEql(query) : query;
  const compiler = new Compiler(options.eventCategoryField ?? 'event.category', options.now ?? Date.now);
  if (tree.type === 'event') {
    const matches = compiler.filter(tree.filter);
    const fields = compiler.fieldList();
    // built on first use: only `rules test --explain` asks
    let conjuncts: readonly { text: string; matches: Predicate }[] | undefined;
    return {
      kind: 'event',
      query: tree,
      fields,
      categories: tree.filter.category === null ? null : [tree.filter.category],
      pipes: tree.pipes,
      matches,
      explain: (doc) => {
        conjuncts ??= compiler.conjuncts(tree.filter);
        return conjuncts.find((conjunct) => !conjunct.matches(doc))?.text;
      },
    };
  }
  // `with runs=N` is the stage written N times (Elasticsearch's LogicalPlanBuilder expands it the same way).
  const stages: SequenceStageSpec[] = [];
  const categories = new Set<string>();
  let anyCategory = false;
  for (const stage of tree.stages) {
    const spec: SequenceStageSpec = {
      matches: compiler.filter(stage.filter),
      keys: compiler.joinKeys([...tree.by, ...stage.by]),
      missing: stage.missing,
    };
    for (let run = 0; run < stage.runs; run++) stages.push(spec);
    if (stage.missing) continue;
    if (stage.filter.category === null) anyCategory = true;
    else categories.add(stage.filter.category);
  }
  const until = tree.until === null ? null : { matches: compiler.filter(tree.until.filter), keys: compiler.joinKeys([...tree.by, ...tree.until.by]) };
  const spec: SequenceSpec = { stages, until, maxspanMs: tree.maxspan === null ? null : tree.maxspan.milliseconds };
  return {
    kind: 'sequence',
    query: tree,
    fields: compiler.fieldList(),
    categories: anyCategory ? null : [...categories],
    pipes: tree.pipes,
    spec,
    matchingStages: (doc) => stages.flatMap((stage, index) => (stage.matches(doc) ? [index + 1] : [])),
    createMatcher: <D extends object>(matcherOptions: SequenceMatcherOptions) => new SequenceMatcher<D>(spec, matcherOptions),
  };
}

// ---- values inside scripts ------------------------------------------------------------------------------------

/**
 * A compiled script expression: `values[i]` is the current value of the i-th field reference of its script
 * leaf. Constant subexpressions are folded at compile time, as Elasticsearch's optimizer folds them.
 */
type ScriptCode = (values: readonly ScriptValue[]) => ScriptValue;

/** A field reference inside a script leaf: its values in a document (possibly none). */
type FieldReader = (doc: object) => ScriptValue[];

/** The static type the compiler knows for an expression (ArgumentInfo's vocabulary). */
type StaticType = ArgumentInfo['type'];

/** A compiled script expression, its static type, and whether a value it gave is of a Java integer type. */
interface CompiledCode {
  readonly code: ScriptCode;
  readonly type: StaticType;
  readonly integer: (value: ScriptValue) => boolean;
}

/** Evaluates a constant expression now; what would fail every search at run time fails the query here. */
function foldConstant(code: ScriptCode, e: EqlExpression): ScriptValue {
  try {
    return code([]);
  } catch (err) {
    if (err instanceof EqlScriptError) throw new EqlCompileError(`${err.message} in [${printEqlExpression(e)}]`, e.at);
    throw err;
  }
}

const NUMERIC_TYPE: Partial<Record<FieldKind, StaticType>> = { integer: 'integer', float: 'double', double: 'double', boolean: 'boolean', ip: 'ip', date: 'date' };

/** Elasticsearch types a field by its mapping; execsentry's keyword fields are read as JSON gives them. */
function fieldStaticType(kind: FieldKind): StaticType {
  if (kind === 'keyword') return 'unknown';
  return NUMERIC_TYPE[kind] ?? 'string';
}

function literalType(literal: EqlLiteral): StaticType {
  const { value } = literal;
  if (value === null) return 'null';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  return literal.integer ? 'integer' : 'double';
}

const isInteger = (type: StaticType, value: ScriptValue): boolean => type === 'integer' || (type === 'unknown' && typeof value === 'number' && Number.isInteger(value));

const MIRRORED: Record<EqlComparisonOperator, EqlComparisonOperator> = { '==': '==', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };
const RANGE: Partial<Record<EqlComparisonOperator, KqlRangeOperator>> = { '<': 'lt', '<=': 'lte', '>': 'gt', '>=': 'gte' };


function hasFieldReference(e: EqlExpression): boolean {
  switch (e.type) {
    case 'literal':
      return false;
    case 'field':
      return true;
    case 'paren':
      return hasFieldReference(e.expression);
    case 'function':
      return e.args.some(hasFieldReference);
    case 'compare':
    case 'arithmetic':
    case 'and':
    case 'or':
      return hasFieldReference(e.left) || hasFieldReference(e.right);
    case 'negate':
    case 'not':
      return hasFieldReference(e.operand);
    case 'in':
      return hasFieldReference(e.value) || e.list.some(hasFieldReference);
    case 'match':
      return hasFieldReference(e.value);
  }
}

/** Whether an expression reads only optional fields (`?x`, `concat(?x, "a")` is not: a function of one). */
function onlyOptionalFields(e: EqlExpression): boolean {
  const inner = unwrapParens(e);
  return inner.type === 'field' && inner.optional;
}

/** `== null` or `!= null` with a null constant: Elasticsearch's IsNull / IsNotNull. */
function isNullCheck(operator: EqlComparisonOperator, right: EqlExpression): boolean {
  const inner = unwrapParens(right);
  return (operator === '==' || operator === '!=') && inner.type === 'literal' && inner.value === null;
}

/** The literal as KQL's field matchers take it (they serve both languages). */
function asKqlLiteral(value: ScriptValue): KqlLiteral {
  return { kind: 'literal', value, quoted: typeof value === 'string', text: value === null ? 'null' : String(value) };
}

/** Strings of a keyword-like field as its index holds them; other values by their text (numbers of unmapped fields). */
function stringTest(kind: FieldKind, test: (text: string) => boolean): ValueTest {
  return (value) => {
    const indexed = docValue(kind, value);
    return indexed !== undefined && test(typeof indexed === 'string' ? indexed : String(indexed));
  };
}


const STRING_KINDS: ReadonlySet<FieldKind> = new Set<FieldKind>(['keyword', 'caseless', 'wildcard', 'text', 'flattened']);

class Compiler {
  private readonly fields = new Set<string>();

  constructor(
    private readonly categoryField: string,
    private readonly now: () => number,
  ) {}

  fieldList(): readonly string[] {
    return Object.freeze([...this.fields]);
  }

  /** `category where condition`: the category is a term on the category field (any element of an array). */
  filter(filter: EqlEventFilter): Predicate {
    this.requireBoolean(filter.condition);
    const condition = this.condition(filter.condition);
    if (filter.category === null) return condition;
    const category = filter.category;
    this.fields.add(this.categoryField);
    const path = fieldPath(this.categoryField);
    const isCategory: ValueTest = (value) => value === category;
    return (doc) => someAtPath(doc, path, 0, isCategory) && condition(doc);
  }

  /** The parts of a filter an event must all pass, for explaining a non-match: the category, then each conjunct. */
  conjuncts(filter: EqlEventFilter): { text: string; matches: Predicate }[] {
    const parts: { text: string; matches: Predicate }[] = [];
    if (filter.category !== null) {
      const category = filter.category;
      const path = fieldPath(this.categoryField);
      const isCategory: ValueTest = (value) => value === category;
      parts.push({ text: `${this.categoryField} == ${JSON.stringify(category)}`, matches: (doc) => someAtPath(doc, path, 0, isCategory) });
    }
    for (const conjunct of junctionOperands(filter.condition, 'and')) parts.push({ text: printEqlExpression(conjunct), matches: this.condition(conjunct) });
    return parts;
  }

  /**
   * The join key of an event: one value per key, each the key field's value (an array when it has several);
   * undefined when a key that is not optional is missing — Elasticsearch adds a not-null filter for those
   * to every stage (x-pack/plugin/eql/.../optimizer/Optimizer.java, AddMandatoryJoinKeyFilter), so such an
   * event matches no stage. An optional key (`?field`) that is missing is null. The answer is refilled by the
   * next call (SequenceStageSpec.keys allows it), so that an event joining nothing allocates nothing.
   */
  joinKeys(keys: readonly EqlExpression[]): (doc: object) => readonly unknown[] | undefined {
    const readers = keys.map((key) => {
      const field = unwrapParens(key);
      if (field.type !== 'field') throw new EqlCompileError(`join keys must be fields, found [${printEqlExpression(key)}]`, key.at);
      return { read: this.fieldReader(field), optional: field.optional };
    });
    const values = new Array<unknown>(readers.length).fill(null);
    return (doc) => {
      for (let i = 0; i < readers.length; i++) {
        const { read, optional } = readers[i]!;
        const found = read(doc);
        if (found.length === 0) {
          if (!optional) return undefined;
          values[i] = null;
        } else values[i] = found.length === 1 ? found[0] : found.slice();
      }
      return values;
    };
  }

  /**
   * The condition and every operand of its and/or/not must be boolean: the Verifier's checkFilterConditionType
   * (QL VerifierChecks) and BinaryLogic / Not resolveType refuse a field or a value of another type. Only a
   * type known here is refused: a keyword field may be an unmapped one Elasticsearch would map as boolean;
   * constants are checked when folded (leaf).
   */
  private requireBoolean(e: EqlExpression): void {
    const inner = unwrapParens(e);
    if (inner.type === 'and' || inner.type === 'or') {
      this.requireBoolean(inner.left);
      this.requireBoolean(inner.right);
      return;
    }
    if (inner.type === 'not') {
      this.requireBoolean(inner.operand);
      return;
    }
    if (!hasFieldReference(inner)) return;
    const type = this.staticType(inner);
    if (type !== 'boolean' && type !== 'unknown' && type !== 'null') throw new EqlCompileError(`condition must be boolean, found [${printEqlExpression(e)}]`, e.at);
  }

  /** A boolean condition: and/or/not of query leaves and script leaves (see the module comment). */
  condition(e: EqlExpression): Predicate {
    switch (e.type) {
      case 'paren':
        return this.condition(e.expression);
      case 'and':
      case 'or':
        return this.junction(e.type, e);
      case 'not': {
        if (this.isScript(e.operand)) return this.script(e);
        const operand = this.condition(e.operand);
        return (doc) => !operand(doc);
      }
      default:
        return this.leaf(e) ?? this.script(e);
    }
  }

  /**
   * A chain of `and` (or of `or`) as one predicate over its operands, cheapest first: they have no side
   * effects, and Lucene too runs a conjunction's cheap clauses before its expensive ones (scripts last), so
   * the order changes no answer — `host.os.type == "linux" and process.command_line : ("*a*", …)` reads
   * the command line only for the events that got that far.
   */
  private junction(type: 'and' | 'or', e: EqlExpression): Predicate {
    const operands = junctionOperands(e, type);
    // In an `and`, a negated operand is usually an exclusion that holds (rules list them to let most events
    // through): it decides little, so it goes after the positive conditions of similar cost.
    const ordered = operands
      .map((operand, index) => ({ operand, index, cost: this.cost(operand) + (type === 'and' && operand.type === 'not' ? EXCLUSION_PENALTY : 0) }))
      .sort((a, b) => a.cost - b.cost || a.index - b.index)
      .map(({ operand }) => this.condition(operand));
    if (type === 'and') {
      return (doc) => {
        for (let i = 0; i < ordered.length; i++) if (!ordered[i]!(doc)) return false;
        return true;
      };
    }
    return (doc) => {
      for (let i = 0; i < ordered.length; i++) if (ordered[i]!(doc)) return true;
      return false;
    };
  }

  /**
   * A rough cost of evaluating a condition, for ordering: a term or set lookup 1, wildcard patterns by
   * their number, regular expressions and substring searches more, scripts (per value combination) most.
   */
  private cost(e: EqlExpression): number {
    const inner = unwrapParens(e);
    switch (inner.type) {
      case 'and':
      case 'or':
        return this.cost(inner.left) + this.cost(inner.right);
      case 'not':
        return this.cost(inner.operand);
      default:
        break;
    }
    if (!hasFieldReference(inner)) return 0;
    if (this.queryFieldOf(inner) === null) return 50;
    if (inner.type === 'match') {
      const wildcards = inner.patterns.filter((pattern) => typeof pattern.value === 'string' && /[*?]/.test(pattern.value)).length;
      return inner.operator === 'regex' ? 10 * inner.patterns.length : 1 + 3 * wildcards;
    }
    if (inner.type === 'function' && (inner.name === 'endsWith' || inner.name === 'stringContains')) return 4;
    return 1;
  }

  /** Whether Elasticsearch runs this condition as a script (it has no query translation). */
  private isScript(e: EqlExpression): boolean {
    const inner = unwrapParens(e);
    if (inner.type === 'and' || inner.type === 'or') return false;
    if (inner.type === 'not') return this.isScript(inner.operand);
    if (!hasFieldReference(inner)) return false;
    return this.queryFieldOf(inner) === null;
  }

  /**
   * The field a leaf is translated to a query on, or null when the leaf is a script: the translators take
   * a leaf whose input is a field itself (QueryTranslator and QL's ExpressionTranslators: wrapFunctionQuery
   * turns any other input into a script).
   */
  private queryFieldOf(e: EqlExpression): EqlField | null {
    const field = (x: EqlExpression): EqlField | null => {
      const inner = unwrapParens(x);
      return inner.type === 'field' ? inner : null;
    };
    switch (e.type) {
      case 'field':
        return e;
      case 'compare': {
        const { left, right } = this.orient(e.operator, e.left, e.right, e.at);
        return hasFieldReference(right.expression) ? null : field(left);
      }
      case 'in':
      case 'match':
        return field(e.value);
      case 'function': {
        const first = e.args[0];
        if (first === undefined) return null;
        const rest = e.args.slice(1);
        if (rest.some(hasFieldReference)) return null;
        if (e.name === 'cidrMatch' || e.name === 'startsWith' || e.name === 'endsWith' || e.name === 'stringContains') return field(first);
        return null;
      }
      default:
        return null;
    }
  }

  /**
   * A comparison with its constant on the right (QL's optimizer moves literals right, mirroring the
   * operator). A comparison of two non-constant sides is refused as Elasticsearch refuses it
   * (ExpressionTranslators.BinaryComparisons.checkBinaryComparison).
   */
  private orient(
    operator: EqlComparisonOperator,
    left: EqlExpression,
    right: EqlExpression,
    at: EqlPosition,
  ): { operator: EqlComparisonOperator; left: EqlExpression; right: { expression: EqlExpression } } {
    if (!hasFieldReference(right)) return { operator, left, right: { expression: right } };
    if (!hasFieldReference(left)) return { operator: MIRRORED[operator], left: right, right: { expression: left } };
    // An optional field the mapping lacks is a null literal to Elasticsearch (so `?x == ?y` is allowed and
    // is `?x == null`); execsentry has no mapping to tell, so such a side is compared per value, null
    // included, which answers as Elasticsearch does whenever it accepts the query.
    if (onlyOptionalFields(right)) return { operator, left, right: { expression: right } };
    throw new EqlCompileError(
      `comparisons against fields are not supported (Elasticsearch refuses them too); offender [${printEqlExpression(right)}] in [${printEqlExpression({
        type: 'compare',
        operator,
        left,
        right,
        at,
      })}]`,
      right.at,
    );
  }

  /** A query leaf, or null when the leaf is a script. */
  private leaf(e: EqlExpression): Predicate | null {
    if (!hasFieldReference(e)) {
      const value = this.constant(e);
      if (value !== null && typeof value !== 'boolean') throw new EqlCompileError(`condition must be boolean, found [${printEqlExpression(e)}]`, e.at);
      return value === true ? () => true : () => false;
    }
    const field = this.queryFieldOf(e);
    if (field === null) return null;
    const source = fieldSource('', field.name);
    const kind = source.kind;
    const test = this.leafTest(e, field, kind);
    this.fields.add(source.read);
    const path = fieldPath(source.read);
    if (test === 'missing') {
      const exists = existsTest(kind, field.name);
      return (doc) => !someAtPath(doc, path, 0, exists);
    }
    const { valueTest, negated } = test;
    return negated ? (doc) => !someAtPath(doc, path, 0, valueTest) : (doc) => someAtPath(doc, path, 0, valueTest);
  }

  /**
   * The per-value test of a query leaf on `field` (of mapping `kind`); `negated`: the leaf is the document
   * complement of the test (`!=`, `not in`); 'missing': the leaf is `field == null`.
   */
  private leafTest(e: EqlExpression, field: EqlField, kind: FieldKind): { valueTest: ValueTest; negated: boolean } | 'missing' {
    switch (e.type) {
      case 'field':
        // a bare boolean field is `field == true`
        return { valueTest: equalsTest(kind, asKqlLiteral(true), this.now), negated: false };
      case 'compare': {
        const { operator, right } = this.orient(e.operator, e.left, e.right, e.at);
        const value = this.constant(right.expression);
        // `x == null` is an existence test (QL's optimizer rewrites it to IsNull / IsNotNull)
        if (value === null) {
          if (operator === '==') return 'missing';
          if (operator === '!=') return { valueTest: existsTest(kind, field.name), negated: false };
          return { valueTest: () => false, negated: false };
        }
        if (operator === '==' || operator === '!=') return { valueTest: equalsTest(kind, asKqlLiteral(value), this.now), negated: operator === '!=' };
        return { valueTest: rangeTest(kind, RANGE[operator]!, asKqlLiteral(value), this.now), negated: false };
      }
      case 'in': {
        const values = this.inList(e);
        const valueTest = e.caseInsensitive ? this.insensitiveSetTest(kind, values) : keywordSetTest(kind, values.filter((v) => v !== null).map(asKqlLiteral));
        return { valueTest: STRING_KINDS.has(kind) || !e.caseInsensitive ? valueTest : () => false, negated: e.negated };
      }
      case 'match':
        this.requireString(kind, field, e.operator);
        return { valueTest: this.patternTest(e, kind), negated: false };
      case 'function':
        return { valueTest: this.functionTest(e, kind, field), negated: false };
      default:
        throw new Error(`no query translation for ${e.type}`);
    }
  }

  /**
   * The constants of an `in` list, the same for a query and a script: QL's In.resolveType refuses an item
   * that is not foldable ("Comparisons against variables are not (currently) supported"), whatever the
   * value on the left.
   */
  private inList(e: EqlIn): ScriptValue[] {
    const offender = e.list.find(hasFieldReference);
    if (offender !== undefined) {
      throw new EqlCompileError(`comparisons against fields are not supported (Elasticsearch refuses them too); offender [${printEqlExpression(offender)}] in [${printEqlExpression(e)}]`, offender.at);
    }
    return e.list.map((item) => this.constant(item));
  }

  /**
   * Case-insensitive terms, prefixes and wildcards compare as Lucene's case-insensitive queries do: each code
   * point matches its case variants (foldCase, regex.ts).
   */
  private insensitiveSetTest(kind: FieldKind, values: readonly ScriptValue[]): ValueTest {
    const wanted = new Set(values.filter((v): v is string => typeof v === 'string').map(foldCase));
    return stringTest(kind, (text) => wanted.has(foldCase(text)));
  }

  /** `:`, like and regex on a field: any pattern matching any value. */
  private patternTest(e: EqlPatternMatch, kind: FieldKind): ValueTest {
    return stringTest(kind, this.patternMatcher(e, 'query'));
  }

  /**
   * The patterns of `:`, like or regex as one matcher of strings, as a query on a field (Lucene's syntax and
   * folding) or inside a script (java.util.regex: QL's RegexProcessor). `:` is a case-insensitive `==` for a
   * pattern without wildcards and a case-insensitive like otherwise (EQL's InsensitiveWildcardEquals, which
   * the optimizer replaces). Several regex patterns are one alternation, as Elasticsearch joins them
   * (x-pack/plugin/eql/.../predicate/regex/Match.java); several like patterns match when any does.
   */
  private patternMatcher(e: EqlPatternMatch, flavour: 'query' | 'script'): (text: string) => boolean {
    const texts = e.patterns.map((pattern) => {
      if (typeof pattern.value !== 'string') throw new EqlCompileError(`pattern of [${e.operator}] must be a string, found [${printEqlExpression(pattern)}]`, pattern.at);
      return pattern.value;
    });
    const options = { caseInsensitive: e.caseInsensitive || e.operator === ':' };
    try {
      if (e.operator === 'regex') return (flavour === 'query' ? compileLuceneRegex : compileJavaRegex)(texts.join('|'), options);
      if (flavour === 'script') {
        const matchers = texts.map((text) => compileEqlWildcardScript(text, options));
        return matchers.length === 1 ? matchers[0]! : (value) => matchers.some((matches) => matches(value));
      }
      // On a field, patterns without wildcards are terms: one Set lookup for all of them (rules list dozens),
      // the value folded once when case does not count.
      const plain = texts.filter((text) => !/[*?]/.test(text));
      const matchers = texts.filter((text) => /[*?]/.test(text)).map((text) => compileEqlWildcard(text, options));
      if (plain.length === 0) return matchers.length === 1 ? matchers[0]! : (value) => matchers.some((matches) => matches(value));
      const fold = options.caseInsensitive ? foldCase : (text: string) => text;
      const terms = new Set(plain.map(fold));
      if (matchers.length === 0) return (value) => terms.has(fold(value));
      return (value) => terms.has(fold(value)) || matchers.some((matches) => matches(value));
    } catch (err) {
      if (err instanceof EqlPatternError) throw new EqlCompileError(err.message, e.patterns[0]!.at);
      throw err;
    }
  }

  private requireString(kind: FieldKind, field: EqlField, operation: string): void {
    if (STRING_KINDS.has(kind)) return;
    throw new EqlCompileError(`[${operation}] needs a string field; [${field.name}] is of type [${kind}]`, field.at);
  }

  /** startsWith, endsWith, stringContains and cidrMatch on a field, translated as Elasticsearch does. */
  private functionTest(e: EqlFunctionCall, kind: FieldKind, field: EqlField): ValueTest {
    this.checkCall(e);
    const constants = e.args.slice(1).map((arg) => this.constant(arg));
    if (e.name === 'cidrMatch') {
      // a terms query of the blocks on the ip field (QueryTranslator.Scalars)
      const ranges = constants.map((c) => (typeof c === 'string' ? parseIpOrCidr(c) : null)).filter((r) => r !== null);
      return (value) => {
        if (typeof value !== 'string') return false;
        const ip = parseIp(value);
        return ip !== null && ranges.some((range) => ip >= range.low && ip <= range.high);
      };
    }
    const needle = constants[0];
    if (typeof needle !== 'string') return () => false;
    const folded = e.caseInsensitive ? foldCase(needle) : needle;
    const prepare = e.caseInsensitive ? foldCase : (text: string) => text;
    if (e.name === 'startsWith') return stringTest(kind, (text) => prepare(text).startsWith(folded));
    // endsWith and stringContains become wildcard queries `*x` and `*x*` of the constant as written
    // (QueryTranslator.CaseInsensitiveScalarFunctions), so `*` and `?` in it act as wildcards there.
    const wildcard = compileEqlWildcard(e.name === 'endsWith' ? `*${needle}` : `*${needle}*`, { caseInsensitive: e.caseInsensitive });
    return stringTest(kind, wildcard);
  }

  /** The static checks of a function call: the `~` variant here, arity and argument types by the library. */
  private checkCall(e: EqlFunctionCall): void {
    const fn = EQL_FUNCTIONS[e.name];
    if (e.caseInsensitive && !fn.caseInsensitiveVariant) throw new EqlCompileError(`[${e.name}] has no case-insensitive variant [${e.name}~]`, e.at);
    const problem = fn.check(e.args.map((arg) => this.argumentInfo(arg)), printEqlExpression(e));
    if (problem !== null) throw new EqlCompileError(problem, e.at);
  }

  private argumentInfo(e: EqlExpression): ArgumentInfo {
    const text = printEqlExpression(e);
    if (!hasFieldReference(e)) {
      const value = this.constant(e);
      const inner = unwrapParens(e);
      const type: StaticType =
        inner.type === 'literal' ? literalType(inner) : value === null ? 'null' : typeof value === 'string' ? 'string' : typeof value === 'boolean' ? 'boolean' : Number.isInteger(value) ? 'integer' : 'double';
      return { type, constant: true, value, text };
    }
    return { type: this.staticType(e), constant: false, text };
  }

  private staticType(e: EqlExpression): StaticType {
    const inner = unwrapParens(e);
    switch (inner.type) {
      case 'literal':
        return literalType(inner);
      case 'field':
        return fieldStaticType(fieldSource('', inner.name).kind);
      case 'function':
        switch (inner.name) {
          case 'length':
          case 'indexOf':
            return 'integer';
          case 'between':
          case 'concat':
          case 'string':
          case 'substring':
            return 'string';
          case 'startsWith':
          case 'endsWith':
          case 'stringContains':
          case 'cidrMatch':
            return 'boolean';
          default:
            return 'unknown';
        }
      case 'arithmetic': {
        const left = this.staticType(inner.left);
        const right = this.staticType(inner.right);
        if (left === 'integer' && right === 'integer') return 'integer';
        return left === 'double' || right === 'double' ? 'double' : 'unknown';
      }
      case 'negate':
        return this.staticType(inner.operand);
      default:
        return 'boolean';
    }
  }

  /** The value of an expression without field references, folded now. */
  private constant(e: EqlExpression): ScriptValue {
    return this.code(e, []).code([]);
  }

  /** A script leaf: evaluated per combination of its field references' values; holds when one gives true. */
  private script(e: EqlExpression): Predicate {
    const readers: FieldReader[] = [];
    const { code } = this.code(e, readers);
    const count = readers.length;
    const values: ScriptValue[] = new Array<ScriptValue>(count).fill(null);
    const lists: ScriptValue[][] = new Array<ScriptValue[]>(count);
    let budget = 0;
    const some = (index: number): boolean => {
      if (index === count) return --budget >= 0 && code(values) === true;
      const list = lists[index]!;
      for (let i = 0; i < list.length && budget > 0; i++) {
        values[index] = list[i]!;
        if (some(index + 1)) return true;
      }
      return false;
    };
    return (doc) => {
      for (let i = 0; i < count; i++) {
        const found = readers[i]!(doc);
        lists[i] = found.length === 0 ? NULL_ONLY : found;
      }
      budget = MAX_SCRIPT_COMBINATIONS;
      return some(0);
    };
  }

  /**
   * The values a script reads from a field: its doc values as its mapping type gives them. The answer is
   * refilled by the next call, so that reading allocates nothing: a script reads each field reference once per
   * evaluation (each has its own reader) and join keys copy a list they keep.
   */
  private fieldReader(field: EqlField): FieldReader {
    const { read, kind } = fieldSource('', field.name);
    this.fields.add(read);
    const path = fieldPath(read);
    const values: ScriptValue[] = [];
    const collect: ValueTest = (raw) => {
      const value = docValue(kind, raw);
      if (value !== undefined) values.push(value);
      return false;
    };
    return (doc) => {
      values.length = 0;
      someAtPath(doc, path, 0, collect);
      return values;
    };
  }

  /**
   * Compiles an expression for a script; each field reference gets a slot in `readers`. Returns the code and
   * its static type.
   */
  private code(e: EqlExpression, readers: FieldReader[]): CompiledCode {
    const byType = (type: StaticType) => (value: ScriptValue) => isInteger(type, value);
    const folded = (code: ScriptCode, type: StaticType, fold: boolean, integer: (value: ScriptValue) => boolean = byType(type)): CompiledCode => {
      if (!fold) return { code, type, integer };
      const value = foldConstant(code, e);
      const wasInteger = integer(value);
      return { code: () => value, type, integer: () => wasInteger };
    };
    switch (e.type) {
      case 'literal': {
        const value = e.value;
        const type = literalType(e);
        return { code: () => value, type, integer: byType(type) };
      }
      case 'paren':
        return this.code(e.expression, readers);
      case 'field': {
        const slot = readers.length;
        readers.push(this.fieldReader(e));
        const type = this.staticType(e);
        return { code: (values) => values[slot] ?? null, type, integer: byType(type) };
      }
      case 'compare': {
        const { operator, left, right } = this.orient(e.operator, e.left, e.right, e.at);
        const l = this.code(left, readers).code;
        const r = this.code(right.expression, readers).code;
        // `== null` / `!= null` are IsNull / IsNotNull (EQL's optimizer, ReplaceNullChecks), true or false
        // but never null; a null reaching the right side from an unmapped optional field counts the same
        const nullCheck = operator === '==' || operator === '!=' ? (onlyOptionalFields(right.expression) || isNullCheck(operator, right.expression)) : false;
        const equal = operator === '==';
        return folded(
          (values) => {
            const a = l(values);
            const b = r(values);
            if (nullCheck && b === null) return equal ? a === null : a !== null;
            return compareValues(operator, a, b);
          },
          'boolean',
          !hasFieldReference(e),
        );
      }
      case 'arithmetic': {
        const left = this.code(e.left, readers);
        const right = this.code(e.right, readers);
        const operator = e.operator;
        return folded(
          (values) => {
            const a = left.code(values);
            const b = right.code(values);
            return arithmetic(operator, a, b, left.integer(a) && right.integer(b));
          },
          this.staticType(e),
          !hasFieldReference(e),
        );
      }
      case 'negate': {
        const operand = this.code(e.operand, readers);
        return folded(
          (values) => {
            const v = operand.code(values);
            return negate(v, operand.integer(v));
          },
          operand.type,
          !hasFieldReference(e),
          operand.integer,
        );
      }
      case 'not': {
        const operand = this.code(e.operand, readers).code;
        return folded((values) => not(asBoolean(operand(values))), 'boolean', !hasFieldReference(e));
      }
      case 'and':
      case 'or': {
        const left = this.code(e.left, readers).code;
        const right = this.code(e.right, readers).code;
        const isAnd = e.type === 'and';
        // three-valued, as QL's logic processors: false wins an and, true wins an or, null otherwise
        return folded(
          (values) => {
            const a = asBoolean(left(values));
            const b = asBoolean(right(values));
            if (isAnd) return a === false || b === false ? false : a === null || b === null ? null : true;
            return a === true || b === true ? true : a === null || b === null ? null : false;
          },
          'boolean',
          !hasFieldReference(e),
        );
      }
      case 'in': {
        const value = this.code(e.value, readers).code;
        const list = this.inList(e);
        const { caseInsensitive, negated } = e;
        return folded(
          (values) => {
            const found = inList(value(values), list, caseInsensitive);
            return negated ? not(found) : found;
          },
          'boolean',
          !hasFieldReference(e),
        );
      }
      case 'match': {
        const value = this.code(e.value, readers).code;
        const matches = this.patternMatcher(e, 'script');
        const plainInsensitive = e.operator === ':' && e.patterns.every((p) => typeof p.value === 'string' && !/[*?]/.test(p.value));
        const wanted = e.patterns.map((p) => p.value);
        return folded(
          (values) => {
            const v = value(values);
            if (v === null) return null;
            // `:` without wildcards in a script: EQL's InsensitiveBinaryComparisonProcessor
            if (plainInsensitive) {
              let result: boolean | null = false;
              for (const w of wanted) {
                const r = insensitiveEquals(v, w);
                if (r === true) return true;
                if (r === null) result = null;
              }
              return result;
            }
            return matches(typeof v === 'string' ? v : String(v));
          },
          'boolean',
          !hasFieldReference(e),
        );
      }
      case 'function': {
        this.checkCall(e);
        const args = e.args.map((arg) => this.code(arg, readers));
        const fn = EQL_FUNCTIONS[e.name];
        const caseInsensitive = e.caseInsensitive;
        const argValues: ScriptValue[] = new Array<ScriptValue>(args.length).fill(null);
        const integers: boolean[] = new Array<boolean>(args.length).fill(false);
        // whether the value just returned is a Java integer type (number() gives a Long or a Double by its input)
        let resultInteger = false;
        return folded(
          (values) => {
            for (let i = 0; i < args.length; i++) {
              const v = args[i]!.code(values);
              argValues[i] = v;
              integers[i] = args[i]!.integer(v);
            }
            const result = fn.evaluate(argValues, caseInsensitive, integers);
            resultInteger = typeof result === 'number' && fn.integerResult(argValues, integers);
            return result;
          },
          this.staticType(e),
          !hasFieldReference(e),
          () => resultInteger,
        );
      }
    }
  }
}

const NULL_ONLY: ScriptValue[] = [null];

/**
 * Value combinations one script leaf tries per event. One multi-valued field is linear in its values; two
 * in one script (`concat(process.args, process.parent.args)`) are their product, which an attacker
 * controls through argv: beyond this many the script answers false (Elasticsearch has no such bound).
 */
export const MAX_SCRIPT_COMBINATIONS = 65_536;

/** What a negated operand of an `and` adds to its cost when ordering (see junction). */
const EXCLUSION_PENALTY = 20;

function asBoolean(value: ScriptValue): boolean | null {
  return typeof value === 'boolean' ? value : null;
}
