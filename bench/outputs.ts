/**
 * `npm run bench:outputs`: alerts per second through each output to a sink on this machine, end to end
 * (send → spool fsync → delivery → the sink acknowledged), at batch sizes 1, 100 and 1000; and the disk
 * spool alone (append with batched fdatasync, then read + ack). Sinks run in a separate process so they
 * do not share the agent's event loop. Measures the compiled outputs (dist/) as the agent runs them.
 *
 * "batch" is the output's batchSize for network outputs; for the file output (which has no batchSize) it
 * is how many alerts the caller hands over per event-loop turn.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type { Alert } from '../src/ecs/types.js';
import type * as OutputsModule from '../src/outputs/index.js';
import type * as SpoolModule from '../src/outputs/spool.js';

const { openOutputs } = (await import(pathToFileURL(resolve('dist/outputs/index.js')).href)) as typeof OutputsModule;
const { Spool } = (await import(pathToFileURL(resolve('dist/outputs/spool.js')).href)) as typeof SpoolModule;
const logger = pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true }));
const BATCHES = [1, 100, 1000];
const workDir = mkdtempSync(join(tmpdir(), 'execsentry-bench-outputs-'));

/** A realistic alert (about 1.9 kB of JSON), distinct per index. */
function alert(index: number): Alert {
  const now = new Date().toISOString();
  return {
    '@timestamp': now,
    message: 'Unusual executable run by a service account',
    event: { kind: 'alert', category: ['process'], type: ['start'], action: 'exec', id: `bench-${index}-${Math.random().toString(36).slice(2)}`, created: now, module: 'execsentry', dataset: 'execsentry.alerts', severity: 73, risk_score: 73 },
    ecs: { version: '8.11.0' },
    process: {
      pid: 10_000 + (index % 50_000), entity_id: `ZW50aXR5LWlk${index}`, executable: '/usr/bin/curl', name: 'curl',
      args: ['curl', '-fsSL', 'https://example.invalid/install.sh', '-o', `/tmp/install-${index}.sh`], args_count: 5,
      command_line: `curl -fsSL https://example.invalid/install.sh -o /tmp/install-${index}.sh`, working_directory: '/var/lib/jenkins/workspace/build',
      start: now, interactive: false, user: { id: '112', name: 'jenkins' }, group: { id: '118', name: 'jenkins' },
      parent: { pid: 9_000, entity_id: 'cGFyZW50', executable: '/usr/bin/bash', name: 'bash', args: ['bash', '-c', 'make deploy'], args_count: 3, command_line: 'bash -c make deploy', user: { id: '112' }, group: { id: '118' } },
    },
    user: { id: '112', name: 'jenkins', effective: { id: '112', name: 'jenkins' } },
    group: { id: '118', name: 'jenkins' },
    host: { id: 'c0ffee00c0ffee00c0ffee00c0ffee00', name: 'build-7', hostname: 'build-7', architecture: 'x86_64', os: { type: 'linux', family: 'debian', name: 'Debian GNU/Linux', version: '12', kernel: '6.1.0-18-amd64', platform: 'debian' } },
    agent: { type: 'execsentry', version: '0.1.0', id: 'f3c9b1f4-8d7a-4c55-9a37-1c0e2f3a4b5c' },
    rule: { id: 'b3f0e2a1-service-account-exec', uuid: 'b3f0e2a1-6c1d-4e8f-9a7b-2d3c4e5f6a7b', name: 'Unusual executable run by a service account', description: 'A service account ran an executable it had not run within 14 days.', version: '3', license: 'Elastic License v2', author: ['Elastic'], reference: [], category: 'execution' },
    tags: ['Domain: Endpoint', 'OS: Linux', 'Tactic: Execution'],
    threat: { framework: ['MITRE ATT&CK'], tactic: { id: ['TA0002'], name: ['Execution'], reference: ['https://attack.mitre.org/tactics/TA0002/'] }, technique: { id: ['T1059'], name: ['Command and Scripting Interpreter'], reference: ['https://attack.mitre.org/techniques/T1059/'], subtechnique: { id: ['T1059.004'], name: ['Unix Shell'], reference: ['https://attack.mitre.org/techniques/T1059/004/'] } } },
    execsentry: { rule: { type: 'new_terms' }, new_terms: { 'process.executable': '/usr/bin/curl' } },
  };
}

