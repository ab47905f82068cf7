import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { capabilityNames } from '../../src/sensor/capabilities.js';
import type { ProcSnapshot } from '../../src/native.js';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { baseName, buildExecEvent, Clock, collectIds, decodeTtyNr, entityId, entryFromSnapshot, fillNames, isInteractive, sameImage } from '../../src/sensor/enrich.js';
import { documentJson } from '../../src/ecs/json.js';
import { agentIdFor, parseOsRelease, type HostIdentity } from '../../src/sensor/host.js';
import { UserGroupNames } from '../../src/sensor/names.js';
import { ProcessTable, type ProcessEntry } from '../../src/sensor/table.js';

function entry(pid: number, startTicks: number): ProcessEntry {
  return { pid, startTicks, start: new Date(0).toISOString(), exited: false };
}

describe('tty_nr and process.interactive', () => {
  it('decodes tty_nr as the kernel encodes it (new_encode_dev)', () => {
    expect(decodeTtyNr(34816)).toEqual({ major: 136, minor: 0 }); // /dev/pts/0
    expect(decodeTtyNr((136 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12))).toEqual({ major: 136, minor: 300 });
    expect(decodeTtyNr(1025)).toEqual({ major: 4, minor: 1 }); // /dev/tty1
  });

  it('round-trips every major/minor the encoding can hold', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0xfff }), fc.integer({ min: 0, max: 0xfffff }), (major, minor) => {
        const ttyNr = ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
        expect(decodeTtyNr(ttyNr)).toEqual({ major, minor });
      }),
    );
  });

  it('is true only when the controlling tty is behind both fd 0 and fd 2', () => {
    const pts3 = (136 << 8) | 3;
    expect(isInteractive({ pid: 1, partial: false, ttyNr: pts3, stdio: [{ type: 'character_device', device: [136, 3] }, null, { type: 'character_device', device: [136, 3] }] })).toBe(true);
    expect(isInteractive({ pid: 1, partial: false, ttyNr: pts3, stdio: [{ type: 'character_device', device: [1, 3] }, null, { type: 'character_device', device: [136, 3] }] })).toBe(false); // stdin from /dev/null
    expect(isInteractive({ pid: 1, partial: false, ttyNr: pts3, stdio: [{ type: 'character_device', device: [136, 3] }, null, { type: 'closed' }] })).toBe(false); // stderr closed
    expect(isInteractive({ pid: 1, partial: false, ttyNr: pts3, stdio: [{ type: 'character_device', device: [136, 4] }, null, { type: 'character_device', device: [136, 4] }] })).toBe(false); // another terminal
    expect(isInteractive({ pid: 1, partial: false, ttyNr: 0, stdio: [{ type: 'character_device', device: [136, 3] }, null, { type: 'character_device', device: [136, 3] }] })).toBe(false); // no controlling tty
    expect(isInteractive({ pid: 1, partial: true, ttyNr: pts3 })).toBeUndefined(); // unknown, never guessed
    expect(isInteractive({ pid: 1, partial: true })).toBeUndefined();
  });
});

describe('capability masks', () => {
  it('names each set bit, keeping unknown bits by number', () => {
    expect(capabilityNames('0000000000003001')).toEqual(['CAP_CHOWN', 'CAP_NET_ADMIN', 'CAP_NET_RAW']);
    expect(capabilityNames('0000000000000000')).toEqual([]);
    expect(capabilityNames('000001ffffffffff')).toHaveLength(41);
    expect(capabilityNames('0000020000000000')).toEqual(['CAP_41']);
  });
});

describe('identities', () => {
  it('entity ids are stable per (host, pid, start) and differ otherwise', () => {
    expect(entityId('h', 10, 500)).toBe(entityId('h', 10, 500));
    expect(entityId('h', 10, 500)).not.toBe(entityId('h', 10, 501));
    expect(entityId('h', 10, 500)).not.toBe(entityId('h', 11, 500));
    expect(entityId('h', 10, 500)).not.toBe(entityId('g', 10, 500));
  });

  it('agent.id is a stable UUID-shaped hash of the machine id', () => {
    const id = agentIdFor('3d1219c7c4c5404aaa1f6d2a48adfda4');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(agentIdFor('3d1219c7c4c5404aaa1f6d2a48adfda4')).toBe(id);
    expect(id).not.toContain('3d1219c7');
  });

  it('reads os-release with quoted and unquoted values', () => {
    const values = parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n# comment\nID_LIKE=\'rhel fedora\'\n');
    expect(values.get('PRETTY_NAME')).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(values.get('ID')).toBe('debian');
    expect(values.get('ID_LIKE')).toBe('rhel fedora');
  });

  it('baseName keeps spaces and parentheses', () => {
    expect(baseName('/tmp/odd) name (x')).toBe('odd) name (x');
    expect(baseName('/usr/bin/bash')).toBe('bash');
  });

  it('converts kernel clocks to wall-clock time', () => {
    const clock = new Clock(1_000_000, 2_000_000, 10_000_000);
    expect(clock.fromMonotonicNs(5_000_000)).toBe(new Date(1_000_005).toISOString());
    expect(clock.fromStartTicks(100)).toBe(new Date(2_001_000).toISOString());
  });
});

