import { closeSync, constants, fstatSync, ftruncateSync, openSync, readlinkSync, readSync, writeSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { RuntimeFailure } from '../errors.js';
import { describeErrno, plantedFileProblem } from '../io/files.js';
import { escapeControl } from '../log.js';
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
      fd = openLockFile(path, constants.O_RDWR | constants.O_CREAT);
    } catch (err) {
      if (err instanceof RuntimeFailure) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (!readOnly) throw new RuntimeFailure(`cannot create the lock file ${path}: ${describeStateErrno(err)}`);
      if (code === 'ENOENT') return new StateDirLock(undefined, false);
      writable = false;
      try {
        fd = openLockFile(path, constants.O_RDONLY);
      } catch (inner) {
        if (inner instanceof RuntimeFailure) throw inner;
        if ((inner as NodeJS.ErrnoException).code === 'ENOENT') return new StateDirLock(undefined, false);
        throw new RuntimeFailure(`cannot open the lock file ${path}: ${describeStateErrno(inner)}`);
      }
    }
    // We truncate and write this file: a hard link planted under its name would make that someone else's file.
    const planted = plantedFileProblem(fstatSync(fd));
    if (planted !== undefined) {
      closeSync(fd);
      throw new RuntimeFailure(`the lock file ${escapeControl(path)} is ${planted}: remove it and find out who put it there`);
    }
    let taken: boolean;
    try {
      taken = native().tryLockExclusive(fd);
    } catch (err) {
      closeSync(fd);
      throw new RuntimeFailure(`cannot lock ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!taken) {
      const holder = readHolder(fd);
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

/**
 * Opens without following a link planted under the lock's name: as root, truncating and writing through
 * one would wipe any file on the host. O_NONBLOCK keeps a FIFO planted there from hanging the open.
 */
function openLockFile(path: string, flags: number): number {
  try {
    return openSync(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new RuntimeFailure(
        `the lock file ${escapeControl(path)} is a symbolic link (to ${linkTarget(path)}); execsentry never follows links in its state directory: remove it and find out who put it there`,
      );
    throw err;
  }
}

function readHolder(fd: number): number | undefined {
  try {
    const buf = Buffer.alloc(32);
    const read = readSync(fd, buf, 0, buf.length, 0);
    const pid = Number.parseInt(buf.toString('utf8', 0, read).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Where a link found in the state directory points, for a message (escaped: whoever planted it chose it). */
export function linkTarget(path: string): string {
  try {
    return escapeControl(readlinkSync(path));
  } catch (err) {
    return `unreadable: ${describeErrno(err)}`;
  }
}


/** describeErrno, with the state directory's meaning of ELOOP: O_NOFOLLOW met a link. */
export function describeStateErrno(err: unknown): string {
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ELOOP')
    return 'a symbolic link where a file belongs (execsentry does not follow links in its state directory) (ELOOP)';
  return describeErrno(err);
}
