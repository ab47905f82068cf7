import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Alert, ProcessEvent } from '../../src/ecs/types.js';
import { DetectionEngine } from '../../src/engine/index.js';
import { loadRuleSet, type LoadedRule } from '../../src/rules/index.js';
import { openHistoryStore } from '../../src/store/index.js';
import { execEvent, isoAfter, recordingLogger } from '../engine/helpers.js';
import { eqlToml, queryKeyLine } from '../helpers/eql-rule.js';
import { ruleTree, tomlRule } from './fixtures.js';

/**
 * EQL rules through the CLI without the agent: `rules test` replays hand-written NDJSON events (each event's
 * @timestamp is "now": maxspan and max_signals run on event time, not the machine's clock), and
 * `rules validate` / `rules list` on a directory mixing KQL and EQL rules, an EQL rule over events the
 * sensor never produces, and EQL rules with syntax errors.
 */

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

function execsentry(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const alertsOf = (stdout: string): Alert[] =>
  stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Alert);

// Years back: were the machine's clock the replay's "now", every 10 s window below would be long over.
const T0 = '2021-03-04T05:06:07.000Z';
const at = (ms: number): string => isoAfter(T0, ms);

const EVENT_RULE = { id: 'eql-replay-event', name: 'Replay EQL payload' };
const SEQUENCE_RULE = { id: 'eql-replay-sequence', name: 'Replay EQL stage one then two' };

const eventRule = eqlToml(EVENT_RULE, 'process where event.type == "start" and process.name == "payload" and process.args : "--marker-*"');
const sequenceRule = eqlToml(
  SEQUENCE_RULE,
  [
    'sequence by host.id, process.parent.entity_id with maxspan=10s',
    '  [process where event.action == "exec" and process.name == "stage-one"]',
    '  [process where event.action == "exec" and process.name == "stage-two"]',
  ].join('\n'),
  // two sequences per 5 minutes at most
  { max_signals: 'max_signals = 2', interval: 'interval = "5m"' },
);

let pids = 1000;
/** One exec of `name` by the parent `parent` at T0 + ms. */
function exec(ms: number, name: string, parent: string, args: string[] = [`/usr/local/bin/${name}`]): ProcessEvent {
  const pid = ++pids;
  return execEvent(at(ms), {
    event: { id: `exec-${pid}` },
    process: {
      pid,
      entity_id: `entity-${pid}`,
      name,
      executable: `/usr/local/bin/${name}`,
      args,
      args_count: args.length,
      command_line: args.join(' '),
      parent: { entity_id: parent, pid: 1 },
    },
  });
}

function replay(events: readonly ProcessEvent[], rules: Record<string, string>): { status: number | null; alerts: Alert[]; stderr: string } {
  const dir = ruleTree({ ...Object.fromEntries(Object.entries(rules).map(([name, text]) => [`rules/${name}`, text])), 'events.ndjson': events.map((event) => JSON.stringify(event)).join('\n') + '\n' });
  const run = execsentry('rules', 'test', '--rules', join(dir, 'rules'), '--events', join(dir, 'events.ndjson'));
  return { status: run.status, alerts: alertsOf(run.stdout), stderr: run.stderr };
}

