import { describe, expect, it } from 'vitest';

import { compileEql, EqlCompileError, type EqlCompileOptions } from '../../src/eql/index.js';

// Sources, cited by these short names:
// - SYNTAX: Elastic's "EQL syntax reference" (https://www.elastic.co/guide/en/elasticsearch/reference/current/eql-syntax.html)
// - FUNCTIONS: Elastic's "EQL function reference" (https://www.elastic.co/guide/en/elasticsearch/reference/current/eql-function-ref.html)
// - QueryTranslator: x-pack/plugin/eql/src/main/java/org/elasticsearch/xpack/eql/planner/QueryTranslator.java — which leaves
//   become Lucene queries (any value of the field matches) and which become MultiValueAwareScriptQuery scripts
// - ExpressionTranslators: x-pack/plugin/ql/src/main/java/org/elasticsearch/xpack/ql/planner/ExpressionTranslators.java
//   (BinaryComparisons → term/range, NotEquals → NotQuery(term), InComparisons → terms, Likes → wildcard/regexp,
//   IsNulls → NotQuery(exists), Nots → negate() of the query, or a script over a script)
// - EqlTranslatorHandler: x-pack/plugin/eql/.../planner/EqlTranslatorHandler.java (wrapFunctionQuery: a query only when
//   the input is a FieldAttribute, otherwise a ScriptQuery)
// - multiValueDocValues: x-pack/plugin/eql/.../function/scalar/whitelist/InternalEqlScriptUtils.java — the script runs
//   per doc value and is true when one run is; a missing field runs once with null
// - Optimizer: x-pack/plugin/eql/.../optimizer/Optimizer.java (ReplaceNullChecks: `== null` → IsNull, `!= null` →
//   Not(IsNull); EqlBooleanSimplification keeps `not` where it is written: maybeSimplifyNegatable returns null)
// - Verifier: x-pack/plugin/eql/.../analysis/Verifier.java → QL VerifierChecks.checkFilterConditionType (the condition
//   must be boolean); In: x-pack/plugin/ql/.../predicate/operator/comparison/In.java (resolveType refuses a list item
//   that is not foldable)

function compile(query: string, options?: EqlCompileOptions) {
  const compiled = compileEql(query, options);
  if (compiled.kind !== 'event') throw new Error(`not an event query: ${query}`);
  return compiled;
}

const matches = (query: string, doc: object, options?: EqlCompileOptions): boolean => compile(query, options).matches(doc);

/** A process event with the given fields (the category is a term on event.category). */
const proc = (fields: object = {}): object => ({ event: { category: 'process' }, ...fields });

/** `condition` on a process event holding `fields`. */
const where = (condition: string, fields: object = {}): boolean => matches(`process where ${condition}`, proc(fields));

function compileError(query: string): EqlCompileError {
  try {
    compileEql(query);
  } catch (err) {
    if (err instanceof EqlCompileError) return err;
    throw err;
  }
  throw new Error(`compiled: ${query}`);
}

describe('the event category', () => {
  // SYNTAX, "Basic syntax": the category is an indexed value of the event category field (event.category by default,
  // event_category_field to change it); "Match any event category": `any` matches any category and documents
  // without the field.
  it('matches the category as a term of event.category, any value of an array', () => {
    expect(matches('process where true', { event: { category: 'process' } })).toBe(true);
    expect(matches('process where true', { event: { category: ['network', 'process'] } })).toBe(true);
    expect(matches('process where true', { event: { category: 'network' } })).toBe(false);
    expect(matches('process where true', {})).toBe(false);
    expect(matches('any where true', {})).toBe(true);
    expect(matches('any where true', { event: { category: 'network' } })).toBe(true);
  });

  it('is case-sensitive, and a quoted category is the same term', () => {
    // the category filter is an Equals on the category field, a term query (ExpressionTranslators.BinaryComparisons)
    expect(matches('process where true', { event: { category: 'Process' } })).toBe(false);
    expect(matches('"my-category" where true', { event: { category: 'my-category' } })).toBe(true);
  });

  it('reads the field named by eventCategoryField instead', () => {
    const options = { eventCategoryField: 'my.kind' };
    expect(matches('process where true', { my: { kind: 'process' } }, options)).toBe(true);
    expect(matches('process where true', { event: { category: 'process' } }, options)).toBe(false);
    expect(compile('process where true', options).fields).toEqual(['my.kind']);
  });

  it('holds together with the condition', () => {
    expect(matches('process where process.name == "a"', { event: { category: 'file' }, process: { name: 'a' } })).toBe(false);
    expect(matches('any where process.name == "a"', { event: { category: 'file' }, process: { name: 'a' } })).toBe(true);
  });
});

