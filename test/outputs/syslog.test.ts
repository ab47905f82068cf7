import { createServer as createTcpServer, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/ecs/types.js';
import { openOutputs } from '../../src/outputs/index.js';
import { formatSyslogMessage, printUsAscii, syslogSeverity } from '../../src/outputs/syslog.js';
import { makeAlert } from './helpers/alerts.js';
import { makeCertificates, type TestCertificates } from './helpers/certs.js';
import { testContext } from './helpers/context.js';
import { waitFor } from './helpers/ports.js';
import { splitReceived, startRsyslog, type RsyslogCollector } from './helpers/rsyslog.js';

const AUTHPRIV = 10;

/** Alerts whose text a naive syslog sender would break: newlines, non-ASCII, quotes, a huge argv. */
function trickyAlerts(count: number, marker: string): Alert[] {
  return Array.from({ length: count }, (_, i) => {
    const alert = makeAlert(i);
    alert.process.args = ['sh', '-c', `echo "${marker}-${i}"\nrm -rf /tmp/x; printf '\u001b[31m' — ünïcödé ✓ 🚀`];
    alert.process.command_line = alert.process.args.join(' ');
    if (i % 50 === 7) alert.process.args.push('A'.repeat(100_000));
    alert.rule.id = `rule-${marker}`;
    return alert;
  });
}

function receivedFor(collector: RsyslogCollector, marker: string) {
  return collector
    .lines()
    .map(splitReceived)
    .filter((fields) => fields.msgid === `rule-${marker}`);
}

describe('syslog to a real rsyslog', () => {
  let rsyslog: RsyslogCollector;
  beforeAll(async () => {
    rsyslog = await startRsyslog();
  });
  afterAll(async () => {
    await rsyslog?.stop();
  });

  for (const transport of ['tcp', 'udp', 'unix'] as const) {
    it(`delivers every alert intact, one per message, over ${transport}`, async () => {
      const context = testContext();
      const url =
        transport === 'unix' ? `syslog://${rsyslog.socketPath}` : `syslog+${transport}://127.0.0.1:${transport === 'tcp' ? rsyslog.tcpPort : rsyslog.udpPort}`;
      const marker = `${transport}-${process.pid}-${Date.now()}`;
      // the 100 kB argv does not fit a UDP datagram: it must be dead-lettered, not truncated
      const alerts = trickyAlerts(transport === 'udp' ? 60 : 120, marker).filter((a, i) => transport !== 'udp' || i % 50 !== 7 || i === 7);
      const outputs = await openOutputs([{ url, batchSize: 25 }], context);
      for (const alert of alerts) await outputs.send(alert);
      await outputs.flush(20_000);
      const expected = transport === 'udp' ? alerts.filter((_, i) => i !== 7) : alerts;
      await waitFor(`${expected.length} messages in rsyslog's file`, () => receivedFor(rsyslog, marker).length >= expected.length);
      const received = receivedFor(rsyslog, marker);
      expect(received).toHaveLength(expected.length);
      expect(received.map((fields) => JSON.parse(fields.msg))).toEqual(expected.map((alert) => JSON.parse(JSON.stringify(alert))));
      for (const fields of received) {
        expect(fields.pri).toBe(AUTHPRIV * 8 + 3); // severity 73 → err
        expect(fields.app).toBe('execsentry');
        expect(fields.msg).toMatch(/^[\x20-\x7e]+$/); // non-ASCII travels as \u escapes
      }
      const stats = outputs.stats()[Object.keys(outputs.stats())[0]!]!;
      expect(stats.acknowledged).toBe(expected.length);
      if (transport === 'udp') {
        expect(stats.deadLettered).toBe(1);
      }
      await outputs.close();
      context.cleanup();
    });
  }

  it('keeps MSGID and HOSTNAME to RFC 5424 PRINTUSASCII, MSGID at most 32 characters', async () => {
    const context = testContext();
    const outputs = await openOutputs([{ url: `syslog+tcp://127.0.0.1:${rsyslog.tcpPort}` }], context);
    const alert = makeAlert(1);
    const marker = `m${Date.now()}`;
    alert.rule.id = `${marker} règle\n<13>1 fake|${'x'.repeat(40)}`;
    alert.host.hostname = 'host name\u001b[2J';
    alert.event.severity = 99;
    await outputs.send(alert);
    await outputs.flush(10_000);
    const expectedMsgId = `${marker}rgle<13>1fake|${'x'.repeat(40)}`.slice(0, 32);
    await waitFor('the message', () => rsyslog.lines().some((line) => line.includes(`|${expectedMsgId}|`)));
    const line = rsyslog.lines().find((candidate) => candidate.includes(`|${expectedMsgId}|`))!;
    expect(line.startsWith(`${AUTHPRIV * 8 + 2}|execsentry|${process.pid}|${expectedMsgId}|hostname[2J|`)).toBe(true);
    await outputs.close();
    context.cleanup();
  });
});

describe('syslog framing and TLS (a node collector that parses RFC 6587 octet counting)', () => {
  let certs: TestCertificates;
  beforeAll(() => {
    certs = makeCertificates();
  });
  afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));

  /** Collects raw bytes; `messages()` parses them strictly as octet-counted frames. */
  function byteCollector(server: Server) {
    const streams: Buffer[][] = [];
    server.on(server instanceof createTlsServer ? 'secureConnection' : 'connection', () => undefined);
    const onSocket = (socket: NodeJS.ReadableStream) => {
      const chunks: Buffer[] = [];
      streams.push(chunks);
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => undefined);
    };
    return {
      onSocket,
      messages(): string[] {
        const out: string[] = [];
        for (const chunks of streams) {
          const bytes = Buffer.concat(chunks);
          let offset = 0;
          while (offset < bytes.length) {
            const space = bytes.indexOf(0x20, offset);
            const lengthText = bytes.toString('ascii', offset, space);
            expect(lengthText).toMatch(/^[1-9]\d*$/);
            const end = space + 1 + Number(lengthText);
            expect(end).toBeLessThanOrEqual(bytes.length);
            out.push(bytes.toString('utf8', space + 1, end));
            offset = end;
          }
        }
        return out;
      },
    };
  }

  it('syslog+tcp frames each message as "LEN SP MSG" and the stream parses exactly', async () => {
    const context = testContext();
    const server = createTcpServer();
    const collector = byteCollector(server);
    server.on('connection', collector.onSocket);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const outputs = await openOutputs([{ url: `syslog+tcp://127.0.0.1:${port}`, facility: 'local3' }], context);
    const alerts = trickyAlerts(30, 'frame');
    for (const alert of alerts) await outputs.send(alert);
    await outputs.flush(10_000);
    await waitFor('30 frames', () => collector.messages().length >= 30);
    const messages = collector.messages();
    expect(messages).toHaveLength(30);
    messages.forEach((message, i) => {
      expect(message.startsWith(`<${19 * 8 + 3}>1 2026-11-28T05:00:00.0`)).toBe(true);
      expect(message).toContain(` testhost execsentry ${process.pid} rule-frame - {`);
      expect(JSON.parse(message.slice(message.indexOf(' - {') + 3))).toEqual(JSON.parse(JSON.stringify(alerts[i])));
    });
    await outputs.close();
    server.close();
    context.cleanup();
  });

  it('syslog+tls verifies the server against caFile and presents the client certificate', async () => {
    const context = testContext();
    const peers: string[] = [];
    const server = createTlsServer({ key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true, rejectUnauthorized: true });
    const collector = byteCollector(server);
    server.on('secureConnection', (socket) => {
      peers.push(String(socket.getPeerCertificate().subject?.CN));
      collector.onSocket(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const outputs = await openOutputs(
      [{ url: `syslog+tls://127.0.0.1:${port}`, caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile }],
      context,
    );
    const alerts = trickyAlerts(10, 'tls');
    for (const alert of alerts) await outputs.send(alert);
    await outputs.flush(10_000);
    await waitFor('10 frames', () => collector.messages().length >= 10);
    expect(collector.messages().map((m) => JSON.parse(m.slice(m.indexOf(' - {') + 3)).event.id)).toEqual(alerts.map((a) => a.event.id));
    expect(peers[0]).toBe('execsentry-agent');
    await outputs.close();
    server.close();
    context.cleanup();
  });

  it('syslog+tls without the CA refuses the server: nothing sent, the error counted, alerts kept', async () => {
    const context = testContext();
    const server = createTlsServer({ key: certs.serverKey, cert: certs.serverCert });
    const collector = byteCollector(server);
    server.on('secureConnection', collector.onSocket);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const outputs = await openOutputs([{ url: `syslog+tls://127.0.0.1:${port}` }], context);
    await outputs.send(makeAlert(1));
    await waitFor('a failed attempt', () => Object.values(outputs.stats())[0]!.lastError !== undefined);
    const stats = Object.values(outputs.stats())[0]!;
    expect(stats.lastError).toMatch(/certificate/i);
    expect(stats.acknowledged).toBe(0);
    expect(stats.pending).toBe(1);
    expect(collector.messages()).toHaveLength(0);
    await outputs.close();
    server.close();
    context.cleanup();
  });
});

describe('syslog message format (unit)', () => {
  it('maps rule severities to syslog severities', () => {
    expect([21, 47, 73, 99].map(syslogSeverity)).toEqual([5, 4, 3, 2]);
  });

  it('keeps only PRINTUSASCII and uses NILVALUE when nothing is left', () => {
    expect(printUsAscii('a b\tc\u00e9d', 32)).toBe('abcd');
    expect(printUsAscii(' \u00e9 ', 32)).toBe('-');
  });

  it('writes an unparseable timestamp as NILVALUE', () => {
    const alert = makeAlert(2);
    alert['@timestamp'] = 'yesterday';
    expect(formatSyslogMessage(JSON.stringify(alert), AUTHPRIV)).toMatch(/^<83>1 - testhost execsentry \d+ web-shell-1 - \{/);
  });
});
