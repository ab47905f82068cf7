/**
 * KQL (Kibana's query language, "kuery"): parse, print, compile to a predicate, and read fields, with the
 * answers Elasticsearch gives for Elastic Defend's mappings. No dependency on the sensor or the engine.
 */
export type {
  KqlAnd,
  KqlExists,
  KqlIs,
  KqlLiteral,
  KqlMatchAll,
  KqlNested,
  KqlNode,
  KqlNot,
  KqlOr,
  KqlRange,
  KqlRangeOperator,
  KqlTerm,
  KqlWildcard,
} from './ast.js';
export { KqlSyntaxError, parseKql } from './parser.js';
export { printKql } from './printer.js';
export { compileKql, type CompiledQuery, type CompileOptions, type FieldAccessor } from './compile.js';
export { getField } from './field-path.js';
export { fieldRead, termReader } from './field-matchers.js';
export { parseDateMath } from './date.js';
