import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DATA_STREAM, elasticsearchUrl, openOutputs } from '../../src/outputs/index.js';
import { makeAlert } from './helpers/alerts.js';
import { makeCertificates, type TestCertificates } from './helpers/certs.js';
import { testContext } from './helpers/context.js';
import { startHttpCollector, type ReceivedRequest } from './helpers/http-collector.js';

interface BulkAction {
  create?: { _id?: string; _index?: string };
}

/** The action/document pairs of a _bulk body, checked to be well-formed NDJSON. */
function bulkPairs(request: ReceivedRequest): Array<{ action: BulkAction; doc: { event: { id: string }; process: { args: string[] } } }> {
  const lines = request.body.split('\n');
  expect(lines.pop()).toBe(''); // _bulk requires the final newline
  expect(lines.length % 2).toBe(0);
  const pairs = [];
  for (let i = 0; i < lines.length; i += 2) pairs.push({ action: JSON.parse(lines[i]!) as BulkAction, doc: JSON.parse(lines[i + 1]!) });
  return pairs;
}

function markerIndex(doc: { process: { args: string[] } }): number {
  return Number(doc.process.args[2]!.replace('marker-', ''));
}

/**
 * An Elasticsearch-compatible _bulk endpoint answering per item as Elasticsearch documents it: by the
 * alert's number mod 5 → 0: 400 mapper_parsing_exception (always), 1: 429 once then 201, 2: 409 (already
 * indexed), 3: 201, 4: 503 once then 201.
 */
function bulkBehaviour(seen: Map<string, number>) {
  return (request: ReceivedRequest) => {
    const items = bulkPairs(request).map(({ action, doc }) => {
      const id = action.create!._id!;
      const attempt = (seen.get(id) ?? 0) + 1;
      seen.set(id, attempt);
      const kind = markerIndex(doc) % 5;
      let status = 201;
      let error: unknown;
      if (kind === 0) {
        status = 400;
        error = { type: 'mapper_parsing_exception', reason: 'failed to parse field [process.pid] of type [long]' };
      } else if (kind === 1 && attempt === 1) {
        status = 429;
        error = { type: 'es_rejected_execution_exception', reason: 'rejected execution' };
      } else if (kind === 2) {
        status = 409;
        error = { type: 'version_conflict_engine_exception', reason: `[${id}]: version conflict, document already exists` };
      } else if (kind === 4 && attempt === 1) {
        status = 503;
        error = { type: 'unavailable_shards_exception', reason: 'primary shard is not active' };
      }
      return { create: { _index: `.ds-${DEFAULT_DATA_STREAM}-2026.11.28-000001`, _id: id, status, ...(error === undefined ? {} : { error }) } };
    });
    return { status: 200, body: JSON.stringify({ took: 3, errors: items.some((item) => item.create.status >= 300), items }) };
  };
}

describe('elasticsearch output URLs', () => {
  it('default to port 9200, and keep a given port even when it is the scheme\'s own', () => {
    expect(elasticsearchUrl(new URL('elasticsearch://u:p@es.example/'), false).href).toBe('http://es.example:9200/');
    expect(elasticsearchUrl(new URL('elasticsearch://es.example:80/'), false).href).toBe('http://es.example/');
    expect(elasticsearchUrl(new URL('elasticsearchs://es.example:443/base'), true).href).toBe('https://es.example/base');
    expect(elasticsearchUrl(new URL('es+https://es.example:9243'), true).href).toBe('https://es.example:9243/');
  });
});

