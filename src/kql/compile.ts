import type { KqlLiteral, KqlNode, KqlTerm } from './ast.js';
import { termText } from './ast.js';
import { equalsTest, existsTest, fieldKind, fieldSource, keywordSetTest, multiFieldsOf, rangeTest, type FieldKind } from './field-matchers.js';
import { fieldPath, someAtPath, someLeaf, someValue, type ValueTest } from './field-path.js';
import { parseKql } from './parser.js';
import { printKql } from './printer.js';
import { compileWildcard } from './wildcard.js';

/** Reads one field: its value (an array for several values; undefined or null when absent). */
export type FieldAccessor = (field: string) => unknown;

export interface CompiledQuery {
  /** Whether the document matches. Nested objects, dotted keys (`{"process.name": …}`) or both. */
  matches(doc: object): boolean;
  /**
   * The same answer, reading fields through `get` instead of a document. `get` is called with the names in
   * `fields`; for a query with a wildcard field name (`process.*:x`) or a value with no field, `get` is also
   * called with the wildcard's literal prefix (`process`) or with '' and must then return the object at that
   * path ('' = the whole document). Values from `get` have no place in a document, so the nesting bound
   * (MAX_DOCUMENT_DEPTH) counts from each of them.
   */
  matchesAccessor(get: FieldAccessor): boolean;
  /**
   * The fields the query reads, full dotted paths (wildcard names as patterns; '*' = every field); a
   * multi-field (`process.name.caseless`) is listed as the parent it is read from (`process.name`).
   */
  readonly fields: readonly string[];
  /**
   * Why a document does not match: the first child of the top-level `and` it fails (the whole query when
   * there is no top-level `and`), printed as KQL; undefined when it matches. For `rules test --explain`.
   */
  explain(doc: object): string | undefined;
}

export interface CompileOptions {
  /** The current time for date math (`now-1d`) in epoch milliseconds; default Date.now. Replays pass the event's time. */
  now?: () => number;
}

/**
 * One compiled node: the same predicate over a document and over an accessor, and a rough cost for ordering.
 * onDoc's `depth` is the number of objects and arrays around `doc` in the whole document (inside a nested
 * query, the subquery's document is an object within it).
 */
interface Plan {
  readonly cost: number;
  readonly onDoc: (doc: unknown, depth: number) => boolean;
  readonly onAccessor: (get: FieldAccessor) => boolean;
}

const KEYWORD_LIKE: ReadonlySet<FieldKind> = new Set<FieldKind>(['keyword', 'wildcard', 'flattened', 'caseless']);

const ALWAYS: Plan = { cost: 0, onDoc: () => true, onAccessor: () => true };

class Compiler {
  readonly fields = new Set<string>();

  constructor(private readonly now: () => number) {}

  /** `prefix` is the nested path ('' at the top, 'a.b.' inside `a.b:{…}`): field names inside are relative to it. */
  compile(node: KqlNode, prefix: string): Plan {
    switch (node.type) {
      case 'match_all':
        return ALWAYS;
      case 'is':
        return this.leaf(node.field, prefix, (kind) => equalsTest(kind, node.value, this.now), node.value.kind === 'wildcard' ? 2 : 1);
      case 'exists':
        return this.leaf(node.field, prefix, (kind, fullName) => existsTest(kind, fullName), 1);
      case 'range':
        return this.leaf(node.field, prefix, (kind) => rangeTest(kind, node.operator, node.value, this.now), 2);
      case 'nested':
        return this.nested(node.path, node.query, prefix);
      case 'not': {
        const child = this.compile(node.child, prefix);
        return { cost: child.cost, onDoc: (doc, depth) => !child.onDoc(doc, depth), onAccessor: (get) => !child.onAccessor(get) };
      }
      case 'and':
        return this.and(node.children.map((child) => this.compile(child, prefix)));
      case 'or':
        return this.or(node.children, prefix);
    }
  }