// The sinks: HTTP (200 for any POST), _bulk (201 per item), syslog TCP (reads and discards octet frames),
// syslog UDP. Run in their own process; they print their ports as JSON.
const SINK_SOURCE = `
const http = require('node:http'); const net = require('node:net'); const dgram = require('node:dgram');
const plain = http.createServer((req, res) => { req.on('data', () => {}); req.on('end', () => { res.writeHead(200); res.end('{}'); }); });
const bulk = http.createServer((req, res) => {
  let lines = 0;
  req.on('data', (chunk) => { for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++; });
  req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ errors: false, items: Array.from({ length: lines / 2 }, () => ({ create: { status: 201 } })) })); });
});
const tcp = net.createServer((socket) => { socket.on('data', () => {}); socket.on('error', () => {}); });
const udp = dgram.createSocket('udp4');
let pending = 4; const done = () => { if (--pending === 0) console.log(JSON.stringify({ http: plain.address().port, bulk: bulk.address().port, tcp: tcp.address().port, udp: udp.address().port })); };
plain.listen(0, '127.0.0.1', done); bulk.listen(0, '127.0.0.1', done); tcp.listen(0, '127.0.0.1', done); udp.bind(0, '127.0.0.1', done);
`;

// Node.js cannot receive unix datagrams; the /dev/log stand-in is a Python receiver (python3 is a build dependency).
const UNIX_SINK_SOURCE = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(sys.argv[1])
print('READY', flush=True)
while True:
    s.recv(1 << 20)
