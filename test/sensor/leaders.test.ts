import { describe, expect, it } from 'vitest';
import { entityId } from '../../src/sensor/enrich.js';
import { ancestryOf, decideEntryLeader, MAX_ANCESTRY, MAX_PREVIOUS, previousAfterExec, ttyKind } from '../../src/sensor/leaders.js';
import { ProcessTable, type ProcessEntry } from '../../src/sensor/table.js';

const NAMESPACE = 'test-host';

/** tty_nr as the kernel packs (major, minor) into stat (new_encode_dev). */
const ttyNr = (major: number, minor: number) => (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);

function processEntry(pid: number, name: string, fields: Partial<ProcessEntry> = {}): ProcessEntry {
  return { pid, startTicks: 1000 + pid, executable: `/usr/bin/${name}`, name, args: [name], exited: false, sid: fields.sid ?? 0, ...fields };
}

describe('ttyKind', () => {
  it('classifies terminals as quark and auditbeat do', () => {
    expect(ttyKind(0)).toBe('none');
    expect(ttyKind(undefined)).toBe('none');
    expect(ttyKind(ttyNr(136, 3))).toBe('pts');
    expect(ttyKind(ttyNr(143, 1000))).toBe('pts');
    expect(ttyKind(ttyNr(4, 1))).toBe('console');
    expect(ttyKind(ttyNr(4, 63))).toBe('console');
    expect(ttyKind(ttyNr(4, 64))).toBe('tty');
    expect(ttyKind(ttyNr(4, 255))).toBe('tty');
    expect(ttyKind(ttyNr(5, 1))).toBe('other');
  });
});

