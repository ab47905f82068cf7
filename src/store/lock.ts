import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeFailure } from '../errors.js';
import { native } from '../native.js';

export const LOCK_FILE_NAME = 'execsentry.lock';

/**
 * The state directory's exclusive lock: flock(2) on <stateDir>/execsentry.lock, held for the life of the
 * process (the kernel releases it when the process dies, so a kill -9 never leaves a stale lock), with the
 * holder's pid written inside so that the next opener can say who holds it.
 */
export class StateDirLock {
  private constructor(
    private fd: number | undefined,
    private readonly writable: boolean,
  ) {}

  /**
   * Takes the lock or throws a RuntimeFailure naming the holder. `readOnly` (for inspecting commands): a
   * lock file that cannot be written is still locked for reading, and a missing one in a directory we may
   * not write means no agent ever ran there, so there is nothing to lock against.
   */
  static acquire(stateDir: string, readOnly = false): StateDirLock {
    const path = join(stateDir, LOCK_FILE_NAME);
    let fd: number;
    let writable = true;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!readOnly) throw new RuntimeFailure(`cannot create the lock file ${path}: ${describeErrno(err)}`);
      if (code === 'ENOENT') return new StateDirLock(undefined, false);
      writable = false;
      try {
        fd = openSync(path, constants.O_RDONLY);
      } catch (inner) {
        if ((inner as NodeJS.ErrnoException).code === 'ENOENT') return new StateDirLock(undefined, false);
        throw new RuntimeFailure(`cannot open the lock file ${path}: ${describeErrno(inner)}`);
      }
    }
    let taken: boolean;
    try {
      taken = native().tryLockExclusive(fd);
    } catch (err) {
      closeSync(fd);
      throw new RuntimeFailure(`cannot lock ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!taken) {
      const holder = readHolder(path);
      closeSync(fd);
      throw new RuntimeFailure(
        `the state directory ${stateDir} is in use by another execsentry (${holder === undefined ? 'pid not yet written' : `pid ${holder}`}) holding ${path}; stop it first or use another --state-dir`,
      );
    }
    if (writable) {
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`, 0);
    }
    return new StateDirLock(fd, writable);
  }

  /** Releases the lock (idempotent). The pid is cleared first so that nobody reads a stale one. */
  release(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      if (this.writable) ftruncateSync(fd, 0);
    } finally {
      closeSync(fd);
    }
  }
}

function readHolder(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function describeErrno(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'EROFS'
        ? 'the file system is read-only'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'ENOSPC'
            ? 'no space left on the device'
            : code === 'ENOTDIR'
              ? 'a path component is not a directory'
              : code === 'ENOENT'
                ? 'no such file or directory'
                : err.message;
    return code === undefined ? reason : `${reason} (${code})`;
  }
  return String(err);
}
