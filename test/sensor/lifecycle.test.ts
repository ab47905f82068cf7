import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { createLogger } from '../../src/log.js';
import { Sensor } from '../../src/sensor/index.js';
import { native } from '../../src/native.js';
import { buildForkEvent, exitCodeOf, forkedEntry } from '../../src/sensor/lifecycle.js';
import type { ProcessEntry } from '../../src/sensor/table.js';
import { expectEcsConformant } from '../engine/ecs.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { eventFinder } from './helpers.js';

/**
 * Fork and end events from real processes (src/sensor/lifecycle.ts): a shell's subshell, exit codes, a
 * signal, threads. Other test runs fork and exit on this host too: every expectation picks its processes by
 * pid or by a unique marker in their arguments.
 */

const unique = () => `${process.pid}${Math.floor(Math.random() * 1e9)}`;
const options = { socketBufferBytes: 4 * 1024 * 1024, maxArgsBytes: 64 * 1024, maxProcessTableEntries: 65_536, logger: createLogger('silent') };

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

const of = (action: string) => (event: ProcessEvent) => event.event.action === action;

describe('exit status → process.exit_code', () => {
  it('is the status byte, as Defend reports it: exit_group(3) → 3, a signal → 0', () => {
    expect(exitCodeOf(3 << 8)).toBe(3);
    expect(exitCodeOf(255 << 8)).toBe(255);
    expect(exitCodeOf(9)).toBe(0);
    expect(exitCodeOf(0x80 | 11)).toBe(0);
  });
});

describe('kernel threads and the user-mode helpers they fork', () => {
  // the table as the /proc seed makes it (kernelThread from the snapshot's PF_KTHREAD), and fork records as
  // the connector delivers them (pid, parent's pid, start ticks) on this host: kthreadd starting a kworker,
  // that kworker starting a core_pattern pipe handler (kernel/umh.c), and a shell's subshell
  const kthreadd: ProcessEntry = { pid: 2, startTicks: 0, kernelThread: true, exited: false };
  const kworker: ProcessEntry = { pid: 57, startTicks: 31, kernelThread: true, parent: kthreadd, exited: false };
  const shell: ProcessEntry = { pid: 900, startTicks: 5000, executable: '/usr/bin/bash', name: 'bash', args: ['bash'], uid: 0, gid: 0, exited: false };
  const start = '2026-12-01T22:00:00.000Z';

  it('a child of kthreadd is a kernel thread: no fork or end events for it', () => {
    expect(forkedEntry({ pid: 3120, parentPid: 2, startTicks: 81234 }, kthreadd, start).kernelThread).toBe(true);
  });

  it('a process a kworker forks is not: a user-mode helper gets its fork event, as Defend reports it', () => {
    const helper = forkedEntry({ pid: 3121, parentPid: 57, startTicks: 81240 }, kworker, start);
    expect(helper.kernelThread).toBeUndefined();
    expect(helper.parent).toBe(kworker);
    const identity = { host: { hostname: 'h' }, agent: { type: 'execsentry' }, entityNamespace: 'n' } as unknown as Parameters<typeof buildForkEvent>[1]['identity'];
    const fork = buildForkEvent(helper, { identity, timestamp: start, created: start });
    expect(fork.event.action).toBe('fork');
    expect(fork.process.pid).toBe(3121);
    expect(fork.process.parent?.pid).toBe(57);
  });

  it('a user process\'s child is not, and runs a copy of its parent\'s image', () => {
    const child = forkedEntry({ pid: 901, parentPid: 900, startTicks: 5001 }, shell, start);
    expect(child.kernelThread).toBeUndefined();
    expect(child).toMatchObject({ pid: 901, startTicks: 5001, startEstimated: true, start, executable: '/usr/bin/bash', args: ['bash'], uid: 0, parent: shell });
  });

  it('on this kernel, the kernel threads are exactly kthreadd and its children', async () => {
    const snapshots = await native().scanProcesses('/proc', 4096);
    const kernelThreads = snapshots.filter((snapshot) => snapshot.kernelThread === true);
    expect(kernelThreads.length).toBeGreaterThan(1);
    for (const thread of kernelThreads) expect(thread.pid === 2 || thread.ppid === 2, `kernel thread ${thread.pid} (ppid ${thread.ppid})`).toBe(true);
    // the ones gone since the scan read them excepted: a child of kthreadd that is no kernel thread would be
    for (const child of snapshots.filter((snapshot) => snapshot.ppid === 2 && snapshot.exited !== true)) expect(child.kernelThread, `child ${child.pid} of kthreadd`).toBe(true);
  });
});

