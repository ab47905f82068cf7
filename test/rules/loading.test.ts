import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { BUILTIN_RULES_PATH, checkRules, formatProblem, loadRuleSet } from '../../src/rules/index.js';
import { DEFAULT_RULE_QUERY } from '../../bench/kql-fixtures.js';
import { EXPORT_SUMMARY, kibanaRule, ruleTree, tomlRule } from './fixtures.js';

// The query text, kept once (bench/kql-fixtures.ts); the TOML multi-line literal adds the final newline.
const BUILTIN_QUERY = `${DEFAULT_RULE_QUERY}\n`;
const REVERSE_SHELL_RULE_ID = '4caba3a8-7215-47fb-b429-4f61796a0dcd';

describe('the built-in rules', () => {
  it('are Elastic\'s and execsentry\'s own, both loaded when no path is given', async () => {
    const { rules, skipped } = await loadRuleSet([], { skipUnsupported: false });
    expect(skipped).toEqual([]);
    expect(rules.map((rule) => rule.ruleId).sort()).toEqual([REVERSE_SHELL_RULE_ID, '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb']);
  });

  it('execsentry\'s reverse-shell rule: a query rule of its own id and author, MITRE-mapped, on execsentry\'s stdio and account fields', async () => {
    const { rules } = await loadRuleSet([], { skipUnsupported: false });
    const rule = rules.find((candidate) => candidate.ruleId === REVERSE_SHELL_RULE_ID)!;
    expect(rule.source.file).toBe(join(BUILTIN_RULES_PATH, 'execsentry', 'execution_shell_on_network_socket_from_system_account.toml'));
    expect(rule).toMatchObject({
      name: 'Shell or Interpreter on a Network Socket Started by a System Account',
      type: 'query',
      version: 1,
      enabled: true,
      severity: 'high',
      riskScore: 73,
      author: ['execsentry'],
    });
    expect(rule.threat.map((threat) => threat.tactic.id)).toEqual(['TA0002', 'TA0011']);
    expect(rule.threat[0]?.technique?.[0]?.subtechnique?.[0]?.id).toBe('T1059.004');
    expect(rule.compiled.fields).toEqual(
      expect.arrayContaining(['execsentry.user.system_account', 'process.name', 'execsentry.stdio.stdin.socket.family', 'execsentry.stdio.stdout.socket.family']),
    );
    const check = await checkRules([rule.source.file], { skipUnsupported: false });
    expect(check.problems).toEqual([]);
    expect(check.warnings).toEqual([]);
  });

  it('Elastic\'s rule is loaded as Elastic ships version 1', async () => {
    const { rules } = await loadRuleSet([], { skipUnsupported: false });
    const rule = rules.find((candidate) => candidate.ruleId === '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb')!;
    expect(rule.source.file.startsWith(BUILTIN_RULES_PATH)).toBe(true);
    expect(rule).toMatchObject({
      ruleId: '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb',
      uuid: '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb',
      name: 'Unusual Interactive Shell Launched from System User',
      description:
        'This rule detects interactive shells launched from system users. System users typically do not require interactive shells, and their presence may indicate malicious activity.',
      type: 'new_terms',
      version: 1,
      enabled: true,
      severity: 'low',
      riskScore: 21,
      intervalMs: 5 * 60_000,
      maxSignals: 100,
      author: ['Elastic'],
      license: 'Elastic License v2',
      tags: ['Domain: Endpoint', 'OS: Linux', 'Use Case: Threat Detection', 'Tactic: Defense Evasion', 'Data Source: Elastic Defend'],
      threat: [
        {
          framework: 'MITRE ATT&CK',
          tactic: { id: 'TA0005', name: 'Defense Evasion', reference: 'https://attack.mitre.org/tactics/TA0005/' },
          technique: [
            {
              id: 'T1564',
              name: 'Hide Artifacts',
              reference: 'https://attack.mitre.org/techniques/T1564/',
              subtechnique: [{ id: 'T1564.002', name: 'Hidden Users', reference: 'https://attack.mitre.org/techniques/T1564/002/' }],
            },
          ],
        },
      ],
    });
    expect(rule.query).toBe(BUILTIN_QUERY);
    expect(rule.newTerms?.fields).toEqual(['process.executable']);
    expect(rule.newTerms?.historyWindowStart.text).toBe('now-14d');
    expect(rule.from.text).toBe('now-9m');
    expect(rule.compiled.fields).toEqual(expect.arrayContaining(['user.name', 'process.interactive', 'process.parent.executable', 'process.name']));
  });

  it('keeps the detection-rules keys index and timestamp_override in the file', () => {
    const text = readFileSync(join(BUILTIN_RULES_PATH, 'linux', 'defense_evasion_unusual_interactive_shell_from_system_user.toml'), 'utf8');
    expect(text).toContain('index = ["logs-endpoint.events.process*"]');
    expect(text).toContain('timestamp_override = "event.ingested"');
  });
});