/** The host, clock and time the exec events below are built with. */
const identity: HostIdentity = {
  host: { name: 'h', hostname: 'h', architecture: 'x86_64', os: { type: 'linux', kernel: '6.1.0' } },
  agent: { type: 'execsentry', version: '0.0.0', id: 'c0ffee00-0000-4000-8000-000000000000' },
  entityNamespace: 'h',
};
const clock = new Clock(0, 0, 10_000_000);
const context = { identity, timestamp: '2024-05-01T10:00:00.000Z', created: '2024-05-01T10:00:00.000Z' };

describe('values that were not UTF-8', () => {
  const latin1 = (text: string) => Buffer.from(text, 'latin1');
  const exec = (snapshot: ProcSnapshot & { startTicks: number }, parent?: ProcSnapshot & { startTicks: number }) =>
    buildExecEvent(snapshot.pid, snapshot, entryFromSnapshot(snapshot, clock), parent && entryFromSnapshot(parent, clock), parent?.pid, context);
  // /tmp/sh<ff> -c 'a\b' in /tmp/d<fe>
  const shell = {
    pid: 10,
    partial: false,
    startTicks: 100,
    executable: '/tmp/sh\uFFFD',
    executableBytes: latin1('/tmp/sh\xff'),
    cwd: '/tmp/d\uFFFD',
    cwdBytes: latin1('/tmp/d\xfe'),
    pathsLossy: true,
    args: ['/tmp/sh\uFFFD', '-c', 'a\\b'],
    argsBytes: [latin1('/tmp/sh\xff'), latin1('-c'), latin1('a\\b')],
    argsLossy: true,
  };

  it('keeps the fields as shown and puts the escaped bytes of each repaired one under execsentry.raw', () => {
    const event = exec(shell);
    expect(event.process).toMatchObject({ executable: '/tmp/sh\uFFFD', name: 'sh\uFFFD', working_directory: '/tmp/d\uFFFD', command_line: '/tmp/sh\uFFFD -c a\\b' });
    expect(event.execsentry).toEqual({
      paths_lossy: true,
      args_lossy: true,
      raw: {
        'process.executable': '/tmp/sh\\xff',
        'process.name': 'sh\\xff',
        'process.working_directory': '/tmp/d\\xfe',
        'process.args': ['/tmp/sh\\xff', '-c', 'a\\\\b'],
        'process.command_line': '/tmp/sh\\xff -c a\\\\b',
      },
    });
  });

  it('gives the parent\'s repaired values from the process table, and only the child\'s own that were repaired', () => {
    const child = { pid: 11, partial: false, startTicks: 101, executable: '/usr/bin/sleep', args: ['sleep', '1'], cwd: '/tmp/d\uFFFD', cwdBytes: latin1('/tmp/d\xfe'), pathsLossy: true };
    expect(exec(child, shell).execsentry?.raw).toEqual({
      'process.working_directory': '/tmp/d\\xfe',
      'process.parent.executable': '/tmp/sh\\xff',
      'process.parent.name': 'sh\\xff',
      'process.parent.working_directory': '/tmp/d\\xfe',
      'process.parent.args': ['/tmp/sh\\xff', '-c', 'a\\\\b'],
      'process.parent.command_line': '/tmp/sh\\xff -c a\\\\b',
    });
  });

  it('leaves process.name out when only a directory above it was not UTF-8', () => {
    const event = exec({ pid: 12, partial: false, startTicks: 102, executable: '/tmp/\uFFFD/true', executableBytes: latin1('/tmp/\xff/true'), pathsLossy: true });
    expect(event.execsentry?.raw).toEqual({ 'process.executable': '/tmp/\\xff/true' });
  });

  it('tells the overrun rescan that a program differing only in such bytes is another program', () => {
    const known = entryFromSnapshot(shell, clock);
    expect(sameImage(known, shell)).toBe(true);
    const other = { ...shell, executableBytes: latin1('/tmp/sh\xfe'), argsBytes: [latin1('/tmp/sh\xfe'), latin1('-c'), latin1('a\\b')] };
    expect(sameImage(known, other)).toBe(false);
    // The same program, with an argument that differs only in such a byte.
    const withArg = (byte: string) => ({ ...shell, args: ['/tmp/sh\uFFFD', 'x\uFFFD'], argsBytes: [latin1('/tmp/sh\xff'), latin1(`x${byte}`)] });
    expect(sameImage(entryFromSnapshot(withArg('\xff'), clock), withArg('\xfe'))).toBe(false);
    expect(sameImage(entryFromSnapshot(withArg('\xff'), clock), withArg('\xff'))).toBe(true);
    expect(sameImage(known, { ...shell, args: ['/tmp/sh\uFFFD'] })).toBe(false);
  });

  it('adds nothing when every value was UTF-8', () => {
    expect(exec({ pid: 14, partial: false, startTicks: 104, executable: '/usr/bin/true', args: ['true'], cwd: '/' }).execsentry).toBeUndefined();
  });
});

