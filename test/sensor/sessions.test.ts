import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { EcsLeaderProcess, ProcessEvent } from '../../src/ecs/types.js';
import { createLogger } from '../../src/log.js';
import { Sensor } from '../../src/sensor/index.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { SSH, startSshd } from '../helpers/sshd.js';
import { eventFinder } from './helpers.js';

/**
 * Session, group and entry leaders, previous images and ancestry, seen on real processes: an ssh login
 * over loopback to a real sshd, shells in real pseudo-terminals (script), setsid, job-control pipelines, a
 * container runtime's name. Every expectation finds its processes by a unique marker.
 */

const events: ProcessEvent[] = [];
let sensor: Sensor;
const scratch = mkdtempSync(join(tmpdir(), 'execsentry-sessions-'));
chmodSync(scratch, 0o755);
const unique = () => `${process.pid}${Math.floor(Math.random() * 1e9)}`;
const eventWhere = eventFinder(events);

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** The exec event of `/bin/sleep <arg>` (sleep's own exec, not a shell's that names it). */
const sleepWith = (arg: string, timeoutMs?: number) => eventWhere((e) => e.process.name === 'sleep' && e.process.args?.[1] === arg, `sleep ${arg}`, timeoutMs);

/** The last exec event of `pid` before `event`: what the process ran when `event`'s process was started. */
function execOf(pid: number | undefined, event: ProcessEvent, what: string): ProcessEvent {
  const found = events.slice(0, events.indexOf(event)).filter((e) => e.process.pid === pid).at(-1);
  if (found === undefined) throw new Error(`no exec event of ${what} (pid ${pid}) before pid ${event.process.pid}'s`);
  return found;
}

/** A leader's fields are the leader's own: as its latest exec event described the process. */
function expectLeaderIs(leader: EcsLeaderProcess | { pid: number } | undefined, own: ProcessEvent, sameAsProcess: boolean): void {
  expect(leader).toMatchObject({
    pid: own.process.pid,
    entity_id: own.process.entity_id,
    executable: own.process.executable,
    name: own.process.name,
    args: own.process.args,
    args_count: own.process.args_count,
    working_directory: own.process.working_directory,
    start: own.process.start,
    user: own.process.user,
    real_user: own.process.real_user,
    group: own.process.group,
    real_group: own.process.real_group,
    same_as_process: sameAsProcess,
  });
  expect((leader as EcsLeaderProcess).interactive).toBe(own.process.interactive);
  expect((leader as EcsLeaderProcess).tty).toEqual(own.process.tty);
}