describe('decideEntryLeader', () => {
  const init = processEntry(1, 'systemd');
  decideEntryLeader(init, undefined, 0, undefined, NAMESPACE);
  const sshd = processEntry(700, 'sshd', { sid: 700, parent: init, entryLeader: init });

  const decide = (entry: ProcessEntry, ppid = entry.parent?.pid, inherited?: ProcessEntry) => {
    decideEntryLeader(entry, entry.parent, ppid, inherited, NAMESPACE);
    return entry;
  };

  it('makes pid 1 its own init entry leader', () => {
    expect(init.entryLeader).toBe(init);
    expect(init.entryMeta).toEqual({ type: 'init' });
  });

  it('makes a session leader on sshd its own sshd entry leader, with its parent', () => {
    const shell = decide(processEntry(800, 'bash', { sid: 800, parent: sshd, ttyNr: ttyNr(136, 0) }));
    expect(shell.entryLeader).toBe(shell);
    expect(shell.entryMeta).toEqual({ type: 'sshd', parent: { pid: 700, entityId: entityId(NAMESPACE, 700, 1700) } });
    // sshd's own per-connection child is no entry of its own; OpenSSH 9.8's sshd-session is sshd too.
    expect(decide(processEntry(801, 'sshd', { sid: 801, parent: sshd })).entryLeader).toBe(init);
    const session = processEntry(802, 'sshd-session', { sid: 0, parent: sshd, entryLeader: init });
    expect(decide(processEntry(803, 'zsh', { sid: 803, parent: session })).entryMeta?.type).toBe('sshd');
  });

  it('leaves a process that is no session leader with its parent\'s entry leader', () => {
    const shell = decide(processEntry(810, 'bash', { sid: 810, parent: sshd }));
    expect(decide(processEntry(811, 'ls', { sid: 810, parent: shell })).entryLeader).toBe(shell);
    // what the fork copied counts first
    const other = processEntry(812, 'x', { sid: 812, entryLeader: init });
    expect(decide(processEntry(813, 'ls', { sid: 810, parent: shell }), 810, other).entryLeader).toBe(other);
  });

  it('names terminal, console, service, ssm and container entries', () => {
    const getty = processEntry(900, 'agetty', { parent: init, entryLeader: init });
    expect(decide(processEntry(901, 'bash', { sid: 901, parent: getty, ttyNr: ttyNr(4, 64) })).entryMeta?.type).toBe('terminal');
    expect(decide(processEntry(902, 'login', { sid: 902, parent: getty, ttyNr: ttyNr(4, 1) })).entryMeta?.type).toBe('console');
    // on the console, only login is an entry of its own
    expect(decide(processEntry(903, 'bash', { sid: 903, parent: getty, ttyNr: ttyNr(4, 1) })).entryLeader).toBe(init);
    expect(decide(processEntry(904, 'cron', { sid: 904, parent: init })).entryMeta?.type).toBe('init');
    // reparented to init before its exec: a service too
    const gone = processEntry(905, 'sh', { parent: undefined });
    expect(decide(processEntry(906, 'daemon', { sid: 906, parent: gone }), 1).entryMeta?.type).toBe('init');
    const ssm = processEntry(910, 'ssm-session-worker', { parent: init, entryLeader: init });
    expect(decide(processEntry(911, 'sh', { sid: 911, parent: ssm, ttyNr: ttyNr(136, 2) })).entryMeta?.type).toBe('ssm');
    expect(decide(processEntry(912, 'sh', { sid: 912, parent: ssm })).entryLeader).toBe(init); // no pseudo-terminal: not ssm
    const shim = processEntry(920, 'containerd-shim-runc-v2', { parent: init, entryLeader: init });
    expect(decide(processEntry(921, 'nginx', { sid: 921, parent: shim })).entryMeta?.type).toBe('container');
    // container plumbing under the shim is not the container's entry
    expect(decide(processEntry(922, 'runc', { sid: 922, parent: shim })).entryLeader).toBe(init);
  });

  it('gives a session leader that inherits nothing an unknown entry of its own, and others none', () => {
    const orphan = decide(processEntry(1000, 'x', { sid: 1000, parent: undefined }), 999);
    expect(orphan.entryMeta).toEqual({ type: 'unknown', parent: { pid: 999 } });
    expect(decide(processEntry(1001, 'y', { sid: 5, parent: undefined }), 999).entryLeader).toBeUndefined();
  });

  it('puts kernel threads and usermode helpers under kthreadd', () => {
    const kthreadd = decide(processEntry(2, 'kthreadd', { parent: undefined }), 0);
    expect(kthreadd.entryMeta?.type).toBe('kthread');
    expect(decide(processEntry(3000, 'modprobe', { parent: kthreadd })).entryLeader).toBe(kthreadd);
    const helper = decide(processEntry(3001, 'sh', { sid: 3001, parent: kthreadd }));
    expect(helper.entryLeader).toBe(helper);
    expect(helper.entryMeta?.type).toBe('kthread');
  });
});

describe('ProcessTable leaders', () => {
  it('keeps an exited session or group leader for its members, until its pid is used again', () => {
    const table = new ProcessTable(100);
    const leader = processEntry(50, 'sh', { sid: 50, pgid: 50 });
    const member = processEntry(51, 'sleep', { sid: 50, pgid: 50 });
    table.set(leader);
    table.set(member);
    table.exit(50);
    expect(table.leader(50, member.startTicks)).toBe(leader);
    expect(table.retainedLeaders).toBe(1);
    // a leader cannot have started after its member
    expect(table.leader(50, 900)).toBeUndefined();
    // a process that was no leader is not kept
    table.exit(51);
    expect(table.leader(51, undefined)).toBeUndefined();
    // the kernel reuses the pid only once no process is in that session or group
    const next = processEntry(50, 'other', { sid: 1 });
    table.set(next);
    expect(table.leader(50, undefined)).toBe(next);
    table.exit(50);
    expect(table.leader(50, undefined)).toBeUndefined();
    expect(table.retainedLeaders).toBe(0);
  });

  it('bounds the exited leaders it keeps and counts those it drops', () => {
    const table = new ProcessTable(10_000);
    const total = 4096 + 10;
    for (let pid = 10; pid < 10 + total; pid++) {
      table.set(processEntry(pid, 'sh', { sid: pid }));
      table.exit(pid);
    }
    expect(table.retainedLeaders).toBe(4096);
    expect(table.leadersEvicted).toBe(10);
    expect(table.leader(10, undefined)).toBeUndefined(); // the oldest went first
    expect(table.leader(10 + total - 1, undefined)?.pid).toBe(10 + total - 1);
  });
});

