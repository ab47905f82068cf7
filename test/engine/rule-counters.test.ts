import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/commands/status.js';
import type { Alert } from '../../src/ecs/types.js';
import { DetectionEngine } from '../../src/engine/index.js';
import { BUILTIN_RULES_PATH, loadRuleSet } from '../../src/rules/index.js';
import { openHistoryStore, type HistoryStore } from '../../src/store/index.js';
import { execEvent, isoAfter, recordingLogger, tempDir } from './helpers.js';

/** Silence that explains itself: per-rule counters, and a debug line for each known-term sighting. */

const T0 = '2026-11-30T10:00:00.000Z';
const stores: HistoryStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

async function builtinEngine(level: 'debug' | 'info') {
  const { logger, records } = recordingLogger();
  logger.level = level;
  const store = await openHistoryStore({ stateDir: join(tempDir(), 'state'), maxTuplesPerRule: 1000, logger });
  stores.push(store);
  const alerts: Alert[] = [];
  // Elastic's built-in rule (the one of the two that keeps new-terms history)
  const { rules } = await loadRuleSet([join(BUILTIN_RULES_PATH, 'linux')], { skipUnsupported: false });
  return { engine: new DetectionEngine(rules, { store, logger, emit: (alert) => alerts.push(alert) }), alerts, records, rules };
}

describe('per-rule counters', () => {
  it('count matches, alerts and known terms per rule, and keep them across a reload', async () => {
    const { engine, rules } = await builtinEngine('info');
    engine.evaluate(execEvent(T0), Date.parse(T0));
    engine.evaluate(execEvent(isoAfter(T0, 1000)), Date.parse(T0) + 1000);
    engine.evaluate(execEvent(isoAfter(T0, 2000), { user: { name: 'root' } }), Date.parse(T0) + 2000);
    await engine.drain();
    const expected = { ruleId: '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb', name: 'Unusual Interactive Shell Launched from System User', matches: 2, alerts: 1, knownTerms: 1, suppressed: 0 };
    expect(engine.ruleCounters()).toEqual([expected]);
    engine.setRules(rules, Date.parse(T0) + 3000);
    expect(engine.ruleCounters()).toEqual([expected]);
  });

  it('status prints a line per rule that matched and counts the others', () => {
    const text = formatStatus({
      ruleCounters: [
        { ruleId: 'a', name: 'Rule "A"', matches: 3, alerts: 1, knownTerms: 2, suppressed: 0 },
        { ruleId: 'b', name: 'Rule B', matches: 0, alerts: 0, knownTerms: 0, suppressed: 0 },
      ],
    });
    expect(text.split('\n').slice(1, 3)).toEqual(['rule "Rule \\"A\\"" (a): matches=3 alerts=1 knownTerms=2 suppressed=0', 'rules without a match: 1']);
  });
});

describe('known-term sightings at debug level', () => {
  it('log one line per sighting that raised nothing, with the rule, the terms and when they were last seen', async () => {
    const { engine, records } = await builtinEngine('debug');
    engine.evaluate(execEvent(T0), Date.parse(T0));
    engine.evaluate(execEvent(isoAfter(T0, 5000)), Date.parse(T0) + 5000);
    await engine.drain();
    const known = records.filter((record) => record['msg'] === 'known term, no alert: seen within the history window');
    expect(known).toHaveLength(1);
    expect(known[0]).toMatchObject({
      level: 20,
      rule: 'Unusual Interactive Shell Launched from System User',
      terms: { 'process.executable': '/usr/bin/bash' },
      lastSeen: T0,
      windowStart: new Date(Date.parse(T0) + 5000 - 14 * 86_400_000).toISOString(),
    });
  });

  it('log nothing of the kind at info level', async () => {
    const { engine, records } = await builtinEngine('info');
    engine.evaluate(execEvent(T0), Date.parse(T0));
    engine.evaluate(execEvent(isoAfter(T0, 5000)), Date.parse(T0) + 5000);
    await engine.drain();
    expect(records.filter((record) => String(record['msg']).startsWith('known term'))).toEqual([]);
  });
});
