import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Which system calls of the native addon a `SystemCallFilter=@system-service` would refuse, as this host's
 * systemd defines the group (`systemd-analyze syscall-filter`), must be the ones the README says to allow
 * on top of it. Node's own calls (libuv, V8) are not covered here.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const nativeDir = `${root}native/`;
// The code, without its // comments (which name calls too).
const nativeSource = readdirSync(nativeDir)
  .filter((name) => name.endsWith('.cc'))
  .map((name) => readFileSync(nativeDir + name, 'utf8').replace(/\/\/.*$/gm, ''))
  .join('\n');

/** Whether the code uses `code` (a call: not as the tail of a longer name, so poll( is not ppoll(). */
const uses = (code: string) => new RegExp(`(^|[^A-Za-z0-9_])${code.replace(/[(:]/g, '\\$&')}`, 'm').test(nativeSource);

/** The addon's system calls, each with the code in native/ that makes it (x86-64 / arm64 names). */
const ADDON_SYSCALLS: Record<string, string> = {
  socket: 'socket(',
  bind: 'bind(',
  setsockopt: 'setsockopt(',
  getsockopt: 'getsockopt(',
  sendto: 'sendto(', // and send(), which is sendto without an address
  recvmmsg: 'recvmmsg(',
  ppoll: 'ppoll(',
  poll: 'poll(',
  eventfd2: 'eventfd(',
  read: 'read(',
  write: 'write(',
  openat: 'openat(',
  close: 'close(',
  getdents64: 'readdir(',
  readlinkat: 'readlinkat(',
  statx: 'statx(',
  newfstatat: 'fstatat(',
  getxattr: 'getxattr(',
  flock: 'flock(',
  gettid: 'SYS_gettid',
  pidfd_open: 'SYS_pidfd_open',
  pidfd_getfd: 'SYS_pidfd_getfd',
  getsockname: 'getsockname(',
  getpeername: 'getpeername(',
  sched_setscheduler: 'pthread_setschedparam(',
  sched_get_priority_min: 'sched_get_priority_min(',
  setpriority: 'setpriority(',
  prctl: 'pthread_setname_np(',
  uname: 'uname(',
  clock_gettime: 'clock_gettime(',
  clone3: 'std::thread',
  futex: 'condition_variable',
};

/** Every syscall of a systemd syscall group, nested groups expanded. */
function groupMembers(group: string, seen = new Set<string>()): Set<string> {
  const members = new Set<string>();
  if (seen.has(group)) return members;
  seen.add(group);
  const result = spawnSync('systemd-analyze', ['syscall-filter', group], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`systemd-analyze syscall-filter ${group}: ${result.stderr.trim()}`);
  for (const line of result.stdout.split('\n').slice(1)) {
    const name = line.trim();
    if (name === '' || name.startsWith('#')) continue;
    if (name.startsWith('@')) for (const member of groupMembers(name, seen)) members.add(member);
    else members.add(name);
  }
  return members;
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
if (!hasSystemdAnalyze) process.stderr.write('SKIPPED (no systemd-analyze; scripts/system-deps.sh installs systemd): the addon under SystemCallFilter=@system-service\n');

describe('the addon under SystemCallFilter', () => {
  it('lists the code behind every syscall, and every direct syscall() of native/', () => {
    for (const [syscall, code] of Object.entries(ADDON_SYSCALLS)) expect(uses(code), `${syscall}: ${code} in native/`).toBe(true);
    const direct = new Set([...nativeSource.matchAll(/\bSYS_([a-z0-9_]+)/g)].map((match) => match[1] as string));
    for (const syscall of direct) expect(Object.keys(ADDON_SYSCALLS)).toContain(syscall);
  });

  it.skipIf(!hasSystemdAnalyze)('needs exactly what the README adds to @system-service', () => {
    const allowed = groupMembers('@system-service');
    const outside = Object.keys(ADDON_SYSCALLS).filter((syscall) => !allowed.has(syscall));
    const readme = readFileSync(`${root}README.md`, 'utf8');
    const named = /`SystemCallFilter=@system-service ([a-z0-9_ ]+)`/.exec(readme);
    expect(named, 'the README names a SystemCallFilter line').not.toBeNull();
    expect(outside.sort()).toEqual((named?.[1] ?? '').split(' ').sort());
  });
});