describe('ProcessTable leaders, by argv bytes', () => {
  it('also bounds the argv bytes of the exited leaders it keeps (16 MiB), dropping the oldest', () => {
    const table = new ProcessTable(10_000);
    const long = 'x'.repeat(1024 * 1024); // a 1 MiB argument: args and command line count 2 MiB a leader
    for (let pid = 10; pid < 20; pid++) {
      const entry = processEntry(pid, 'sh', { sid: pid });
      entry.args = ['sh', long];
      entry.commandLine = `sh ${long}`;
      table.set(entry);
      table.exit(pid);
    }
    expect(table.retainedLeaders).toBe(7);
    expect(table.leadersEvicted).toBe(3);
    expect(table.leader(12, undefined)).toBeUndefined();
    expect(table.leader(13, undefined)?.pid).toBe(13);
    // a pid used again gives its leader's bytes back
    table.set(processEntry(13, 'other', { sid: 1 }));
    const small = processEntry(30, 'sh', { sid: 30 });
    table.set(small);
    table.exit(30);
    expect(table.retainedLeaders).toBe(7);
    expect(table.leadersEvicted).toBe(3);
  });
});

describe('ancestry and previous images', () => {
  it('lists the ancestors nearest first, and keeps them after the parent exited', () => {
    const table = new ProcessTable(100);
    table.entityNamespace = NAMESPACE;
    const grandparent = processEntry(10, 'init');
    const parent = processEntry(11, 'bash', { parent: grandparent });
    const child = processEntry(12, 'sleep', { parent });
    for (const entry of [grandparent, parent, child]) table.set(entry);
    // the fork-only parent exits before its child's first exec: its chain is kept for the child
    table.exit(11);
    expect(parent.parent).toBeUndefined();
    expect(ancestryOf(child, NAMESPACE)).toEqual([entityId(NAMESPACE, 11, 1011), entityId(NAMESPACE, 10, 1010)]);
  });

  it('stops at an ancestor without identity and at 20 ancestors', () => {
    const unknown: ProcessEntry = { pid: 5, exited: false };
    expect(ancestryOf(processEntry(6, 'a', { parent: processEntry(7, 'b', { parent: unknown }) }), NAMESPACE)).toHaveLength(1);
    let at = processEntry(100, 'p0');
    for (let i = 1; i <= 30; i++) at = processEntry(100 + i, `p${i}`, { parent: at });
    const ancestry = ancestryOf(at, NAMESPACE);
    expect(ancestry).toHaveLength(MAX_ANCESTRY);
    expect(ancestry[0]).toBe(entityId(NAMESPACE, 129, 1129));
    expect(ancestry[19]).toBe(entityId(NAMESPACE, 110, 1110));
  });

  it('appends the replaced image to process.previous, oldest first, bounded', () => {
    const forked = processEntry(20, 'bash', { args: ['bash', '-c', 'x'] });
    const first = previousAfterExec(forked);
    expect(first).toEqual([{ executable: '/usr/bin/bash', args: ['bash', '-c', 'x'], args_count: 3 }]);
    const reExeced = processEntry(20, 'sh', { previous: first });
    expect(previousAfterExec(reExeced)?.map((image) => image.executable)).toEqual(['/usr/bin/bash', '/usr/bin/sh']);
    let entry: ProcessEntry = forked;
    for (let i = 0; i < MAX_PREVIOUS + 3; i++) {
      const previous = previousAfterExec(entry);
      entry = processEntry(20, `prog${i}`, previous !== undefined ? { previous } : {});
    }
    expect(entry.previous).toHaveLength(MAX_PREVIOUS);
    expect(entry.previous?.at(-1)?.executable).toBe(`/usr/bin/prog${MAX_PREVIOUS + 1}`);
    // an image nothing is known of adds nothing
    expect(previousAfterExec({ pid: 21, exited: false })).toBeUndefined();
  });
});
