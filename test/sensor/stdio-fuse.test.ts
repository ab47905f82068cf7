import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readlinkSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { native } from '../../src/native.js';

/**
 * A standard stream on a FUSE file whose daemon stops answering must not freeze the snapshot: the stream's
 * attributes come from statx(AT_STATX_DONT_SYNC), the kernel's cache, where a plain stat() through
 * /proc/PID/fd/0 waits for the daemon (for ever, until it dies).
 */

const hangfs = fileURLToPath(new URL('./fixtures/hangfs.py', import.meta.url));
const isRoot = process.getuid?.() === 0;
const canMount = isRoot && existsSync('/dev/fuse');
if (!canMount) process.stderr.write('SKIPPED (needs root and /dev/fuse to mount a FUSE filesystem): a stream on a FUSE file\n');

function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (condition()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

describe.skipIf(!canMount)('a standard stream on a FUSE file', () => {
  it('is read without asking a daemon that no longer answers', async () => {
    const mountPoint = mkdtempSync(join(tmpdir(), 'execsentry-fuse-'));
    let daemon: ChildProcess | undefined;
    let sleeper: ChildProcess | undefined;
    try {
      daemon = spawn('python3', [hangfs, mountPoint], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
      const started = daemon;
      await new Promise<void>((resolve, reject) => {
        started.stdio[3]?.once('data', () => resolve());
        started.once('exit', (code) => reject(new Error(`hangfs exited (${code}) before mounting`)));
      });
      sleeper = spawn('bash', ['-c', `exec sleep 30 < ${mountPoint}/f`], { stdio: 'ignore' });
      const pid = sleeper.pid as number;
      const stdin = () => {
        try {
          return readlinkSync(`/proc/${pid}/fd/0`); // the link's text: no question to the daemon
        } catch {
          return '';
        }
      };
      await waitFor(() => stdin() === `${mountPoint}/f`, 'the sleeper to hold the FUSE file on fd 0');
      daemon.kill('SIGUSR1');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const answered = native().scanProcesses('/proc', 4096, [pid], { exeFileKey: true });
      const result = await Promise.race([answered, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 2000))]);
      expect(result).not.toBe('hung');
      const [snapshot] = result === 'hung' ? [] : result;
      expect(snapshot?.stdio?.[0]).toEqual({ type: 'file', path: `${mountPoint}/f` });
    } finally {
      // Killing the daemon aborts the connection: whatever still waits on it (a hung snapshot, the sleeper's
      // close) fails instead.
      daemon?.kill('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 200));
      spawn('umount', ['-l', mountPoint], { stdio: 'ignore' }).once('exit', () => {
        try {
          rmdirSync(mountPoint);
        } catch {
          // still busy: left in the temporary directory
        }
      });
      sleeper?.kill('SIGKILL');
    }
  }, 30_000);
});
