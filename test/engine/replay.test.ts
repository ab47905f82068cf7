import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../src/ecs/types.js';
import { loadRuleSet, type LoadedRule } from '../../src/rules/index.js';
import { kibanaRule, ruleTree } from '../rules/fixtures.js';
import { DAY_MS, execEvent, isoAfter, recordingLogger, replay, tempDir } from './helpers.js';

const T0 = '2024-05-01T10:00:00.000Z';

async function builtin(): Promise<LoadedRule[]> {
  return (await loadRuleSet([], { skipUnsupported: false })).rules;
}

/** Rules from Kibana-shaped objects, through the real loader. */
async function rules(...objects: Record<string, unknown>[]): Promise<LoadedRule[]> {
  const dir = ruleTree({ 'rules.ndjson': objects.map((object) => JSON.stringify(object)).join('\n') });
  return (await loadRuleSet([dir], { skipUnsupported: false })).rules;
}

function newTermsRule(fields: string[], overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return kibanaRule({ rule_id: `nt-${fields.join('-')}`, name: `New ${fields.join(' + ')}`, query: 'event.action:exec', new_terms_fields: fields, ...overrides });
}

const terms = (alerts: Alert[]): (Record<string, string> | undefined)[] => alerts.map((alert) => alert.execsentry.new_terms);

describe('new_terms history window (built-in rule, now-14d)', () => {
  it('alerts at t0, not at t0+10d, and again at t0+10d+15d with nothing in between', async () => {
    const alerts = await replay(await builtin(), [
      execEvent(T0),
      execEvent(isoAfter(T0, 10 * DAY_MS)),
      execEvent(isoAfter(T0, 25 * DAY_MS)),
    ]);
    expect(alerts.map((alert) => alert['@timestamp'])).toEqual([T0, isoAfter(T0, 25 * DAY_MS)]);
    expect(terms(alerts)).toEqual([{ 'process.executable': '/usr/bin/bash' }, { 'process.executable': '/usr/bin/bash' }]);
  });

  it('every sighting refreshes last-seen: sightings every 10 days never alert again', async () => {
    const alerts = await replay(
      await builtin(),
      [0, 10, 20, 30, 40].map((days) => execEvent(isoAfter(T0, days * DAY_MS))),
    );
    expect(alerts).toHaveLength(1);
  });

  it('a sighting just inside the window is known, just outside is new', async () => {
    const alerts = await replay(await builtin(), [
      execEvent(T0),
      execEvent(isoAfter(T0, 14 * DAY_MS - 1000)),
      execEvent(isoAfter(T0, 28 * DAY_MS)),
    ]);
    expect(alerts.map((alert) => alert['@timestamp'])).toEqual([T0, isoAfter(T0, 28 * DAY_MS)]);
  });

  it('history survives closing and reopening the store (an agent restart)', async () => {
    const stateDir = join(tempDir(), 'state');
    const rule = await builtin();
    expect(await replay(rule, [execEvent(T0)], { stateDir })).toHaveLength(1);
    expect(await replay(rule, [execEvent(isoAfter(T0, DAY_MS))], { stateDir })).toHaveLength(0);
    expect(await replay(rule, [execEvent(isoAfter(T0, DAY_MS), { process: { executable: '/usr/bin/dash', name: 'dash' } })], { stateDir })).toHaveLength(1);
  });

  it('changing new_terms_fields starts a fresh history for the rule', async () => {
    const stateDir = join(tempDir(), 'state');
    const event = execEvent(T0);
    expect(await replay(await rules(newTermsRule(['process.executable'], { rule_id: 'same' })), [event], { stateDir })).toHaveLength(1);
    expect(await replay(await rules(newTermsRule(['process.executable'], { rule_id: 'same' })), [event], { stateDir })).toHaveLength(0);
    expect(await replay(await rules(newTermsRule(['process.executable', 'user.name'], { rule_id: 'same' })), [event], { stateDir })).toHaveLength(1);
  });

  it('the built-in rule ignores events it does not match, and they do not touch its history', async () => {
    const alerts = await replay(await builtin(), [
      execEvent(T0, { user: { name: 'root', id: '0', effective: { name: 'root', id: '0' } } }),
      execEvent(T0, { process: { interactive: false } }),
      execEvent(T0, { process: { name: 'sed', executable: '/usr/bin/sed' } }),
      execEvent(T0, { process: { parent: { name: 'apt-key' } } }),
      execEvent(T0, { process: { name: 'at', executable: '/usr/bin/at' } }),
      execEvent(T0, { host: { os: { type: 'windows' as 'linux' } } }),
      execEvent(isoAfter(T0, 1000)),
    ]);
    expect(alerts.map((alert) => alert['@timestamp'])).toEqual([isoAfter(T0, 1000)]);
  });
});