describe('elasticsearch output (_bulk with create actions)', () => {
  it('acknowledges 201 and 409, retries only 429/5xx items, dead-letters 400 items with their error', async () => {
    const context = testContext();
    const seen = new Map<string, number>();
    const collector = await startHttpCollector(bulkBehaviour(seen));
    const apiKeyFile = join(context.stateDir, 'api-key');
    writeFileSync(apiKeyFile, 'VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==\n');
    const outputs = await openOutputs([{ url: `elasticsearch://127.0.0.1:${collector.port}`, apiKeyFile, batchSize: 50 }], context);
    const alerts = Array.from({ length: 100 }, (_, i) => makeAlert(i));
    for (const alert of alerts) await outputs.send(alert);
    await outputs.flush(30_000);

    for (const request of collector.requests) {
      expect(request.url).toBe(`/${DEFAULT_DATA_STREAM}/_bulk?filter_path=errors,items.*.status,items.*.error`);
      expect(request.headers['content-type']).toBe('application/x-ndjson');
      expect(request.headers.authorization).toBe('ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==');
      for (const { action, doc } of bulkPairs(request)) {
        expect(Object.keys(action)).toEqual(['create']);
        expect(action.create!._id).toBe(doc.event.id);
      }
    }
    // each alert was sent once, except the 429/503 ones: exactly twice
    for (const [i, alert] of alerts.entries()) expect([i, seen.get(alert.event.id)]).toEqual([i, i % 5 === 1 || i % 5 === 4 ? 2 : 1]);
    // retry requests carried nothing but the items that had to be retried
    const retried = new Set(alerts.filter((_, i) => i % 5 === 1 || i % 5 === 4).map((alert) => alert.event.id));
    const firstSeenRequest = new Map<string, number>();
    collector.requests.forEach((request, index) => {
      for (const { action } of bulkPairs(request)) {
        const id = action.create!._id!;
        if (firstSeenRequest.has(id)) expect(retried.has(id)).toBe(true);
        else firstSeenRequest.set(id, index);
      }
    });

    const stats = Object.values(outputs.stats())[0]!;
    expect(stats).toMatchObject({ kind: 'elasticsearch', acknowledged: 80, deadLettered: 20, retried: 40, sent: 140, pending: 0 });
    await outputs.close();
    const deadLetterDir = join(context.stateDir, 'dead-letter');
    const lines = readFileSync(join(deadLetterDir, readdirSync(deadLetterDir)[0]!), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((line) => line.alert.event.id).sort()).toEqual(alerts.filter((_, i) => i % 5 === 0).map((alert) => alert.event.id).sort());
    expect(lines[0].reason).toBe('_bulk item status 400');
    expect(JSON.parse(lines[0].response)).toMatchObject({ type: 'mapper_parsing_exception' });
    await collector.close();
    context.cleanup();
  });

  it('retries the whole request on HTTP 429 and uses basic auth from username + passwordFile', async () => {
    const context = testContext();
    const collector = await startHttpCollector((request, index) => {
      if (index === 0) return { status: 429, headers: { 'retry-after': '0' }, body: '{"error":"too many requests"}' };
      return { status: 200, body: JSON.stringify({ errors: false, items: bulkPairs(request).map(() => ({ create: { status: 201 } })) }) };
    });
    const passwordFile = join(context.stateDir, 'password');
    writeFileSync(passwordFile, 'p4ss:word\n');
    const outputs = await openOutputs(
      [{ url: `es+http://127.0.0.1:${collector.port}/prefix`, username: 'execsentry_writer', passwordFile, index: 'logs-execsentry.alerts-prod' }],
      context,
    );
    const alert = makeAlert(1);
    await outputs.send(alert);
    await outputs.flush(10_000);
    expect(collector.requests).toHaveLength(2);
    expect(collector.requests[1]!.url.startsWith('/prefix/logs-execsentry.alerts-prod/_bulk?')).toBe(true);
    expect(collector.requests[1]!.headers.authorization).toBe(`Basic ${Buffer.from('execsentry_writer:p4ss:word').toString('base64')}`);
    expect(Object.values(outputs.stats())[0]).toMatchObject({ acknowledged: 1, retried: 1 });
    // the counters' key never shows credentials
    expect(Object.keys(outputs.stats())[0]).toBe(`es+http://127.0.0.1:${collector.port}/prefix`);
    await outputs.close();
    await collector.close();
    context.cleanup();
  });

  describe('over TLS', () => {
    let certs: TestCertificates;
    beforeAll(() => {
      certs = makeCertificates();
    });
    afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));

    for (const scheme of ['elasticsearchs', 'es+https']) {
      it(`${scheme}:// speaks HTTPS and verifies against caFile`, async () => {
        const context = testContext();
        const collector = await startHttpCollector(
          (request) => ({ status: 200, body: JSON.stringify({ errors: false, items: bulkPairs(request).map(() => ({ create: { status: 201 } })) }) }),
          { tls: { key: certs.serverKey, cert: certs.serverCert } },
        );
        const outputs = await openOutputs([{ url: `${scheme}://127.0.0.1:${collector.port}`, caFile: certs.caFile }], context);
        await outputs.send(makeAlert(1));
        await outputs.flush(10_000);
        expect(collector.requests).toHaveLength(1);
        expect(Object.values(outputs.stats())[0]).toMatchObject({ acknowledged: 1 });
        await outputs.close();
        await collector.close();
        context.cleanup();
      });
    }
  });
});
