import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert, ProcessEvent } from '../../src/ecs/types.js';
import { DetectionEngine } from '../../src/engine/index.js';
import { loadRuleSet, type LoadedRule } from '../../src/rules/index.js';
import { openHistoryStore, type HistoryStore } from '../../src/store/index.js';
import { eqlToml } from '../helpers/eql-rule.js';
import { execEvent, isoAfter, recordingLogger, tempDir } from './helpers.js';

/** EQL sequence rules inside the engine: alerts, state across reloads, time passing, the partial bound. */

const T0 = '2026-11-30T10:00:00.000Z';
const stores: HistoryStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

async function rulesFrom(query: string, lines: Record<string, string> = {}): Promise<LoadedRule[]> {
  const dir = tempDir();
  writeFileSync(join(dir, 'rule.toml'), eqlToml({ id: 'seq-rule', name: 'Sequence rule' }, query, lines));
  return (await loadRuleSet([dir], { skipUnsupported: false })).rules;
}

async function engineWith(rules: readonly LoadedRule[], maxPartialSequencesPerRule?: number): Promise<{ engine: DetectionEngine; alerts: Alert[] }> {
  const { logger } = recordingLogger();
  const store = await openHistoryStore({ stateDir: join(tempDir(), 'state'), maxTuplesPerRule: 1000, logger });
  stores.push(store);
  const alerts: Alert[] = [];
  const engine = new DetectionEngine(rules, { store, logger, emit: (alert) => alerts.push(alert), maxPartialSequencesPerRule });
  return { engine, alerts };
}

/** An exec of `name` by the parent `parent`, `ms` after T0. */
function exec(name: string, parent: string, ms: number): ProcessEvent {
  const at = isoAfter(T0, ms);
  return execEvent(at, { event: { id: `${name}-${ms}` }, process: { name, pid: 1000 + ms, parent: { entity_id: parent } } });
}

const TWO_STAGES = 'sequence by process.parent.entity_id with maxspan=30s [process where process.name == "curl"] [process where process.name == "bash"]';

