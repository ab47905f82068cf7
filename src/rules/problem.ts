/**
 * What is wrong with a rule file, located as precisely as the format allows, printed as one line:
 * `rules/x.toml:14:3: rule "Name": rule.severity: why`.
 */
export interface RuleProblem {
  file: string;
  line?: number;
  column?: number;
  /** The rule's name (or rule_id when it has no usable name). */
  rule?: string;
  /** The offending key as the file spells it (`rule.severity` in TOML, `severity` in JSON). */
  key?: string;
  why: string;
  /** Unsupported rules: the rule's rule_id and type as written, for listing them (`rules list`). */
  ruleId?: string;
  ruleType?: string;
}

export function formatProblem(problem: RuleProblem): string {
  let where = problem.file;
  if (problem.line !== undefined) {
    where += `:${problem.line}`;
    if (problem.column !== undefined) where += `:${problem.column}`;
  }
  const parts = [where];
  if (problem.rule !== undefined) parts.push(`rule ${JSON.stringify(problem.rule)}`);
  if (problem.key !== undefined) parts.push(problem.key);
  parts.push(oneLine(problem.why));
  return parts.join(': ');
}

/** Messages from parsers can span lines (code frames); the contract is one line per problem. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .join(' ');
}

/** A value quoted for a message, cut so that a huge or hostile value cannot swamp the line. */
export function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