describe('rule formats', () => {
  it('reads detection-rules TOML with a two-field new_terms table and MITRE threat', async () => {
    const dir = ruleTree({ 'shell.toml': tomlRule() });
    const { rules } = await loadRuleSet([dir], { skipUnsupported: false });
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      ruleId: '11111111-2222-3333-4444-555555555555',
      name: 'Test New Shell',
      version: 3,
      maxSignals: 10,
      severity: 'medium',
      riskScore: 47,
      source: { file: join(dir, 'shell.toml') },
      threat: [{ framework: 'MITRE ATT&CK', tactic: { id: 'TA0002' } }],
    });
    expect(rules[0]!.newTerms?.fields).toEqual(['host.id', 'process.executable']);
    expect(rules[0]!.newTerms?.historyWindowStart.text).toBe('now-7d');
  });

  it('reads a Kibana NDJSON export, one rule per line, and skips the export summary line', async () => {
    const second = kibanaRule({ rule_id: 'kibana-rule-2', name: 'Second', type: 'query', new_terms_fields: undefined, history_window_start: undefined });
    const dir = ruleTree({ 'export.ndjson': [JSON.stringify(kibanaRule()), JSON.stringify(second), EXPORT_SUMMARY, ''].join('\n') });
    const { rules, warnings } = await loadRuleSet([join(dir, 'export.ndjson')], { skipUnsupported: false });
    expect(warnings).toEqual([]);
    expect(rules.map((rule) => [rule.ruleId, rule.type, rule.source.line])).toEqual([
      ['kibana-rule-1', 'new_terms', 1],
      ['kibana-rule-2', 'query', 2],
    ]);
    expect(rules[0]).toMatchObject({ uuid: 'a7d0c9e0-0000-4000-8000-000000000001', version: 2, references: ['https://example.org/rule'] });
    expect(rules[0]!.newTerms?.fields).toEqual(['process.executable']);
  });

  it('passes over exception lists in an export with a warning', async () => {
    const list = JSON.stringify({ list_id: 'endpoint_list', type: 'endpoint', name: 'Endpoint exceptions' });
    const dir = ruleTree({ 'export.ndjson': [JSON.stringify(kibanaRule()), list, EXPORT_SUMMARY].join('\n') });
    const { rules, warnings } = await loadRuleSet([dir], { skipUnsupported: false });
    expect(rules).toHaveLength(1);
    expect(warnings).toEqual([`${join(dir, 'export.ndjson')}:2: skipped exception list "endpoint_list" (exception lists are not applied by execsentry)`]);
  });

  it('reads JSON: one rule, an array of rules, and the detection-rules layout', async () => {
    const dir = ruleTree({
      'one.json': JSON.stringify(kibanaRule({ rule_id: 'json-1' })),
      'many.json': JSON.stringify([kibanaRule({ rule_id: 'json-2' }), kibanaRule({ rule_id: 'json-3' })]),
      'layout.json': JSON.stringify({
        metadata: { maturity: 'production' },
        rule: {
          ...kibanaRule({ rule_id: 'json-4' }),
          new_terms_fields: undefined,
          history_window_start: undefined,
          new_terms: { field: 'new_terms_fields', value: ['user.id'], history_window_start: [{ field: 'history_window_start', value: 'now-2d' }] },
        },
      }),
    });
    const { rules } = await loadRuleSet([dir], { skipUnsupported: false });
    // Directory entries are read in name order: layout.json, many.json, one.json.
    expect(rules.map((rule) => rule.ruleId)).toEqual(['json-4', 'json-2', 'json-3', 'json-1']);
    expect(rules[0]!.newTerms?.fields).toEqual(['user.id']);
    expect(rules[0]!.newTerms?.historyWindowStart.text).toBe('now-2d');
  });

  it('walks directories recursively, takes several paths, ignores hidden and non-rule files', async () => {
    const dir = ruleTree({
      'a/b/deep.toml': tomlRule(),
      'a/notes.md': '# not a rule',
      '.hidden/x.toml': 'this is not TOML [',
      'top.ndjson': JSON.stringify(kibanaRule()),
    });
    const other = ruleTree({ 'other.json': JSON.stringify(kibanaRule({ rule_id: 'other' })) });
    const { rules } = await loadRuleSet([dir, join(other, 'other.json')], { skipUnsupported: false });
    expect(rules.map((rule) => rule.ruleId)).toEqual(['11111111-2222-3333-4444-555555555555', 'kibana-rule-1', 'other']);
  });

  it('loads rules with Kibana settings it does not apply, and says which', async () => {
    const dir = ruleTree({
      'x.ndjson': JSON.stringify(
        kibanaRule({ exceptions_list: [{ list_id: 'l', id: 'x', type: 'detection', namespace_type: 'single' }], alert_suppression: { group_by: ['host.name'] }, severity_mapping: [] }),
      ),
    });
    const { rules, warnings } = await loadRuleSet([dir], { skipUnsupported: false });
    expect(rules).toHaveLength(1);
    expect(warnings).toEqual([
      'rule "Kibana Exported Rule" has exception lists, which execsentry does not apply',
      'rule "Kibana Exported Rule" has alert suppression, which execsentry does not apply',
    ]);
  });

  it('loads enabled = false rules without running them', async () => {
    const dir = ruleTree({ 'off.toml': tomlRule({ enabled: 'enabled = false' }) });
    const { rules } = await loadRuleSet([dir], { skipUnsupported: false });
    expect(rules[0]!.enabled).toBe(false);
  });

  it('applies Kibana defaults for optional keys', async () => {
    const minimal = {
      rule_id: 'minimal',
      name: 'Minimal',
      description: 'd',
      type: 'query',
      query: 'process.name:bash',
      severity: 'critical',
      risk_score: 99,
    };
    const dir = ruleTree({ 'min.json': JSON.stringify(minimal) });
    const { rules } = await loadRuleSet([dir], { skipUnsupported: false });
    expect(rules[0]).toMatchObject({ version: 1, enabled: true, intervalMs: 300_000, maxSignals: 100, tags: [], author: [], threat: [] });
    expect(rules[0]!.from.text).toBe('now-6m');
  });
});

