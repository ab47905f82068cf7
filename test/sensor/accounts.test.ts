import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { native, type UserEntry } from '../../src/native.js';
import { DEFAULT_UID_MIN, isNonLoginShell, markSystemAccount, parseUidMin, UserGroupNames } from '../../src/sensor/names.js';

/** execsentry.user.system_account: a uid below login.defs' UID_MIN, or a passwd entry with a non-login shell. */

const scratch = mkdtempSync(join(tmpdir(), 'execsentry-accounts-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function loginDefs(text: string): string {
  const path = join(scratch, `login.defs-${Math.random()}`);
  writeFileSync(path, text);
  return path;
}

const fixed = (known: Record<number, UserEntry>) => async (ids: number[]) => ids.map((id) => known[id] ?? null);
const noGroups = async (ids: number[]) => ids.map(() => null);

describe('system accounts', () => {
  it('reads UID_MIN from login.defs, 1000 when absent or unreadable', () => {
    expect(parseUidMin('# UID_MIN 5\nUID_MIN\t\t\t 1000\nUID_MAX 60000\n')).toBe(1000);
    expect(parseUidMin('UID_MIN 500 # local policy\n')).toBe(500);
    expect(parseUidMin('SYS_UID_MIN 100\n#UID_MIN 10\n')).toBe(DEFAULT_UID_MIN);
    const names = new UserGroupNames(fixed({}), noGroups, undefined, join(scratch, 'missing'));
    expect(names.isSystemAccount(999, Date.now())).toBe(true);
    expect(names.isSystemAccount(1000, Date.now())).toBe(false);
  });

  it('knows nologin, false and sync as non-login shells, and an empty shell as /bin/sh', () => {
    for (const shell of ['/usr/sbin/nologin', '/sbin/nologin', '/bin/false', '/usr/bin/false', '/bin/sync']) expect(isNonLoginShell(shell)).toBe(true);
    for (const shell of ['/bin/bash', '/bin/sh', '/usr/bin/zsh', '']) expect(isNonLoginShell(shell)).toBe(false);
  });

  it('counts a uid below UID_MIN, or one at or above it with a non-login shell; judges an unknown uid by number', async () => {
    const names = new UserGroupNames(
      fixed({ 600: { name: 'app', shell: '/bin/bash' }, 700: { name: 'svc', shell: '/usr/sbin/nologin' }, 400: { name: 'old', shell: '/bin/bash' } }),
      noGroups,
      undefined,
      loginDefs('UID_MIN 500\n'),
    );
    const now = Date.now();
    await names.resolve(new Set([400, 600, 700, 800]), new Set(), now);
    expect([400, 600, 700, 800].map((uid) => names.isSystemAccount(uid, now))).toEqual([true, false, true, false]);
  });

  it('answers from this host\'s NSS: root, daemon, www-data and nobody are system accounts', async () => {
    const names = new UserGroupNames(native().lookUpUsers, native().lookUpGroupNames, undefined);
    const now = Date.now();
    await names.resolve(new Set([0, 1, 33, 65534]), new Set(), now);
    expect(names.userName(65534, now)).toBe('nobody');
    for (const uid of [0, 1, 33, 65534]) expect(names.isSystemAccount(uid, now)).toBe(true);
  });

  it('marks the event\'s effective user, and nothing when the user is unknown', () => {
    const event = { user: { id: '33' } } as ProcessEvent;
    markSystemAccount(event, (uid) => uid === 33);
    expect(event.execsentry).toEqual({ user: { system_account: true } });
    const partial = {} as ProcessEvent;
    markSystemAccount(partial, () => true);
    expect(partial.execsentry).toBeUndefined();
  });
});
