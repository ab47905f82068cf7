import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { createLogger } from '../../src/log.js';
import { Sensor } from '../../src/sensor/index.js';
import { expectEcsConformant } from '../engine/ecs.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { eventFinder } from './helpers.js';

/**
 * The opt-in and host fields on the live kernel: process.env_vars, process.hash.*, container.id,
 * host.ip/host.mac and event.sequence. Other tests exec on this host at the same time: each expectation
 * picks its own process by pid or marker.
 */

const NAME_63 = `EXECSENTRY_${'N'.repeat(52)}`;
const ENV_VARS = ['LD_PRELOAD', NAME_63, 'OVER_LIMIT', 'AT_LIMIT', 'ABSENT'];
const MAX_HASH_FILE_BYTES = 4 * 1024 * 1024;

const scratch = mkdtempSync(join(tmpdir(), 'execsentry-extras-'));
chmodSync(scratch, 0o755);
const unique = () => `${process.pid}${Math.floor(Math.random() * 1e9)}`;

// Sensor A: env_vars and all hashes, waiting long enough for any small file's hash.
const events: ProcessEvent[] = [];
let sensor: Sensor;
// Sensor B: no env_vars; sha256 with no wait at all, so every first exec of a file goes without.
const eventsB: ProcessEvent[] = [];
let sensorB: Sensor;
const eventWhere = eventFinder(events);
const eventWhereB = eventFinder(eventsB);

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** A copy of sleep under a name of its own, so its hash is nobody else's cache entry. */
function ownProgram(padTo?: number): string {
  const path = join(scratch, `sleep-${unique()}`);
  copyFileSync('/usr/bin/sleep', path);
  // Bytes after the ELF's last segment are never loaded: the program still runs.
  if (padTo !== undefined) appendFileSync(path, Buffer.alloc(padTo - readFileSync(path).length));
  chmodSync(path, 0o755);
  return path;
}

function digest(path: string, algorithm: string): string {
  return createHash(algorithm).update(readFileSync(path)).digest('hex');
}

async function run(program: string, marker: string, options: { env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const child = spawn(program, [marker], { stdio: 'ignore', ...options });
  await exited(child);
  return child.pid as number;
}

/** The mount point of the cgroup v2 hierarchy, when there is one we may create groups in. */
function writableCgroup2(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator < 0 || fields[separator + 1] !== 'cgroup2') continue;
    const mountPoint = fields[4] as string;
    if (!(fields[5] ?? '').split(',').includes('rw')) continue;
    return mountPoint;
  }
  return undefined;
}

