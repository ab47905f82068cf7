import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOutputs } from '../../src/outputs/index.js';
import { isRetryableStatus, wholeBatchOutcome } from '../../src/outputs/http.js';
import { backoffDelayMs, parseRetryAfter } from '../../src/outputs/time.js';
import { makeAlert } from './helpers/alerts.js';
import { makeCertificates, type TestCertificates } from './helpers/certs.js';
import { testContext } from './helpers/context.js';
import { idsInNdjson, startHttpCollector } from './helpers/http-collector.js';
import { freeTcpPort, waitFor } from './helpers/ports.js';

function onlyStats(outputs: Awaited<ReturnType<typeof openOutputs>>) {
  return Object.values(outputs.stats())[0]!;
}

describe('http output against a real collector on 127.0.0.1', () => {
  it('survives refused connections, a timeout, 500 and 429 with Retry-After: the received ids equal the sent ids', async () => {
    const context = testContext();
    const port = await freeTcpPort();
    const outputs = await openOutputs(
      [{ url: `http://127.0.0.1:${port}/ingest`, batchSize: 40, timeoutSeconds: 1, headers: { authorization: 'Bearer s3cret' }, gzip: true }],
      context,
    );
    const alerts = Array.from({ length: 200 }, (_, i) => makeAlert(i));
    // nothing listens yet: every send must still resolve (spooled), never wait for the collector
    for (const alert of alerts) await outputs.send(alert);
    await waitFor('a refused connection', () => /ECONNREFUSED/.test(onlyStats(outputs).lastError ?? ''));
    expect(onlyStats(outputs).acknowledged).toBe(0);

    const collector = await startHttpCollector(
      (_request, index) => {
        if (index === 0) return undefined; // hang: the client must time out and retry
        if (index === 1) return { status: 500, body: 'internal error' };
        if (index === 2) return { status: 429, headers: { 'retry-after': '1' }, body: 'slow down' };
        return { status: 200 };
      },
      { port },
    );
    await outputs.flush(30_000);
    const accepted = collector.requests.slice(3);
    const receivedIds = new Set(accepted.flatMap((request) => idsInNdjson(request.body)));
    expect(receivedIds).toEqual(new Set(alerts.map((alert) => alert.event.id)));
    // the first three requests carried the same first batch: only retried, never skipped
    expect(idsInNdjson(collector.requests[0]!.body)).toEqual(idsInNdjson(collector.requests[3]!.body));
    // Retry-After: 1 was honoured
    expect(collector.requests[3]!.at - collector.requests[2]!.at).toBeGreaterThanOrEqual(950);
    for (const request of collector.requests) {
      expect(request.method).toBe('POST');
      expect(request.url).toBe('/ingest');
      expect(request.headers['content-type']).toBe('application/x-ndjson');
      expect(request.headers['content-encoding']).toBe('gzip');
      expect(request.headers.authorization).toBe('Bearer s3cret');
    }
    const stats = onlyStats(outputs);
    expect(stats.acknowledged).toBe(200);
    // the refused attempts, the timeout, the 500 and the 429 all resent the first batch
    expect(stats.retried).toBeGreaterThanOrEqual(4 * idsInNdjson(collector.requests[0]!.body).length);
    expect(stats.sent).toBe(200 + stats.retried);
    expect(stats.pending).toBe(0);
    expect(stats.spoolBytes).toBe(0);
    await outputs.close();
    await collector.close();
    context.cleanup();
  });

  it('a collector that never answers does not slow the caller: every send resolves once spooled', async () => {
    const context = testContext();
    const collector = await startHttpCollector(() => undefined);
    const outputs = await openOutputs([{ url: `http://127.0.0.1:${collector.port}/`, timeoutSeconds: 600 }], context);
    const alerts = Array.from({ length: 2000 }, (_, i) => makeAlert(i));
    await Promise.all(alerts.map((alert) => outputs.send(alert)));
    await waitFor('the first request to hang', () => collector.requests.length === 1);
    const stats = onlyStats(outputs);
    expect(stats.acknowledged).toBe(0);
    expect(stats.pending).toBe(2000);
    expect(stats.spoolBytes).toBeGreaterThan(2000 * 1000);
    await outputs.close(); // does not wait for the hung request
    await collector.close();
    context.cleanup();
  });

  it('dead-letters a batch refused with 400 (with the response) and goes on with the next', async () => {
    const context = testContext();
    const collector = await startHttpCollector((request) =>
      request.body.includes('marker-3"') ? { status: 400, body: '{"error":"field process.args rejected"}' } : { status: 204 },
    );
    const outputs = await openOutputs([{ url: `http://127.0.0.1:${collector.port}/`, batchSize: 2 }], context);
    const alerts = Array.from({ length: 6 }, (_, i) => makeAlert(i));
    for (const alert of alerts) await outputs.send(alert);
    await outputs.flush(10_000);
    const refused = collector.requests.filter((request) => request.body.includes('marker-3"'));
    const refusedIds = refused.flatMap((request) => idsInNdjson(request.body));
    expect(refused).toHaveLength(1); // a refused batch is not retried
    // every alert went out exactly once: the refused ones are not resent either
    const allIds = collector.requests.flatMap((request) => idsInNdjson(request.body));
    expect(allIds.sort()).toEqual(alerts.map((alert) => alert.event.id).sort());
    const stats = onlyStats(outputs);
    expect(stats).toMatchObject({ acknowledged: 6 - refusedIds.length, deadLettered: refusedIds.length, retried: 0, pending: 0 });
    await outputs.close();
    const deadLetterDir = join(context.stateDir, 'dead-letter');
    const [file] = readdirSync(deadLetterDir);
    const lines = readFileSync(join(deadLetterDir, file!), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((line) => line.alert.event.id)).toEqual(refusedIds);
    expect(lines.map((line) => line.alert)).toContainEqual(JSON.parse(JSON.stringify(alerts[3])));
    expect(lines[0]).toMatchObject({ reason: 'HTTP 400', response: '{"error":"field process.args rejected"}', output: `http://127.0.0.1:${collector.port}/` });
    expect(statSync(join(deadLetterDir, file!)).mode & 0o777).toBe(0o600);
    await collector.close();
    context.cleanup();
  });
});