describe('new_terms tuples', () => {
  it('multi-field tuples: each new combination alerts once', async () => {
    const rule = await rules(newTermsRule(['user.name', 'process.executable']));
    const alerts = await replay(rule, [
      execEvent(T0),
      execEvent(isoAfter(T0, 1000)),
      execEvent(isoAfter(T0, 2000), { user: { name: 'bin' } }),
      execEvent(isoAfter(T0, 3000), { process: { executable: '/usr/bin/dash' } }),
      execEvent(isoAfter(T0, 4000), { user: { name: 'bin' }, process: { executable: '/usr/bin/dash' } }),
      execEvent(isoAfter(T0, 5000), { user: { name: 'bin' }, process: { executable: '/usr/bin/dash' } }),
    ]);
    expect(terms(alerts)).toEqual([
      { 'user.name': 'daemon', 'process.executable': '/usr/bin/bash' },
      { 'user.name': 'bin', 'process.executable': '/usr/bin/bash' },
      { 'user.name': 'daemon', 'process.executable': '/usr/bin/dash' },
      { 'user.name': 'bin', 'process.executable': '/usr/bin/dash' },
    ]);
  });

  it('array fields give every combination of their values', async () => {
    const rule = await rules(newTermsRule(['process.args', 'user.name']));
    const alerts = await replay(rule, [
      execEvent(T0, { process: { args: ['a', 'b'] } }),
      execEvent(isoAfter(T0, 1000), { process: { args: ['b', 'c', 'a'] } }),
      execEvent(isoAfter(T0, 2000), { process: { args: ['c'] }, user: { name: 'bin' } }),
    ]);
    expect(terms(alerts)).toEqual([
      { 'process.args': 'a', 'user.name': 'daemon' },
      { 'process.args': 'b', 'user.name': 'daemon' },
      { 'process.args': 'c', 'user.name': 'daemon' },
      { 'process.args': 'c', 'user.name': 'bin' },
    ]);
  });

  it('three array fields multiply', async () => {
    const rule = await rules(newTermsRule(['process.args', 'process.thread.capabilities.effective', 'user.name']));
    const alerts = await replay(rule, [
      execEvent(T0, { process: { args: ['x', 'y'], thread: { capabilities: { effective: ['CAP_A', 'CAP_B', 'CAP_C'] } } } }),
    ]);
    expect(alerts).toHaveLength(6);
    expect(new Set(alerts.map((alert) => alert.event.id)).size).toBe(6);
  });

  it('an event missing one of the fields gives no tuple and no alert, nor an empty array', async () => {
    const rule = await rules(newTermsRule(['user.name', 'process.executable']));
    const alerts = await replay(rule, [
      execEvent(T0, { process: { executable: undefined } }),
      execEvent(T0, { user: undefined }),
      execEvent(T0, { process: { args: [] } }),
    ]);
    expect(terms(alerts)).toEqual([{ 'user.name': 'daemon', 'process.executable': '/usr/bin/bash' }]);
    const none = await replay(await rules(newTermsRule(['process.args'])), [execEvent(T0, { process: { args: [] } })]);
    expect(none).toEqual([]);
  });

  it('a caseless field gives its values lowercased, as Elasticsearch aggregates them', async () => {
    const rule = await rules(newTermsRule(['process.executable.caseless']));
    const alerts = await replay(rule, [
      execEvent(T0, { process: { executable: '/usr/bin/Bash' } }),
      execEvent(T0, { process: { executable: '/USR/BIN/BASH' } }),
      execEvent(T0, { process: { executable: '/usr/bin/dash' } }),
      execEvent(T0, { process: { executable: `/${'x'.repeat(1024)}` } }),
    ]);
    expect(terms(alerts)).toEqual([{ 'process.executable.caseless': '/usr/bin/bash' }, { 'process.executable.caseless': '/usr/bin/dash' }]);
  });

  it('a keyword value over 1024 characters gives no term, as Elasticsearch keeps no doc value for it', async () => {
    const rule = await rules(newTermsRule(['process.executable']));
    const alerts = await replay(rule, [execEvent(T0, { process: { executable: `/${'x'.repeat(1024)}` } }), execEvent(T0, { process: { executable: `/${'x'.repeat(1023)}` } })]);
    expect(terms(alerts)).toEqual([{ 'process.executable': `/${'x'.repeat(1023)}` }]);
  });

  it('reads dotted keys as well as nested objects (replayed documents may use either)', async () => {
    const rule = await rules(newTermsRule(['process.executable']));
    const flat = { '@timestamp': T0, 'event.action': 'exec', 'process.executable': '/opt/x' };
    const alerts = await replay(rule, [flat]);
    expect(terms(alerts)).toEqual([{ 'process.executable': '/opt/x' }]);
  });
});