describeAsRoot('opt-in and host fields on the live kernel', () => {
  beforeAll(async () => {
    const logger = createLogger('silent');
    const base = { socketBufferBytes: 4 * 1024 * 1024, maxArgsBytes: 64 * 1024, maxProcessTableEntries: 65_536, logger };
    sensor = new Sensor({ ...base, envVars: ENV_VARS, hashes: ['md5', 'sha1', 'sha256'], maxHashFileBytes: MAX_HASH_FILE_BYTES, hashWaitMs: 5_000 });
    sensorB = new Sensor({ ...base, hashes: ['sha256'], hashWaitMs: 0 });
    await sensor.start((batch) => events.push(...batch));
    await sensorB.start((batch) => eventsB.push(...batch));
  });

  afterAll(async () => {
    await sensor?.stop();
    await sensorB?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('captures the configured environment variables as NAME=value, a value over 1023 bytes named but left out', async () => {
    const marker = `0.${unique()}`;
    const env = { LD_PRELOAD: '', [NAME_63]: 'sixty-three', OVER_LIMIT: 'o'.repeat(1024), AT_LIMIT: 'a'.repeat(1023), NOT_CONFIGURED: 'x', PATH: '/usr/bin' };
    const pid = await run('/usr/bin/sleep', marker, { env });
    const event = await eventWhere((e) => e.process.pid === pid && e.process.args?.[1] === marker, 'sleep with its environment');
    expect(event.process.env_vars).toEqual(['LD_PRELOAD=', `${NAME_63}=sixty-three`, `AT_LIMIT=${'a'.repeat(1023)}`]);
    expect(event.execsentry?.env_vars_oversized).toEqual(['OVER_LIMIT']);
    expectEcsConformant(event);
    // Where no names are configured, nothing of the environment is in the event.
    const unconfigured = await eventWhereB((e) => e.process.pid === pid && e.process.args?.[1] === marker, 'the same exec seen by sensor B');
    expect(unconfigured.process.env_vars).toBeUndefined();
    expect(unconfigured.execsentry?.env_vars_oversized).toBeUndefined();
  });

  it('reads only the first 40 KiB of environ: a configured variable past a 1 MiB padding is missed, and the event says so', async () => {
    const marker = `0.${unique()}`;
    // In this order in environ: LD_PRELOAD first, then 1 MiB of padding (16 variables: one string may hold at
    // most 128 KiB, MAX_ARG_STRLEN), then AT_LIMIT beyond the cut.
    const padding = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`PADDING_${i}`, 'p'.repeat(64 * 1024)]));
    const env = { LD_PRELOAD: '/early.so', ...padding, AT_LIMIT: 'late', PATH: '/usr/bin' };
    const pid = await run('/usr/bin/sleep', marker, { env });
    const event = await eventWhere((e) => e.process.pid === pid && e.process.args?.[1] === marker, 'sleep with a padded environment');
    expect(event.process.env_vars).toEqual(['LD_PRELOAD=/early.so']);
    expect(event.execsentry?.env_vars_truncated).toBe(true);
    expectEcsConformant(event);
    // The same names in a short environment: AT_LIMIT is found and nothing is marked truncated.
    const short = `0.${unique()}`;
    const shortPid = await run('/usr/bin/sleep', short, { env: { LD_PRELOAD: '/early.so', AT_LIMIT: 'late', PATH: '/usr/bin' } });
    const whole = await eventWhere((e) => e.process.pid === shortPid && e.process.args?.[1] === short, 'sleep with a short environment');
    expect(whole.process.env_vars).toEqual(['LD_PRELOAD=/early.so', 'AT_LIMIT=late']);
    expect(whole.execsentry?.env_vars_truncated).toBeUndefined();
  });

  it('hashes the exec\'d file as node:crypto does, and a second exec of it comes from the cache', async () => {
    const program = ownProgram();
    const first = `0.0${unique()}`;
    const pid = await run(program, first);
    const event = await eventWhere((e) => e.process.pid === pid && e.process.args?.[1] === first, 'the first exec');
    expect(event.process.executable).toBe(program);
    expect(event.process.hash).toEqual({ md5: digest(program, 'md5'), sha1: digest(program, 'sha1'), sha256: digest(program, 'sha256') });
    expect(event.execsentry?.hash_missing).toBeUndefined();
    expectEcsConformant(event);

    const hits = sensor.stats().hashCacheHits;
    const second = `0.0${unique()}`;
    const pid2 = await run(program, second);
    const again = await eventWhere((e) => e.process.pid === pid2 && e.process.args?.[1] === second, 'the second exec');
    expect(again.process.hash).toEqual(event.process.hash);
    expect(sensor.stats().hashCacheHits).toBeGreaterThan(hits);
  });

  it('gives a file over sensor.maxHashFileBytes no hash, and says why', async () => {
    const program = ownProgram(MAX_HASH_FILE_BYTES + 1);
    const marker = `0.0${unique()}`;
    const pid = await run(program, marker);
    const event = await eventWhere((e) => e.process.pid === pid && e.process.args?.[1] === marker, 'the padded program');
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('too_large');
  });

  it('sends an event without its hash after sensor.hashWaitMs, and the next exec of the file has it', async () => {
    // 4 MiB take milliseconds to hash: longer than sensor B waits (0 ms) however warm its worker is.
    const program = ownProgram(4 * 1024 * 1024);
    const first = `0.0${unique()}`;
    const pid = await run(program, first);
    const event = await eventWhereB((e) => e.process.pid === pid && e.process.args?.[1] === first, 'the first exec (sensor B)');
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('timeout');
    // The hash went on and was cached.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const second = `0.0${unique()}`;
    const pid2 = await run(program, second);
    const again = await eventWhereB((e) => e.process.pid === pid2 && e.process.args?.[1] === second, 'the second exec (sensor B)');
    expect(again.process.hash).toEqual({ sha256: digest(program, 'sha256') });
  });

  const cgroup2 = writableCgroup2();
  const containerTest = cgroup2 === undefined ? it.skip : it;
  if (cgroup2 === undefined) process.stderr.write('SKIPPED (no writable cgroup v2 hierarchy): container.id of a process in a docker-named scope\n');
  containerTest(`reports container.id of a process moved into a cgroup named like a docker scope${cgroup2 === undefined ? ' [skipped: no writable cgroup v2 hierarchy]' : ''}`, async () => {
    const id = randomBytes(32).toString('hex');
    const group = join(cgroup2 as string, `docker-${id}.scope`);
    mkdirSync(group);
    try {
      const marker = `0.${unique()}`;
      const child = spawn('/bin/sh', ['-c', `echo $$ > ${group}/cgroup.procs && exec /usr/bin/sleep ${marker}`], { stdio: 'ignore' });
      const event = await eventWhere((e) => e.process.pid === child.pid && e.process.args?.[1] === marker, 'sleep in the scope');
      await exited(child);
      expect(event.container).toEqual({ id, runtime: 'docker' });
      expectEcsConformant(event);
    } finally {
      if (existsSync(group)) rmdirSync(group);
    }
  });

  it('carries host.ip and host.mac, well-formed', async () => {
    const marker = `0.0${unique()}`;
    const pid = await run('/usr/bin/sleep', marker);
    const event = await eventWhere((e) => e.process.pid === pid && e.process.args?.[1] === marker, 'sleep');
    const { ip, mac } = event.host;
    expect(ip).toContain('127.0.0.1');
    for (const address of ip ?? []) expect(isIP(address), address).not.toBe(0);
    expect(mac?.length ?? 0).toBeGreaterThan(0);
    for (const address of mac ?? []) expect(address).toMatch(/^[0-9A-F]{2}(-[0-9A-F]{2}){5,7}$/);
  });

  it('numbers events in kernel order: event.sequence strictly increases', async () => {
    // each sleep lives 200 ms or more: a loaded machine's reader can be late by tens of milliseconds, and an
    // exec whose process is gone before its snapshot has no name to find it by
    const child = spawn('/bin/sh', ['-c', 'for i in 1 2 3 4 5 6 7 8 9; do /usr/bin/sleep 0.2$i; done'], { stdio: 'ignore' });
    await exited(child);
    const shellPid = child.pid as number;
    const deadline = Date.now() + 10_000;
    const loop = () => events.filter((e) => e.process.parent?.pid === shellPid && e.process.name === 'sleep');
    while (loop().length < 9 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const sleeps = loop();
    expect(sleeps.map((e) => e.process.args?.[1])).toEqual(['0.21', '0.22', '0.23', '0.24', '0.25', '0.26', '0.27', '0.28', '0.29']);
    const sequences = events.map((e) => e.event.sequence as number);
    for (let i = 1; i < sequences.length; i++) expect(sequences[i]).toBeGreaterThan(sequences[i - 1] as number);
    expect(sequences[0]).toBe(1);
  });
});
