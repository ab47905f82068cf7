import { describe, expect, it } from 'vitest';
import { HEALTH_RULE, openOutputs } from '../../src/outputs/index.js';
import { expectEcsConformant } from '../engine/ecs.js';
import { makeAlert } from './helpers/alerts.js';
import { testContext } from './helpers/context.js';
import { startHttpCollector } from './helpers/http-collector.js';
import { freeTcpPort, waitFor } from './helpers/ports.js';

describe('a full spool', () => {
  it('drops the oldest alerts, counts and logs them, and reports them once with a health alert when the collector is back', async () => {
    const context = testContext();
    const port = await freeTcpPort();
    const url = `http://127.0.0.1:${port}/`;
    const outputs = await openOutputs([{ url, spoolMaxBytes: 64 * 1024, timeoutSeconds: 1 }], context);
    const alerts = Array.from({ length: 300 }, (_, i) => makeAlert(i));
    for (const alert of alerts) await outputs.send(alert);
    await waitFor('a refused connection', () => Object.values(outputs.stats())[0]!.lastError !== undefined);
    const dropped = Object.values(outputs.stats())[0]!.dropped;
    expect(dropped).toBeGreaterThan(0);
    expect(context.logs.some((log) => /spool full/.test(log.msg))).toBe(true);

    const collector = await startHttpCollector(() => ({ status: 200 }), { port });
    await outputs.flush(30_000);
    const documents = collector.requests.flatMap((request) =>
      request.body
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as { event: { id: string; kind: string }; rule: { name: string }; execsentry: { delivery?: { dropped: number; output: string } }; host?: unknown }),
    );
    const health = documents.filter((doc) => doc.rule.name === HEALTH_RULE.name);
    expect(health).toHaveLength(1);
    expect(expectEcsConformant(health[0]!).sort()).toEqual(['execsentry.delivery.dropped', 'execsentry.delivery.first_dropped_at', 'execsentry.delivery.output']);
    expect(health[0]).toMatchObject({
      event: { kind: 'alert', dataset: 'execsentry.alerts', module: 'execsentry', severity: 73 },
      execsentry: { delivery: { dropped, output: url } },
      host: alerts[0]!.host,
      agent: alerts[0]!.agent,
    });
    // exactly the dropped ones are missing, and they are a contiguous run of the oldest (the batch already
    // in flight when the spool filled is not among them); the newest all arrived
    const ids = new Set(documents.map((doc) => doc.event.id));
    const lostIndexes = alerts.flatMap((alert, index) => (ids.has(alert.event.id) ? [] : [index]));
    expect(lostIndexes).toHaveLength(dropped);
    expect(lostIndexes).toEqual(Array.from({ length: dropped }, (_, i) => lostIndexes[0]! + i));
    expect(lostIndexes[0]!).toBeLessThan(alerts.length / 2);
    await outputs.close();
    await collector.close();
    context.cleanup();
  });
});
