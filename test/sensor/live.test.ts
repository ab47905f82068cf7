import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { documentJson } from '../../src/ecs/json.js';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { createLogger } from '../../src/log.js';
import { RECORD_STRIDE } from '../../src/native.js';
import { Sensor } from '../../src/sensor/index.js';
import { eventFinder } from './helpers.js';
import { expectEcsConformant, leaves } from '../engine/ecs.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { stagedPath } from '../helpers/staged.js';

/**
 * Real processes, real users, real pseudo-terminals, seen through the kernel's process connector. Other
 * test runs exec on this host at the same time: every expectation picks its own process by pid or by a
 * unique marker in its arguments.
 */

const events: ProcessEvent[] = [];
let sensor: Sensor;
const scratch = mkdtempSync(join(tmpdir(), 'execsentry-sensor-'));
chmodSync(scratch, 0o755); // daemon must reach the programs placed here
const unique = () => `${process.pid}${Math.floor(Math.random() * 1e9)}`;

const eventWhere = eventFinder(events);

const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** Does `event` descend from `ancestorPid`, following parent pids through the events seen? */
function descendsFrom(event: ProcessEvent, ancestorPid: number): boolean {
  let parentPid = event.process.parent?.pid;
  for (let depth = 0; parentPid !== undefined && depth < 8; depth++) {
    if (parentPid === ancestorPid) return true;
    const pid: number = parentPid;
    parentPid = events.find((e) => e.process.pid === pid)?.process.parent?.pid;
  }
  return false;
}

