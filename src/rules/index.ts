import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '../errors.js';
import { describeErrno, MiB, readRegularFile, UnreadableFile } from '../io/files.js';
import { parseRuleFile, RULE_FILE_EXTENSIONS } from './formats.js';
import { formatProblem, type RuleProblem } from './problem.js';
import { validateCandidate, type LoadedRule } from './validate.js';

export type { LoadedRule } from './validate.js';
export { formatProblem, type RuleProblem } from './problem.js';

/**
 * The rules shipped with the package (Elastic's "Unusual Interactive Shell Launched from System User" under
 * linux/, execsentry's own reverse-shell rule under execsentry/),
 * found from this module's own location so that it works from a checkout, from dist/ and from a global
 * install alike.
 */
export const BUILTIN_RULES_PATH = fileURLToPath(new URL('../../rules/', import.meta.url));

/**
 * A Kibana export of every prebuilt rule is about 20 MiB; a rule file larger than this is not one, and
 * reading it whole would cost the agent that much memory on every reload.
 */
export const MAX_RULE_FILE_BYTES = 64 * MiB;

export interface RuleSetOptions {
  /** Skip rules of unsupported type or language with a warning instead of refusing the set. */
  skipUnsupported: boolean;
}

export interface RuleSet {
  /** Every valid rule, enabled or not, in file order. */
  rules: LoadedRule[];
  /** Unsupported rules passed over because of skipUnsupported, with why. */
  skipped: RuleProblem[];
  /** Things worth a warning that do not stop the set (export entries passed over, exceptions not applied). */
  warnings: string[];
}

export interface RuleCheck extends RuleSet {
  problems: RuleProblem[];
}

/** Every rule file under `path`, recursively, in a stable order; hidden entries are passed over. */
async function ruleFilesUnder(path: string, problems: RuleProblem[]): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    problems.push({ file: path, why: `cannot read: ${describeErrno(err)}` });
    return [];
  }
  if (!info.isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await ruleFilesUnder(child, problems)));
    else if (RULE_FILE_EXTENSIONS.some((extension) => entry.name.endsWith(extension))) files.push(child);
  }
  return files;
}

/**
 * Reads and validates every rule under `paths` and reports every problem found, without throwing for bad
 * rules: what `rules validate` prints, and what loadRuleSet turns into one error.
 */
export async function checkRules(paths: readonly string[], options: RuleSetOptions): Promise<RuleCheck> {
  const check: RuleCheck = { rules: [], skipped: [], warnings: [], problems: [] };
  const firstSeen = new Map<string, LoadedRule>();
  for (const path of paths) {
    const before = check.rules.length + check.skipped.length + check.problems.length;
    const files = await ruleFilesUnder(path, check.problems);
    for (const file of files) {
      let text: string;
      try {
        text = (await readRegularFile(file, MAX_RULE_FILE_BYTES)).toString('utf8');
      } catch (err) {
        check.problems.push({ file, why: `cannot read: ${err instanceof UnreadableFile ? err.reason : describeErrno(err)}` });
        continue;
      }
      const parsed = parseRuleFile(file, text);
      check.problems.push(...parsed.problems);
      check.warnings.push(...parsed.notes);
      for (const candidate of parsed.candidates) {
        const outcome = validateCandidate(candidate);
        if (outcome.kind === 'problem') check.problems.push(...outcome.problems);
        else if (outcome.kind === 'unsupported') (options.skipUnsupported ? check.skipped : check.problems).push(outcome.problem);
        else {
          const earlier = firstSeen.get(outcome.rule.ruleId);
          if (earlier !== undefined) {
            check.problems.push({
              file,
              line: candidate.keyLine(['rule_id']) ?? candidate.line,
              rule: outcome.rule.name,
              key: candidate.keyName(['rule_id']),
              why: `rule_id ${outcome.rule.ruleId} is already used by ${formatSource(earlier)}`,
            });
            continue;
          }
          firstSeen.set(outcome.rule.ruleId, outcome.rule);
          check.rules.push(outcome.rule);
          check.warnings.push(...outcome.rule.remarks);
        }
      }
    }
    if (check.rules.length + check.skipped.length + check.problems.length === before) {
      check.problems.push({ file: path, why: `no rules found (rule files end in ${RULE_FILE_EXTENSIONS.join(', ')})` });
    }
  }
  return check;
}

function formatSource(rule: LoadedRule): string {
  return rule.source.line === undefined ? rule.source.file : `${rule.source.file}:${rule.source.line}`;
}

/**
 * The rule set to run, or a ValidationError whose message is the first problem as one line (and how
 * many more there are): an agent never runs with a rule silently dropped.
 */
export async function loadRuleSet(paths: readonly string[], options: RuleSetOptions): Promise<RuleSet> {
  const check = await checkRules(paths.length === 0 ? [BUILTIN_RULES_PATH] : paths, options);
  const [first, ...more] = check.problems;
  if (first !== undefined) {
    const suffix = more.length === 0 ? '' : ` (and ${more.length} more problem${more.length === 1 ? '' : 's'}; \`execsentry rules validate\` lists them all)`;
    throw new ValidationError(formatProblem(first) + suffix);
  }
  return { rules: check.rules, skipped: check.skipped, warnings: check.warnings };
}