/** The one-line message loadRuleSet refuses a rule set with. */
async function refusal(paths: string[], skipUnsupported = false): Promise<string> {
  try {
    await loadRuleSet(paths, { skipUnsupported });
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('the rule set was accepted');
}

describe('rule errors: one line naming file, line, rule, key and why', () => {
  it('TOML syntax: line and column', async () => {
    const dir = ruleTree({ 'bad.toml': '[rule]\nname = "x"\nseverity = \n' });
    expect(await refusal([dir])).toBe(`${join(dir, 'bad.toml')}:3:12: not valid TOML: invalid value`);
  });

  it('TOML without a [rule] table', async () => {
    const dir = ruleTree({ 'empty.toml': '[metadata]\nmaturity = "production"\n' });
    expect(await refusal([dir])).toBe(`${join(dir, 'empty.toml')}: rule: missing the [rule] table`);
  });

  it('a bad value: the key and its line in TOML', async () => {
    const dir = ruleTree({ 'r.toml': tomlRule({ severity: 'severity = "urgent"' }) });
    expect(await refusal([dir])).toBe(
      `${join(dir, 'r.toml')}:16: rule "Test New Shell": rule.severity: Invalid option: expected one of "low"|"medium"|"high"|"critical" (got "urgent")`,
    );
  });

  it('a missing required key', async () => {
    const dir = ruleTree({ 'r.toml': tomlRule({ description: null }) });
    // A key that is missing has no line of its own: the message points at its table.
    expect(await refusal([dir])).toBe(`${join(dir, 'r.toml')}:4: rule "Test New Shell": rule.description: required`);
  });

  it('a value out of range', async () => {
    const dir = ruleTree({ 'r.toml': tomlRule({ risk_score: 'risk_score = 150' }) });
    expect(await refusal([dir])).toMatch(
      new RegExp(`^${escapeRegExp(join(dir, 'r.toml'))}:14: rule "Test New Shell": rule\\.risk_score: .*100.* \\(got 150\\)$`),
    );
  });

  it('new_terms: more than 3 fields', async () => {
    const text = tomlRule().replace('value = ["host.id", "process.executable"]', 'value = ["a", "b", "c", "d"]');
    const dir = ruleTree({ 'r.toml': text });
    expect(await refusal([dir])).toBe(
      `${join(dir, 'r.toml')}:33: rule "Test New Shell": rule.new_terms.value: allows at most 3 fields (got ["a","b","c","d"])`,
    );
  });

  it('new_terms: a field Elasticsearch cannot aggregate on (text, a .text multi-field)', async () => {
    const text = tomlRule().replace('value = ["host.id", "process.executable"]', 'value = ["host.id", "process.command_line.text"]');
    const dir = ruleTree({ 'r.toml': text });
    expect(await refusal([dir])).toBe(
      `${join(dir, 'r.toml')}:33: rule "Test New Shell": rule.new_terms.value[1]: "process.command_line.text" is a text, object or geo_point field, which Elasticsearch cannot aggregate on; new_terms needs keyword, numeric, date, boolean or ip fields`,
    );
    const kibana = ruleTree({ 'x.ndjson': JSON.stringify(kibanaRule({ new_terms_fields: ['message'] })) });
    expect(await refusal([kibana])).toMatch(/x\.ndjson:1: rule "Kibana Exported Rule": new_terms_fields\[0\]: "message" is a text, object or geo_point field/);
  });

  it('new_terms: the [rule.new_terms] table in the wrong shape', async () => {
    const dir = ruleTree({ 'r.toml': tomlRule().replace('field = "new_terms_fields"', 'field = "fields"') });
    expect(await refusal([dir])).toMatch(new RegExp(`^${escapeRegExp(join(dir, 'r.toml'))}:32: rule "Test New Shell": rule\\.new_terms\\.field: `));
  });

  it('new_terms: a missing history_window_start (Kibana export)', async () => {
    const dir = ruleTree({ 'x.ndjson': JSON.stringify(kibanaRule({ history_window_start: undefined })) });
    expect(await refusal([dir])).toBe(`${join(dir, 'x.ndjson')}:1: rule "Kibana Exported Rule": history_window_start: required for a new_terms rule`);
  });

  it('new_terms: history_window_start that is not date math', async () => {
    const dir = ruleTree({ 'r.toml': tomlRule().replace('value = "now-7d"', 'value = "now-7x"') });
    expect(await refusal([dir])).toBe(
      `${join(dir, 'r.toml')}:36: rule "Test New Shell": rule.new_terms.history_window_start.value: "now-7x": unexpected "-7x" at character 4; expected +N or -N followed by a unit (y M w d h H m s), or /unit`,
    );
  });

  it('new_terms: a history window that does not reach back', async () => {
    const dir = ruleTree({ 'x.ndjson': JSON.stringify(kibanaRule({ history_window_start: 'now+1d' })) });
    expect(await refusal([dir])).toBe(`${join(dir, 'x.ndjson')}:1: rule "Kibana Exported Rule": history_window_start: "now+1d" must lie in the past (for example "now-14d")`);
  });

  it('a from that is not date math', async () => {
    const dir = ruleTree({ 'r.toml': tomlRule({ from: 'from = "9m"' }) });
    expect(await refusal([dir])).toBe(`${join(dir, 'r.toml')}:7: rule "Test New Shell": rule.from: "9m" is not date math: it must start with "now" (for example "now-14d")`);
  });

  it('an interval that is not one', async () => {
    const dir = ruleTree({ 'r.toml': tomlRule({ interval: 'interval = "5 minutes"' }) });
    expect(await refusal([dir])).toBe(
      `${join(dir, 'r.toml')}:9: rule "Test New Shell": rule.interval: "5 minutes" is not an interval: expected a positive number and a unit s, m, h or d (for example "5m")`,
    );
  });

  it('a KQL syntax error: the line and column in the TOML file', async () => {
    const text = tomlRule().replace('event.category:process and process.name:(bash or sh)', 'event.category:process and\n  process.name:(bash or sh');
    const dir = ruleTree({ 'r.toml': text });
    expect(await refusal([dir])).toMatch(new RegExp(`^${escapeRegExp(join(dir, 'r.toml'))}:2[23]:\\d+: rule "Test New Shell": rule\\.query: invalid KQL: `));
  });

  it('a KQL syntax error in an export: the line of the rule and the position in the query', async () => {
    const dir = ruleTree({ 'x.ndjson': JSON.stringify(kibanaRule({ query: 'user.name:(daemon or' })) });
    expect(await refusal([dir])).toMatch(
      new RegExp(`^${escapeRegExp(join(dir, 'x.ndjson'))}:1: rule "Kibana Exported Rule": query: invalid KQL: .* \\(query line 1, column \\d+\\)$`),
    );
  });

  it('unsupported types and languages are refused, or skipped and counted with --skip-unsupported', async () => {
    const dir = ruleTree({
      'x.ndjson': [
        JSON.stringify(kibanaRule({ rule_id: 'eql', name: 'An EQL rule', type: 'eql', language: 'eql', query: 'file where file.path == "/etc/shadow"' })),
        JSON.stringify(kibanaRule({ rule_id: 'lucene', name: 'A Lucene rule', type: 'query', language: 'lucene' })),
        JSON.stringify(kibanaRule({ rule_id: 'threshold', name: 'A threshold rule', type: 'threshold' })),
        JSON.stringify(kibanaRule()),
      ].join('\n'),
    });
    const file = join(dir, 'x.ndjson');
    expect(await refusal([dir])).toBe(
      `${file}:1: rule "An EQL rule": query: its query reads "file" events, which execsentry does not produce (its events are of category "process") (and 2 more problems; \`execsentry rules validate\` lists them all)`,
    );
    const { rules, skipped } = await loadRuleSet([dir], { skipUnsupported: true });
    expect(rules.map((rule) => rule.ruleId)).toEqual(['kibana-rule-1']);
    expect(skipped.map(formatProblem)).toEqual([
      `${file}:1: rule "An EQL rule": query: its query reads "file" events, which execsentry does not produce (its events are of category "process")`,
      `${file}:2: rule "A Lucene rule": language: query language "lucene" is not supported for query rules (only kuery)`,
      `${file}:3: rule "A threshold rule": type: rule type "threshold" is not supported (execsentry evaluates query, new_terms and eql rules)`,
    ]);
  });

  it('Kibana query filters are refused rather than ignored', async () => {
    const dir = ruleTree({ 'x.ndjson': JSON.stringify(kibanaRule({ filters: [{ query: { match_phrase: { 'host.name': 'a' } } }] })) });
    expect(await refusal([dir])).toBe(
      `${join(dir, 'x.ndjson')}:1: rule "Kibana Exported Rule": filters: Kibana query filters are not supported; move the conditions into the query`,
    );
  });

  it('a rule_id used twice', async () => {
    const dir = ruleTree({ 'a.ndjson': JSON.stringify(kibanaRule()), 'b.ndjson': JSON.stringify(kibanaRule({ name: 'Again' })) });
    expect(await refusal([dir])).toBe(
      `${join(dir, 'b.ndjson')}:1: rule "Again": rule_id: rule_id kibana-rule-1 is already used by ${join(dir, 'a.ndjson')}:1`,
    );
  });

  it('an NDJSON line that is not JSON', async () => {
    const dir = ruleTree({ 'x.ndjson': `${JSON.stringify(kibanaRule())}\n{"rule_id": \n` });
    expect(await refusal([dir])).toMatch(new RegExp(`^${escapeRegExp(join(dir, 'x.ndjson'))}:2:13: not valid JSON: `));
  });

  it('a JSON file that is not JSON: line and column', async () => {
    const dir = ruleTree({ 'x.json': '{\n  "rule_id": "a",\n  "name": oops\n}\n' });
    expect(await refusal([dir])).toMatch(new RegExp(`^${escapeRegExp(join(dir, 'x.json'))}:3:11: not valid JSON: Unexpected token 'o'`));
  });

  it('a wrong type in JSON: the key and its line', async () => {
    const text = JSON.stringify(kibanaRule({ max_signals: 'many' }), null, 2);
    const line = text.split('\n').findIndex((l) => l.includes('"max_signals"')) + 1;
    const dir = ruleTree({ 'x.json': text });
    expect(await refusal([dir])).toBe(
      `${join(dir, 'x.json')}:${line}: rule "Kibana Exported Rule": max_signals: Invalid input: expected number, received string (got "many")`,
    );
  });

  it('a missing path, an empty directory, a file that is not a rule file', async () => {
    const dir = ruleTree({ 'empty/.keep': '', 'rule.yaml': 'name: x' });
    expect(await refusal([join(dir, 'nope')])).toBe(`${join(dir, 'nope')}: cannot read: no such file or directory (ENOENT)`);
    expect(await refusal([join(dir, 'empty')])).toBe(`${join(dir, 'empty')}: no rules found (rule files end in .toml, .ndjson, .json)`);
    expect(await refusal([join(dir, 'rule.yaml')])).toBe(`${join(dir, 'rule.yaml')}: not a rule file: the name must end in .toml, .ndjson, .json`);
  });

  it('checkRules reports every problem, not only the first', async () => {
    const dir = ruleTree({ 'a.toml': tomlRule({ severity: 'severity = 1' }), 'b.json': '[' });
    const check = await checkRules([dir], { skipUnsupported: false });
    expect(check.problems).toHaveLength(2);
    expect(check.rules).toEqual([]);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