`;

async function startUnixSink(path: string): Promise<() => void> {
  const child = spawn('python3', ['-c', UNIX_SINK_SOURCE, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ready) => child.stdout.setEncoding('utf8').once('data', () => ready()));
  return () => child.kill();
}

async function startSinks(): Promise<{ ports: { http: number; bulk: number; tcp: number; udp: number }; stop(): void }> {
  const file = join(workDir, 'sinks.cjs');
  writeFileSync(file, SINK_SOURCE);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolveLine) => child.stdout.setEncoding('utf8').once('data', (chunk: string) => resolveLine(chunk)));
  return { ports: JSON.parse(line) as { http: number; bulk: number; tcp: number; udp: number }, stop: () => child.kill() };
}

/** Sends `count` alerts, `perTurn` per event-loop turn, then waits until the output has delivered all. */
async function measureOutput(url: string, settings: Record<string, unknown>, count: number, perTurn: number): Promise<number> {
  const stateDir = mkdtempSync(join(workDir, 'state-'));
  const outputs = await openOutputs([{ url, ...settings }], { stateDir, logger });
  const alerts = Array.from({ length: count }, (_, i) => alert(i));
  const started = performance.now();
  for (let i = 0; i < count; i += perTurn) {
    for (let j = i; j < Math.min(count, i + perTurn); j++) void outputs.send(alerts[j]!);
    await new Promise((resolveTurn) => setImmediate(resolveTurn));
  }
  await outputs.flush(600_000);
  const seconds = (performance.now() - started) / 1000;
  const stats = Object.values(outputs.stats())[0]!;
  await outputs.close();
  rmSync(stateDir, { recursive: true, force: true });
  if (stats.acknowledged < count) throw new Error(`${url}: only ${stats.acknowledged} of ${count} acknowledged (${stats.lastError ?? 'no error'})`);
  return count / seconds;
}

/** The spool alone: `count` appends issued together (group commit), then read and acknowledged in batches. */
async function measureSpool(count: number, batch: number): Promise<{ append: number; appendAck: number }> {
  const dir = mkdtempSync(join(workDir, 'spool-'));
  const spool = await Spool.open({ dir, maxBytes: 1024 * 1024 * 1024, logger });
  const payloads = Array.from({ length: count }, (_, i) => JSON.stringify(alert(i)));
  const started = performance.now();
  const appends: Array<Promise<void>> = [];
  for (let i = 0; i < count; i += batch) {
    for (let j = i; j < Math.min(count, i + batch); j++) appends.push(spool.append(`id-${j}`, payloads[j]!));
    await new Promise((resolveTurn) => setImmediate(resolveTurn));
  }
  await Promise.all(appends);
  const appended = performance.now();
  let acknowledged = 0;
  while (acknowledged < count) {
    const records = await spool.read(Math.max(batch, 100));
    spool.ack(records[records.length - 1]!.end, records.length);
    acknowledged += records.length;
  }
  const finished = performance.now();
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
  return { append: count / ((appended - started) / 1000), appendAck: count / ((finished - started) / 1000) };
}

const format = (rate: number): string => Math.round(rate).toLocaleString('en-US');
const sinks = await startSinks();
const unixSocket = join(workDir, 'log.sock');
const stopUnixSink = await startUnixSink(unixSocket);
const rows: Array<[string, string, (batch: number) => Promise<number>]> = [
  ['file', 'NDJSON append', (batch) => measureOutput(`file://${join(workDir, 'alerts.ndjson')}`, {}, batch === 1 ? 20_000 : 100_000, batch)],
  ['http', 'NDJSON POST', (batch) => measureOutput(`http://127.0.0.1:${sinks.ports.http}/`, { batchSize: batch }, batch === 1 ? 5_000 : 100_000, 1000)],
  ['http + gzip', 'NDJSON POST, gzip', (batch) => measureOutput(`http://127.0.0.1:${sinks.ports.http}/`, { batchSize: batch, gzip: true }, batch === 1 ? 5_000 : 50_000, 1000)],
  ['elasticsearch', '_bulk create', (batch) => measureOutput(`elasticsearch://127.0.0.1:${sinks.ports.bulk}`, { batchSize: batch }, batch === 1 ? 5_000 : 100_000, 1000)],
  ['syslog+tcp', 'RFC 5424, octet counting', (batch) => measureOutput(`syslog+tcp://127.0.0.1:${sinks.ports.tcp}`, { batchSize: batch }, batch === 1 ? 10_000 : 100_000, 1000)],
  ['syslog+udp', 'RFC 5424 datagrams', (batch) => measureOutput(`syslog+udp://127.0.0.1:${sinks.ports.udp}`, { batchSize: batch }, batch === 1 ? 10_000 : 50_000, 1000)],
  ['syslog (unix)', 'RFC 5424 datagrams to a /dev/log-like socket', (batch) => measureOutput(`syslog://${unixSocket}`, { batchSize: batch }, batch === 1 ? 10_000 : 50_000, 1000)],
];

console.log('| output | how | batch 1 (alerts/s) | batch 100 (alerts/s) | batch 1000 (alerts/s) |');
console.log('|---|---|---:|---:|---:|');
try {
  for (const [name, how, run] of rows) {
    const rates: string[] = [];
    for (const batch of BATCHES) rates.push(format(await run(batch)));
    console.log(`| ${name} | ${how} | ${rates.join(' | ')} |`);
  }
  const spoolRates = [];
  for (const batch of BATCHES) spoolRates.push(await measureSpool(batch === 1 ? 20_000 : 100_000, batch));
  console.log(`| spool | append (fdatasync per group commit), records/s | ${spoolRates.map((r) => format(r.append)).join(' | ')} |`);
  console.log(`| spool | append + read + ack, records/s | ${spoolRates.map((r) => format(r.appendAck)).join(' | ')} |`);
} finally {
  sinks.stop();
  stopUnixSink();
  rmSync(workDir, { recursive: true, force: true });
}
console.log('\nAlerts are about 1.9 kB of JSON; every network alert is fsynced into the spool before delivery.');