describe('max_signals', () => {
  it('caps alerts per rule per interval and reports the suppressed once per interval', async () => {
    const rule = await rules(
      kibanaRule({ rule_id: 'q', name: 'Every exec', type: 'query', query: 'event.action:exec', max_signals: 2, interval: '5m', new_terms_fields: undefined, history_window_start: undefined }),
    );
    const { logger, records } = recordingLogger();
    const at = (seconds: number): string => isoAfter(T0, seconds * 1000);
    const alerts = await replay(
      rule,
      [0, 10, 20, 30, 40, 299, 300, 310, 320].map((seconds) => execEvent(at(seconds))),
      { logger },
    );
    expect(alerts.map((alert) => alert['@timestamp'])).toEqual([at(0), at(10), at(300), at(310)]);
    const warnings = records.filter((record) => record['level'] === 40);
    expect(warnings.map((record) => [record['suppressed'], record['from'], record['until']])).toEqual([
      [4, at(0), at(300)],
      [1, at(300), at(320)],
    ]);
    expect(warnings[0]!['msg']).toBe('rule "Every exec" reached max_signals (2); 4 more alert(s) suppressed in this interval');
  });

  it('a new term suppressed by max_signals is not recorded: its next sighting alerts', async () => {
    const rule = await rules(newTermsRule(['process.executable'], { max_signals: 1, interval: '1m' }));
    const alerts = await replay(rule, [
      execEvent(T0, { process: { executable: '/a' } }),
      execEvent(isoAfter(T0, 1000), { process: { executable: '/b' } }),
      execEvent(isoAfter(T0, 61_000), { process: { executable: '/b' } }),
      execEvent(isoAfter(T0, 62_000), { process: { executable: '/a' } }),
    ]);
    expect(terms(alerts)).toEqual([{ 'process.executable': '/a' }, { 'process.executable': '/b' }]);
  });
});

describe('query rules, disabled rules, several rules', () => {
  const query = kibanaRule({
    rule_id: 'daemon-exec',
    name: 'Daemon exec',
    type: 'query',
    query: 'user.name:daemon and event.action:exec',
    new_terms_fields: undefined,
    history_window_start: undefined,
  });

  it('a query rule alerts on every matching event', async () => {
    const alerts = await replay(await rules(query), [execEvent(T0), execEvent(T0, { user: { name: 'root' } }), execEvent(isoAfter(T0, 1000))]);
    expect(alerts).toHaveLength(2);
    expect(alerts[0]).toMatchObject({ rule: { id: 'daemon-exec', name: 'Daemon exec' }, execsentry: { rule: { type: 'query' } } });
    expect(alerts[0]!.execsentry.new_terms).toBeUndefined();
  });

  it('a disabled rule is loaded but never alerts', async () => {
    const loaded = await rules({ ...query, enabled: false });
    expect(loaded).toHaveLength(1);
    expect(await replay(loaded, [execEvent(T0)])).toEqual([]);
  });

  it('several rules see every event; alerts come out in event order', async () => {
    const all = [...(await builtin()), ...(await rules(query, newTermsRule(['user.name'])))];
    const alerts = await replay(all, [execEvent(T0), execEvent(isoAfter(T0, 1000), { user: { name: 'bin' } })]);
    expect(alerts.map((alert) => [alert['@timestamp'], alert.rule.id])).toEqual([
      [T0, '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb'],
      [T0, 'daemon-exec'],
      [T0, 'nt-user.name'],
      // the built-in rule has seen /usr/bin/bash already; the user.name rule has not seen bin
      [isoAfter(T0, 1000), 'nt-user.name'],
    ]);
  });
});
