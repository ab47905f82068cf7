import { parse as parseToml, TomlError } from 'smol-toml';
import { jsonErrorOffset } from '../config.js';
import { TomlNewTermsSchema } from './schema.js';
import { describeValue, type RuleProblem } from './problem.js';

/**
 * Reading the three rule formats into one shape: the flat key set of Kibana's rule API (RuleSchema), plus
 * what is needed to point at a key in the file when it is wrong. Validation happens in validate.ts.
 */

export type KeyPath = readonly PropertyKey[];

export interface RuleCandidate {
  /** The rule's keys as Kibana names them (detection-rules' nested new-terms table already flattened). */
  fields: unknown;
  file: string;
  /** Where the rule starts, when the format has one line per rule (NDJSON). */
  line?: number;
  /** The key as the file spells it, for messages. */
  keyName(path: KeyPath): string;
  /** The line of the key in the file, when it can be told. */
  keyLine(path: KeyPath): number | undefined;
  /** Where the query's first character sits in the file, when the query is stored verbatim there. */
  queryStart?: { line: number; column: number };
}

export interface ParsedFile {
  candidates: RuleCandidate[];
  problems: RuleProblem[];
  /** Entries deliberately passed over (Kibana's export summary, exception lists), for a warning. */
  notes: string[];
}

export const RULE_FILE_EXTENSIONS = ['.toml', '.ndjson', '.json'] as const;