describeAsRoot('sensor on the live kernel', () => {
  beforeAll(async () => {
    sensor = new Sensor({ socketBufferBytes: 4 * 1024 * 1024, maxArgsBytes: 64 * 1024, maxProcessTableEntries: 65_536, logger: createLogger('silent') });
    await sensor.start((batch) => events.push(...batch));
  });

  afterAll(async () => {
    await sensor?.stop();
    await sensor?.stop(); // idempotent
    rmSync(scratch, { recursive: true, force: true });
  });

  it('sees an interactive bash as daemon in a pseudo-terminal', async () => {
    const child = spawn('script', ['-qec', 'runuser -u daemon -- /bin/bash -i', '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const bash = await eventWhere(
      (e) => e.process.executable === '/usr/bin/bash' && e.process.user?.id === '1' && descendsFrom(e, child.pid as number),
      'bash as daemon under script',
    );
    child.stdin?.end('exit\n');
    await exited(child);
    expect(bash.user).toEqual({ id: '1', name: 'daemon', effective: { id: '1', name: 'daemon' }, Ext: { real: { id: '1', name: 'daemon' } } });
    expect(bash.process.user).toEqual({ id: '1', name: 'daemon' });
    expect(bash.process.interactive).toBe(true);
    expect(bash.process.tty?.char_device.major).toBe(136); // a pseudo-terminal slave
    expect(bash.process.name).toBe('bash');
    expect(bash.process.args).toEqual(['/bin/bash', '-i']);
    expect(bash.process.parent?.name).toBe('runuser');
    expect(bash.process.parent?.executable).toBe('/usr/sbin/runuser');
    expect(bash.process.parent?.user?.id).toBe('0');
    expect(bash.execsentry?.partial).toBeUndefined();
    // The parent's entity id is the one its own exec event carried.
    const runuser = await eventWhere((e) => e.process.pid === bash.process.parent?.pid && e.process.name === 'runuser', 'runuser');
    expect(bash.process.parent?.entity_id).toBe(runuser.process.entity_id);
    expect(bash.process.parent?.interactive).toBe(runuser.process.interactive);
  });

  it('calls the same bash without a terminal not interactive', async () => {
    const child = spawn('runuser', ['-u', 'daemon', '--', '/bin/bash', '-i'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const bash = await eventWhere((e) => e.process.executable === '/usr/bin/bash' && e.process.parent?.pid === child.pid, 'bash -i under runuser');
    child.stdin?.end('exit\n');
    await exited(child);
    expect(bash.user?.name).toBe('daemon');
    expect(bash.process.interactive).toBe(false);
    expect(bash.process.tty).toBeUndefined();
  });

  it('reports a program whose file name holds spaces and ")" exactly', async () => {
    const program = join(scratch, 'odd) name (x');
    copyFileSync('/usr/bin/sleep', program);
    chmodSync(program, 0o755);
    const marker = `0.${unique()}`;
    const child = spawn(program, [marker], { stdio: 'ignore' });
    const event = await eventWhere((e) => e.process.pid === child.pid && e.process.args?.[1] === marker, 'odd file name');
    child.kill();
    await exited(child);
    expect(event.process.executable).toBe(program);
    expect(event.process.name).toBe('odd) name (x');
    expect(event.process.args).toEqual([program, marker]);
    expect(event.process.command_line).toBe(`${program} ${marker}`);
    expect(event.process.working_directory).toBe(process.cwd());
    expect(event.execsentry?.partial).toBeUndefined();
  });

  it('never attributes another process to one that exits at once: complete or partial, never wrong', async () => {
    const markers = Array.from({ length: 40 }, (_, i) => `quick-${unique()}-${i}`);
    // Events before this index were exec'd before our children were forked: a child's first exec event
    // after it is the child's own (a later holder of its pid must exec after it exited).
    const from = events.length;
    const children = markers.map((marker) => spawn('/usr/bin/true', [marker], { stdio: 'ignore' }));
    await Promise.all(children.map(exited));
    for (const [i, child] of children.entries()) {
      const event = await eventWhere((e) => e.process.pid === child.pid && events.indexOf(e) >= from, `quick child ${i}`);
      if (event.process.executable !== undefined) expect(event.process.executable).toBe('/usr/bin/true');
      if (event.process.args !== undefined) expect(event.process.args).toEqual(['/usr/bin/true', markers[i]]);
      if (event.execsentry?.partial !== true) expect(event.process.args).toEqual(['/usr/bin/true', markers[i]]);
      expect(event.process.parent?.pid).toBe(process.pid);
    }
  });

  it('gives a child the parent it was forked by, even when that parent exited before the child exec\'d', async () => {
    const marker = `1.${unique()}`;
    // The subshell waits until bash -c has exited (and been reaped), then execs sleep: by then /proc names a
    // reaper as its parent; only the fork record knows it was bash. bash stays until its own exec has been
    // seen: one that exits before the reader's snapshot is reported partial, which is right but not this test.
    const script = `( while kill -0 $$ 2>/dev/null; do sleep 0.02; done; exec /bin/sleep ${marker} ) >/dev/null 2>&1 </dev/null & read -r _; exit 0`;
    const bash = spawn('/bin/bash', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'] });
    const bashEvent = await eventWhere((e) => e.process.pid === bash.pid && e.process.name === 'bash', 'bash -c');
    bash.stdin?.end('\n');
    await exited(bash);
    const sleep = await eventWhere((e) => e.process.args?.[1] === marker && e.process.name === 'sleep', 'sleep after its parent exited');
    process.kill(sleep.process.pid);
    expect(sleep.process.parent?.pid).toBe(bash.pid);
    expect(sleep.process.parent?.entity_id).toBe(bashEvent.process.entity_id);
    expect(sleep.process.parent?.executable).toBe('/usr/bin/bash');
    expect(sleep.process.parent?.name).toBe('bash');
    expect(sleep.process.parent?.args).toEqual(['/bin/bash', '-c', script]);
    expect(sleep.process.parent?.args_count).toBe(3);
    expect(sleep.process.parent?.command_line).toBe(`/bin/bash -c ${script}`);
    expect(sleep.process.parent?.working_directory).toBe(process.cwd());
    expect(sleep.process.parent?.start).toBe(bashEvent.process.start);
    expect(sleep.process.parent?.user?.id).toBe('0');
    expect(sleep.process.parent?.group?.id).toBe('0');
    expect(sleep.process.parent?.interactive).toBe(false);
  });

  it('records a setuid transition: effective root, real daemon', async () => {
    const program = join(scratch, 'setuid-sleep');
    copyFileSync('/usr/bin/sleep', program);
    chmodSync(program, 0o4755);
    const marker = `0.${unique()}`;
    const child = spawn('runuser', ['-u', 'daemon', '--', program, marker], { stdio: 'ignore' });
    const event = await eventWhere((e) => e.process.executable === program && e.process.args?.[1] === marker, 'setuid program');
    await exited(child);
    expect(event.process.user).toEqual({ id: '0', name: 'root' });
    expect(event.process.real_user).toEqual({ id: '1', name: 'daemon' });
    expect(event.process.saved_user).toEqual({ id: '0', name: 'root' });
    expect(event.process.real_group).toEqual({ id: '1', name: 'daemon' });
    expect(event.user?.id).toBe('0');
    expect(event.process.parent?.name).toBe('runuser');
  });

  it('emits only ECS fields with their ECS types (or Defend Ext fields, or execsentry.*)', async () => {
    const marker = `0.${unique()}`;
    const child = spawn('script', ['-qec', `/usr/bin/sleep ${marker}`, '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const event = await eventWhere((e) => e.process.args?.[1] === marker && e.process.name === 'sleep', 'sleep in a terminal');
    child.kill();
    await exited(child);
    const paths = leaves(event).map(([path]) => path);
    expect(paths.length).toBeGreaterThan(40);
    for (const must of [
      'process.parent.entity_id',
      'process.tty.char_device.major',
      'process.thread.capabilities.effective',
      'host.os.kernel',
      'user.effective.name',
      'process.session_leader.entity_id',
      'process.entry_leader.entry_meta.type',
      'process.Ext.ancestry',
      'user.Ext.real.id',
    ]) {
      expect(paths).toContain(must);
    }
    expectEcsConformant(event);
    // its shared parts (parent, leaders, host, capability lists) encoded once give the same text
    expect(documentJson(event)).toBe(JSON.stringify(event));
  });

  it('streams matching events as NDJSON with `execsentry events --filter` and stops on SIGINT', async () => {
    const marker = `events-cli-${unique()}`;
    const cli = spawn(process.execPath, [cliPath, 'events', '--filter', `process.args:"${marker}" and process.name:bash`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    cli.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    cli.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await until(() => stderr.includes('streaming exec events'), 'the events command to subscribe');
    // Alive until the event is out (read waits on stdin): a program that exits at once (echo) can be gone
    // before its snapshot, and a partial event has no args for the filter to match.
    const wanted = spawn('/bin/bash', ['-c', 'read -t 20 line', 'bash', marker], { stdio: ['pipe', 'ignore', 'ignore'] });
    const other = spawn('/bin/bash', ['-c', 'read -t 20 line', 'bash', `not-${marker}`], { stdio: ['pipe', 'ignore', 'ignore'] });
    await until(() => stdout.includes('\n'), 'an event on stdout');
    wanted.stdin!.end('\n');
    other.stdin!.end('\n');
    cli.kill('SIGINT');
    expect(await exited(cli)).toBe(0);
    const lines = stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as ProcessEvent);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.process.pid).toBe(wanted.pid);
    expect(lines[0]?.process.args).toEqual(['/bin/bash', '-c', 'read -t 20 line', 'bash', marker]);
  });

  it('refuses to run without CAP_NET_ADMIN in one line, exit 1, no stack trace', () => {
    // the staged copy: user 1 may not be able to enter the checkout
    const run = spawnSync('setpriv', ['--reuid=1', '--regid=1', '--clear-groups', process.execPath, stagedPath('dist/cli.js'), 'events'], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^execsentry: .*needs CAP_NET_ADMIN.*run as root or grant the capabilities \(setcap cap_net_admin,cap_sys_ptrace,cap_dac_read_search\+ep/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects a bad --filter with exit 2', () => {
    const run = spawnSync(process.execPath, [cliPath, 'events', '--filter', 'process.name:('], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^execsentry: --filter: /);
  });

  it('takes its sensor and log settings from --config, and rejects a bad one with exit 2 naming the key', async () => {
    const good = join(scratch, 'events-config.json');
    writeFileSync(good, JSON.stringify({ logFormat: 'json', sensor: { socketBufferBytes: 12 * 1024 * 1024, maxArgsBytes: 256 } }));
    const cli = spawn(process.execPath, [cliPath, 'events', '--config', good, '--filter', 'process.name:none-such'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    cli.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await until(() => stderr.includes('streaming exec events'), 'the events command to subscribe');
    cli.kill('SIGINT');
    expect(await exited(cli)).toBe(0);
    const stopped = stderr.trimEnd().split('\n').map((line) => JSON.parse(line) as { msg: string; socketBufferBytes?: number }).find((line) => line.msg === 'stopped');
    // The default (4 MiB) reads back as 8 MiB (the kernel doubles it): at least 12 MiB can only be the file's.
    expect(stopped?.socketBufferBytes).toBeGreaterThanOrEqual(12 * 1024 * 1024);

    const bad = join(scratch, 'events-bad-config.json');
    writeFileSync(bad, JSON.stringify({ sensor: { socketBufferBytes: 10 } }));
    const run = spawnSync(process.execPath, [cliPath, 'events', '--config', bad], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('sensor.socketBufferBytes');
  });

  it('counts what it saw and lost', () => {
    const stats = sensor.stats();
    expect(stats.events).toBeGreaterThan(0);
    expect(stats.tableSize).toBeGreaterThan(0);
    expect(stats.socketBufferBytes).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    for (const value of Object.values(stats)) expect(Number.isSafeInteger(value)).toBe(true);
  });

  it('runs in a worker thread and stops cleanly there, stopped twice or not at all', async () => {
    const addon = fileURLToPath(new URL('../../build/Release/execsentry.node', import.meta.url));
    const code = `
      const { parentPort } = require('node:worker_threads');
      const addon = require(${JSON.stringify(addon)});
      const kinds = new Set();
      const stopped = new addon.ProcessConnector({ socketBufferBytes: 1 << 20, maxArgsBytes: 4096 }, (packed) => {
        for (let at = 0; at < packed.length; at += ${RECORD_STRIDE}) kinds.add(packed[at]);
      });
      const leftRunning = new addon.ProcessConnector({ socketBufferBytes: 1 << 20, maxArgsBytes: 4096 }, () => {});
      require('node:child_process').execFile('/usr/bin/true', ['worker-marker'], () => {
        setTimeout(() => {
          stopped.stop();
          stopped.stop();
          parentPort.postMessage({ kinds: [...kinds], stats: stopped.stats() });
        }, 300);
      });
    `;
    const worker = new Worker(code, { eval: true });
    const message = await new Promise<{ kinds: number[]; stats: { execs: number } }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(message.kinds).toContain(1); // exec records arrived in the worker
    expect(message.stats.execs).toBeGreaterThan(0);
    // The second connector was never stopped: terminating the worker must stop it through the cleanup hook.
    expect(await worker.terminate()).toBe(1);
  });
});