describe('nested and dotted documents', () => {
  // Elasticsearch indexes `{"process":{"name":"x"}}` and `{"process.name":"x"}` as the same field process.name
  // (object fields flatten to dotted paths), so every query sees both the same way.
  const nested = { event: { category: 'process' }, process: { name: 'x', pid: 5 } };
  const dotted = { 'event.category': 'process', 'process.name': 'x', 'process.pid': 5 };
  const mixed = { event: { category: 'process' }, process: { 'parent.name': 'x' } };

  it.each([
    ['process.name == "x"'],
    ['process.name : "X"'],
    ['process.pid > 4'],
    ['length(process.name) == 1'],
    ['process.name in ("x")'],
    ['startsWith(process.name, "x")'],
  ])('%s sees both', (condition) => {
    expect(matches(`process where ${condition}`, nested)).toBe(true);
    expect(matches(`process where ${condition}`, dotted)).toBe(true);
  });

  it('sees a dotted key inside an object', () => {
    expect(matches('process where process.parent.name == "x"', mixed)).toBe(true);
    expect(matches('process where length(process.parent.name) == 1', mixed)).toBe(true);
  });
});

describe('comparison operators on a field (queries: any value matches)', () => {
  // SYNTAX, "Comparison operators"; ExpressionTranslators.BinaryComparisons: `==` a term query, `<`… range queries,
  // `!=` NotQuery(term). A query matches a document when any value of the field does; a NotQuery is its complement.
  it('== is an exact, case-sensitive term, any value of an array', () => {
    expect(where('process.name == "cmd.exe"', { process: { name: 'cmd.exe' } })).toBe(true);
    expect(where('process.name == "cmd.exe"', { process: { name: 'CMD.EXE' } })).toBe(false);
    expect(where('process.name == "cmd.exe"', { process: { name: ['bash', 'cmd.exe'] } })).toBe(true);
    expect(where('process.name == "cmd.exe"', {})).toBe(false);
    // SYNTAX, "Differences from Endgame EQL syntax": `==` does not expand wildcards
    expect(where('process.name == "cmd*"', { process: { name: 'cmd.exe' } })).toBe(false);
    expect(where('process.name == "cmd*"', { process: { name: 'cmd*' } })).toBe(true);
  });

  it('!= is the complement of the term query: false when any value equals, true when the field is missing', () => {
    expect(where('process.name != "a"', { process: { name: 'b' } })).toBe(true);
    expect(where('process.name != "a"', { process: { name: ['a', 'b'] } })).toBe(false);
    expect(where('process.name != "a"', {})).toBe(true);
    expect(where('process.name != "a"', { process: { name: null } })).toBe(true);
  });

  it('ranges on a long field: any value in range', () => {
    expect(where('process.pid > 5', { process: { pid: 6 } })).toBe(true);
    expect(where('process.pid > 5', { process: { pid: 5 } })).toBe(false);
    expect(where('process.pid >= 5', { process: { pid: 5 } })).toBe(true);
    expect(where('process.pid < 5', { process: { pid: 4 } })).toBe(true);
    expect(where('process.pid <= 5', { process: { pid: 5 } })).toBe(true);
    expect(where('process.pid <= 5', { process: { pid: 6 } })).toBe(false);
    expect(where('process.pid > 5', { process: { pid: [1, 10] } })).toBe(true);
    expect(where('process.pid > 5', {})).toBe(false);
  });

  it('two ranges on one array field are two queries, each satisfied by some value', () => {
    // the EQL optimizer has no CombineBinaryComparisons (Optimizer.java's operator batch), so no single range
    expect(where('process.pid > 1 and process.pid < 5', { process: { pid: [0, 10] } })).toBe(true);
    expect(where('process.pid > 1 and process.pid < 5', { process: { pid: [0, 1] } })).toBe(false);
  });

  it('a long field takes numbers and numeric strings on both sides (the range and term queries parse them)', () => {
    expect(where('process.pid == 12', { process: { pid: '12' } })).toBe(true);
    expect(where('process.pid == "12"', { process: { pid: 12 } })).toBe(true);
    expect(where('process.pid == 12', { process: { pid: 13 } })).toBe(false);
  });

  it('strings compare lexicographically, case-sensitively (SYNTAX, ">=" and ">")', () => {
    expect(where('process.name < "b"', { process: { name: 'a' } })).toBe(true);
    expect(where('process.name < "b"', { process: { name: 'B' } })).toBe(true);
    expect(where('process.name < "b"', { process: { name: ['c', 'a'] } })).toBe(true);
    expect(where('process.name > "b"', { process: { name: 'a' } })).toBe(false);
  });

  it('an ip field compares as addresses, and a term of a CIDR block matches the block', () => {
    expect(where('source.ip == "10.1.2.3"', { source: { ip: '10.1.2.3' } })).toBe(true);
    expect(where('source.ip == "10.0.0.0/8"', { source: { ip: '10.1.2.3' } })).toBe(true);
    expect(where('source.ip == "10.0.0.0/8"', { source: { ip: '11.1.2.3' } })).toBe(false);
    expect(where('source.ip > "10.0.0.0"', { source: { ip: '10.0.0.1' } })).toBe(true);
  });

  it('a date field compares as instants (range queries with the date constant)', () => {
    expect(where('@timestamp > "2024-01-01T00:00:00Z"', { '@timestamp': '2024-01-02T00:00:00Z' })).toBe(true);
    expect(where('@timestamp < "2024-01-01T00:00:00Z"', { '@timestamp': '2024-01-02T00:00:00Z' })).toBe(false);
    expect(where('@timestamp == "2024-01-02T00:00:00.000Z"', { '@timestamp': '2024-01-02T00:00:00Z' })).toBe(true);
  });

  it('a boolean field: a bare reference and comparisons with true/false', () => {
    expect(where('process.code_signature.trusted', { process: { code_signature: { trusted: true } } })).toBe(true);
    expect(where('process.code_signature.trusted', { process: { code_signature: { trusted: false } } })).toBe(false);
    expect(where('process.code_signature.trusted == false', { process: { code_signature: { trusted: 'false' } } })).toBe(true);
    expect(where('process.code_signature.trusted != true', {})).toBe(true);
  });

  it('a keyword value over ignore_above 1024 is not indexed: no term matches it and the field is as if missing', () => {
    const long = 'a'.repeat(1025);
    expect(where(`process.name == "${long}"`, { process: { name: long } })).toBe(false);
    expect(where('process.name == null', { process: { name: long } })).toBe(true);
    expect(where('process.name != "x"', { process: { name: long } })).toBe(true);
    // process.command_line is a wildcard field: no ignore_above
    expect(where(`process.command_line == "${long}"`, { process: { command_line: long } })).toBe(true);
  });

  it('an optional field compared with a field is allowed (SYNTAX, "Optional fields"): null when missing', () => {
    expect(where('process.name == ?foo', { process: { name: 'a' }, foo: 'a' })).toBe(true);
    expect(where('process.name == ?foo', { process: { name: 'a' } })).toBe(false);
  });
});