describe('execsentry rules test with EQL rules', () => {
  it('an EQL event rule alerts on each matching event, with the rule type eql and the event as the alert', () => {
    const hit = exec(1_000, 'payload', 'p-1', ['/usr/local/bin/payload', '--marker-1']);
    const again = exec(2_000, 'payload', 'p-1', ['/usr/local/bin/payload', '-v', '--marker-2']);
    const events = [
      hit,
      exec(1_500, 'payload', 'p-1', ['/usr/local/bin/payload', 'marker-1']), // no "--": the wildcard does not match
      exec(1_600, 'payload-2', 'p-1', ['/usr/local/bin/payload-2', '--marker-1']), // another name
      again,
    ];
    const { status, alerts, stderr } = replay(events, { 'event.toml': eventRule });
    expect(status).toBe(0);
    expect(alerts.map((alert) => alert.process.pid)).toEqual([hit.process.pid, again.process.pid]);
    expect(alerts[0]).toMatchObject({
      '@timestamp': hit['@timestamp'],
      message: EVENT_RULE.name,
      event: { kind: 'alert', dataset: 'execsentry.alerts', action: 'exec', severity: 73, risk_score: 73 },
      rule: { id: EVENT_RULE.id, name: EVENT_RULE.name, version: '2', category: 'Execution' },
      tags: ['Test: EQL', 'OS: Linux'],
      process: { name: 'payload', args: ['/usr/local/bin/payload', '--marker-1'], entity_id: hit.process.entity_id },
      execsentry: { rule: { type: 'eql' } },
    });
    expect(alerts[0]!.event.id).not.toBe(hit.event.id);
    expect(alerts[0]!.execsentry.sequence).toBeUndefined();
    expect(stderr).toBe('execsentry: 4 event(s), 2 match(es), 2 alert(s), 0 known term(s), 0 held back by max_signals\n');
  });

  it('a sequence rule: one alert per sequence, on its last event; maxspan on @timestamp; max_signals per interval', () => {
    const p1 = [exec(0, 'stage-one', 'p-1'), exec(5_000, 'stage-two', 'p-1')];
    // 10.001 s apart: over maxspan
    const p2 = [exec(6_000, 'stage-one', 'p-2'), exec(16_001, 'stage-two', 'p-2')];
    // exactly 10 s apart: a span of maxspan is inside it
    const p3 = [exec(20_000, 'stage-one', 'p-3'), exec(30_000, 'stage-two', 'p-3')];
    // another parent's stage two, and a stage two with no stage one before it
    const crossed = [exec(31_000, 'stage-one', 'p-4'), exec(32_000, 'stage-two', 'p-5')];
    const reversed = [exec(33_000, 'stage-two', 'p-6'), exec(34_000, 'stage-one', 'p-6')];
    // a third complete sequence in the same 5 minutes: held back by max_signals = 2
    const p7 = [exec(40_000, 'stage-one', 'p-7'), exec(41_000, 'stage-two', 'p-7')];
    // the next interval: alerts again
    const p8 = [exec(6 * 60_000, 'stage-one', 'p-8'), exec(6 * 60_000 + 1_000, 'stage-two', 'p-8')];
    const events = [...p1, ...p2, ...p3, ...crossed, ...reversed, ...p7, ...p8];

    const { status, alerts, stderr } = replay(events, { 'sequence.toml': sequenceRule });
    expect(status).toBe(0);
    expect(alerts.map((alert) => alert.process.parent?.entity_id)).toEqual(['p-1', 'p-3', 'p-8']);
    for (const [alert, sequence] of [
      [alerts[0]!, p1],
      [alerts[1]!, p3],
      [alerts[2]!, p8],
    ] as const) {
      expect(alert).toMatchObject({
        '@timestamp': sequence[1]!['@timestamp'],
        message: SEQUENCE_RULE.name,
        event: { kind: 'alert', dataset: 'execsentry.alerts' },
        rule: { id: SEQUENCE_RULE.id },
        process: { pid: sequence[1]!.process.pid, name: 'stage-two' },
        execsentry: { rule: { type: 'eql' } },
      });
      // the stages' events exactly as they were read, in order; the key as the sequence joined on it
      expect(alert.execsentry.sequence).toEqual({ join_keys: [sequence[0]!.host.id, sequence[0]!.process.parent?.entity_id], events: sequence });
    }
    expect(stderr).toContain('execsentry: 14 event(s), 4 match(es), 3 alert(s), 0 known term(s), 1 held back by max_signals\n');
    expect(stderr).toContain(`rule \\"${SEQUENCE_RULE.name}\\" reached max_signals (2); 1 more alert(s) suppressed in this interval`);
  });

  it('the same events a millisecond later or earlier cross maxspan either way (the window is on event time)', () => {
    const inside = [exec(0, 'stage-one', 'p-1'), exec(10_000, 'stage-two', 'p-1')];
    const outside = [exec(20_000, 'stage-one', 'p-2'), exec(30_001, 'stage-two', 'p-2')];
    expect(replay(inside, { 'sequence.toml': sequenceRule }).alerts).toHaveLength(1);
    expect(replay(outside, { 'sequence.toml': sequenceRule }).alerts).toEqual([]);
  });

  it('an EQL event rule and a sequence rule side by side: each raises its own alerts, in event order', () => {
    const events = [
      exec(0, 'stage-one', 'p-1'),
      exec(1_000, 'payload', 'p-1', ['/usr/local/bin/payload', '--marker-x']),
      exec(2_000, 'stage-two', 'p-1'),
      exec(3_000, 'payload', 'p-1', ['/usr/local/bin/payload', '--marker-y']),
    ];
    const { status, alerts } = replay(events, { 'event.toml': eventRule, 'sequence.toml': sequenceRule });
    expect(status).toBe(0);
    expect(alerts.map((alert) => [alert.rule.id, alert.process.pid])).toEqual([
      [EVENT_RULE.id, events[1]!.process.pid],
      [SEQUENCE_RULE.id, events[2]!.process.pid],
      [EVENT_RULE.id, events[3]!.process.pid],
    ]);
    // the payload between the stages is no stage of the sequence
    expect(alerts[1]!.execsentry.sequence?.events).toEqual([events[0], events[2]]);
  });
});

