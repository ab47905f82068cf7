import { Worker } from 'node:worker_threads';
import type { EcsProcess, ExecsentryProcessExtras, ProcessEvent } from '../ecs/types.js';
import type { Logger } from '../log.js';
import type { ProcSnapshot } from '../native.js';

export const HASH_ALGORITHMS = ['md5', 'sha1', 'sha256'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];
export type ProcessHashes = NonNullable<EcsProcess['hash']>;
/** Why an event that asked for process.hash has none (execsentry.hash_missing). */
export type HashMissing = NonNullable<ExecsentryProcessExtras['hash_missing']>;

/** Most programs are far smaller; hashing 64 MiB with all three algorithms takes about a quarter second of a core. */
export const DEFAULT_MAX_HASH_FILE_BYTES = 64 * 1024 * 1024;
/** An event's wait for a file's first hash: a small program's hash is ready in a few milliseconds. */
export const DEFAULT_HASH_WAIT_MS = 50;

export interface HasherOptions {
  algorithms: readonly HashAlgorithm[];
  maxFileBytes: number;
  waitMs: number;
  /** Worker restarts and errors are logged here (rate-limited). */
  logger?: Logger;
  /** The longest one file may take the worker before it is restarted; default from the file's size (jobDeadline). */
  jobDeadlineMs?: number;
}

export interface HasherStats {
  /** Files read and hashed (each cache miss that was computed). */
  hashedFiles: number;
  hashedBytes: number;
  hashCacheHits: number;
  hashTimeouts: number;
  /** Worker threads terminated because one file took longer than its deadline (and started again). */
  hashWorkerRestarts: number;
  /** Errors of the worker thread (each ends it; the next file starts a new one). */
  hashWorkerErrors: number;
}

/** The counters of a sensor that hashes nothing (sensor.hashes empty), and a Hasher's at its start. */
export const NO_HASHING: Readonly<HasherStats> = { hashedFiles: 0, hashedBytes: 0, hashCacheHits: 0, hashTimeouts: 0, hashWorkerRestarts: 0, hashWorkerErrors: 0 };

/** Files hashed at once, at most; beyond it an exec of a new file goes without (execsentry.hash_missing busy). */
const MAX_QUEUED_FILES = 64;
const MAX_CACHED_FILES = 8192;
/**
 * A file's deadline: a fixed part plus its size at 16 MiB/s, a sixteenth of what the worker reads and hashes
 * here with all three algorithms (about 250 MiB/s): 6 s for 64 MiB. Only a read that hangs (a stuck network
 * file system, a FUSE server that does not answer) gets there; the worker is then restarted, or every
 * later file would queue behind it.
 */
function jobDeadline(sizeBytes: number): number {
  return 2_000 + sizeBytes / (16 * 1024);
}
/** Worker errors are logged at most this often (each one is counted). */
const ERROR_LOG_INTERVAL_MS = 60_000;

interface Job {
  id: number;
  pid: number;
  executable: string | undefined;
  key: string;
  algorithms: readonly HashAlgorithm[];
  maxBytes: number;
}
type Outcome = { hashes: ProcessHashes; bytes: number } | { missing: HashMissing };
interface Queued {
  job: Job;
  deadlineMs: number;
  resolve: (outcome: Outcome) => void;
}