describe('null checks', () => {
  // SYNTAX, "Check if a field exists": `!= null` matches events with a value, `== null` those without. Optimizer
  // ReplaceNullChecks makes them IsNull / Not(IsNull); on a field ExpressionTranslators.IsNulls is NotQuery(exists).
  it('field == null / != null are existence tests over all values', () => {
    expect(where('process.name == null', {})).toBe(true);
    expect(where('process.name == null', { process: { name: null } })).toBe(true);
    expect(where('process.name == null', { process: { name: [] } })).toBe(true);
    expect(where('process.name == null', { process: { name: 'a' } })).toBe(false);
    expect(where('process.name != null', { process: { name: [null, 'a'] } })).toBe(true);
    expect(where('?process.name != null', {})).toBe(false);
    expect(where('not process.name == null', { process: { name: 'a' } })).toBe(true);
  });

  it('null on a non-field is IsNull in a script: true for a run giving null, so true on a missing field', () => {
    expect(where('length(process.name) == null', {})).toBe(true);
    expect(where('length(process.name) == null', { process: { name: 'a' } })).toBe(false);
    expect(where('length(process.name) != null', {})).toBe(false);
    expect(where('length(process.name) != null', { process: { name: 'a' } })).toBe(true);
    // indexOf returns null when the substring is missing (FUNCTIONS, indexOf)
    expect(where('indexOf(process.name, "z") == null', { process: { name: 'abc' } })).toBe(true);
  });
});

