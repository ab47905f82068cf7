import { closeSync, constants, createReadStream, fstatSync, mkdirSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Readable } from 'node:stream';

/**
 * Reading files an administrator names (config, rules, secrets, CA bundles) and files of documents a user
 * hands to a command, without letting the file's kind or size hang or exhaust the agent.
 *
 * A file that is not a regular one is refused before it is opened: opening a FIFO for reading would wait
 * for a writer forever (a `rules.d/x.toml` FIFO hung start-up and SIGHUP reload), and would be seen by a
 * writer waiting on it. The open itself is non-blocking all the same, with O_NOCTTY (a terminal device must
 * not become the agent's controlling terminal), and the kind is checked again on the open descriptor, so a
 * file swapped in between the two checks is refused too.
 */

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Why a file could not be read, as the words that follow "cannot read PATH: ". */
export class UnreadableFile extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'UnreadableFile';
  }
}

const ERRNO_WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a path component is not a directory',
  ELOOP: 'too many symbolic links',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  // open(2) on a Unix socket, or on a device with nothing behind it (/dev/tty without a terminal)
  ENXIO: 'no such device or address: a socket, or a device with nothing behind it',
};

/**
 * An errno failure in words, with the code kept for those who search for it: "no such file or directory
 * (ENOENT)". Node's own message for other codes names the call and the path already.
 */
export function describeErrno(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && ERRNO_WORDS[code] !== undefined) return `${ERRNO_WORDS[code]} (${code})`;
  return err instanceof Error ? err.message : String(err);
}

/** What a file is, in words ("a FIFO"), for messages; lstat's answer may be a link. */
export function kindOf(stats: Stats): string {
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Why a file opened in a state directory (never through a link: O_NOFOLLOW) is not one execsentry may
 * write, or undefined when it is: another kind of file, or a hard link planted under its name, which would
 * make a truncation or a write land in someone else's file.
 */
export function plantedFileProblem(stats: Stats): string | undefined {
  if (!stats.isFile()) return kindOf(stats) === 'not a regular file' ? 'not a regular file' : `not a regular file (${kindOf(stats)})`;
  if (stats.nlink > 1) return `a hard link (one of ${stats.nlink} names of the same file)`;
  return undefined;
}

function refuseKind(path: string, stats: Stats): UnreadableFile | undefined {
  if (stats.isFile()) return undefined;
  return new UnreadableFile(path, stats.isDirectory() ? 'it is a directory (EISDIR)' : `not a regular file (${kindOf(stats)})`);
}

/**
 * A file's content as it is read, refused as soon as it passes the limit: the size is enforced on what is
 * read, not on what fstat says, so a file that grows while it is read (or a /proc file, which reports 0)
 * cannot get past it.
 */
class BoundedContent {
  private readonly chunks: Buffer[] = [];
  private total = 0;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
  ) {}

  /** Room for the next read: one byte more than the limit allows in all, so that going over shows. */
  nextBuffer(): Buffer {
    return Buffer.allocUnsafe(Math.min(64 * KiB, this.maxBytes + 1 - this.total));
  }

  /** Takes what a read put in `buffer`; false at the end of the file. */
  add(buffer: Buffer, read: number): boolean {
    if (read === 0) return false;
    this.chunks.push(buffer.subarray(0, read));
    this.total += read;
    if (this.total > this.maxBytes) throw new UnreadableFile(this.path, `larger than ${formatBytes(this.maxBytes)}, the limit for this kind of file`);
    return true;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.total);
  }
}

/** 1048576 → "1 MiB" */
export function formatBytes(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} bytes`;
}

/**
 * The whole content of a regular file of at most `maxBytes`, or an UnreadableFile; with its permission bits
 * as the descriptor read had them (a later stat by path could see another file).
 */
export function readRegularFileSync(path: string, maxBytes: number): { bytes: Buffer; mode: number } {
  let fd: number;
  try {
    // A FIFO or a device is refused before it is opened (opening a FIFO is seen by its writer); the check
    // on the descriptor below covers a file swapped in between.
    const refused = refuseKind(path, statSync(path));
    if (refused !== undefined) throw refused;
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    if (err instanceof UnreadableFile) throw err;
    throw new UnreadableFile(path, describeErrno(err));
  }
  try {
    const stats = fstatSync(fd);
    const refused = refuseKind(path, stats);
    if (refused !== undefined) throw refused;
    const content = new BoundedContent(path, maxBytes);
    for (let buffer = content.nextBuffer(); content.add(buffer, readSync(fd, buffer, 0, buffer.length, null)); buffer = content.nextBuffer());
    return { bytes: content.bytes(), mode: stats.mode & 0o7777 };
  } catch (err) {
    if (err instanceof UnreadableFile) throw err;
    throw new UnreadableFile(path, describeErrno(err));
  } finally {
    closeSync(fd);
  }
}

/** readRegularFileSync without blocking the event loop (rule files are read while the agent runs, on SIGHUP). */
export async function readRegularFile(path: string, maxBytes: number): Promise<Buffer> {
  let handle;
  try {
    const refused = refuseKind(path, await stat(path));
    if (refused !== undefined) throw refused;
    handle = await open(path, OPEN_FLAGS);
  } catch (err) {
    if (err instanceof UnreadableFile) throw err;
    throw new UnreadableFile(path, describeErrno(err));
  }
  try {
    const refused = refuseKind(path, await handle.stat());
    if (refused !== undefined) throw refused;
    const content = new BoundedContent(path, maxBytes);
    for (let buffer = content.nextBuffer(); content.add(buffer, (await handle.read(buffer, 0, buffer.length, null)).bytesRead); buffer = content.nextBuffer());
    return content.bytes();
  } catch (err) {
    if (err instanceof UnreadableFile) throw err;
    throw new UnreadableFile(path, describeErrno(err));
  } finally {
    await handle.close();
  }
}

/**
 * A stream of a file of documents (`kql FILE`, `rules test --events FILE`), or stdin for "-". Unlike the
 * files above, a FIFO or a device is welcome here (`--events <(…)`, a named pipe, /dev/stdin): the stream
 * waits for a writer and for data as a reader of a pipe does. A directory or a file that cannot be opened
 * is refused before any reading starts.
 */
export async function openDocumentStream(path: string): Promise<Readable> {
  if (path === '-') return process.stdin;
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (err) {
    throw new UnreadableFile(path, describeErrno(err));
  }
  if (stats.isDirectory()) throw new UnreadableFile(path, 'it is a directory (EISDIR)');
  // A blocking open (on libuv's thread pool): a pipe's waits for its writer, as any reader of a pipe does,
  // and every way the open can fail is known here, before the first line is read.
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOCTTY);
  } catch (err) {
    throw new UnreadableFile(path, describeErrno(err));
  }
  return createReadStream(path, { fd: handle });
}

/**
 * `mkdir -p`, returning the first directory it created (undefined when the path existed), as mkdirSync's
 * recursive form does — which is not used, because on Node 20 it never returns for a path under /proc or
 * /sys: mkdir(2) answers ENOENT there although the parent exists, and Node retries the parent forever
 * (`--state-dir /proc/x` spun at 100 % CPU and ignored SIGTERM). Here that ENOENT is an error.
 */
export function makeDirectories(path: string, mode: number): string | undefined {
  const missing: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    let stats: Stats | undefined;
    try {
      stats = statSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // what exists ends the walk; a file there is for mkdir(2) below, or the caller, to refuse
    if (stats !== undefined) break;
    missing.unshift(dir);
    if (dir === dirname(dir)) break;
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir, { mode });
    } catch (err) {
      // made by someone else in the meantime: as good
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return missing[0];
}