// The worker opens /proc/PID/exe, keeps it if its fstat() is the exec'd file (a regular file with the dev,
// inode, size, mtime and ctime the snapshot saw through /proc/PID/exe), and hashes it in 1 MiB reads: the CPU
// and the blocking reads stay off the JavaScript thread. Unlinking a file changes its ctime (the link count): a
// file removed since the exec (a program that deletes itself, an upgrade that replaced it) is still the exec'd
// file when all else matches and it has no links left. A hash counts only if the file's size, mtime and ctime
// after the last read are what they were before the first: a file rewritten while being read gives no hash.
//
// /proc/PID/exe links to the file execve() opened, which the kernel requires to be a regular file (fs/exec.c
// do_open_execat: S_ISREG). The path is another matter once the process has exited: whoever can write a
// directory on it can put a FIFO there (an open for reading that never returns) or, by swapping a directory,
// make root open any file, a device whose open has side effects (a tape rewinding, a modem line raised)
// included. So the path is opened with O_PATH|O_NOFOLLOW, which opens nothing (no driver's open, no FIFO
// wait, a symlink as itself; open(2)), and only when fstat() says it is the exec'd file is it opened for
// reading, through /proc/self/fd: the very inode checked, no path walked again. Node's fs.constants has no
// O_PATH; the value is the kernel's generic one (include/uapi/asm-generic/fcntl.h), which every architecture
// Node runs on uses.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, fstatSync, readSync, closeSync, constants } = require('node:fs');
const { createHash } = require('node:crypto');
const O_PATH = 0o10000000;
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
const buffer = Buffer.allocUnsafe(1 << 20);
const isExecd = (st, key) => {
  const [dev, ino, size, mtimeNs, ctimeNs] = key.split(':');
  const same = (value, hex) => value.toString(16) === hex;
  return st.isFile() && same(st.dev, dev) && same(st.ino, ino) && same(st.size, size) && same(st.mtimeNs, mtimeNs) && (same(st.ctimeNs, ctimeNs) || st.nlink === 0n);
};
const unchanged = (before, after) => before.size === after.size && before.mtimeNs === after.mtimeNs && before.ctimeNs === after.ctimeNs;
/** fd and fstat of the exec'd file; or why not: 'absent' (nothing there), 'changed' (another file). */
const openProcExe = (path, key) => {
  let fd;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch {
    return 'absent';
  }
  let st;
  try {
    st = fstatSync(fd, { bigint: true });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (isExecd(st, key)) return { fd, st };
  closeSync(fd);
  return 'changed';
};
const openPath = (path, key) => {
  let handle;
  try {
    handle = openSync(path, O_PATH | constants.O_NOFOLLOW);
  } catch {
    return 'absent';
  }
  try {
    if (!isExecd(fstatSync(handle, { bigint: true }), key)) return 'changed';
    const fd = openSync('/proc/self/fd/' + handle, READ_FLAGS);
    return { fd, st: fstatSync(fd, { bigint: true }) };
  } finally {
    closeSync(handle);
  }
};
const hash = ({ pid, executable, key, algorithms, maxBytes }) => {
  let file;
  try {
    file = openProcExe('/proc/' + pid + '/exe', key);
    // the process has exited (a zombie has no exe; a reused pid runs another file): its path, if it still
    // leads to the same file
    if (typeof file === 'string' && executable !== undefined) {
      const byPath = openPath(executable, key);
      if (byPath !== 'absent' || file === 'absent') file = byPath;
    }
  } catch {
    return { missing: 'unreadable' };
  }
  if (file === 'absent') return { missing: 'exited' };
  if (file === 'changed') return { missing: 'changed' };
  const { fd, st: before } = file;
  try {
    const digests = algorithms.map((algorithm) => createHash(algorithm));
    let bytes = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      bytes += n;
      if (bytes > maxBytes) return { missing: 'too_large' };
      for (const digest of digests) digest.update(buffer.subarray(0, n));
    }
    if (!unchanged(before, fstatSync(fd, { bigint: true }))) return { missing: 'changed' };
    const hashes = {};
    algorithms.forEach((algorithm, i) => (hashes[algorithm] = digests[i].digest('hex')));
    return { hashes, bytes };
  } catch {
    return { missing: 'unreadable' };
  } finally {
    closeSync(fd);
  }
};
parentPort.on('message', (job) => parentPort.postMessage({ id: job.id, outcome: hash(job) }));
`;

/**
 * process.hash.* of the exec'd file, opt-in per algorithm. Cached by the file's identity (device, inode,
 * size, modification and change time, from stat() through /proc/PID/exe on the reader thread): a second
 * exec of an unchanged file reads nothing. A new file is hashed by a worker thread, one file at a time, each
 * within a deadline: from /proc/PID/exe while the process lives (the very file it runs, even if its path was
 * replaced or unlinked), else from its path, and only if that is still the same file (WORKER_SOURCE: how the
 * path is opened without opening anything else). The path is kept because most programs exit before the
 * worker gets to them (measured: 151 of 190 first execs of new `true`-like programs were gone from /proc by
 * then), and a program run once, a dropper's, is one whose hash matters. An event waits for its hash at most
 * `waitMs`.
 */
export class Hasher {
  private readonly cache = new Map<string, ProcessHashes>();
  private readonly inFlight = new Map<string, Promise<Outcome>>();
  /** Files waiting for the worker, oldest first; the first is the worker's when `running`. */
  private readonly queue: Queued[] = [];
  private running: { id: number; timer: NodeJS.Timeout } | undefined;
  private worker: Worker | undefined;
  private closed = false;
  private nextJob = 0;
  private lastErrorLogMs = -Infinity;
  private readonly counters: HasherStats = { ...NO_HASHING };

  constructor(private readonly options: HasherOptions) {}

  stats(): HasherStats {
    return { ...this.counters };
  }

  /**
   * Adds process.hash (or execsentry.hash_missing) to the event of this snapshot: at once when cached,
   * else by the returned promise, which settles within waitMs.
   */
  fill(event: ProcessEvent, snapshot: ProcSnapshot): Promise<void> | undefined {
    const key = snapshot.exeFileKey;
    if (key === undefined || snapshot.exeFileSize === undefined) {
      if (event.process.executable !== undefined) markMissing(event, 'unreadable');
      return undefined;
    }
    if (snapshot.exeFileSize > this.options.maxFileBytes) {
      markMissing(event, 'too_large');
      return undefined;
    }
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.counters.hashCacheHits++;
      // Most recently used last: the oldest entry goes first when the cache is full.
      this.cache.delete(key);
      this.cache.set(key, cached);
      event.process.hash = { ...cached };
      return undefined;
    }
    let job = this.inFlight.get(key);
    if (job === undefined) {
      if (this.inFlight.size >= MAX_QUEUED_FILES || this.closed) {
        markMissing(event, 'busy');
        return undefined;
      }
      job = this.hash(key, snapshot.pid, event.process.executable, this.options.jobDeadlineMs ?? jobDeadline(snapshot.exeFileSize));
    }
    return new Promise<void>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        this.counters.hashTimeouts++;
        markMissing(event, 'timeout');
        resolve();
      }, this.options.waitMs);
      void job.then((outcome) => {
        if (settled) return;
        clearTimeout(timer);
        if ('hashes' in outcome) event.process.hash = { ...outcome.hashes };
        else markMissing(event, outcome.missing);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.running !== undefined) clearTimeout(this.running.timer);
    this.running = undefined;
    for (const queued of this.queue.splice(0)) queued.resolve({ missing: 'unreadable' });
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private hash(key: string, pid: number, executable: string | undefined, deadlineMs: number): Promise<Outcome> {
    const job = new Promise<Outcome>((resolve) => {
      this.queue.push({ job: { id: this.nextJob++, pid, executable, key, algorithms: this.options.algorithms, maxBytes: this.options.maxFileBytes }, deadlineMs, resolve });
      this.startNext();
    }).then((outcome) => {
      this.inFlight.delete(key);
      if ('hashes' in outcome) {
        this.counters.hashedFiles++;
        this.counters.hashedBytes += outcome.bytes;
        if (this.cache.size >= MAX_CACHED_FILES) this.cache.delete(this.cache.keys().next().value as string);
        this.cache.set(key, outcome.hashes);
      }
      return outcome;
    });
    this.inFlight.set(key, job);
    return job;
  }

  /** Hands the oldest waiting file to the worker, if it is idle. */
  private startNext(): void {
    const next = this.queue[0];
    if (this.running !== undefined || next === undefined || this.closed) return;
    const timer = setTimeout(() => this.restart(next), next.deadlineMs);
    timer.unref();
    this.running = { id: next.job.id, timer };
    this.workerThread().postMessage(next.job);
  }

  /** The worker's answer for the file it was given (a stale one, from before a restart, is ignored). */
  private finish(id: number, outcome: Outcome): void {
    if (this.running?.id !== id) return;
    clearTimeout(this.running.timer);
    this.running = undefined;
    this.queue.shift()?.resolve(outcome);
    this.startNext();
  }

  /** The file took longer than its deadline: its event goes without, a new worker takes the next file. */
  private restart(stuck: Queued): void {
    this.counters.hashWorkerRestarts++;
    this.options.logger?.warn(
      { pid: stuck.job.pid, executable: stuck.job.executable, deadlineMs: stuck.deadlineMs, restarts: this.counters.hashWorkerRestarts },
      'hashing an executable took longer than its deadline; the hash worker is restarted',
    );
    this.abandonWorker({ missing: 'timeout' });
  }

  /** Ends the worker and the file it had (with `outcome`); the files behind it go to a new worker. */
  private abandonWorker(outcome: Outcome): void {
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
    const running = this.running;
    if (running !== undefined) this.finish(running.id, outcome);
  }

  private workerFailed(err: unknown): void {
    this.counters.hashWorkerErrors++;
    const now = Date.now();
    if (now - this.lastErrorLogMs >= ERROR_LOG_INTERVAL_MS) {
      this.lastErrorLogMs = now;
      this.options.logger?.error({ err, hashWorkerErrors: this.counters.hashWorkerErrors }, 'the hash worker failed; it is started again for the next file');
    }
  }

  private workerThread(): Worker {
    if (this.worker === undefined) {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      worker.unref();
      worker.on('message', ({ id, outcome }: { id: number; outcome: Outcome }) => this.finish(id, outcome));
      worker.on('error', (err) => this.workerFailed(err));
      // A worker that exits on its own (after an error) answers nothing more: its file ends unreadable.
      worker.on('exit', () => {
        if (this.worker === worker) this.abandonWorker({ missing: 'unreadable' });
      });
      this.worker = worker;
    }
    return this.worker;
  }
}

function markMissing(event: ProcessEvent, reason: HashMissing): void {
  (event.execsentry ??= {}).hash_missing = reason;
}