describe('execsentry rules validate and list on KQL and EQL rules together', () => {
  const FILE_RULE = { id: 'eql-file-rule', name: 'EQL file creation' };
  const fileRule = eqlToml(FILE_RULE, 'file where event.type == "creation" and\n  file.path : "/etc/cron.d/*"');
  const FILE_WHY = 'its query reads "file" events, which execsentry does not produce (its events are of category "process")';
  const mixed = (): Record<string, string> => ({
    'kql.toml': tomlRule(),
    'eql-event.toml': eventRule,
    'eql-sequence.toml': sequenceRule,
    'eql-file.toml': fileRule,
  });

  // the error on the query's second line: the column is the line's own
  const BROKEN = { id: 'eql-broken', name: 'EQL broken' };
  const brokenRule = eqlToml(BROKEN, 'process where process.name == "x" and\n  process.args : ("a", "b" and )');
  // the error on the query's first line, the query starting right after the opening quotes
  const INLINE = { id: 'eql-inline', name: 'EQL inline' };
  const inlineRule = eqlToml(INLINE, '').replace("query = '''\n\n", `query = '''process where process.name = = "x"\n`);

  it('without --skip-unsupported the file rule is a problem, at its query key', () => {
    const dir = ruleTree(mixed());
    const run = execsentry('rules', 'validate', dir);
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`execsentry: ${join(dir, 'eql-file.toml')}:${queryKeyLine(fileRule)}: rule "${FILE_RULE.name}": rule.query: ${FILE_WHY}\n`);
  });

  it('with --skip-unsupported it is skipped with a warning and counted; the KQL and EQL process rules are valid', () => {
    const dir = ruleTree(mixed());
    const run = execsentry('rules', 'validate', '--skip-unsupported', dir);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe(
      `execsentry: warning: skipped: ${join(dir, 'eql-file.toml')}:${queryKeyLine(fileRule)}: rule "${FILE_RULE.name}": rule.query: ${FILE_WHY}\n` +
        'execsentry: 3 rule(s) valid (3 enabled, 1 unsupported skipped)\n',
    );
  });

  it('EQL syntax errors are placed in the TOML file: line and column of the offending token', () => {
    const dir = ruleTree({ ...mixed(), 'eql-broken.toml': brokenRule, 'eql-inline.toml': inlineRule });
    const brokenLine = queryKeyLine(brokenRule) + 2;
    const inlineLine = queryKeyLine(inlineRule);
    // where the offending tokens are, counted from the texts
    const brokenColumn = brokenRule.split('\n')[brokenLine - 1]!.indexOf('and )') + 1;
    const inlineColumn = inlineRule.split('\n')[inlineLine - 1]!.indexOf('= = ') + 1;
    expect([brokenColumn, inlineColumn]).toEqual([28, 39]);
    for (const flags of [[], ['--skip-unsupported']]) {
      const run = execsentry('rules', 'validate', ...flags, dir);
      expect(run.status).toBe(2);
      const lines = run.stderr.trimEnd().split('\n');
      expect(lines).toContain(
        `execsentry: ${join(dir, 'eql-broken.toml')}:${brokenLine}:${brokenColumn}: rule "${BROKEN.name}": rule.query: invalid EQL: EQL syntax error at line 2, column 28: expected ")" or "," but found "and"`,
      );
      expect(lines).toContain(
        `execsentry: ${join(dir, 'eql-inline.toml')}:${inlineLine}:${inlineColumn}: rule "${INLINE.name}": rule.query: invalid EQL: EQL syntax error at line 1, column 28: use "==" to compare; a single "=" is not an operator`,
      );
      // no summary line: the set is not valid
      expect(run.stderr).not.toContain('rule(s) valid');
    }
  });

  it('rules list shows the KQL and EQL rules with the fields they read, and the file rule as not running, with why', () => {
    const dir = ruleTree(mixed());
    const run = execsentry('rules', 'list', dir);
    expect(run.status).toBe(0);
    const rows = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const byId = new Map(rows.map((row) => [row['id'], row]));
    expect(rows).toHaveLength(4);
    expect(byId.get('11111111-2222-3333-4444-555555555555')).toMatchObject({ type: 'new_terms', runs: true });
    expect(byId.get(EVENT_RULE.id)).toMatchObject({ name: EVENT_RULE.name, type: 'eql', version: 2, enabled: true, runs: true });
    expect([...(byId.get(EVENT_RULE.id)!['fields'] as string[])].sort()).toEqual(['event.category', 'event.type', 'process.args', 'process.name']);
    expect(byId.get(SEQUENCE_RULE.id)).toMatchObject({ type: 'eql', runs: true, file: expect.stringContaining('eql-sequence.toml') });
    expect([...(byId.get(SEQUENCE_RULE.id)!['fields'] as string[])].sort()).toEqual(['event.action', 'event.category', 'host.id', 'process.name', 'process.parent.entity_id']);
    expect(byId.get(FILE_RULE.id)).toEqual({
      id: FILE_RULE.id,
      name: FILE_RULE.name,
      type: 'eql',
      runs: false,
      why: FILE_WHY,
      file: `${join(dir, 'eql-file.toml')}:${queryKeyLine(fileRule)}`,
    });
  });

  it('rules list refuses a set with an EQL syntax error (exit 2, the error placed in the file)', () => {
    const dir = ruleTree({ ...mixed(), 'eql-broken.toml': brokenRule });
    const run = execsentry('rules', 'list', dir);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`${join(dir, 'eql-broken.toml')}:${queryKeyLine(brokenRule) + 2}:28: rule "${BROKEN.name}": rule.query: invalid EQL: `);
  });

  it('rules test runs the KQL and EQL rules of the set and skips the file rule with --skip-unsupported', () => {
    const dir = ruleTree({ ...Object.fromEntries(Object.entries(mixed()).map(([name, text]) => [`rules/${name}`, text])) });
    const eventsDir = ruleTree({
      'events.ndjson': [exec(0, 'stage-one', 'p-1'), exec(1_000, 'stage-two', 'p-1')].map((event) => JSON.stringify(event)).join('\n') + '\n',
    });
    const events = join(eventsDir, 'events.ndjson');
    const refused = execsentry('rules', 'test', '--rules', join(dir, 'rules'), '--events', events);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(FILE_WHY);
    const run = execsentry('rules', 'test', '--skip-unsupported', '--rules', join(dir, 'rules'), '--events', events);
    expect(run.status).toBe(0);
    expect(alertsOf(run.stdout).map((alert) => alert.rule.id)).toEqual([SEQUENCE_RULE.id]);
    expect(run.stderr).toContain('skipped unsupported rule: ');
    expect(run.stderr).toContain('execsentry: 2 event(s), 1 match(es), 1 alert(s), 0 known term(s), 0 held back by max_signals\n');
  });
});