describe('http output: what an operator is told about an outage', () => {
  it('logs "delivery resumed" once after a failure streak, and lastError names the later refusal, not the old 503', async () => {
    const context = testContext();
    const collector = await startHttpCollector((request, index) => {
      if (index < 2) return { status: 503, body: 'down' };
      return request.body.includes('marker-1"') ? { status: 400, body: 'mapping error' } : { status: 200 };
    });
    const outputs = await openOutputs([{ url: `http://127.0.0.1:${collector.port}/`, batchSize: 1 }], context);
    const alerts = Array.from({ length: 3 }, (_, i) => makeAlert(i));
    for (const alert of alerts) await outputs.send(alert);
    await outputs.flush(20_000);
    const resumed = context.logs.filter((record) => record.msg === 'delivery resumed');
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatchObject({ level: 30, output: `http://127.0.0.1:${collector.port}/`, failedAttempts: 2 });
    expect(resumed[0]!['outageSeconds']).toBeGreaterThan(0);
    // the resumed line comes after the retry warnings and before the refusal
    const order = context.logs.map((record) => record.msg);
    expect(order.indexOf('delivery resumed')).toBeGreaterThan(order.indexOf('delivery failed; will retry'));
    expect(order.indexOf('delivery resumed')).toBeLessThan(order.indexOf('collector refused alerts; kept in the dead-letter file'));
    const stats = onlyStats(outputs);
    expect(stats).toMatchObject({ acknowledged: 2, deadLettered: 1, pending: 0 });
    expect(stats.lastError).toMatch(/^HTTP 400: 1 alert\(s\) refused, kept in the dead-letter file \/.*\.ndjson$/);
    await outputs.close();
    await collector.close();
    context.cleanup();
  });
});

describe('https output', () => {
  let certs: TestCertificates;
  beforeAll(() => {
    certs = makeCertificates();
  });
  afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));

  it('trusts caFile and presents the client certificate (mutual TLS)', async () => {
    const context = testContext();
    const collector = await startHttpCollector(() => ({ status: 200 }), {
      tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true, rejectUnauthorized: true },
    });
    const outputs = await openOutputs(
      [{ url: `https://127.0.0.1:${collector.port}/bulk`, caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile }],
      context,
    );
    const alert = makeAlert(1);
    await outputs.send(alert);
    await outputs.flush(10_000);
    expect(collector.requests.flatMap((request) => idsInNdjson(request.body))).toEqual([alert.event.id]);
    await outputs.close();
    await collector.close();
    context.cleanup();
  });

  it('refuses an unknown server certificate unless insecure is set (and then warns)', async () => {
    const collector = await startHttpCollector(() => ({ status: 200 }), { tls: { key: certs.serverKey, cert: certs.serverCert } });
    const strict = testContext();
    const verifying = await openOutputs([{ url: `https://127.0.0.1:${collector.port}/` }], strict);
    await verifying.send(makeAlert(1));
    await waitFor('a certificate error', () => onlyStats(verifying).lastError !== undefined);
    expect(onlyStats(verifying).lastError).toMatch(/certificate/i);
    expect(collector.requests).toHaveLength(0);
    await verifying.close();
    strict.cleanup();

    const lax = testContext();
    const insecure = await openOutputs([{ url: `https://127.0.0.1:${collector.port}/`, insecure: true }], lax);
    await insecure.send(makeAlert(2));
    await insecure.flush(10_000);
    expect(collector.requests).toHaveLength(1);
    expect(lax.logs.some((record) => record.level === 40 && /verification is OFF/.test(record.msg))).toBe(true);
    await insecure.close();
    lax.cleanup();
    await collector.close();
  });
});

describe('status classification (unit)', () => {
  it('retries 408, 429 and 5xx; every other 4xx (and 3xx) is final', () => {
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([301, 400, 401, 403, 404, 409, 413, 422].some(isRetryableStatus)).toBe(false);
  });

  it('keeps the collector response of a final refusal for the dead-letter file', () => {
    const outcome = wholeBatchOutcome({ status: 401, headers: {}, body: 'bad credentials' }, 2);
    expect(outcome.outcomes).toEqual([
      { deadLetter: 'HTTP 401', response: 'bad credentials' },
      { deadLetter: 'HTTP 401', response: 'bad credentials' },
    ]);
    expect(wholeBatchOutcome({ status: 503, headers: { 'retry-after': '7' }, body: '' }, 1)).toEqual({ outcomes: ['retry'], error: 'HTTP 503', retryAfterMs: 7000 });
  });
});

describe('retry timing rules (unit)', () => {
  it('backs off exponentially with jitter, capped at a minute, never below Retry-After', () => {
    expect(backoffDelayMs(1, undefined, () => 0)).toBe(125);
    expect(backoffDelayMs(1, undefined, () => 1)).toBe(250);
    expect(backoffDelayMs(4, undefined, () => 1)).toBe(2000);
    expect(backoffDelayMs(40, undefined, () => 1)).toBe(60_000);
    expect(backoffDelayMs(1, 5000, () => 1)).toBe(5000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('Sat, 28 Nov 2026 05:00:10 GMT', Date.parse('2026-11-28T05:00:00Z'))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