describe('sequence rules in the engine', () => {
  it('alert once per sequence, on its last event, with every stage event and the join keys', async () => {
    const { engine, alerts } = await engineWith(await rulesFrom(TWO_STAGES));
    const first = exec('curl', 'parent-a', 0);
    const second = exec('bash', 'parent-a', 1000);
    engine.evaluate(first, Date.parse(first['@timestamp']));
    engine.evaluate(exec('bash', 'parent-b', 1500), Date.parse(T0) + 1500);
    engine.evaluate(second, Date.parse(second['@timestamp']));
    await engine.drain();
    expect(alerts).toHaveLength(1);
    const [alert] = alerts;
    expect(alert!.event.kind).toBe('alert');
    expect(alert!.execsentry.rule.type).toBe('eql');
    expect(alert!.process.name).toBe('bash');
    expect(alert!.execsentry.sequence?.join_keys).toEqual(['parent-a']);
    expect(alert!.execsentry.sequence?.events.map((event) => (event as ProcessEvent).event.id)).toEqual([first.event.id, second.event.id]);
    expect(engine.stats()).toMatchObject({ matches: 1, alerts: 1, sequencePartials: 0 });
  });

  it('measure maxspan on the events’ own @timestamp, not on the clock they are evaluated at', async () => {
    const { engine, alerts } = await engineWith(await rulesFrom(TWO_STAGES));
    const now = Date.parse(T0);
    engine.evaluate(exec('curl', 'p', 0), now);
    // evaluated "now", but 31 s later by its own time: past maxspan
    engine.evaluate(exec('bash', 'p', 31_000), now);
    await engine.drain();
    expect(alerts).toHaveLength(0);
  });

  it('keep partial sequences across a reload that leaves the query unchanged, not one that changes it', async () => {
    const rules = await rulesFrom(TWO_STAGES);
    const { engine, alerts } = await engineWith(rules);
    engine.evaluate(exec('curl', 'p', 0), Date.parse(T0));
    expect(engine.stats().sequencePartials).toBe(1);
    engine.setRules(await rulesFrom(TWO_STAGES), Date.parse(T0) + 10);
    engine.evaluate(exec('bash', 'p', 1000), Date.parse(T0) + 1000);
    await engine.drain();
    expect(alerts).toHaveLength(1);

    engine.evaluate(exec('curl', 'q', 2000), Date.parse(T0) + 2000);
    engine.setRules(await rulesFrom(TWO_STAGES.replace('maxspan=30s', 'maxspan=20s')), Date.parse(T0) + 2010);
    expect(engine.stats().sequencePartials).toBe(0);
    engine.evaluate(exec('bash', 'q', 3000), Date.parse(T0) + 3000);
    await engine.drain();
    expect(alerts).toHaveLength(1);
  });

  it('complete a missing-event sequence when time passes without the event (advanceSequences, the agent’s tick)', async () => {
    const query = 'sequence by process.parent.entity_id with maxspan=10s [process where process.name == "curl"] ![process where process.name == "chmod"]';
    const { engine, alerts } = await engineWith(await rulesFrom(query));
    engine.evaluate(exec('curl', 'p', 0), Date.parse(T0));
    engine.evaluate(exec('curl', 'q', 100), Date.parse(T0) + 100);
    engine.evaluate(exec('chmod', 'q', 5000), Date.parse(T0) + 5000);
    engine.advanceSequences(Date.parse(T0) + 5000);
    await engine.drain();
    expect(alerts).toHaveLength(0);
    engine.advanceSequences(Date.parse(T0) + 11_000);
    await engine.drain();
    expect(alerts.map((alert) => alert.execsentry.sequence?.join_keys)).toEqual([['p']]);
    expect(alerts[0]!.execsentry.sequence?.events[1]).toEqual({ missing: true });
  });

  it('advance a rule timed by another field with its own events only, not on @timestamp’s clock', async () => {
    const query = 'sequence by process.parent.entity_id with maxspan=1m [process where process.name == "curl"] [process where process.name == "bash"]';
    const { engine, alerts } = await engineWith(await rulesFrom(query, { timestamp_field: 'timestamp_field = "event.created"' }));
    // event.created an hour behind @timestamp, the two 10 s apart
    const hourAgo = (ms: number): string => new Date(Date.parse(T0) - 3_600_000 + ms).toISOString();
    const first = { ...exec('curl', 'p', 0), event: { ...exec('curl', 'p', 0).event, created: hourAgo(0) } };
    const second = { ...exec('bash', 'p', 10_000), event: { ...exec('bash', 'p', 10_000).event, created: hourAgo(10_000) } };
    engine.evaluate(first, Date.parse(T0));
    engine.advanceSequences(Date.parse(T0) + 5000);
    engine.evaluate(second, Date.parse(T0) + 10_000);
    await engine.drain();
    expect(alerts).toHaveLength(1);
    expect(engine.stats().sequencesExpired).toBe(0);
  });

  it('tell the live clock how far event time is known to have passed: not past a late exec’s own time', async () => {
    const { engine } = await engineWith(await rulesFrom(TWO_STAGES));
    const now = Date.parse(T0) + 60_000;
    expect(engine.sequenceClock(now, 2000)).toBe(now - 2000);
    // caught up: the last exec was evaluated 1 ms after its @timestamp
    engine.evaluate(exec('ls', 'p', 59_999), now);
    expect(engine.sequenceClock(now, 2000)).toBe(now - 2000);
    // a flood delayed it by 30 s: only its own time has surely passed
    engine.evaluate(exec('ls', 'p', 30_000), now);
    expect(engine.sequenceClock(now, 2000)).toBe(Date.parse(T0) + 30_000);
  });

  it('start a new matcher when a reload changes the category field, though the query text stays', async () => {
    const query = 'sequence by process.parent.entity_id with maxspan=1m [start where process.name == "curl"] [start where process.name == "bash"]';
    const rules = await rulesFrom(query, { event_category_override: 'event_category_override = "event.type"' });
    const { engine } = await engineWith(rules);
    engine.evaluate(exec('curl', 'p', 0), Date.parse(T0));
    expect(engine.stats().sequencePartials).toBe(1);
    engine.setRules(await rulesFrom(query, { event_category_override: 'event_category_override = "custom.kind"' }), Date.parse(T0) + 10);
    expect(engine.stats().sequencePartials).toBe(0);
  });

  it('bound partial sequences per rule: the oldest is dropped and counted', async () => {
    const { engine, alerts } = await engineWith(await rulesFrom(TWO_STAGES), 3);
    for (let i = 0; i < 5; i++) engine.evaluate(exec('curl', `p${i}`, i), Date.parse(T0) + i);
    expect(engine.stats()).toMatchObject({ sequencePartials: 3, sequencesDropped: 2 });
    engine.evaluate(exec('bash', 'p0', 10), Date.parse(T0) + 10);
    engine.evaluate(exec('bash', 'p4', 11), Date.parse(T0) + 11);
    await engine.drain();
    expect(alerts.map((alert) => alert.execsentry.sequence?.join_keys)).toEqual([['p4']]);
  });

  it('apply max_signals to sequence alerts', async () => {
    const { engine, alerts } = await engineWith(await rulesFrom(TWO_STAGES, { max_signals: 'max_signals = 2' }));
    for (let i = 0; i < 4; i++) {
      engine.evaluate(exec('curl', `p${i}`, 2 * i), Date.parse(T0) + 2 * i);
      engine.evaluate(exec('bash', `p${i}`, 2 * i + 1), Date.parse(T0) + 2 * i + 1);
    }
    await engine.drain();
    expect(alerts).toHaveLength(2);
    expect(engine.stats()).toMatchObject({ matches: 4, suppressed: 2 });
  });
});