describe('a sequence rule reloaded with another event_category_override', () => {
  const QUERY = 'sequence by process.parent.entity_id with maxspan=30s [process where process.name == "stage-one"] [process where process.name == "stage-two"]';

  async function rulesFrom(lines: Record<string, string>): Promise<LoadedRule[]> {
    const dir = ruleTree({ 'rule.toml': eqlToml(SEQUENCE_RULE, QUERY, lines) });
    return (await loadRuleSet([dir], { skipUnsupported: false })).rules;
  }

  it('gets a new matcher: the old one would still read event.category (the query text alone did not change)', async () => {
    const alerts: Alert[] = [];
    const { logger } = recordingLogger();
    const store = await openHistoryStore({ stateDir: join(ruleTree({ '.keep': '' }), 'state'), maxTuplesPerRule: 10, logger });
    try {
      const engine = new DetectionEngine(await rulesFrom({}), { store, logger, emit: (alert) => alerts.push(alert) });
      // the sensor's events: event.category process, and a custom category field saying otherwise
      const event = (ms: number, name: string): ProcessEvent => ({ ...exec(ms, name, 'p-1'), custom: { category: 'other' } }) as ProcessEvent;
      const nowMs = Date.parse(T0);
      engine.evaluate(event(0, 'stage-one'), nowMs);
      engine.setRules(await rulesFrom({ event_category_override: 'event_category_override = "custom.category"' }), nowMs + 1);
      expect(engine.stats().sequencePartials).toBe(0);
      engine.evaluate(event(1_000, 'stage-one'), nowMs + 1_000);
      engine.evaluate(event(2_000, 'stage-two'), nowMs + 2_000);
      await engine.drain();
      expect(alerts).toEqual([]);

      // and back: events of the category the rule now reads complete a sequence again
      engine.setRules(await rulesFrom({}), nowMs + 3_000);
      engine.evaluate(event(3_000, 'stage-one'), nowMs + 3_000);
      engine.evaluate(event(4_000, 'stage-two'), nowMs + 4_000);
      await engine.drain();
      expect(alerts).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});
