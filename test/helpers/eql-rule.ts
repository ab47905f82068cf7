/**
 * A detection-rules TOML EQL rule (the repository's layout: [metadata], [rule] with type and language
 * "eql", the query as a multi-line literal string starting on the line after `query = '''`, one
 * [[rule.threat]]). `lines` replaces or adds [rule] keys by name, written as whole lines; the query's first
 * line is the line after `query = '''` (see queryLine).
 */
export function eqlToml(
  rule: { id: string; name: string },
  query: string,
  lines: Record<string, string> = {},
): string {
  const keys: Record<string, string> = {
    author: 'author = ["execsentry tests"]',
    description: `description = "Test rule ${rule.name}."`,
    from: 'from = "now-9m"',
    index: 'index = ["logs-endpoint.events.process*"]',
    interval: 'interval = "5m"',
    language: 'language = "eql"',
    license: 'license = "Apache-2.0"',
    max_signals: 'max_signals = 100',
    name: `name = "${rule.name}"`,
    risk_score: 'risk_score = 73',
    rule_id: `rule_id = "${rule.id}"`,
    severity: 'severity = "high"',
    tags: 'tags = ["Test: EQL", "OS: Linux"]',
    type: 'type = "eql"',
    version: 'version = 2',
    ...lines,
  };
  return [
    '[metadata]',
    'creation_date = "2024/05/01"',
    'maturity = "development"',
    '',
    '[rule]',
    ...Object.values(keys),
    "query = '''",
    query,
    "'''",
    '',
    '[[rule.threat]]',
    'framework = "MITRE ATT&CK"',
    '[[rule.threat.technique]]',
    'id = "T1059"',
    'name = "Command and Scripting Interpreter"',
    'reference = "https://attack.mitre.org/techniques/T1059/"',
    '[rule.threat.tactic]',
    'id = "TA0002"',
    'name = "Execution"',
    'reference = "https://attack.mitre.org/tactics/TA0002/"',
    '',
  ].join('\n');
}

/** The file line of the `query = '''` key in a text made by eqlToml. */
export function queryKeyLine(toml: string): number {
  return toml.split('\n').findIndex((line) => line.startsWith("query = '''")) + 1;
}
