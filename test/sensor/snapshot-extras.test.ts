import { cpSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../src/native.js';

/**
 * What the snapshot reads for env_vars, containers and hashes, on a copy of a recorded /proc entry
 * (fixtures/proc/100: a sleep) given an environ and a cgroup file.
 */
const fixture = fileURLToPath(new URL('./fixtures/proc/100', import.meta.url));
const procRoot = mkdtempSync(join(tmpdir(), 'execsentry-proc-'));
const environPath = join(procRoot, '100', 'environ');
const NAME_63 = `N${'A'.repeat(62)}`;

const environ = Buffer.concat([
  Buffer.from('PATH=/usr/bin\0'),
  Buffer.from('LD_PRELOAD=/tmp/first.so\0'),
  Buffer.from('LD_PRELOADX=not this one\0'),
  Buffer.from('NO_EQUALS_SIGN\0'),
  Buffer.from(`${NAME_63}=${'v'.repeat(1023)}\0`),
  Buffer.from(`PADDED=${'p'.repeat(1024)}\0`),
  Buffer.from('BYTES=a'),
  Buffer.from([0xff]),
  Buffer.from('b\0'),
  Buffer.from('LD_PRELOAD=/tmp/second.so\0'),
]);

beforeAll(() => {
  cpSync(fixture, join(procRoot, '100'), { recursive: true, verbatimSymlinks: true });
  writeFileSync(environPath, environ);
  writeFileSync(join(procRoot, '100', 'cgroup'), '0::/system.slice/docker-0123.scope\n');
});

afterAll(() => rmSync(procRoot, { recursive: true, force: true }));

/** Makes a read of environ visible: with relatime (or strictatime), a read moves an atime older than the mtime. */
function armAtime(): number {
  const old = new Date('2001-01-01T00:00:00Z');
  utimesSync(environPath, old, new Date());
  return statSync(environPath).atimeMs;
}

describe('snapshot extras', () => {
  it('picks every binding of the configured names in environ order, leaving out values over 1023 bytes by name', async () => {
    const [snapshot] = await native().scanProcesses(procRoot, 4096, [100], { envVarNames: ['LD_PRELOAD', NAME_63, 'PADDED', 'BYTES', 'ABSENT'] });
    expect(snapshot?.envVars).toEqual(['LD_PRELOAD=/tmp/first.so', `${NAME_63}=${'v'.repeat(1023)}`, 'BYTES=a\uFFFDb', 'LD_PRELOAD=/tmp/second.so']);
    expect(snapshot?.envVarsOversized).toEqual(['PADDED']);
  });

  it('cuts environ at 40 KiB, to whole entries, and says so', async () => {
    // LATE ends right past the cut; CUT straddles it (its kept part must not pass for its value).
    const head = Buffer.from('EARLY=1\0');
    const padding = Buffer.from(`PAD=${'p'.repeat(40 * 1024 - head.length - 'PAD='.length - 1 - 6)}\0`);
    const long = Buffer.concat([head, padding, Buffer.from('CUT=0123456789\0LATE=2\0')]);
    writeFileSync(environPath, long);
    try {
      const [snapshot] = await native().scanProcesses(procRoot, 4096, [100], { envVarNames: ['EARLY', 'CUT', 'LATE'] });
      expect(snapshot?.envVars).toEqual(['EARLY=1']);
      expect(snapshot?.envVarsTruncated).toBe(true);
      const [whole] = await native().scanProcesses(procRoot, 4096, [100], { envVarNames: ['EARLY', 'CUT'] });
      expect(whole?.envVars).toEqual(['EARLY=1']);
      // Exactly 40 KiB is all of it.
      writeFileSync(environPath, long.subarray(0, 40 * 1024 - 1));
      const [exact] = await native().scanProcesses(procRoot, 4096, [100], { envVarNames: ['EARLY'] });
      expect(exact?.envVarsTruncated).toBeUndefined();
    } finally {
      writeFileSync(environPath, environ);
    }
  });

  it('never reads environ when no names are configured', async () => {
    const before = armAtime();
    const [snapshot] = await native().scanProcesses(procRoot, 4096, [100]);
    expect(snapshot?.executable).toBe('/usr/bin/sleep');
    expect(snapshot?.envVars).toBeUndefined();
    expect(statSync(environPath).atimeMs).toBe(before);
    // The same observation sees a read when names are configured (else the check above proves nothing).
    await native().scanProcesses(procRoot, 4096, [100], { envVarNames: ['PATH'] });
    expect(statSync(environPath).atimeMs).not.toBe(before);
  });

  it('hands over the cgroup text as read', async () => {
    const [snapshot] = await native().scanProcesses(procRoot, 4096, [100]);
    expect(snapshot?.cgroup).toBe('0::/system.slice/docker-0123.scope\n');
  });

  it("keys the exec'd file by device, inode, size, mtime and ctime (through the exe link), only when asked", async () => {
    const [plain] = await native().scanProcesses(procRoot, 4096, [100]);
    expect(plain?.exeFileKey).toBeUndefined();
    const [keyed] = await native().scanProcesses(procRoot, 4096, [100], { exeFileKey: true });
    const st = statSync('/usr/bin/sleep', { bigint: true });
    expect(keyed?.exeFileKey).toBe([st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].map((n) => n.toString(16)).join(':'));
    expect(keyed?.exeFileSize).toBe(Number(st.size));
  });
});