export function parseRuleFile(file: string, text: string): ParsedFile {
  if (file.endsWith('.toml')) return parseTomlFile(file, text);
  if (file.endsWith('.ndjson')) return parseNdjsonFile(file, text);
  if (file.endsWith('.json')) return parseJsonFile(file, text);
  return {
    candidates: [],
    problems: [{ file, why: `not a rule file: the name must end in ${RULE_FILE_EXTENSIONS.join(', ')}` }],
    notes: [],
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function joinPath(path: KeyPath): string {
  let text = '';
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : `${text === '' ? '' : '.'}${String(part)}`;
  return text;
}

/** Where the detection-rules layout keeps the keys that Kibana has at the top level. */
const DETECTION_RULES_NESTED_KEYS: Readonly<Record<string, string>> = {
  new_terms_fields: 'rule.new_terms.value',
  history_window_start: 'rule.new_terms.history_window_start.value',
};

function detectionRulesKeyName(path: KeyPath): string {
  const [head, ...rest] = path;
  const nested = typeof head === 'string' ? DETECTION_RULES_NESTED_KEYS[head] : undefined;
  if (nested !== undefined) return rest.length === 0 ? nested : `${nested}${joinPath(rest).replace(/^(?!\[)/, '.')}`;
  return `rule.${joinPath(path)}`;
}

/**
 * The detection-rules document (`{metadata, rule}`) flattened to Kibana's keys. Returns a problem when the
 * `[rule.new_terms]` table is not in the repository's shape.
 */
function flattenDetectionRulesDocument(
  file: string,
  document: Record<string, unknown>,
  keyLine: (tomlKey: string) => number | undefined,
): { fields: Record<string, unknown> } | { problem: RuleProblem } {
  const rule = document['rule'];
  if (!isRecord(rule)) return { problem: { file, key: 'rule', why: 'missing the [rule] table' } };
  const { new_terms: newTerms, ...fields } = rule;
  const name = typeof rule['name'] === 'string' ? rule['name'] : undefined;
  if (newTerms !== undefined) {
    const parsed = TomlNewTermsSchema.safeParse(newTerms);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const key = `rule.new_terms${joinPath(issue.path).replace(/^(?!\[|$)/, '.')}`;
      return { problem: { file, line: keyLine(key) ?? keyLine('rule.new_terms'), rule: name, key, why: issue.message } };
    }
    fields['new_terms_fields'] = parsed.data.value;
    fields['history_window_start'] = parsed.data.history_window_start[0]!.value;
  }
  return { fields };
}

// ---------------------------------------------------------------------------------------------- TOML

const TOML_TABLE_HEADER = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/;
const TOML_KEY = /^\s*([A-Za-z0-9_-]+)\s*=/;
const MULTILINE_QUOTE = /'''|"""/g;

/** Line numbers of every table header and `key =` in a TOML text (the first one when repeated). */
function indexTomlLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let table = '';
  let inMultilineString = false;
  text.split('\n').forEach((line, index) => {
    const quotes = line.match(MULTILINE_QUOTE)?.length ?? 0;
    if (!inMultilineString) {
      const header = TOML_TABLE_HEADER.exec(line);
      if (header !== null) {
        table = header[1]!.replace(/\s+/g, '').replace(/["']/g, '');
        if (!lines.has(table)) lines.set(table, index + 1);
      } else {
        const key = TOML_KEY.exec(line);
        const dotted = key === null ? undefined : table === '' ? key[1]! : `${table}.${key[1]!}`;
        if (dotted !== undefined && !lines.has(dotted)) lines.set(dotted, index + 1);
      }
    }
    if (quotes % 2 === 1) inMultilineString = !inMultilineString;
  });
  return lines;
}

/**
 * The first character of `query = '''…` in the file. Only literal strings hold the query verbatim (basic
 * strings have escapes); a multi-line one starts on the next line when the opening quotes end theirs.
 */
function locateTomlQuery(text: string, queryLine: number | undefined): { line: number; column: number } | undefined {
  if (queryLine === undefined) return undefined;
  const line = text.split('\n')[queryLine - 1] ?? '';
  const opening = /=\s*('''|')/.exec(line);
  if (opening === null) return undefined;
  const afterQuote = opening.index + opening[0].length;
  if (opening[1]!.length === 3 && line.slice(afterQuote).trim() === '') return { line: queryLine + 1, column: 1 };
  return { line: queryLine, column: afterQuote + 1 };
}

function parseTomlFile(file: string, text: string): ParsedFile {
  let document: Record<string, unknown>;
  try {
    document = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const why = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      return { candidates: [], problems: [{ file, line: err.line, column: err.column, why: `not valid TOML: ${why}` }], notes: [] };
    }
    throw err;
  }
  const lines = indexTomlLines(text);
  const tomlKeyLine = (key: string): number | undefined => {
    // A key inside an array of tables (rule.threat[0].tactic.id) is found by its table path without indexes.
    const withoutIndexes = key.replace(/\[\d+\]/g, '');
    for (let candidate = withoutIndexes; candidate !== ''; candidate = candidate.slice(0, Math.max(0, candidate.lastIndexOf('.')))) {
      const line = lines.get(candidate);
      if (line !== undefined) return line;
      if (!candidate.includes('.')) break;
    }
    return undefined;
  };
  const flattened = flattenDetectionRulesDocument(file, document, tomlKeyLine);
  if ('problem' in flattened) return { candidates: [], problems: [flattened.problem], notes: [] };
  return {
    candidates: [
      {
        fields: flattened.fields,
        file,
        keyName: detectionRulesKeyName,
        keyLine: (path) => tomlKeyLine(detectionRulesKeyName(path)),
        queryStart: locateTomlQuery(text, lines.get('rule.query')),
      },
    ],
    problems: [],
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------- NDJSON

/** Kibana's rule export ends with a summary object, and may carry exception lists; neither is a rule. */
function nonRuleExportEntry(value: unknown): string | undefined {
  if (!isRecord(value) || 'rule_id' in value) return undefined;
  if ('exported_count' in value) return 'export summary';
  if ('list_id' in value) return `exception list ${describeValue(value['list_id'])} (exception lists are not applied by execsentry)`;
  return undefined;
}

function parseNdjsonFile(file: string, text: string): ParsedFile {
  const parsed: ParsedFile = { candidates: [], problems: [], notes: [] };
  text.split('\n').forEach((raw, index) => {
    const lineNumber = index + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      parsed.problems.push(jsonSyntaxProblem(file, raw, err, index));
      return;
    }
    const skipped = nonRuleExportEntry(value);
    if (skipped !== undefined) {
      if (skipped !== 'export summary') parsed.notes.push(`${file}:${lineNumber}: skipped ${skipped}`);
      return;
    }
    parsed.candidates.push({ fields: value, file, line: lineNumber, keyName: joinPath, keyLine: () => lineNumber });
  });
  return parsed;
}

// ---------------------------------------------------------------------------------------------- JSON

function positionAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** JSON.parse's complaint, placed by the config loader's JSON checker (V8's messages rarely give a position). */
function jsonSyntaxProblem(file: string, text: string, err: unknown, lineOffset = 0): RuleProblem {
  const offset = jsonErrorOffset(text);
  const why = `not valid JSON: ${(err as Error).message}`;
  if (offset === undefined) return { file, line: lineOffset === 0 ? undefined : lineOffset + 1, why };
  const { line, column } = positionAt(text, offset);
  return { file, line: lineOffset + line, column, why };
}

/** The line of `"key":` when the key occurs exactly once in the file; otherwise unknown. */
function uniqueJsonKeyLine(text: string, key: PropertyKey | undefined): number | undefined {
  if (typeof key !== 'string') return undefined;
  const needle = JSON.stringify(key);
  const first = text.indexOf(needle);
  if (first === -1 || text.indexOf(needle, first + needle.length) !== -1) return undefined;
  return positionAt(text, first).line;
}

function parseJsonFile(file: string, text: string): ParsedFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { candidates: [], problems: [jsonSyntaxProblem(file, text, err)], notes: [] };
  }
  const parsed: ParsedFile = { candidates: [], problems: [], notes: [] };
  const entries = Array.isArray(value) ? value : [value];
  for (const entry of entries) {
    const skipped = nonRuleExportEntry(entry);
    if (skipped !== undefined) {
      if (skipped !== 'export summary') parsed.notes.push(`${file}: skipped ${skipped}`);
      continue;
    }
    if (isRecord(entry) && !('rule_id' in entry) && isRecord(entry['rule'])) {
      // The detection-rules layout written as JSON ({"metadata": …, "rule": …}).
      const flattened = flattenDetectionRulesDocument(file, entry, () => undefined);
      if ('problem' in flattened) parsed.problems.push(flattened.problem);
      else
        parsed.candidates.push({
          fields: flattened.fields,
          file,
          keyName: detectionRulesKeyName,
          keyLine: (path) => uniqueJsonKeyLine(text, path[0] === 'new_terms_fields' ? 'value' : path[0]),
        });
      continue;
    }
    parsed.candidates.push({ fields: entry, file, keyName: joinPath, keyLine: (path) => uniqueJsonKeyLine(text, path[0]) });
  }
  return parsed;
}