describe('the query-vs-script difference on arrays and missing fields', () => {
  // QueryTranslator: a leaf on a field is a query (any value; `not` is the document complement, ExpressionTranslators
  // .Nots negate()); anything else is a MultiValueAwareScriptQuery: multiValueDocValues runs it per value (null for a
  // missing field), Nots keeps `not` inside the script, and null is not true.
  it('not over a query is true on a missing field', () => {
    expect(where('not process.name == "a"', {})).toBe(true);
    expect(where('not process.name : "a"', {})).toBe(true);
    expect(where('not process.name like "a*"', {})).toBe(true);
    expect(where('not process.name in ("a", "b")', {})).toBe(true);
    expect(where('not startsWith(process.name, "a")', {})).toBe(true);
    expect(where('not process.pid > 1', {})).toBe(true);
  });

  it('not over a script is false on a missing field', () => {
    expect(where('not length(process.name) > 1', {})).toBe(false);
    expect(where('not substring(process.name, 1) == "x"', {})).toBe(false);
    expect(where('not process.pid + 1 == 2', {})).toBe(false);
    expect(where('not length(process.name) > 1', { process: { name: 'a' } })).toBe(true);
  });

  it('a script holds when any value makes it true', () => {
    expect(where('length(process.args) > 3', { process: { args: ['a', 'abcd'] } })).toBe(true);
    expect(where('length(process.args) > 3', { process: { args: ['a', 'abc'] } })).toBe(false);
    expect(where('substring(process.name, 1) == "bc"', { process: { name: ['x', 'abc'] } })).toBe(true);
    // negated inside the script: true when some value is short, even though another is long
    expect(where('not length(process.args) > 3', { process: { args: ['a', 'abcd'] } })).toBe(true);
  });

  it('a negated query is false when any value matches', () => {
    expect(where('process.args != "a"', { process: { args: ['a', 'b'] } })).toBe(false);
    expect(where('not process.args == "a"', { process: { args: ['a', 'b'] } })).toBe(false);
    expect(where('process.args not in ("a")', { process: { args: ['a', 'b'] } })).toBe(false);
  });

  it('!= inside a script compares per value: true when some value differs', () => {
    expect(where('substring(process.args, 0) != "a"', { process: { args: ['a', 'b'] } })).toBe(true);
    expect(where('substring(process.args, 0) != "a"', {})).toBe(false);
  });

  it('a script reading two fields tries every combination of their values', () => {
    // FUNCTIONS, add: add(process.args_count, process.parent.args_count) with fields on both sides
    expect(where('add(process.args_count, process.parent.args_count) == 6', { process: { args_count: [1, 4], parent: { args_count: [2, 9] } } })).toBe(true);
    expect(where('add(process.args_count, process.parent.args_count) == 6', { process: { args_count: [1, 4], parent: { args_count: [3, 9] } } })).toBe(false);
    expect(where('add(process.args_count, process.parent.args_count) == 6', { process: { args_count: 4 } })).toBe(false);
  });

  it('not over and/or of leaves is the complement of the whole bool query', () => {
    // Nots: the operand translates to a bool query (not a ScriptQuery), so it is negated as a whole; no De Morgan
    // (EqlBooleanSimplification), so the script inside is not negated on its own
    expect(where('not (process.name == "a" and length(process.title) > 1)', { process: { name: 'a' } })).toBe(true);
    expect(where('not (process.name == "a" or length(process.title) > 1)', { process: { title: 'xy' } })).toBe(false);
  });

  it('and/or combine documents: a missing field makes a query leaf false and a negated one true', () => {
    expect(where('process.name == "a" or process.pid > 1', { process: { pid: 2 } })).toBe(true);
    expect(where('process.name == "a" and process.pid > 1', { process: { pid: 2 } })).toBe(false);
    expect(where('process.name != "a" and length(process.title) > 1', { process: { title: 'xy' } })).toBe(true);
  });
});

describe(': like like~ regex regex~ (queries on a field)', () => {
  // SYNTAX, "Comparison operators", "Pattern comparison keywords", "Wildcards", "Lookup operators";
  // ExpressionTranslators.Likes: wildcard / regexp queries with their case_insensitive flag, any value.
  it(': is case-insensitive equality, with wildcards a case-insensitive like', () => {
    expect(where('process.name : "CMD.exe"', { process: { name: 'cmd.EXE' } })).toBe(true);
    expect(where('process.name : "cmd"', { process: { name: 'cmd.exe' } })).toBe(false);
    expect(where('process.name : "doc*"', { process: { name: 'DOCUMENT' } })).toBe(true);
    expect(where('process.name : "doc?"', { process: { name: 'doc' } })).toBe(false);
    expect(where('process.name : ("x", "d?c")', { process: { name: 'DOC' } })).toBe(true);
    expect(where('process.name : "a"', { process: { name: ['b', 'A'] } })).toBe(true);
  });

  it('like is case-sensitive, like~ is not', () => {
    expect(where('process.name like "DOC*"', { process: { name: 'DOCS' } })).toBe(true);
    expect(where('process.name like "DOC*"', { process: { name: 'docs' } })).toBe(false);
    expect(where('process.name like~ "DOC*"', { process: { name: 'docs' } })).toBe(true);
    expect(where('process.name like "D?C"', { process: { name: 'DOC' } })).toBe(true);
    expect(where('process.name like ("x*", "D*C")', { process: { name: 'DISC' } })).toBe(true);
    expect(where('process.command_line like "*-enc *"', { process: { command_line: 'powershell -enc abc' } })).toBe(true);
  });

  it('regex is a Lucene regexp over the whole value, case-sensitive; regex~ is not', () => {
    expect(where('process.name regex "VALUE[^Z].?"', { process: { name: 'VALUEA' } })).toBe(true);
    expect(where('process.name regex "VALUE[^Z].?"', { process: { name: 'VALUEZ' } })).toBe(false);
    expect(where('process.name regex "VAL"', { process: { name: 'VALUE' } })).toBe(false);
    expect(where('process.name regex~ "value[^z].?"', { process: { name: 'VALUEA' } })).toBe(true);
    expect(where('process.name regex ("a.c", "x+")', { process: { name: 'xxx' } })).toBe(true);
  });

  it('a missing field matches no pattern', () => {
    expect(where('process.name : "*"', {})).toBe(false);
    expect(where('process.name like "*"', {})).toBe(false);
    expect(where('process.name regex ".*"', {})).toBe(false);
  });
});