  /**
   * A test on one field's values; a wildcard field name tests every leaf and multi-field whose name it
   * matches (Elasticsearch expands patterns against the mapping), no field at all every leaf.
   */
  private leaf(field: KqlTerm | null, prefix: string, testFor: (kind: FieldKind, fullName: string) => ValueTest, cost: number): Plan {
    if (field !== null && field.kind === 'literal') {
      const source = fieldSource(prefix, field.text);
      this.fields.add(prefix + source.read);
      return this.fieldPlan(source.read, testFor(source.kind, prefix + field.text), cost);
    }
    // Each leaf is tested per its own field type (leniently: a value that does not fit a field's type just
    // does not match there, as Elasticsearch's all-fields queries do). A field pattern also covers the
    // multi-fields whose names it matches; a value with no field searches the index's default fields, which
    // on Elastic Defend's indices (built by Fleet) list no multi-fields.
    const pattern = field === null ? null : compileWildcard(field.parts);
    this.fields.add(prefix + (field === null ? '*' : termText(field)));
    const tests = new Map<string, ValueTest>();
    const testsAt = (path: string): ValueTest => {
      const fullName = prefix + path;
      if (pattern === null) return testFor(fieldKind(fullName), fullName);
      const all: ValueTest[] = [];
      if (pattern(path)) all.push(testFor(fieldKind(fullName), fullName));
      for (const [name, kind] of multiFieldsOf(fullName) ?? []) {
        if (pattern(`${path}.${name}`)) all.push(testFor(kind, `${fullName}.${name}`));
      }
      return all.length === 1 ? all[0]! : (value, depth) => all.some((test) => test(value, depth));
    };
    const visit = (path: string, value: unknown, depth: number): boolean => {
      let test = tests.get(path);
      if (test === undefined) {
        test = testsAt(path);
        if (tests.size < 1000) tests.set(path, test);
      }
      return test(value, depth);
    };
    const root = field === null ? '' : literalRoot(field.parts[0]!);
    return {
      cost: 20,
      onDoc: (doc, depth) => someLeaf(doc, '', visit, depth),
      onAccessor: (get) => someLeaf(get(root), root, visit),
    };
  }

  private fieldPlan(name: string, test: ValueTest, cost: number): Plan {
    const path = fieldPath(name);
    return {
      cost: cost + path.length * 0.1,
      onDoc: (doc, depth) => someAtPath(doc, path, 0, test, depth),
      onAccessor: (get) => someValue(get(name), test),
    };
  }

  /** `path:{ query }`: the whole query must hold within one object of the path (one array element). */
  private nested(pathTerm: KqlTerm, query: KqlNode, prefix: string): Plan {
    const name = termText(pathTerm);
    const fullName = prefix + name;
    this.fields.add(fullName);
    const inner = this.compile(query, `${fullName}.`);
    const element: ValueTest = (value, depth) => value !== null && typeof value === 'object' && inner.onDoc(value, depth);
    const path = fieldPath(name);
    return {
      cost: 5 + inner.cost,
      onDoc: (doc, depth) => someAtPath(doc, path, 0, element, depth),
      onAccessor: (get) => someValue(get(name), element),
    };
  }

  /** and/or have no side effects and never throw, so children run cheapest first. */
  private and(children: Plan[]): Plan {
    const plans = byCost(children);
    const cost = plans.reduce((sum, plan) => sum + plan.cost, 0);
    if (plans.length === 1) return plans[0]!;
    const docs = plans.map((plan) => plan.onDoc);
    const accessors = plans.map((plan) => plan.onAccessor);
    return {
      cost,
      onDoc: (doc, depth) => {
        for (let i = 0; i < docs.length; i++) if (!docs[i]!(doc, depth)) return false;
        return true;
      },
      onAccessor: (get) => {
        for (let i = 0; i < accessors.length; i++) if (!accessors[i]!(get)) return false;
        return true;
      },
    };
  }