describeAsRoot('fork and end events on the live kernel', () => {
  // one sensor asked for every event on each subscription path (Linux 6.6+ filters, and the BPF-filtered one)
  const sensors: { name: string; sensor: Sensor; events: ProcessEvent[] }[] = [
    { name: 'filtered subscriptions', sensor: new Sensor({ ...options, events: ['exec', 'fork', 'end'] }), events: [] },
    { name: 'legacy kernel path', sensor: new Sensor({ ...options, events: ['exec', 'fork', 'end'], legacyKernel: true }), events: [] },
  ];
  const all = sensors[0]!;
  const allWhere = eventFinder(all.events);
  // and one left at its default, exec only
  const execOnly = { sensor: new Sensor(options), events: [] as ProcessEvent[] };

  beforeAll(async () => {
    for (const { sensor, events } of [...sensors, execOnly]) await sensor.start((batch) => events.push(...batch));
  });

  afterAll(async () => {
    for (const { sensor } of [...sensors, execOnly]) await sensor.stop();
  });

  it('a subshell is a fork event: the child, a copy of the shell, with the shell as parent; then its exec', async () => {
    const marker = `fork-${unique()}`;
    // the subshell execs sleep in place of itself; `exit 0` last so the shell itself does not exec
    const shell = spawn('/bin/sh', ['-c', '( sleep 0.1 ); exit 0', 'sh', marker], { stdio: 'ignore' });
    expect((await exited(shell)).code).toBe(0);
    const shellExec = await allWhere((e) => of('exec')(e) && e.process.pid === shell.pid, 'the shell exec');
    const fork = await allWhere((e) => of('fork')(e) && e.process.parent?.pid === shell.pid, 'the subshell fork');
    expect(fork.event).toMatchObject({ kind: 'event', category: ['process'], type: ['start'], action: 'fork' });
    expect(fork.process.pid).not.toBe(shell.pid);
    // the child runs the shell's image until it execs
    expect(fork.process).toMatchObject({
      executable: shellExec.process.executable,
      name: shellExec.process.name,
      args: ['/bin/sh', '-c', '( sleep 0.1 ); exit 0', 'sh', marker],
      args_count: 5,
      working_directory: process.cwd(),
      user: { id: '0', name: 'root' },
      group: { id: '0' },
      parent: { pid: shell.pid, entity_id: shellExec.process.entity_id, executable: shellExec.process.executable, args: shellExec.process.args },
    });
    expect(fork.process.exit_code).toBeUndefined();
    expect(fork.process.end).toBeUndefined();
    expect(fork.user).toMatchObject({ id: '0', name: 'root' });
    expect(Date.parse(fork['@timestamp'])).toBeGreaterThanOrEqual(Date.parse(shellExec['@timestamp']));
    expectEcsConformant(fork);
    // the same process when it execs: same pid and entity_id, the shell still its parent
    const sleep = await allWhere((e) => of('exec')(e) && e.process.pid === fork.process.pid, 'the subshell exec of sleep');
    expect(sleep.process.name).toBe('sleep');
    expect(sleep.process.entity_id).toBe(fork.process.entity_id);
    expect(sleep.process.parent?.pid).toBe(shell.pid);
    // and its end: sleep's image, the same identity
    const end = await allWhere((e) => of('end')(e) && e.process.pid === fork.process.pid, 'the end of sleep');
    expect(end.process).toMatchObject({ name: 'sleep', entity_id: fork.process.entity_id, exit_code: 0, parent: { pid: shell.pid } });
  });

  it('`sh -c "sleep 0.1 & wait"` forks too', async () => {
    const marker = `bg-${unique()}`;
    const shell = spawn('/bin/sh', ['-c', 'sleep 0.1 & wait', 'sh', marker], { stdio: 'ignore' });
    await exited(shell);
    const fork = await allWhere((e) => of('fork')(e) && e.process.parent?.pid === shell.pid, 'the background fork');
    expect(fork.process.args).toContain(marker);
    expect(fork.process.parent?.args).toContain(marker);
  });

  it('the end of a process that set its groups and ids after its exec names the groups it set, on both paths', async () => {
    const marker = `groups-${unique()}`;
    // perl sets its gid and groups ($) = "1 4 24": setgroups(4, 24), which has no connector record), then
    // its uid, and exits 200 ms later with nothing of it left to read in /proc
    const perl = spawn('perl', ['-e', '$( = 1; $) = "1 4 24"; $< = $> = 1; select(undef, undef, undef, 0.2)', marker], { stdio: 'ignore' });
    expect((await exited(perl)).code).toBe(0);
    for (const { name, events } of sensors) {
      const end = await eventFinder(events)((e) => of('end')(e) && e.process.pid === perl.pid, `the end of perl (${name})`);
      expect(end.process.user, name).toMatchObject({ id: '1' });
      expect(end.process.supplemental_groups?.map((group) => group.id), name).toEqual(['4', '24']);
    }
  });

  it('a process that exits with 3 gives an end event with process.exit_code 3, process.end and its start', async () => {
    const marker = `exit3-${unique()}`;
    const child = spawn('/bin/sh', ['-c', 'sleep 0.05; exit 3', 'sh', marker], { stdio: 'ignore' });
    expect((await exited(child)).code).toBe(3);
    const exec = await allWhere((e) => of('exec')(e) && e.process.pid === child.pid, 'its exec');
    const end = await allWhere((e) => of('end')(e) && e.process.pid === child.pid, 'its end');
    expect(end.event).toMatchObject({ kind: 'event', category: ['process'], type: ['end'], action: 'end' });
    expect(end.process).toMatchObject({
      pid: child.pid,
      entity_id: exec.process.entity_id,
      executable: exec.process.executable,
      args: ['/bin/sh', '-c', 'sleep 0.05; exit 3', 'sh', marker],
      start: exec.process.start,
      exit_code: 3,
      parent: { pid: process.pid, executable: process.execPath },
    });
    expect(end.process.end).toBe(end['@timestamp']);
    expect(Date.parse(end.process.end!) - Date.parse(exec['@timestamp'])).toBeGreaterThanOrEqual(40);
    expect(end.execsentry?.exit_signal).toBeUndefined();
    expectEcsConformant(end);
  });

  it('a process killed by a signal: exit_code 0 as Defend reports it, the signal in execsentry.exit_signal', async () => {
    for (const [signal, number] of [['KILL', 9], ['TERM', 15]] as const) {
      const marker = `signal-${unique()}`;
      const child = spawn('/bin/sh', ['-c', `sleep 0.05; kill -${signal} $$; sleep 5`, 'sh', marker], { stdio: 'ignore' });
      expect((await exited(child)).signal).toBe(`SIG${signal}`);
      const end = await allWhere((e) => of('end')(e) && e.process.pid === child.pid, `the end after SIG${signal}`);
      expect(end.process.exit_code).toBe(0);
      expect(end.execsentry?.exit_signal).toBe(number);
      expect(end.execsentry?.core_dumped).toBeUndefined();
    }
  });

  it.each([0, 1])('threads are neither forks nor ends (%s: both subscription paths)', async (index) => {
    const { name, events } = sensors[index]!;
    const where = eventFinder(events);
    const marker = `threads-${unique()}`;
    // a worker thread (and Node's own libuv and V8 threads); the thread ids it had, printed before it exits
    const script = [
      "const { Worker } = require('node:worker_threads');",
      "const w = new Worker('setTimeout(() => {}, 300)', { eval: true });",
      "w.on('online', () => { console.log(JSON.stringify(require('node:fs').readdirSync('/proc/self/task').map(Number))); setTimeout(() => process.exit(4), 100); });",
    ].join('\n');
    const child = spawn(process.execPath, ['-e', script, marker], { stdio: ['ignore', 'pipe', 'ignore'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    expect((await exited(child)).code).toBe(4);
    const threads = (JSON.parse(output) as number[]).filter((tid) => tid !== child.pid);
    expect(threads.length, 'the node child had threads').toBeGreaterThan(2);
    const end = await where((e) => of('end')(e) && e.process.pid === child.pid, `${name}: the node child's end`);
    expect(end.process.exit_code).toBe(4);
    expect(end.process.args).toContain(marker);
    const lifecycle = events.filter((e) => of('fork')(e) || of('end')(e));
    expect(lifecycle.filter((e) => threads.includes(e.process.pid)), `${name}: fork or end events of threads`).toEqual([]);
    expect(lifecycle.filter((e) => of('fork')(e) && e.process.parent?.pid === child.pid), `${name}: forks by the node child`).toEqual([]);
    expect(events.filter((e) => of('end')(e) && e.process.pid === child.pid)).toHaveLength(1);
  });

  it('a sensor left at its default produces none, and produces them once asked (produce())', async () => {
    const where = eventFinder(execOnly.events);
    const first = `quiet-${unique()}`;
    const quiet = spawn('/bin/sh', ['-c', '( sleep 0.05 ); exit 3', 'sh', first], { stdio: 'ignore' });
    await exited(quiet);
    await where((e) => e.process.args?.includes(first) === true, 'the quiet shell');
    // a later exec seen means every record before it was handled
    const later = spawn('/bin/sleep', ['0.05'], { stdio: 'ignore' });
    await exited(later);
    await where((e) => e.process.pid === later.pid, 'a later exec');
    expect(execOnly.events.filter((e) => e.event.action !== 'exec')).toEqual([]);
    expect(execOnly.sensor.stats()).toMatchObject({ forkEvents: 0, endEvents: 0 });

    execOnly.sensor.produce(['exec', 'end']);
    const second = `asked-${unique()}`;
    const asked = spawn('/bin/sh', ['-c', '( sleep 0.05 ); exit 3', 'sh', second], { stdio: 'ignore' });
    await exited(asked);
    const end = await where((e) => of('end')(e) && e.process.pid === asked.pid, 'the end once asked');
    expect(end.process.exit_code).toBe(3);
    expect(execOnly.events.filter(of('fork'))).toEqual([]);
    execOnly.sensor.produce(['exec']);
  });
});