describe('in, not in, in~, not in~', () => {
  // SYNTAX, "Lookup operators"; ExpressionTranslators.InComparisons: a terms query; `not in` is Not(In), a NotQuery.
  it('in is case-sensitive membership of any value', () => {
    expect(where('process.name in ("a", "b")', { process: { name: 'b' } })).toBe(true);
    expect(where('process.name in ("a", "b")', { process: { name: 'B' } })).toBe(false);
    expect(where('process.name in ("a", "b")', { process: { name: ['x', 'a'] } })).toBe(true);
    expect(where('process.name in ("a", "b")', {})).toBe(false);
    expect(where('process.pid in (1, 2)', { process: { pid: 2 } })).toBe(true);
  });

  it('not in is the complement: true on a missing field, false when any value is listed', () => {
    expect(where('process.name not in ("a", "b")', { process: { name: 'c' } })).toBe(true);
    expect(where('process.name not in ("a", "b")', {})).toBe(true);
    expect(where('process.name not in ("a", "b")', { process: { name: ['c', 'a'] } })).toBe(false);
  });

  it('in~ and not in~ ignore case', () => {
    expect(where('process.name in~ ("CMD.EXE")', { process: { name: 'cmd.exe' } })).toBe(true);
    expect(where('process.name not in~ ("CMD.EXE")', { process: { name: 'Cmd.Exe' } })).toBe(false);
    expect(where('process.name not in~ ("CMD.EXE")', {})).toBe(true);
  });

  it('in over a function is a script: per value, null not true', () => {
    expect(where('length(process.args) in (3, 4)', { process: { args: ['a', 'abcd'] } })).toBe(true);
    expect(where('length(process.args) not in (3, 4)', {})).toBe(false);
  });
});

describe('arithmetic and unary minus (scripts)', () => {
  // SYNTAX, "Math operators" (integer division rounds down); FUNCTIONS add/subtract/multiply/divide/modulo.
  it('computes on a long field per value', () => {
    expect(where('process.pid + 1 == 13', { process: { pid: 12 } })).toBe(true);
    expect(where('process.pid - 2 == 10', { process: { pid: 12 } })).toBe(true);
    expect(where('process.pid * 2 == 10', { process: { pid: [1, 5] } })).toBe(true);
    expect(where('process.pid % 5 == 2', { process: { pid: 12 } })).toBe(true);
    expect(where('-process.pid == -12', { process: { pid: 12 } })).toBe(true);
    expect(where('process.pid + 1 == 13', {})).toBe(false);
  });

  it('divides integers with truncation and doubles exactly (SYNTAX, "/ (divide)")', () => {
    expect(where('(4 / process.args_count) == 1', { process: { args_count: 3 } })).toBe(true);
    expect(where('(4 / process.args_count) == 1', { process: { args_count: 4 } })).toBe(true);
    expect(where('(4.0 / process.args_count) == 1', { process: { args_count: 3 } })).toBe(false);
    expect(where('(4.0 / process.args_count) == 1', { process: { args_count: 4 } })).toBe(true);
  });
});