  /**
   * `is` children on the same field are merged into one read of the field with one combined test (a Set for
   * plain values on keyword fields): `user.name:(daemon or bin or …)` reads user.name once.
   */
  private or(children: readonly KqlNode[], prefix: string): Plan {
    const groups = new Map<string, Extract<KqlNode, { type: 'is' }>[]>();
    for (const child of children) {
      if (child.type === 'is' && child.field !== null && child.field.kind === 'literal') {
        const group = groups.get(child.field.text);
        if (group === undefined) groups.set(child.field.text, [child]);
        else group.push(child);
      }
    }
    // compiled in query order (so `fields` lists fields as written), each group where its first member is
    const plans: Plan[] = [];
    for (const child of children) {
      const group = child.type === 'is' && child.field !== null && child.field.kind === 'literal' ? groups.get(child.field.text) : undefined;
      if (group === undefined || group.length === 1) plans.push(this.compile(child, prefix));
      else if (group[0] === child) plans.push(this.valueGroup(group, prefix));
    }
    const sorted = byCost(plans);
    if (sorted.length === 1) return sorted[0]!;
    const docs = sorted.map((plan) => plan.onDoc);
    const accessors = sorted.map((plan) => plan.onAccessor);
    return {
      cost: sorted.reduce((sum, plan) => sum + plan.cost, 0),
      onDoc: (doc, depth) => {
        for (let i = 0; i < docs.length; i++) if (docs[i]!(doc, depth)) return true;
        return false;
      },
      onAccessor: (get) => {
        for (let i = 0; i < accessors.length; i++) if (accessors[i]!(get)) return true;
        return false;
      },
    };
  }

  /** `f:(a or b or …)`: one read of the field, one combined test (a Set lookup for plain keyword values). */
  private valueGroup(group: readonly Extract<KqlNode, { type: 'is' }>[], prefix: string): Plan {
    const { read, kind } = fieldSource(prefix, termText(group[0]!.field!));
    this.fields.add(prefix + read);
    const tests: ValueTest[] = [];
    const plain: KqlLiteral[] = [];
    for (const node of group) {
      if (KEYWORD_LIKE.has(kind) && node.value.kind === 'literal') plain.push(node.value);
      else tests.push(equalsTest(kind, node.value, this.now));
    }
    if (plain.length > 0) tests.unshift(keywordSetTest(kind, plain));
    const test: ValueTest =
      tests.length === 1
        ? tests[0]!
        : (value, depth) => {
            for (let i = 0; i < tests.length; i++) if (tests[i]!(value, depth)) return true;
            return false;
          };
    return this.fieldPlan(read, test, tests.length);
  }
}

function byCost(plans: Plan[]): Plan[] {
  return plans
    .map((plan, index) => ({ plan, index }))
    .sort((a, b) => a.plan.cost - b.plan.cost || a.index - b.index)
    .map(({ plan }) => plan);
}

/** The literal object path before a field pattern's first wildcard: `process.*` → `process`, `proc*` → ''. */
function literalRoot(firstPart: string): string {
  const dot = firstPart.lastIndexOf('.');
  return dot < 0 ? '' : firstPart.slice(0, dot);
}

/** Parses (when given text) and compiles a query into a predicate; throws KqlSyntaxError for bad text. */
export function compileKql(query: string | KqlNode, options: CompileOptions = {}): CompiledQuery {
  const node = typeof query === 'string' ? parseKql(query) : query;
  const compiler = new Compiler(options.now ?? Date.now);
  const plan = compiler.compile(node, '');
  const fields = Object.freeze([...compiler.fields]);
  const { onDoc, onAccessor } = plan;
  // built on first use: only `rules test --explain` asks
  let conjuncts: readonly { text: string; plan: Plan }[] | undefined;
  return {
    matches: (doc) => onDoc(doc, 0),
    matchesAccessor: (get) => onAccessor(get),
    fields,
    explain: (doc) => {
      conjuncts ??= (node.type === 'and' ? node.children : [node]).map((child) => ({ text: printKql(child), plan: compiler.compile(child, '') }));
      return conjuncts.find((conjunct) => !conjunct.plan.onDoc(doc, 0))?.text;
    },
  };
}
