import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeAsRoot } from '../helpers/privilege.js';
import type { Alert } from '../../src/ecs/types.js';
import { DAY_MS, execEvent, isoAfter } from '../engine/helpers.js';
import { eqlToml } from '../helpers/eql-rule.js';
import { kibanaRule, ruleTree, tomlRule } from './fixtures.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

function execsentry(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const T0 = '2024-05-01T10:00:00.000Z';

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('execsentry rules validate', () => {
  it('exits 0 for valid rules, saying how many', () => {
    const dir = ruleTree({ 'a.toml': tomlRule(), 'b.ndjson': JSON.stringify(kibanaRule()) });
    const run = execsentry('rules', 'validate', dir);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('execsentry: 2 rule(s) valid (2 enabled)\n');
  });

  it('exits 2 and prints every problem, one line each', () => {
    const dir = ruleTree({ 'a.toml': tomlRule({ severity: 'severity = "urgent"' }), 'b.ndjson': JSON.stringify(kibanaRule({ type: 'threshold' })) });
    const run = execsentry('rules', 'validate', dir);
    expect(run.status).toBe(2);
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      `execsentry: ${join(dir, 'a.toml')}:16: rule "Test New Shell": rule.severity: Invalid option: expected one of "low"|"medium"|"high"|"critical" (got "urgent")`,
      `execsentry: ${join(dir, 'b.ndjson')}:1: rule "Kibana Exported Rule": type: rule type "threshold" is not supported (execsentry evaluates query, new_terms and eql rules)`,
    ]);
  });

  it('--skip-unsupported turns unsupported rules into warnings', () => {
    const dir = ruleTree({ 'a.toml': tomlRule(), 'b.ndjson': JSON.stringify(kibanaRule({ type: 'esql', language: 'esql' })) });
    const run = execsentry('rules', 'validate', '--skip-unsupported', dir);
    expect(run.status).toBe(0);
    expect(run.stderr).toContain('execsentry: warning: skipped: ');
    expect(run.stderr).toContain('execsentry: 1 rule(s) valid (1 enabled, 1 unsupported skipped)\n');
  });
});

describe('execsentry rules list', () => {
  it('lists the built-in rules with the fields they read (NDJSON when not a terminal)', () => {
    const run = execsentry('rules', 'list');
    expect(run.status).toBe(0);
    const all = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(all.map((row) => row['id'])).toEqual(['4caba3a8-7215-47fb-b429-4f61796a0dcd', '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb']);
    expect(all[0]).toMatchObject({ name: 'Shell or Interpreter on a Network Socket Started by a System Account', type: 'query', runs: true });
    const rows = all.slice(1);
    expect(rows[0]).toMatchObject({
      id: '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb',
      name: 'Unusual Interactive Shell Launched from System User',
      type: 'new_terms',
      version: 1,
      enabled: true,
      new_terms_fields: ['process.executable'],
      history_window_start: 'now-14d',
    });
    // The query's fields (in the KQL module's order), then the new-terms field.
    expect(rows[0]!['fields'] as string[]).toHaveLength(11);
    expect((rows[0]!['fields'] as string[]).at(-1)).toBe('process.executable');
    expect([...(rows[0]!['fields'] as string[])].sort()).toEqual([
      'event.category',
      'host.os.type',
      'event.type',
      'event.action',
      'user.name',
      'process.interactive',
      'process.parent.executable',
      'process.name',
      'process.parent.name',
      'process.args',
      'process.executable',
    ].sort());
  });

  it('lists a multi-field as the parent field it is read from, once', () => {
    const rule = kibanaRule({ query: 'process.name.caseless:bash', new_terms_fields: ['process.executable.caseless', 'process.name.caseless'] });
    const run = execsentry('rules', 'list', ruleTree({ 'x.ndjson': JSON.stringify(rule) }));
    expect(run.status).toBe(0);
    const row = JSON.parse(run.stdout.trimEnd()) as Record<string, unknown>;
    expect(row['fields']).toEqual(['process.name', 'process.executable']);
    expect(row['new_terms_fields']).toEqual(['process.executable.caseless', 'process.name.caseless']);
  });

  it('prints a table on request', () => {
    const dir = ruleTree({ 'a.toml': tomlRule({ enabled: 'enabled = false' }) });
    const run = execsentry('rules', 'list', '--format', 'table', dir);
    expect(run.status).toBe(0);
    const [header, row] = run.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID +NAME +TYPE +VERSION +ENABLED +RUNS +FIELDS READ \(OR WHY NOT\)$/);
    expect(row).toMatch(/^11111111-2222-3333-4444-555555555555 +Test New Shell +new_terms +3 +no +yes +event\.category, process\.name, host\.id, process\.executable$/);
  });

  it('lists rules that cannot run here with why, after those that can', () => {
    const dir = ruleTree({
      'a.toml': tomlRule(),
      'b.ndjson': [
        JSON.stringify(kibanaRule({ rule_id: 'file-rule', name: 'A file rule', type: 'eql', language: 'eql', query: 'file where file.path == "/etc/shadow"' })),
        JSON.stringify(kibanaRule({ rule_id: 'esql-rule', name: 'An ES|QL rule', type: 'esql', language: 'esql' })),
      ].join('\n'),
    });
    const run = execsentry('rules', 'list', dir);
    expect(run.status).toBe(0);
    const rows = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows.map((row) => [row['id'], row['runs']])).toEqual([
      ['11111111-2222-3333-4444-555555555555', true],
      ['file-rule', false],
      ['esql-rule', false],
    ]);
    expect(rows[1]).toMatchObject({ name: 'A file rule', type: 'eql', why: 'its query reads "file" events, which execsentry does not produce (its events are of category "process")' });
    expect(rows[2]!['why']).toMatch(/^rule type "esql" is not supported/);
  });

  it('refuses a bad rule set with one line and exit 2', () => {
    const dir = ruleTree({ 'a.toml': 'not toml' });
    const run = execsentry('rules', 'list', dir);
    expect(run.status).toBe(2);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^execsentry: .*a\.toml:1:\d+: not valid TOML: /);
  });
});