describe('functions', () => {
  // FUNCTIONS, each function's examples; fields are script inputs unless QueryTranslator translates the call.
  it('add, subtract, multiply, divide, modulo', () => {
    expect(where('add(process.args_count, 5) == 9', { process: { args_count: 4 } })).toBe(true);
    expect(where('add(process.args_count, 0.5) == 4.5', { process: { args_count: 4 } })).toBe(true);
    expect(where('subtract(process.args_count, 2) == 2', { process: { args_count: 4 } })).toBe(true);
    expect(where('multiply(process.args_count, 2) == 8', { process: { args_count: 4 } })).toBe(true);
    expect(where('divide(process.args_count, 3) == 1', { process: { args_count: 4 } })).toBe(true);
    expect(where('divide(process.args_count, 3.0) > 1.3', { process: { args_count: 4 } })).toBe(true);
    expect(where('divide(12, process.args_count) == 3', { process: { args_count: 4 } })).toBe(true);
    expect(where('modulo(process.args_count, 3) == 1', { process: { args_count: 4 } })).toBe(true);
    // null handling: add(null, process.args_count) returns null — null is not true
    expect(where('add(process.args_count, 5) != 0', {})).toBe(false);
  });

  it('between and between~', () => {
    const path = { file: { path: 'C:\\Windows\\System32\\cmd.exe' } };
    expect(where('between(file.path, "System32\\\\", ".exe") == "cmd"', path)).toBe(true);
    expect(where('between(file.path, "system32\\\\", ".exe") == ""', path)).toBe(true);
    expect(where('between~(file.path, "system32\\\\", ".exe") == "cmd"', path)).toBe(true);
    expect(where('between(file.path, "\\\\", "\\\\", true) == "Windows\\\\System32"', path)).toBe(true);
    expect(where('between(file.path, "\\\\", "\\\\") == "Windows"', path)).toBe(true);
    expect(where('between(file.path, "a", "b") == ""', {})).toBe(false);
  });

  it('cidrMatch on an ip field is a terms query of the blocks: any value, negation true when missing', () => {
    // FUNCTIONS, cidrMatch (source.address = "192.168.152.12"); QueryTranslator.Scalars: TermsQuery on the ip field
    const ip = { source: { ip: '192.168.152.12' } };
    expect(where('cidrMatch(source.ip, "192.168.0.0/16")', ip)).toBe(true);
    expect(where('cidrMatch(source.ip, "192.168.0.0/16", "10.0.0.0/8")', ip)).toBe(true);
    expect(where('cidrMatch(source.ip, "10.0.0.0/8")', ip)).toBe(false);
    expect(where('cidrMatch(source.ip, "10.0.0.0/8", "10.128.0.0/9")', ip)).toBe(false);
    expect(where('cidrMatch(source.ip, "10.0.0.0/8")', { source: { ip: ['1.1.1.1', '10.1.2.3'] } })).toBe(true);
    expect(where('not cidrMatch(source.ip, "10.0.0.0/8")', {})).toBe(true);
    expect(where('cidrMatch(source.ip, "2001:db8::/32")', { source: { ip: '2001:db8::1' } })).toBe(true);
  });

  it('concat', () => {
    expect(where('concat(process.name, " ", 42) == "regsvr32.exe 42"', { process: { name: 'regsvr32.exe' } })).toBe(true);
    expect(where('concat("process is ", process.name) == "process is regsvr32.exe"', { process: { name: 'regsvr32.exe' } })).toBe(true);
    expect(where('concat(process.name, " ", process.args_count) == "regsvr32.exe 4"', { process: { name: 'regsvr32.exe', args_count: 4 } })).toBe(true);
    // concat(process.name, null) returns null
    expect(where('concat(process.name, "x") != ""', {})).toBe(false);
  });

  it('endsWith and endsWith~: a wildcard query on a field (CaseInsensitiveScalarFunctions)', () => {
    expect(where('endsWith(file.name, ".exe")', { file: { name: 'regsvr32.exe' } })).toBe(true);
    expect(where('endsWith(file.name, ".EXE")', { file: { name: 'regsvr32.exe' } })).toBe(false);
    expect(where('endsWith~(file.name, ".EXE")', { file: { name: 'regsvr32.exe' } })).toBe(true);
    expect(where('endsWith(file.name, ".exe")', { file: { name: ['a.dll', 'b.exe'] } })).toBe(true);
    expect(where('not endsWith(file.name, ".exe")', {})).toBe(true);
    // the substring is written into `*substring`, so its `*` is a wildcard there
    expect(where('endsWith(file.name, "*.exe")', { file: { name: 'regsvr32.exe' } })).toBe(true);
  });

  it('endsWith with a field as the substring is a script', () => {
    // FUNCTIONS, endsWith: endsWith("regsvr32.exe", file.extension) returns true
    expect(where('endsWith("regsvr32.exe", file.extension)', { file: { extension: '.exe' } })).toBe(true);
    expect(where('not endsWith("regsvr32.exe", file.extension)', {})).toBe(false);
  });

  it('indexOf and indexOf~', () => {
    const url = { url: { domain: 'subdomain.example.com' } };
    expect(where('indexOf(url.domain, "d") == 3', url)).toBe(true);
    expect(where('indexOf(url.domain, ".") == 9', url)).toBe(true);
    expect(where('indexOf(url.domain, ".", 10) == 17', url)).toBe(true);
    expect(where('indexOf(url.domain, ".", -6) == 9', url)).toBe(true);
    expect(where('indexOf(url.domain, "D") == null', url)).toBe(true);
    expect(where('indexOf~(url.domain, "D") == 3', url)).toBe(true);
    expect(where('indexOf(url.domain, ".", 30) == null', url)).toBe(true);
  });

  it('length', () => {
    expect(where('length(process.name) == 12', { process: { name: 'explorer.exe' } })).toBe(true);
    expect(where('length(process.name) == 0', { process: { name: '' } })).toBe(true);
    // a keyword value over ignore_above has no doc value: the script sees a missing field
    expect(where('length(process.name) > 1000', { process: { name: 'a'.repeat(1025) } })).toBe(false);
  });

  it('number', () => {
    expect(where('number(process.name) == 1337', { process: { name: '1337' } })).toBe(true);
    expect(where('number(process.name, 16) == 4919', { process: { name: '1337' } })).toBe(true);
    expect(where('number(process.name) == 4919', { process: { name: '0x1337' } })).toBe(true);
    expect(where('number(process.name) == 1337.5', { process: { name: '1337.5' } })).toBe(true);
  });

  it('startsWith and startsWith~: a prefix query on a field', () => {
    expect(where('startsWith(process.name, "regsvr32")', { process: { name: 'regsvr32.exe' } })).toBe(true);
    expect(where('startsWith(process.name, "REGSVR32")', { process: { name: 'regsvr32.exe' } })).toBe(false);
    expect(where('startsWith~(process.name, "REGSVR32")', { process: { name: 'regsvr32.exe' } })).toBe(true);
    expect(where('startsWith(process.name, "x")', { process: { name: ['a', 'xy'] } })).toBe(true);
    // a prefix query has no wildcards
    expect(where('startsWith(process.name, "r*")', { process: { name: 'regsvr32.exe' } })).toBe(false);
  });

  it('string', () => {
    expect(where('string(process.pid) == "12"', { process: { pid: 12 } })).toBe(true);
    expect(where('string(process.name) == "regsvr32.exe"', { process: { name: 'regsvr32.exe' } })).toBe(true);
    expect(where('string(process.code_signature.trusted) == "true"', { process: { code_signature: { trusted: true } } })).toBe(true);
  });

  it('stringContains and stringContains~: a wildcard query `*substring*` on a field', () => {
    expect(where('stringContains(process.name, "32")', { process: { name: 'regsvr32.exe' } })).toBe(true);
    expect(where('stringContains(process.name, ".EXE")', { process: { name: 'regsvr32.exe' } })).toBe(false);
    // SYNTAX, "Case-insensitive functions": stringContains~(process.name, ".exe") matches ".EXE"
    expect(where('stringContains~(process.name, ".exe")', { process: { name: 'REGSVR32.EXE' } })).toBe(true);
    expect(where('not stringContains~(process.name, "x")', {})).toBe(true);
    expect(where('stringContains(process.command_line, "-enc")', { process: { command_line: ['a', 'ps -enc x'] } })).toBe(true);
  });

  it('substring', () => {
    expect(where('substring(process.name, 0, 3) == "svc"', { process: { name: 'svchost.exe' } })).toBe(true);
    expect(where('substring(process.name, -4) == ".exe"', { process: { name: 'svchost.exe' } })).toBe(true);
    expect(where('substring(process.name, 1, -4) == "vchost"', { process: { name: 'svchost.exe' } })).toBe(true);
  });

  it('a function of a function is a script', () => {
    expect(where('startsWith(substring(process.name, 1), "vc")', { process: { name: 'svchost.exe' } })).toBe(true);
    expect(where('not startsWith(substring(process.name, 1), "vc")', {})).toBe(false);
    expect(where('length(concat(process.name, "ab")) == 3', { process: { name: ['x', 'yy'] } })).toBe(true);
  });
});