describe('a process that exited before its snapshot', () => {

  it("names it by the kernel's comm, says so, and keeps the ids the zombie still shows", () => {
    const zombie = { pid: 20, partial: true, exited: true, startTicks: 7, comm: 'a-very-long-pro', uids: [1, 1, 1] as [number, number, number], gids: [1, 1, 1] as [number, number, number] };
    const event = buildExecEvent(20, zombie, entryFromSnapshot(zombie, clock), undefined, 1, context);
    fillNames(event, () => undefined, () => undefined);
    expect(event.process.name).toBe('a-very-long-pro');
    expect(event.process.executable).toBeUndefined();
    expect(event.process.args).toBeUndefined();
    expect(event.process.user?.id).toBe('1');
    expect(event.execsentry).toMatchObject({ partial: true, exited_before_snapshot: true, name_from_comm: true });
  });

  it('takes no name from comm when the process was merely refused, and none from comm when the executable was read', () => {
    const refused = { pid: 21, partial: true, denied: true, startTicks: 7, comm: 'secret' };
    expect(buildExecEvent(21, refused, entryFromSnapshot(refused, clock), undefined, 1, context).process.name).toBeUndefined();
    const read = { pid: 22, partial: true, exited: true, startTicks: 7, comm: 'sh', executable: '/usr/bin/dash' };
    const event = buildExecEvent(22, read, entryFromSnapshot(read, clock), undefined, 1, context);
    expect(event.process.name).toBe('dash');
    expect(event.execsentry?.name_from_comm).toBeUndefined();
  });
});

describe('user and group fields', () => {
  const snapshot = (pid: number) => ({
    pid,
    partial: false,
    startTicks: pid,
    executable: '/usr/bin/true',
    uids: [1000, 0, 0] as [number, number, number],
    gids: [1000, 1001, 1002] as [number, number, number],
    groups: [27, 4242],
  });
  const exec = (pid: number) => buildExecEvent(pid, snapshot(pid), entryFromSnapshot(snapshot(pid), clock), undefined, 1, context);
  const users: Record<number, string> = { 0: 'root', 1000: 'alice' };
  const groups: Record<number, string> = { 27: 'sudo', 1000: 'alice', 1001: 'staff', 1002: 'adm' };

  it('names every id the process runs with (real, effective, saved, supplemental), as Elastic Defend lays them out', () => {
    const event = exec(30);
    const uids = new Set<number>();
    const gids = new Set<number>();
    collectIds(event, uids, gids);
    expect([...uids].sort()).toEqual([0, 1000]);
    expect([...gids].sort((a, b) => a - b)).toEqual([27, 1000, 1001, 1002, 4242]);
    fillNames(event, (uid) => users[uid], (gid) => groups[gid]);
    const json = JSON.parse(documentJson(event)) as ProcessEvent;
    expect(json.process).toMatchObject({
      user: { id: '0', name: 'root' },
      real_user: { id: '1000', name: 'alice' },
      saved_user: { id: '0', name: 'root' },
      group: { id: '1001', name: 'staff' },
      real_group: { id: '1000', name: 'alice' },
      saved_group: { id: '1002', name: 'adm' },
      supplemental_groups: [{ id: '27', name: 'sudo' }, { id: '4242' }],
    });
    expect(json.user).toEqual({ id: '0', name: 'root', effective: { id: '0', name: 'root' }, Ext: { real: { id: '1000', name: 'alice' } } });
    expect(json.group).toEqual({ id: '1001', name: 'staff', Ext: { real: { id: '1000', name: 'alice' } } });
    expect(documentJson(event)).toBe(JSON.stringify(event));
  });

  it('gives events of the same ids and names the same objects, and an id whose name changed new ones', () => {
    const first = exec(31);
    const second = exec(32);
    fillNames(first, (uid) => users[uid], (gid) => groups[gid]);
    fillNames(second, (uid) => users[uid], (gid) => groups[gid]);
    expect(second.process.user).toBe(first.process.user);
    expect(second.user).toBe(first.user);
    expect(second.process.supplemental_groups).toBe(first.process.supplemental_groups);
    const renamed = exec(33);
    fillNames(renamed, (uid) => (uid === 1000 ? 'alice2' : users[uid]), (gid) => groups[gid]);
    expect(renamed.process.real_user).toEqual({ id: '1000', name: 'alice2' });
    expect(renamed.user?.Ext?.real).toEqual({ id: '1000', name: 'alice2' });
    // what was already emitted keeps the name it was emitted with, even named again
    fillNames(first, (uid) => `other-${uid}`, (gid) => `other-${gid}`);
    expect(first.process.real_user).toEqual({ id: '1000', name: 'alice' });
    expect(second.process.real_user).toEqual({ id: '1000', name: 'alice' });
    expect(JSON.parse(documentJson(first)).user.Ext.real.name).toBe('alice');
  });
});