describeAsRoot('session, group and entry leaders on the live kernel', () => {
  beforeAll(async () => {
    sensor = new Sensor({ socketBufferBytes: 4 * 1024 * 1024, maxArgsBytes: 64 * 1024, maxProcessTableEntries: 65_536, logger: createLogger('silent') });
    await sensor.start((batch) => events.push(...batch));
  });

  afterAll(async () => {
    await sensor?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('makes the shell of an ssh login the entry leader of its session, type sshd, with the client address', async () => {
    const sshd = await startSshd();
    try {
      const marker = `0.3${unique()}`;
      const ssh = spawn(SSH, sshd.loginArguments('root', { command: `/bin/sleep ${marker}; true` }), { stdio: ['pipe', 'ignore', 'ignore'] });
      const sleep = await sleepWith(marker, 15_000);
      await exited(ssh);
      const shell = execOf(sleep.process.parent?.pid, sleep, 'the login shell');
      expect(shell.process.name).toBe('bash');
      expect(shell.process.parent?.name).toBe('sshd');
      const entry = shell.process.entry_leader;
      expectLeaderIs(entry, shell, true);
      expect(entry?.entry_meta).toEqual({ type: 'sshd', source: { ip: '127.0.0.1' } });
      expect(entry?.parent).toEqual({ pid: shell.process.parent?.pid, start: shell.process.parent?.start, entity_id: shell.process.parent?.entity_id });
      expectLeaderIs(shell.process.session_leader, shell, true);
      expectLeaderIs(shell.process.group_leader, shell, true);
      expect(shell.process.tty?.char_device.major).toBe(136);
      // The shell's children carry its entry.
      expectLeaderIs(sleep.process.entry_leader, shell, false);
      expect(sleep.process.entry_leader?.entry_meta).toEqual({ type: 'sshd', source: { ip: '127.0.0.1' } });
      expect(sleep.process.entry_leader?.parent).toEqual(entry?.parent);
      expectLeaderIs(sleep.process.session_leader, shell, false);
      expectLeaderIs(sleep.process.group_leader, shell, false);
      expect(sleep.process.parent?.tty).toEqual(shell.process.tty);
    } finally {
      await sshd.stop();
    }
  }, 30_000);

  it('gives a shell in a pseudo-terminal the entry of the service it runs under, and a setsid child a session of its own', async () => {
    const marker = `0.4${unique()}`;
    const nested = `0.5${unique()}`;
    const ppidFile = join(scratch, `ppid-${marker}`);
    // setsid -f: a new session whose first process is reparented (to init, or a subreaper) before it execs
    // the launcher; the launcher starts script, whose shell runs sleep and a setsid'd sleep.
    // script runs its command with $SHELL -c: bash execs a last simple command in place, dash (the
    // shell when SHELL is unset, as under CI) forks it, which would put a dash between script and bash.
    const launcher = `while [ "$(cut -d' ' -f4 /proc/$$/stat)" = "$0" ]; do sleep 0.01; done; cut -d' ' -f4 /proc/$$/stat > ${ppidFile}; exec /bin/sh -c 'SHELL=/bin/bash script -qec "/bin/bash -c \\"/bin/sleep ${marker}; /usr/bin/setsid /bin/sleep ${nested}; true\\"" /dev/null; true'`;
    const starter = spawn('/bin/sh', ['-c', `exec setsid -f /bin/sh -c '${launcher.replaceAll("'", "'\\''")}' $$ </dev/null >/dev/null 2>&1`], { stdio: 'ignore' });
    await exited(starter);
    const sleep = await sleepWith(marker);
    const shell = execOf(sleep.process.parent?.pid, sleep, 'the shell under script');
    expect(shell.process.args).toEqual(['/bin/bash', '-c', `/bin/sleep ${marker}; /usr/bin/setsid /bin/sleep ${nested}; true`]);
    const script = execOf(shell.process.parent?.pid, shell, 'script');
    expect(script.process.name).toBe('script');
    const service = execOf(script.process.parent?.pid, script, 'the launcher');
    expect(service.process.args?.[2]).toMatch(/^SHELL=\/bin\/bash script /);
    const reparentedTo = Number(readFileSync(ppidFile, 'utf8').trim());
    if (reparentedTo === 1) {
      // A session started for init: its own entry, type init (auditbeat's sessionmd rule).
      expectLeaderIs(service.process.entry_leader, service, true);
      expect(service.process.entry_leader?.entry_meta).toEqual({ type: 'init' });
      expect(service.process.entry_leader?.parent?.pid).toBe(service.process.parent?.pid);
    }
    // The shell leads its session and group in the terminal, but entered through the launcher's entry.
    expect(shell.process.tty?.char_device.major).toBe(136);
    expect(shell.process.interactive).toBe(true);
    expectLeaderIs(shell.process.session_leader, shell, true);
    expectLeaderIs(shell.process.group_leader, shell, true);
    expect(shell.process.entry_leader?.pid).toBe(service.process.entry_leader?.pid);
    expect(shell.process.entry_leader?.entity_id).toBe(service.process.entry_leader?.entity_id);
    expect(shell.process.entry_leader?.same_as_process).toBe(false);
    expectLeaderIs(sleep.process.session_leader, shell, false);
    expect(sleep.process.entry_leader?.entity_id).toBe(service.process.entry_leader?.entity_id);
    // setsid: a nested session, its own leader of session and group; the entry stays the launcher's.
    const detached = await sleepWith(nested);
    expect(detached.process.parent?.pid).toBe(shell.process.pid);
    expectLeaderIs(detached.process.session_leader, detached, true);
    expectLeaderIs(detached.process.group_leader, detached, true);
    expect(detached.process.entry_leader?.entity_id).toBe(service.process.entry_leader?.entity_id);
    expect(detached.process.entry_leader?.same_as_process).toBe(false);
    expect(detached.process.tty).toBeUndefined();
  });

  it('puts the commands of a job-control pipeline under its first command as group leader', async () => {
    const first = `0.6${unique()}`;
    const second = `0.61${unique()}`;
    // The second command waits before its exec so that the first's exec is in the table by then.
    const bash = spawn('/bin/bash', ['-c', `set -m; /bin/sleep ${first} | { /bin/sleep 0.2; exec /bin/sleep ${second}; }; true`], { stdio: 'ignore' });
    const a = await sleepWith(first);
    const b = await sleepWith(second);
    await exited(bash);
    const shell = await eventWhere((e) => e.process.pid === bash.pid && e.process.name === 'bash', 'the pipeline shell');
    expectLeaderIs(a.process.group_leader, a, true);
    expectLeaderIs(b.process.group_leader, a, false);
    // job control makes groups, not sessions: both stay in the shell's session
    expect(a.process.session_leader?.pid).toBe(shell.process.session_leader?.pid);
    expect(b.process.session_leader?.pid).toBe(shell.process.session_leader?.pid);
    expect(a.process.entry_leader?.entity_id).toBe(shell.process.entry_leader?.entity_id);
  });

  it('makes a session started by a container runtime its own entry, type container', async () => {
    const shim = join(scratch, 'containerd-shim-runc-v2');
    copyFileSync('/bin/bash', shim);
    chmodSync(shim, 0o755);
    const marker = `0.7${unique()}`;
    const inner = `0.71${unique()}`;
    const child = spawn(shim, ['-c', `/usr/bin/setsid /bin/bash -c '/bin/sleep ${inner}; exec /bin/sleep ${marker}'; true`], { stdio: 'ignore' });
    const containerInit = await sleepWith(marker);
    const innerSleep = await sleepWith(inner);
    await exited(child);
    const shimEvent = await eventWhere((e) => e.process.pid === child.pid && e.process.executable === shim, 'the shim');
    const session = await eventWhere((e) => e.process.pid === containerInit.process.pid && e.process.name === 'bash', 'the container session');
    expect(session.process.parent?.pid).toBe(child.pid);
    expectLeaderIs(session.process.entry_leader, session, true);
    expect(session.process.entry_leader?.entry_meta).toEqual({ type: 'container' });
    expect(session.process.entry_leader?.parent).toEqual({ pid: shimEvent.process.pid, start: shimEvent.process.start, entity_id: shimEvent.process.entity_id });
    expectLeaderIs(innerSleep.process.entry_leader, session, false);
    expectLeaderIs(innerSleep.process.session_leader, session, false);
    // the session's re-exec: still its own entry (now sleep), and process.previous tells what it was
    expect(containerInit.process.entry_leader?.same_as_process).toBe(true);
    expect(containerInit.process.entry_leader?.entry_meta.type).toBe('container');
    // (setsid's own image may be gone before its snapshot: it execs at once)
    expect(containerInit.process.previous?.[0]?.executable).toBe(shim);
    expect(containerInit.process.previous?.at(-1)).toEqual({ executable: '/usr/bin/bash', args: session.process.args, args_count: session.process.args_count });
  });

  it('lists process.previous across a fork and exec, and across re-execs without a fork', async () => {
    const marker = `0.8${unique()}`;
    const forked = `0.81${unique()}`;
    const bash = spawn('/bin/bash', ['-c', `/bin/sleep ${forked}; read -t 0.2 _; exec /bin/sh -c "/bin/sleep 0.2; exec /bin/sleep ${marker}"`], { stdio: ['pipe', 'ignore', 'ignore'] });
    const sleep = await sleepWith(marker);
    const child = await sleepWith(forked);
    await exited(bash);
    const bashEvent = await eventWhere((e) => e.process.pid === bash.pid && e.process.name === 'bash', 'bash');
    const shEvent = await eventWhere((e) => e.process.pid === bash.pid && e.process.executable === '/usr/bin/dash', 'sh');
    // fork + exec: the image the child was forked with
    expect(child.process.previous).toEqual([{ executable: '/usr/bin/bash', args: bashEvent.process.args, args_count: bashEvent.process.args_count }]);
    // exec, exec, exec in one process: every image since the fork (node's), oldest first
    expect(sleep.process.previous).toEqual([
      { executable: bashEvent.process.parent?.executable, args: bashEvent.process.parent?.args, args_count: bashEvent.process.parent?.args_count },
      { executable: '/usr/bin/bash', args: bashEvent.process.args, args_count: bashEvent.process.args_count },
      { executable: '/usr/bin/dash', args: shEvent.process.args, args_count: shEvent.process.args_count },
    ]);
    expect(sleep.process.entity_id).toBe(bashEvent.process.entity_id);
  });

  it('keeps process.Ext.ancestry after the parent exited, and names the parent\'s users and groups', async () => {
    const marker = `0.9${unique()}`;
    const script = `( while kill -0 $$ 2>/dev/null; do /bin/sleep 0.02; done; exec /bin/sleep ${marker} ) >/dev/null 2>&1 </dev/null & read -r _; exit 0`;
    // daemon's ids with the adm and cdrom groups as supplemental groups
    const bash = spawn('setpriv', ['--reuid=1', '--regid=1', '--groups=4,24', '/bin/bash', '-c', script], { stdio: ['pipe', 'ignore', 'ignore'] });
    const bashEvent = await eventWhere((e) => e.process.pid === bash.pid && e.process.name === 'bash', 'bash -c');
    bash.stdin?.end('\n');
    await exited(bash);
    const sleep = await sleepWith(marker);
    process.kill(sleep.process.pid);
    expect(sleep.process.parent?.entity_id).toBe(bashEvent.process.entity_id);
    expect(sleep.process.Ext?.ancestry[0]).toBe(bashEvent.process.entity_id);
    expect(sleep.process.Ext?.ancestry.slice(1)).toEqual(bashEvent.process.Ext?.ancestry.slice(0, 19));
    expect(bashEvent.process.Ext?.ancestry[0]).toBe(bashEvent.process.parent?.entity_id);
    const groups = [
      { id: '4', name: 'adm' },
      { id: '24', name: 'cdrom' },
    ];
    expect(bashEvent.process.supplemental_groups).toEqual(groups);
    expect(sleep.process.supplemental_groups).toEqual(groups);
    expect(sleep.process.parent?.supplemental_groups).toEqual(groups);
    expect(sleep.process.parent?.user).toEqual({ id: '1', name: 'daemon' });
    expect(sleep.process.parent?.real_user).toEqual({ id: '1', name: 'daemon' });
    expect(sleep.process.parent?.group).toEqual({ id: '1', name: 'daemon' });
    expect(sleep.process.parent?.real_group).toEqual({ id: '1', name: 'daemon' });
    expect(sleep.user?.Ext).toEqual({ real: { id: '1', name: 'daemon' } });
    expect(sleep.group?.Ext).toEqual({ real: { id: '1', name: 'daemon' } });
  });

  it('tells the real user apart from the effective one in user.Ext.real', async () => {
    const program = join(scratch, 'setuid-sleep');
    copyFileSync('/usr/bin/sleep', program);
    chmodSync(program, 0o4755);
    const marker = `0.95${unique()}`;
    const child = spawn('setpriv', ['--reuid=1', '--regid=1', '--clear-groups', program, marker], { stdio: 'ignore' });
    const event = await eventWhere((e) => e.process.executable === program && e.process.args?.[1] === marker, 'setuid program');
    await exited(child);
    expect(event.user).toMatchObject({ id: '0', name: 'root', Ext: { real: { id: '1', name: 'daemon' } } });
    expect(event.group).toMatchObject({ id: '1', Ext: { real: { id: '1', name: 'daemon' } } });
    expect(event.process.supplemental_groups).toBeUndefined();
  });

  it('follows a parent that changes its groups, real and effective ids after its exec (as a login drops root)', async () => {
    const marker = `0.3${unique()}`;
    // perl sets gid then uid (real and effective) with no exec of its own, then starts sleep: only the
    // connector's uid/gid change records tell the table
    // ($) = "1 4 24" sets the effective gid and calls setgroups(4, 24), which no connector record reports)
    const perl = spawn('perl', ['-e', `$( = 1; $) = "1 4 24"; $< = $> = 1; system("/bin/sleep", "${marker}") == 0 or die`], { stdio: 'ignore' });
    const sleep = await sleepWith(marker);
    expect(await exited(perl)).toBe(0);
    expect(sleep.process.parent).toMatchObject({ name: 'perl', user: { id: '1' }, real_user: { id: '1' }, group: { id: '1' }, real_group: { id: '1' } });
    expect(sleep.process.parent?.supplemental_groups?.map((group) => group.id)).toEqual(['4', '24']);
  });

  it('shows a parent that exec\'d after the fork as it is now, under the one entity id of its events', async () => {
    const marker = `0.3${unique()}`;
    // the subshell is forked by sh, which then execs bash; the subshell execs sleep after that
    const sh = spawn('/bin/sh', ['-c', `( /bin/sleep 0.2; exec /bin/sleep ${marker} ) & exec /bin/bash -c 'read -t 5 v; wait'`], { stdio: ['pipe', 'ignore', 'ignore'] });
    const bashEvent = await eventWhere((e) => e.process.pid === sh.pid && e.process.name === 'bash', 'the exec of bash');
    const sleep = await sleepWith(marker);
    sh.stdin?.end('\n');
    await exited(sh);
    expect(sleep.process.parent).toMatchObject({ pid: sh.pid, name: 'bash', entity_id: bashEvent.process.entity_id });
    expect(sleep.process.Ext?.ancestry[0]).toBe(bashEvent.process.entity_id);
  });

  it('follows a setsid() without an exec: a daemon\'s middle fork leads the session its child execs in, also after it exited', async () => {
    const marker = `0.3${unique()}`;
    // perl forks a child that calls setsid() and forks again, then exits; the grandchild execs sleep later
    const perl = spawn('perl', ['-e', `use POSIX; if (fork() == 0) { POSIX::setsid(); if (fork() == 0) { select(undef, undef, undef, 0.3); exec "/bin/sleep", "${marker}"; } exit 0; } wait; select(undef, undef, undef, 0.8);`], { stdio: 'ignore' });
    const sleep = await sleepWith(marker);
    expect(await exited(perl)).toBe(0);
    const middle = sleep.process.parent?.pid;
    expect(middle).not.toBe(perl.pid);
    expect(sleep.process.session_leader).toMatchObject({ pid: middle, name: 'perl', same_as_process: false });
    expect(sleep.process.group_leader).toMatchObject({ pid: middle, name: 'perl' });
    expect((sleep.process.session_leader as EcsLeaderProcess | undefined)?.tty).toBeUndefined();
  });

  it('gives processes alive at start-up their leaders, parents before children', async () => {
    const marker = `0.97${unique()}`;
    // A session that exists before the second sensor starts: its leader is known only from the /proc scan.
    const leader = spawn('/usr/bin/setsid', ['/bin/bash', '-c', `read -r _; /bin/sleep ${marker}; true`], { stdio: ['pipe', 'ignore', 'ignore'] });
    const nodeChild = await eventWhere((e) => e.process.parent?.pid === process.pid && e.process.entry_leader !== undefined, 'a child of this test process');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const late: ProcessEvent[] = [];
    const second = new Sensor({ socketBufferBytes: 1024 * 1024, maxArgsBytes: 64 * 1024, maxProcessTableEntries: 65_536, logger: createLogger('silent') });
    await second.start((batch) => late.push(...batch));
    try {
      leader.stdin?.end('\n');
      const sleep = await eventFinder(late)((e) => e.process.name === 'sleep' && e.process.args?.[1] === marker, 'sleep under a session older than the sensor');
      expect(sleep.process.session_leader).toMatchObject({ pid: leader.pid, executable: '/usr/bin/bash', args: ['/bin/bash', '-c', `read -r _; /bin/sleep ${marker}; true`], same_as_process: false });
      expect(sleep.process.group_leader?.pid).toBe(leader.pid);
      // bash's entry came from its parent's (this test process's), decided first
      expect(sleep.process.entry_leader?.entity_id).toBe(nodeChild.process.entry_leader?.entity_id);
      expect(sleep.process.entry_leader?.entry_meta.type).toBe(nodeChild.process.entry_leader?.entry_meta.type);
      expect(sleep.process.Ext?.ancestry.slice(0, 2)).toEqual([sleep.process.parent?.entity_id, nodeChild.process.parent?.entity_id]);
    } finally {
      await second.stop();
      await exited(leader);
    }
  });

  it('counts the exited leaders it keeps', () => {
    const stats = sensor.stats();
    expect(stats.leadersRetained).toBeGreaterThan(0);
    expect(stats.leadersEvicted).toBe(0);
  });
});
