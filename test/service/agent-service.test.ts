import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeAsRoot } from '../helpers/privilege.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const RECEIVER = fileURLToPath(new URL('./notify-receiver.py', import.meta.url));

/** A TCP port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Lines of a child's stream, with a way to wait for one that matches. */
function lines(stream: NodeJS.ReadableStream): { all: string[]; waitFor(match: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string> } {
  const all: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: stream }).on('line', (line) => {
    all.push(line);
    for (const waiter of [...waiters]) waiter();
  });
  return {
    all,
    waitFor(match, what, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; seen:\n${all.slice(-10).join('\n')}`));
        }, timeoutMs);
        const check = (): void => {
          const found = all.find(match);
          if (found === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describeAsRoot('the agent as a systemd service: sd_notify, status socket, metrics, stats line', () => {
  let dir: string;
  let receiver: ChildProcess;
  let datagrams: ReturnType<typeof lines>;
  let agent: ChildProcess;
  let agentLogs: ReturnType<typeof lines>;
  let metricsPort: number;
  const runtimeDir = (): string => join(dir, 'run');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'execsentry-service-'));
    // The abstract namespace, as systemd uses for $NOTIFY_SOCKET on recent versions.
    const notifySocket = `@execsentry-test-${process.pid}-${Date.now()}`;
    receiver = spawn('python3', [RECEIVER, notifySocket], { stdio: ['ignore', 'pipe', 'inherit'] });
    datagrams = lines(receiver.stdout!);
    await datagrams.waitFor((line) => line === 'listening', 'the notify receiver');
    metricsPort = await freePort();
    agent = spawn(process.execPath, [CLI, 'run', '--log-format', 'json', '--format', 'json'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        NOTIFY_SOCKET: notifySocket,
        WATCHDOG_USEC: '600000',
        EXECSENTRY_STATE_DIR: join(dir, 'state'),
        EXECSENTRY_RUNTIME_DIR: runtimeDir(),
        EXECSENTRY_METRICS_ENABLED: 'true',
        EXECSENTRY_METRICS_PORT: String(metricsPort),
        EXECSENTRY_STATS_INTERVAL_SECONDS: '1',
        // a collector nobody runs, with credentials the logs must never show
        EXECSENTRY_OUTPUTS: `stdout,http://alice:s3cret-pw@127.0.0.1:${await freePort()}/ingest?token=s3cret-token&x=1`,
      },
    });
    agentLogs = lines(agent.stderr!);
    await datagrams.waitFor((line) => line.includes('READY=1'), 'READY=1');
  });

  afterAll(async () => {
    if (agent.exitCode === null) {
      agent.kill('SIGKILL');
      await exited(agent);
    }
    receiver.kill('SIGTERM');
    await exited(receiver);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the start-up line names the rules by type and the outputs, without their secrets', async () => {
    const line = await agentLogs.waitFor((text) => text.includes('execsentry running'), 'the start-up line');
    const record = JSON.parse(line) as Record<string, unknown>;
    const collector = /http:\/\/127\.0\.0\.1:\d+\/ingest\?token=\*\*\*&x=\*\*\*/;
    expect(record['msg']).toMatch(new RegExp(`^execsentry running: 2 rule\\(s\\) enabled \\(1 query, 1 new_terms\\); alerts to stdout, ${collector.source}$`));
    expect(record).toMatchObject({ enabled: 2, rulesByType: { query: 1, new_terms: 1 }, outputs: ['stdout', expect.stringMatching(collector)] });
    expect(agentLogs.all.join('\n')).not.toMatch(/s3cret|alice/);
  });

  it('execsentry status prints the counters and uptime over a 0600 socket', async () => {
    const socket = join(runtimeDir(), 'execsentry.sock');
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(runtimeDir()).mode & 0o777).toBe(0o700);
    const status = spawnSync(process.execPath, [CLI, 'status', '--runtime-dir', runtimeDir()], { encoding: 'utf8' });
    expect(status.stderr).toBe('');
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^execsentry \\S+ running \\(pid ${agent.pid}\\), up \\d+m \\d\\ds since `));
    expect(status.stdout).toMatch(/^sensor: events=\d+ .*lost=\d+/m);
    expect(status.stdout).toMatch(/^engine: .*\bevents=\d+ .*alerts=\d+/m);
    expect(status.stdout).toMatch(/^output stdout: kind=stdout sent=\d+/m);
    expect(status.stdout).toMatch(/^health: rssBytes=\d+ heapUsedBytes=\d+ eventLoopDelayMs\.mean=/m);
    const json = spawnSync(process.execPath, [CLI, 'status', '--json', '--runtime-dir', runtimeDir()], { encoding: 'utf8' });
    const snapshot = JSON.parse(json.stdout) as { pid: number; state: string; rules: { enabled: number } };
    expect(snapshot.pid).toBe(agent.pid);
    expect(snapshot.state).toBe('running');
    expect(snapshot.rules.enabled).toBe(2); // the two built-in rules
  });

  it('serves Prometheus text on loopback', async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await response.text();
    expect(text).toMatch(/^execsentry_sensor_events_total \d+$/m);
    expect(text).toMatch(/^execsentry_health_rss_bytes \d+$/m);
    expect(text).toMatch(/^execsentry_output_sent_total\{output="stdout",kind="stdout"\} \d+$/m);
    expect(text).toMatch(/^execsentry_uptime_seconds \d+$/m);
    expect(text).toMatch(/^execsentry_info\{version="[^"]+"\} 1$/m);
    // every family is announced by its HELP and TYPE, right before its series; counters and only counters end in _total
    const lines = text.trimEnd().split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.startsWith('#')) continue;
      const name = lines[i]!.split(/[{ ]/)[0]!;
      const header = lines.slice(0, i).reverse().find((line) => line.startsWith('# TYPE '));
      expect({ name, header }).toEqual({ name, header: expect.stringMatching(new RegExp(`^# TYPE ${name} (counter|gauge|untyped)$`)) });
      expect(lines).toContain(lines.find((line) => line.startsWith(`# HELP ${name} `)));
      expect({ name, counter: header!.endsWith(' counter') }).toEqual({ name, counter: name.endsWith('_total') });
    }
    for (const counter of ['sensor_lost', 'engine_alerts', 'engine_matches', 'output_dropped', 'output_dead_lettered', 'rules_reloads'])
      expect(text).toContain(`# TYPE execsentry_${counter}_total counter\n`);
    for (const gauge of ['sensor_table_size', 'engine_pending_alerts', 'evaluation_backlog', 'store_tuples', 'output_pending'])
      expect(text).toContain(`# TYPE execsentry_${gauge} gauge\n`);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status).toBe(404);
  });

  it('the periodic stats line reports events/s, lost, recovered, partial, alerts, outputs, store, RSS and event-loop delay', async () => {
    const line = await agentLogs.waitFor((text) => text.includes('"msg":"stats"'), 'a stats line', 5_000);
    const stats = JSON.parse(line) as Record<string, unknown>;
    for (const key of ['events', 'eventsPerSecond', 'lost', 'alerts', 'suppressed', 'storeTuples', 'rssBytes']) {
      expect({ key, type: typeof stats[key] }).toEqual({ key, type: 'number' });
    }
    expect(Object.keys(stats['eventLoopDelayMs'] as object)).toEqual(['mean', 'p99', 'max']);
    expect(stats['sensor']).toMatchObject({ recovered: expect.any(Number), partial: expect.any(Number) });
    expect(stats['outputs']).toMatchObject({ stdout: { sent: expect.any(Number), dropped: expect.any(Number) } });
    // the collector's counters are there under its name, which shows none of its secrets
    expect(Object.keys(stats['outputs'] as object)).toEqual(['stdout', expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/ingest\?token=\*\*\*&x=\*\*\*$/)]);
    expect(agentLogs.all.join('\n')).not.toMatch(/s3cret|alice/);
    const status = spawnSync(process.execPath, [CLI, 'status', '--json', '--runtime-dir', runtimeDir()], { encoding: 'utf8' });
    expect(status.stdout).toContain('token=***');
    expect(status.stdout).not.toMatch(/s3cret|alice/);
    expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).not.toMatch(/s3cret|alice/);
  });

  it('sd_notify receives READY=1, WATCHDOG=1, STATUS=… and STOPPING=1 in order, and status then says not running', async () => {
    // Some execs so the counters in STATUS= move (other processes on the host count too).
    for (let i = 0; i < 5; i++) spawnSync('/bin/true');
    await datagrams.waitFor((line) => line.startsWith('"WATCHDOG=1'), 'WATCHDOG=1');
    const readyIndex = datagrams.all.findIndex((line) => line.includes('READY=1'));
    await datagrams.waitFor((line) => datagrams.all.indexOf(line) > readyIndex && /^"STATUS=running: 2 rule\(s\), \d+ event\(s\)/.test(line), 'a STATUS= update', 10_000);
    agent.kill('SIGTERM');
    expect(await exited(agent)).toBe(0);
    await datagrams.waitFor((line) => line.includes('STOPPING=1'), 'STOPPING=1');
    const messages = datagrams.all.slice(1).map((line) => JSON.parse(line) as string);
    const kinds = messages.map((message) => message.split('\n')[0]!.split('=')[0]);
    expect(messages[0]).toMatch(/^READY=1\nSTATUS=running: 2 rule\(s\), \d+ event\(s\), \d+ alert\(s\), \d+ lost$/);
    expect(kinds.indexOf('WATCHDOG')).toBeGreaterThan(0);
    expect(kinds.lastIndexOf('STATUS')).toBeGreaterThan(kinds.indexOf('WATCHDOG'));
    expect(kinds.at(-1)).toBe('STOPPING');
    expect(messages.at(-1)).toBe('STOPPING=1\nSTATUS=stopping');
    expect(kinds.filter((kind) => kind === 'READY')).toHaveLength(1);

    const status = spawnSync(process.execPath, [CLI, 'status', '--runtime-dir', runtimeDir()], { encoding: 'utf8' });
    expect(status.status).toBe(3);
    expect(status.stderr).toBe(`execsentry: no agent is running: no status socket at ${join(runtimeDir(), 'execsentry.sock')}\n`);
  });
});