describe('execsentry rules test', () => {
  function eventsFile(events: object[]): string {
    const dir = ruleTree({ 'events.ndjson': events.map((event) => JSON.stringify(event)).join('\n') + '\n' });
    return join(dir, 'events.ndjson');
  }

  it('replays events with their @timestamp as now and prints alerts as NDJSON', () => {
    const events = eventsFile([execEvent(T0), execEvent(isoAfter(T0, 10 * DAY_MS)), execEvent(isoAfter(T0, 25 * DAY_MS))]);
    const run = execsentry('rules', 'test', '--rules', 'rules', '--events', events);
    expect(run.status).toBe(0);
    const alerts = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Alert);
    expect(alerts.map((alert) => [alert['@timestamp'], alert.rule.id, alert.event.kind])).toEqual([
      [T0, '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb', 'alert'],
      [isoAfter(T0, 25 * DAY_MS), '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb', 'alert'],
    ]);
  });

  it('without --state-dir each run starts from a fresh history; with it the history carries over', () => {
    const events = eventsFile([execEvent(T0)]);
    expect(execsentry('rules', 'test', '--rules', 'rules', '--events', events).stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(execsentry('rules', 'test', '--rules', 'rules', '--events', events).stdout.trimEnd().split('\n')).toHaveLength(1);
    const stateDir = join(ruleTree({ '.keep': '' }), 'state');
    expect(execsentry('rules', 'test', '--rules', 'rules', '--events', events, '--state-dir', stateDir).stdout).not.toBe('');
    const again = execsentry('rules', 'test', '--rules', 'rules', '--events', events, '--state-dir', stateDir);
    expect(again.status).toBe(0);
    expect(again.stdout).toBe('');
  });

  it('stops at an event without a valid @timestamp, naming the line; earlier alerts stay printed', () => {
    const dir = ruleTree({ 'events.ndjson': [JSON.stringify(execEvent(T0)), '', JSON.stringify({ ...execEvent(T0), '@timestamp': 'yesterday' })].join('\n') });
    const run = execsentry('rules', 'test', '--rules', 'rules', '--events', join(dir, 'events.ndjson'));
    expect(run.status).toBe(2);
    expect(run.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toBe(`execsentry: ${join(dir, 'events.ndjson')}:3: @timestamp: not a date (strict ISO 8601 or epoch milliseconds): "yesterday"\n`);
  });

  it('defaults to the built-in rule, reads --events - from stdin, and sums up on stderr', () => {
    const input = [execEvent(T0), execEvent(isoAfter(T0, 60_000)), execEvent(isoAfter(T0, 25 * DAY_MS))].map((event) => JSON.stringify(event)).join('\n');
    const run = spawnSync(process.execPath, [CLI, 'rules', 'test', '--events', '-'], { input, encoding: 'utf8' });
    expect(run.status).toBe(0);
    const alerts = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Alert);
    expect(alerts.map((alert) => alert.rule.id)).toEqual(['9c5b2382-19d2-4b5d-8f14-9e1631a3acdb', '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb']);
    expect(run.stderr).toBe('execsentry: 3 event(s), 3 match(es), 2 alert(s), 1 known term(s), 0 held back by max_signals\n');
  });

  it('--explain says per event and rule whether it matched, and else the first top-level condition that failed', () => {
    const dir = ruleTree({
      'eql.toml': eqlToml({ id: 'eql-rule', name: 'EQL curl' }, 'process where event.type == "start" and process.name == "curl" and process.args : "-o"'),
      'seq.toml': eqlToml({ id: 'seq-rule', name: 'EQL sequence' }, 'sequence by process.parent.entity_id with maxspan=1m [process where process.name == "curl"] [process where process.name == "bash"]'),
    });
    const events = eventsFile([
      execEvent(T0),
      execEvent(isoAfter(T0, 1000), { process: { name: 'curl', args: ['curl', 'x'] } }),
      // a document of another category, as a replayed Elastic export may hold
      { ...execEvent(isoAfter(T0, 2000)), event: { ...execEvent(T0).event, category: ['file'] } },
    ]);
    const run = execsentry('rules', 'test', '--rules', 'rules/linux', '--rules', dir, '--events', events, '--explain');
    expect(run.status).toBe(0);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines.slice(0, -1)).toEqual([
      `execsentry: ${events}:1: rule "Unusual Interactive Shell Launched from System User": matched (alerts if its terms are new)`,
      `execsentry: ${events}:1: rule "EQL curl": no match: process.name == "curl"`,
      `execsentry: ${events}:1: rule "EQL sequence": matches sequence stage 2 of 2`,
      `execsentry: ${events}:2: rule "Unusual Interactive Shell Launched from System User": matched (alerts if its terms are new)`,
      `execsentry: ${events}:2: rule "EQL curl": no match: process.args : "-o"`,
      `execsentry: ${events}:2: rule "EQL sequence": matches sequence stage 1 of 2`,
      expect.stringMatching(new RegExp(`^execsentry: ${escapeRegExp(events)}:3: rule "Unusual Interactive Shell Launched from System User": no match: event\\.category:process$`)),
      `execsentry: ${events}:3: rule "EQL curl": no match: event.category == "process"`,
      `execsentry: ${events}:3: rule "EQL sequence": matches no stage of the sequence`,
    ]);
    expect(lines.at(-1)).toMatch(/^execsentry: 3 event\(s\), /);
  });

  it('a missing events file is an input error (exit 2) with one line', () => {
    const run = execsentry('rules', 'test', '--rules', 'rules', '--events', '/nonexistent/events.ndjson');
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('execsentry: cannot read /nonexistent/events.ndjson: no such file or directory (ENOENT)\n');
  });
});

// `run` checks its capabilities (root) before it reads rules.
describeAsRoot('execsentry run with a bad rule set', () => {
  it('refuses to start with one line and exit 2, before touching the state directory', () => {
    const dir = ruleTree({ 'bad.toml': tomlRule({ severity: 'severity = "urgent"' }) });
    const stateDir = join(dir, 'state');
    const run = execsentry('run', '--rules', dir, '--state-dir', stateDir, '--log-format', 'json');
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `execsentry: ${join(dir, 'bad.toml')}:16: rule "Test New Shell": rule.severity: Invalid option: expected one of "low"|"medium"|"high"|"critical" (got "urgent")\n`,
    );
    expect(existsSync(stateDir)).toBe(false);
  });

  it('an unsupported rule stops it too (without --skip-unsupported)', () => {
    const dir = ruleTree({ 'a.ndjson': [JSON.stringify(kibanaRule()), JSON.stringify(kibanaRule({ rule_id: 'ml', name: 'ML', type: 'machine_learning' }))].join('\n') });
    const refused = execsentry('run', '--rules', dir, '--state-dir', join(dir, 'state'));
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('rule "ML": type: rule type "machine_learning" is not supported');
  });
});
