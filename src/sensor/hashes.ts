import { Worker } from 'node:worker_threads';
import type { EcsProcess, ExecsentryProcessExtras, ProcessEvent } from '../ecs/types.js';
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
}

export interface HasherStats {
  /** Files read and hashed (each cache miss that was computed). */
  hashedFiles: number;
  hashedBytes: number;
  hashCacheHits: number;
  hashTimeouts: number;
}

/** Files hashed at once, at most; beyond it an exec of a new file goes without (execsentry.hash_missing busy). */
const MAX_QUEUED_FILES = 64;
const MAX_CACHED_FILES = 8192;

interface Job {
  id: number;
  paths: string[];
  key: string;
  algorithms: readonly HashAlgorithm[];
  maxBytes: number;
}
type Outcome = { hashes: ProcessHashes; bytes: number } | { missing: HashMissing };

// The worker opens each candidate path, keeps the first whose fstat() is the exec'd file (dev, inode, size,
// mtime and ctime as the snapshot saw them through /proc/PID/exe), and hashes it in 1 MiB reads: the CPU
// and the blocking reads stay off the JavaScript thread. Unlinking a file changes its ctime (the link
// count): a file removed since the exec (a program that deletes itself, an upgrade that replaced it) is
// still the exec'd file when all else matches and it has no links left.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, fstatSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buffer = Buffer.allocUnsafe(1 << 20);
const isExecd = (st, key) => {
  const [dev, ino, size, mtimeNs, ctimeNs] = key.split(':');
  const same = (value, hex) => value.toString(16) === hex;
  return same(st.dev, dev) && same(st.ino, ino) && same(st.size, size) && same(st.mtimeNs, mtimeNs) && (same(st.ctimeNs, ctimeNs) || st.nlink === 0n);
};
parentPort.on('message', ({ id, paths, key, algorithms, maxBytes }) => {
  let fd = -1;
  let opened = false;
  for (const path of paths) {
    try {
      fd = openSync(path, 'r');
    } catch {
      continue;
    }
    opened = true;
    try {
      if (isExecd(fstatSync(fd, { bigint: true }), key)) break;
    } catch {}
    closeSync(fd);
    fd = -1;
  }
  if (fd < 0) return parentPort.postMessage({ id, outcome: { missing: opened ? 'changed' : 'unreadable' } });
  try {
    const digests = algorithms.map((algorithm) => createHash(algorithm));
    let bytes = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      bytes += n;
      if (bytes > maxBytes) return parentPort.postMessage({ id, outcome: { missing: 'too_large' } });
      for (const digest of digests) digest.update(buffer.subarray(0, n));
    }
    const hashes = {};
    algorithms.forEach((algorithm, i) => (hashes[algorithm] = digests[i].digest('hex')));
    parentPort.postMessage({ id, outcome: { hashes, bytes } });
  } catch {
    parentPort.postMessage({ id, outcome: { missing: 'unreadable' } });
  } finally {
    closeSync(fd);
  }
});
`;

/**
 * process.hash.* of the exec'd file, opt-in per algorithm. Cached by the file's identity (device, inode,
 * size, modification and change time, from stat() through /proc/PID/exe on the reader thread): a second
 * exec of an unchanged file reads nothing. A new file is hashed by a worker thread, from /proc/PID/exe
 * while the process lives (the very file it runs, even if its path was replaced or unlinked), else from
 * its path, and only if that is still the same file. An event waits for its hash at most `waitMs`.
 */
export class Hasher {
  private readonly cache = new Map<string, ProcessHashes>();
  private readonly inFlight = new Map<string, Promise<Outcome>>();
  private readonly replies = new Map<number, (outcome: Outcome) => void>();
  private worker: Worker | undefined;
  private nextJob = 0;
  private readonly counters: HasherStats = { hashedFiles: 0, hashedBytes: 0, hashCacheHits: 0, hashTimeouts: 0 };

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
      if (this.inFlight.size >= MAX_QUEUED_FILES) {
        markMissing(event, 'busy');
        return undefined;
      }
      const paths = [`/proc/${snapshot.pid}/exe`];
      if (event.process.executable !== undefined) paths.push(event.process.executable);
      job = this.hash(key, paths);
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
    const worker = this.worker;
    this.worker = undefined;
    for (const reply of this.replies.values()) reply({ missing: 'unreadable' });
    this.replies.clear();
    await worker?.terminate();
  }

  private hash(key: string, paths: string[]): Promise<Outcome> {
    const id = this.nextJob++;
    const job = new Promise<Outcome>((resolve) => {
      this.replies.set(id, resolve);
      const message: Job = { id, paths, key, algorithms: this.options.algorithms, maxBytes: this.options.maxFileBytes };
      this.workerThread().postMessage(message);
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

  private workerThread(): Worker {
    if (this.worker === undefined) {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      worker.unref();
      worker.on('message', ({ id, outcome }: { id: number; outcome: Outcome }) => {
        const reply = this.replies.get(id);
        this.replies.delete(id);
        reply?.(outcome);
      });
      // A worker that died answers nothing more: its jobs end unreadable, the next job starts a new one.
      worker.on('error', () => undefined);
      worker.on('exit', () => {
        if (this.worker === worker) this.worker = undefined;
        for (const reply of this.replies.values()) reply({ missing: 'unreadable' });
        this.replies.clear();
      });
      this.worker = worker;
    }
    return this.worker;
  }
}

function markMissing(event: ProcessEvent, reason: HashMissing): void {
  (event.execsentry ??= {}).hash_missing = reason;
}
