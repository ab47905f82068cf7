/**
 * EQL (Elastic's event query language) as Elasticsearch's EQL search evaluates it: parse, print, compile
 * event queries to a predicate and sequences to a matcher with bounded state. No dependency on the sensor
 * or the engine; field types, field reading and the date and IP helpers are the ones KQL uses.
 */
export type * from './ast.js';
export { EQL_FUNCTION_NAMES, junctionOperands, unwrapParens } from './ast.js';
export { EqlSyntaxError, EqlUnsupportedError, parseEql, parseEqlExpression } from './parser.js';
export { printEql, printEqlExpression } from './printer.js';
export { compileEql, EqlCompileError, type CompiledEql, type CompiledEventQuery, type CompiledSequenceQuery, type EqlCompileOptions } from './compile.js';
export { SequenceMatcher, type MatchedSequence, type SequenceMatcherOptions, type SequenceSpec } from './sequence.js';