describe('process table', () => {
  it('finds a process by pid and start time, never a newer holder of the pid', () => {
    const table = new ProcessTable(1024);
    table.set(entry(10, 500));
    expect(table.get(10, 500)?.startTicks).toBe(500);
    expect(table.get(10, 499)).toBeUndefined();
    const older = table.get(10) as ProcessEntry;
    table.set(entry(10, 900)); // pid reused
    expect(older.exited).toBe(true);
    expect(table.get(10)?.startTicks).toBe(900);
  });

  it('matches a start time estimated from a fork record within one tick, and only that one', () => {
    const table = new ProcessTable(1024);
    table.set({ ...entry(10, 500), startEstimated: true });
    expect(table.get(10, 501)?.pid).toBe(10);
    expect(table.get(10, 499)?.pid).toBe(10);
    expect(table.get(10, 502)).toBeUndefined();
    const forked = table.get(10) as ProcessEntry;
    table.set(entry(10, 501)); // its exec: the same process
    expect(forked.exited).toBe(false);
  });

  it('keeps an exited parent reachable from its live child only', () => {
    const table = new ProcessTable(1024);
    const parent = entry(1, 1);
    const child = { ...entry(2, 2), parent };
    parent.executable = '/usr/bin/bash';
    table.set(parent);
    table.set(child);
    table.exit(1);
    expect(table.get(1)).toBeUndefined();
    expect(table.get(2)?.parent?.executable).toBe('/usr/bin/bash');
    table.exit(2);
    expect(child.parent).toBeUndefined(); // an exited entry lets go of its parent
  });

  it('stays within its bound whatever the sequence of forks and exits', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 5000 })), { maxLength: 3000 }), (operations) => {
        const table = new ProcessTable(1024);
        let ticks = 0;
        for (const [isExit, pid] of operations) {
          if (isExit) table.exit(pid);
          else table.set({ ...entry(pid, ++ticks), parent: table.get(pid - 1) });
          expect(table.size).toBeLessThanOrEqual(1024);
        }
        // At most one dead generation per live process: an exited parent holds no parent of its own.
        for (const live of table.values()) {
          if (live.parent?.exited === true) expect(live.parent.parent).toBeUndefined();
        }
      }),
      { numRuns: 20 },
    );
  });
});

describe('user and group names cache', () => {
  // A look-up function that answers from a fixed list: the NSS call itself is tested as root below.
  function counting<T>(known: Record<number, T>) {
    const calls: number[][] = [];
    const lookUp = async (ids: number[]) => {
      calls.push(ids);
      return ids.map((id) => known[id] ?? null);
    };
    return { calls, lookUp };
  }

  it('looks each id up once, keeps unknown ids nameless, and answers from the cache after', async () => {
    const users = counting({ 0: { name: 'root', shell: '/bin/bash' }, 1: { name: 'daemon', shell: '/usr/sbin/nologin' } });
    const groups = counting({ 0: 'root' });
    const names = new UserGroupNames(users.lookUp, groups.lookUp, undefined);
    const now = Date.now();
    await names.resolve(new Set([0, 1, 4242]), new Set([0]), now);
    expect(names.userName(1, now)).toBe('daemon');
    expect(names.userName(4242, now)).toBeUndefined();
    expect(names.groupName(0, now)).toBe('root');
    expect(names.resolve(new Set([0, 1, 4242]), new Set([0]), now)).toBeUndefined(); // all cached: no promise
    expect(users.calls).toEqual([[0, 1, 4242]]);
    names.invalidate();
    await names.resolve(new Set([1]), new Set(), now);
    expect(users.calls).toHaveLength(2);
    names.close();
  });
});
