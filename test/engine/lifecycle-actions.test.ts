import { describe, expect, it } from 'vitest';
import type { Alert, ProcessEvent } from '../../src/ecs/types.js';
import { DetectionEngine } from '../../src/engine/index.js';
import { replayEvents } from '../../src/engine/replay.js';
import { loadRuleSet, type LoadedRule } from '../../src/rules/index.js';
import { openHistoryStore } from '../../src/store/index.js';
import { kibanaRule, ruleTree } from '../rules/fixtures.js';
import { execEvent, recordingLogger, replay, tempDir } from './helpers.js';
import { Readable } from 'node:stream';

/** Which rules fork and end events reach (LoadedRule.eventActions, EngineOptions.everyRuleActions). */

const T0 = '2024-05-01T10:00:00.000Z';

async function rules(...objects: Record<string, unknown>[]): Promise<LoadedRule[]> {
  const dir = ruleTree({ 'rules.ndjson': objects.map((object) => JSON.stringify(object)).join('\n') });
  return (await loadRuleSet([dir], { skipUnsupported: false })).rules;
}

const RULES = [
  kibanaRule({ rule_id: 'any', name: 'names no action', type: 'query', query: 'process.name:bash' }),
  kibanaRule({ rule_id: 'fork', name: 'names fork', type: 'query', query: 'event.action:(exec or fork) and process.name:bash' }),
  kibanaRule({ rule_id: 'end', name: 'names end', type: 'eql', language: 'eql', query: 'process where event.type == "end" and process.name == "bash"' }),
];

function lifecycleEvent(action: 'fork' | 'end', second: number): ProcessEvent {
  const event = execEvent(`2024-05-01T10:00:0${second}.000Z`);
  event.event.action = action;
  event.event.type = action === 'end' ? ['end'] : ['start'];
  if (action === 'end') event.process.exit_code = 0;
  return event;
}

const fired = (alerts: Alert[]) => alerts.map((alert) => `${alert.rule.id}:${alert.event.action}`);

describe('fork and end events in the engine', () => {
  const events = [execEvent(T0), lifecycleEvent('fork', 1), lifecycleEvent('end', 2)];

  it('go only to the rules that name them; exec events to every rule', async () => {
    expect(fired(await replay(await rules(...RULES), events))).toEqual(['any:exec', 'fork:exec', 'fork:fork', 'end:end']);
  });

  it('rules test --explain says which rules a fork or end event does not reach', async () => {
    const logger = recordingLogger().logger;
    const store = await openHistoryStore({ stateDir: tempDir(), maxTuplesPerRule: 1000, logger });
    const lines: string[] = [];
    await replayEvents({
      rules: await rules(...RULES),
      store,
      logger,
      eventsName: 'events',
      events: Readable.from([events.map((event) => JSON.stringify(event)).join('\n')]),
      emit: () => undefined,
      explain: (line) => lines.push(line),
    });
    await store.close();
    expect(lines.filter((line) => line.startsWith('events:2:'))).toEqual([
      'events:2: rule "names no action": not evaluated: a rule sees fork events only when its query can match them (README: Fork and end events)',
      'events:2: rule "names fork": matched',
      'events:2: rule "names end": not evaluated: a rule sees fork events only when its query can match them (README: Fork and end events)',
    ]);
    expect(lines.filter((line) => line.startsWith('events:3:'))[2]).toBe('events:3: rule "names end": matched');
  });

  it('go to every rule when everyRuleActions lists them, as Elasticsearch on Elastic Defend data', async () => {
    const loaded = await rules(...RULES);
    const logger = recordingLogger().logger;
    const store = await openHistoryStore({ stateDir: tempDir(), maxTuplesPerRule: 1000, logger });
    const alerts: Alert[] = [];
    const engine = new DetectionEngine(loaded, { store, logger, emit: (alert) => alerts.push(alert), everyRuleActions: ['exec', 'fork', 'end'] });
    for (const event of events) engine.evaluate(event, Date.parse(event['@timestamp']));
    await engine.drain();
    await store.close();
    expect(fired(alerts)).toEqual(['any:exec', 'fork:exec', 'any:fork', 'fork:fork', 'any:end', 'end:end']);
  });
});
