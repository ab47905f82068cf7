import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach } from 'vitest';

/** Temporary rule trees for loader tests: `files` maps relative paths to contents. Removed after each test. */
const created: string[] = [];

afterEach(() => {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function ruleTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'execsentry-rules-'));
  created.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** A small valid detection-rules TOML new_terms rule; `replace` swaps whole lines by their key. */
export function tomlRule(replace: Record<string, string | null> = {}): string {
  const lines: Record<string, string> = {
    author: 'author = ["Tests"]',
    description: 'description = "A shell from a new place."',
    from: 'from = "now-9m"',
    index: 'index = ["logs-endpoint.events.process*"]',
    interval: 'interval = "5m"',
    language: 'language = "kuery"',
    license: 'license = "Apache-2.0"',
    max_signals: 'max_signals = 10',
    name: 'name = "Test New Shell"',
    risk_score: 'risk_score = 47',
    rule_id: 'rule_id = "11111111-2222-3333-4444-555555555555"',
    severity: 'severity = "medium"',
    tags: 'tags = ["Test"]',
    type: 'type = "new_terms"',
    version: 'version = 3',
  };
  for (const [key, line] of Object.entries(replace)) {
    if (line === null) delete lines[key];
    else lines[key] = line;
  }
  return [
    '[metadata]',
    'maturity = "development"',
    '',
    '[rule]',
    ...Object.values(lines),
    "query = '''",
    'event.category:process and process.name:(bash or sh)',
    "'''",
    '',
    '[[rule.threat]]',
    'framework = "MITRE ATT&CK"',
    '[rule.threat.tactic]',
    'id = "TA0002"',
    'name = "Execution"',
    'reference = "https://attack.mitre.org/tactics/TA0002/"',
    '',
    '[rule.new_terms]',
    'field = "new_terms_fields"',
    'value = ["host.id", "process.executable"]',
    '[[rule.new_terms.history_window_start]]',
    'field = "history_window_start"',
    'value = "now-7d"',
    '',
  ].join('\n');
}

/** A Kibana-export-shaped rule object (flat keys). */
export function kibanaRule(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'a7d0c9e0-0000-4000-8000-000000000001',
    rule_id: 'kibana-rule-1',
    name: 'Kibana Exported Rule',
    description: 'From a Kibana export.',
    type: 'new_terms',
    language: 'kuery',
    query: 'event.action:exec and user.name:daemon',
    severity: 'high',
    risk_score: 73,
    version: 2,
    enabled: true,
    from: 'now-9m',
    interval: '5m',
    max_signals: 100,
    index: ['logs-endpoint.events.process*'],
    author: ['Someone'],
    license: 'Elastic License v2',
    tags: ['A', 'B'],
    references: ['https://example.org/rule'],
    threat: [],
    new_terms_fields: ['process.executable'],
    history_window_start: 'now-14d',
    created_at: '2024-01-01T00:00:00.000Z',
    related_integrations: [],
    required_fields: [],
    setup: '',
    exceptions_list: [],
    ...overrides,
  };
}

/** Kibana's export summary, the last line of every rules export. */
export const EXPORT_SUMMARY = JSON.stringify({
  exported_count: 1,
  exported_rules_count: 1,
  missing_rules: [],
  missing_rules_count: 0,
  exported_exception_list_count: 0,
  exported_exception_list_item_count: 0,
  missing_exception_list_item_count: 0,
  missing_exception_list_items: [],
  missing_exception_lists: [],
  missing_exception_lists_count: 0,
  exported_action_connector_count: 0,
});