describe('constant folding', () => {
  // SYNTAX, "Match any condition": `file where true` matches any file event; the optimizer folds constants
  // (Optimizer.java, ConstantFolding) and prunes false filters (PruneFilters).
  it('folds true, false and constant comparisons', () => {
    expect(where('true')).toBe(true);
    expect(where('false')).toBe(false);
    expect(where('1 == 1')).toBe(true);
    expect(where('1 == 2')).toBe(false);
    expect(where('length("abc") == 3')).toBe(true);
    expect(where('"a" : "A"')).toBe(true);
    expect(where('not true')).toBe(false);
    expect(where('true and process.name == "a"', { process: { name: 'a' } })).toBe(true);
    expect(where('false or process.name == "a"', { process: { name: 'b' } })).toBe(false);
  });

  it('a constant null comparison is null, not true', () => {
    // SYNTAX, "Optional fields": `null != null` matches no events
    expect(where('null != null')).toBe(false);
    expect(where('?foo != null')).toBe(false);
    expect(where('?foo == null')).toBe(true);
  });
});

describe('compile errors, with line and column', () => {
  it('refuses a comparison of a field with a field (SYNTAX, "Comparing fields"; ExpressionTranslators.checkBinaryComparison)', () => {
    const err = compileError('process where process.parent.name == "foo" and process.parent.name == process.name');
    expect(err.message).toContain('comparisons against fields are not supported');
    expect([err.line, err.column]).toEqual([1, 71]);
    // "even if the fields are changed using a function"
    expect(compileError('process where\n  length(process.name) > process.pid').line).toBe(2);
  });

  it('refuses a field in an in list, as a query leaf and as a script (In.resolveType)', () => {
    const err = compileError('process where process.name in ("a", process.parent.name)');
    expect(err.message).toContain('comparisons against fields are not supported');
    expect([err.line, err.column]).toEqual([1, 37]);
    expect(compileError('process where length(process.name) in (1, process.pid)').column).toBe(43);
  });

  it('refuses a condition that is not boolean (Verifier → checkFilterConditionType; BinaryLogic/Not resolveType)', () => {
    expect(compileError('process where 1').message).toContain('condition must be boolean');
    expect(compileError('process where "a"').column).toBe(15);
    expect(compileError('process where process.pid').message).toContain('[process.pid]');
    expect(compileError('process where length(process.name)').message).toContain('condition must be boolean');
    expect(compileError('process where not length(process.name)').column).toBe(19);
    expect(compileError('process where process.name == "a" and 5').column).toBe(39);
    expect(compileError('process where process.pid + 1 or true').message).toContain('condition must be boolean');
  });

  it('refuses `~` on a function without a case-insensitive variant (SYNTAX, "Case-insensitive functions")', () => {
    for (const condition of ['length~(process.name) > 1', 'concat~(process.name) == "a"', 'substring~(process.name, 1) == "a"', 'cidrMatch~(source.ip, "10.0.0.0/8")']) {
      const err = compileError(`process where ${condition}`);
      expect(err.message).toContain('has no case-insensitive variant');
      expect(err.column).toBe(15);
    }
  });

  it('refuses a wrong argument count (FUNCTIONS, each "Syntax")', () => {
    expect(compileError('process where length(process.name, 1) > 1').message).toContain('expects exactly one argument');
    expect(compileError('process where startsWith(process.name)').message).toContain('expects exactly two arguments');
    expect(compileError('process where between(process.name, "a") == ""').message).toContain('expects three or four arguments');
    expect(compileError('process where add(1) == 1').message).toContain('expects exactly two arguments');
    expect(compileError('process where cidrMatch(source.ip)').message).toContain('expects at least two arguments');
  });

  it('refuses a bad regex, pointing at the pattern', () => {
    const err = compileError('process where process.name regex "a("');
    expect([err.line, err.column]).toEqual([1, 34]);
    expect(compileError('process where process.name regex~ "[a"').column).toBe(35);
  });

  it('refuses a pattern operator on a non-string field and a non-ip cidrMatch input', () => {
    expect(compileError('process where process.pid : "5"').message).toContain('needs a string field');
    expect(compileError('process where process.pid like "5*"').column).toBe(15);
    // FUNCTIONS, cidrMatch: a field argument must be of the ip type; the blocks must be constants
    expect(compileError('process where cidrMatch(process.pid, "10.0.0.0/8")').message).toContain('must be [ip]');
    expect(compileError('process where cidrMatch(source.ip, process.name)').message).toContain('must be a constant');
  });

  it('refuses what would fail every search when folded', () => {
    expect(compileError('process where 1 / 0 == 1').message).toContain('/ by zero');
  });
});

describe('bounds on attacker-sized arrays', () => {
  it('a script over two multi-valued fields stops after MAX_SCRIPT_COMBINATIONS combinations and answers false', async () => {
    const { MAX_SCRIPT_COMBINATIONS } = await import('../../src/eql/compile.js');
    const args = Array.from({ length: 3000 }, (_, i) => `a${i}`);
    const doc = { event: { category: ['process'] }, process: { args, parent: { args } } };
    const query = compileEql('process where concat(process.args, process.parent.args) : "*evil*"');
    expect(query.kind === 'event' && query.matches(doc)).toBe(false);
    // within the budget the same script still finds its combination
    const small = { event: { category: ['process'] }, process: { args: ['x', 'ev'], parent: { args: ['y', 'il'] } } };
    expect(query.kind === 'event' && query.matches(small)).toBe(true);
    expect(MAX_SCRIPT_COMBINATIONS).toBeLessThan(3000 * 3000);
  });
});
