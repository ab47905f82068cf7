import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import type { ProcSnapshot } from '../../src/native.js';
import { Hasher } from '../../src/sensor/hashes.js';

/**
 * The hasher on real programs run by real processes and a real worker thread; the snapshot's file key is
 * made here the way the reader thread makes it (stat through /proc/PID/exe: device, inode, size, mtime, ctime).
 */
const scratch = mkdtempSync(join(tmpdir(), 'execsentry-hashes-'));
const SLEEP = readFileSync('/usr/bin/sleep');
let counter = 0;
let hasher: Hasher | undefined;
const children: ChildProcess[] = [];

afterEach(async () => {
  await hasher?.close();
  hasher = undefined;
  for (const child of children.splice(0)) child.kill('SIGKILL');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function keyOf(path: string): string {
  const st = statSync(path, { bigint: true });
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].map((n) => n.toString(16)).join(':');
}

/** A new program file: sleep with `padding` after it (an ELF file runs whatever follows it), a file no other test hashed. */
function program(padding: string | Buffer): string {
  const path = join(scratch, `program-${++counter}`);
  writeFileSync(path, Buffer.concat([SLEEP, Buffer.from(padding)]));
  chmodSync(path, 0o755);
  return path;
}

/** `path` run by a live process, and its snapshot as the reader thread takes it. */
async function run(path: string): Promise<{ child: ChildProcess; snapshot: ProcSnapshot }> {
  const child = spawn(path, ['30'], { stdio: 'ignore' });
  children.push(child);
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return { child, snapshot: snapshotOf(path, child.pid as number) };
}

function snapshotOf(path: string, pid: number): ProcSnapshot {
  return { pid, partial: false, executable: path, exeFileKey: keyOf(path), exeFileSize: statSync(path).size };
}

/** A pid no process has (above the kernel's pid_max limit). */
const GONE = 0x7ffffffe;

function eventOf(snapshot: ProcSnapshot): ProcessEvent {
  return { process: { pid: snapshot.pid, entity_id: 'x', executable: snapshot.executable } } as ProcessEvent;
}

async function hashed(h: Hasher, snapshot: ProcSnapshot): Promise<ProcessEvent> {
  const event = eventOf(snapshot);
  await h.fill(event, snapshot);
  return event;
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => child.once('exit', resolve));
}

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('process hashes', () => {
  it('reads a file once: the second event of the same file comes from the cache', async () => {
    hasher = new Hasher({ algorithms: ['md5', 'sha1', 'sha256'], maxFileBytes: 1 << 30, waitMs: 5_000 });
    const path = program('hello');
    const { snapshot } = await run(path);
    const first = await hashed(hasher, snapshot);
    const bytes = readFileSync(path);
    expect(first.process.hash).toEqual({
      md5: createHash('md5').update(bytes).digest('hex'),
      sha1: createHash('sha1').update(bytes).digest('hex'),
      sha256: sha256(bytes),
    });
    expect(hasher.stats()).toMatchObject({ hashedFiles: 1, hashedBytes: bytes.length, hashCacheHits: 0 });
    // a later exec of the same file, its process gone already: the cache answers, nothing is opened
    const second = eventOf(snapshotOf(path, GONE));
    expect(hasher.fill(second, snapshotOf(path, GONE))).toBeUndefined(); // no wait: answered at once
    expect(second.process.hash).toEqual(first.process.hash);
    expect(hasher.stats()).toMatchObject({ hashedFiles: 1, hashedBytes: bytes.length, hashCacheHits: 1 });
  });

  it('hashes a modified file again (its key changed)', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 30, waitMs: 5_000 });
    const path = program('one');
    const first = await run(path);
    expect((await hashed(hasher, first.snapshot)).process.hash).toEqual({ sha256: sha256(readFileSync(path)) });
    first.child.kill();
    await exited(first.child);
    writeFileSync(path, Buffer.concat([SLEEP, Buffer.from('two')]));
    const second = await run(path);
    expect((await hashed(hasher, second.snapshot)).process.hash).toEqual({ sha256: sha256(Buffer.concat([SLEEP, Buffer.from('two')])) });
    expect(hasher.stats().hashedFiles).toBe(2);
  });

  it('hashes the same file once when several events wait for it at the same time', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 30, waitMs: 5_000 });
    const { snapshot } = await run(program('shared'));
    const all = await Promise.all([1, 2, 3].map(() => hashed(hasher as Hasher, snapshot)));
    for (const event of all) expect(event.process.hash).toEqual({ sha256: sha256(readFileSync(snapshot.executable as string)) });
    expect(hasher.stats().hashedFiles).toBe(1);
  });

  it('gives a file over the cap no hash and reads nothing of it', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 16, waitMs: 5_000 });
    const { snapshot } = await run(program('x'));
    const event = eventOf(snapshot);
    expect(hasher.fill(event, snapshot)).toBeUndefined();
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('too_large');
    expect(hasher.stats().hashedFiles).toBe(0);
  });

  it('refuses what /proc/PID/exe links to when it is not the exec\'d file (the pid now runs another program)', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 30, waitMs: 5_000 });
    const { child } = await run(program('other'));
    const execd = program('the exec\'d one');
    const snapshot = snapshotOf(execd, child.pid as number);
    rmSync(execd); // nor is it at its path
    const event = await hashed(hasher, snapshot);
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('changed');
  });

  it('hashes what a live process runs through /proc/PID/exe, even when its path was replaced since', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 64 << 20, waitMs: 5_000 });
    const path = join(scratch, `sleep-${++counter}`);
    copyFileSync('/usr/bin/sleep', path);
    chmodSync(path, 0o755);
    const { snapshot } = await run(path);
    writeFileSync(`${path}.new`, 'not the program');
    rmSync(path);
    copyFileSync(`${path}.new`, path);
    const event = await hashed(hasher, snapshot);
    expect(event.execsentry?.hash_missing).toBeUndefined();
    expect(event.process.hash).toEqual({ sha256: sha256(SLEEP) });
  });

  it('hashes the file of a process that has exited from its path, while that is the same file', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 30, waitMs: 5_000 });
    const path = program('gone');
    const event = await hashed(hasher, snapshotOf(path, GONE));
    expect(event.execsentry?.hash_missing).toBeUndefined();
    expect(event.process.hash).toEqual({ sha256: sha256(readFileSync(path)) });
    // and a path that leads nowhere any more
    const removed = program('removed');
    const snapshot = snapshotOf(removed, GONE);
    rmSync(removed);
    expect((await hashed(hasher, snapshot)).execsentry?.hash_missing).toBe('exited');
  });

  it('refuses a path that is no longer the exec\'d file', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 30, waitMs: 5_000 });
    const path = program('original');
    const snapshot = snapshotOf(path, GONE);
    rmSync(path);
    writeFileSync(path, 'replacement');
    const event = await hashed(hasher, snapshot);
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('changed');
  });

  it('opens nothing but the exec\'d file at a path: a FIFO there stalls nothing, a symlink is not followed', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 30, waitMs: 1_000 });
    const path = program('linked');
    // a FIFO where the exited process's program was: opening it for reading would wait for a writer forever
    const fifo = join(scratch, `fifo-${++counter}`);
    await exited(spawn('mkfifo', [fifo], { stdio: 'ignore' }));
    expect(statSync(fifo).isFIFO()).toBe(true);
    const stalled = await hashed(hasher, { ...snapshotOf(path, GONE), executable: fifo, exeFileKey: '1:2:3:4:5', exeFileSize: 3 });
    expect(stalled.execsentry?.hash_missing).toBe('changed');
    // a symlink to the very file: the kernel's path of an exec'd file has none, so one there was put there since
    const link = join(scratch, `link-${++counter}`);
    symlinkSync(path, link);
    const followed = await hashed(hasher, { ...snapshotOf(path, GONE), executable: link });
    expect(followed.process.hash).toBeUndefined();
    expect(followed.execsentry?.hash_missing).toBe('changed');
    // the files behind them are hashed as ever
    for (const padding of ['ls', 'cat', 'env']) {
      const { snapshot } = await run(program(padding));
      const event = await hashed(hasher, snapshot);
      expect(event.execsentry?.hash_missing).toBeUndefined();
      expect(event.process.hash).toEqual({ sha256: sha256(readFileSync(snapshot.executable as string)) });
    }
    expect(hasher.stats()).toMatchObject({ hashTimeouts: 0, hashWorkerRestarts: 0 });
  });

  it('restarts a worker that takes longer than a file\'s deadline, logs it once, and hashes the next file', async () => {
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    hasher = new Hasher({ algorithms: ['md5', 'sha1', 'sha256'], maxFileBytes: 1 << 30, waitMs: 10_000, jobDeadlineMs: 1, logger });
    const big = await run(program(Buffer.alloc(32 << 20, 1)));
    const stuck = await hashed(hasher, big.snapshot);
    expect(stuck.process.hash).toBeUndefined();
    expect(stuck.execsentry?.hash_missing).toBe('timeout');
    expect(hasher.stats()).toMatchObject({ hashWorkerRestarts: 1, hashedFiles: 0 });
    expect(logs.filter((log) => /hash worker is restarted/.test(String(log['msg'])))).toHaveLength(1);
    // a new worker, with a deadline a small file meets
    await hasher.close();
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 30, waitMs: 10_000, logger });
    const small = await run(program('small'));
    expect((await hashed(hasher, small.snapshot)).process.hash).toEqual({ sha256: sha256(readFileSync(small.snapshot.executable as string)) });
  });

  it('gives each queued file its own deadline: one restart per stuck file, none waits behind another forever', async () => {
    hasher = new Hasher({ algorithms: ['md5', 'sha1', 'sha256'], maxFileBytes: 1 << 30, waitMs: 10_000, jobDeadlineMs: 1 });
    const big = await run(program(Buffer.alloc(32 << 20, 2)));
    const events = await Promise.all([hashed(hasher, big.snapshot), ...[1, 2].map(async (n) => hashed(hasher as Hasher, (await run(program(Buffer.alloc(32 << 20, 2 + n)))).snapshot))]);
    for (const event of events) expect(event.execsentry?.hash_missing).toBe('timeout');
    expect(hasher.stats().hashWorkerRestarts).toBe(3);
  });

  it('gives no hash, and caches none, for a file rewritten while it was read', async () => {
    hasher = new Hasher({ algorithms: ['md5', 'sha1', 'sha256'], maxFileBytes: 1 << 30, waitMs: 10_000 });
    const path = program(Buffer.alloc(60 << 20, 5));
    const { child, snapshot } = await run(path);
    const event = eventOf(snapshot);
    const filled = hasher.fill(event, snapshot);
    // once the worker has the file open: the process exits (which lets the file be written) and it is rewritten in place
    const deadline = Date.now() + 5_000;
    const isOpenHere = () => readdirSync('/proc/self/fd').some((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
    while (!isOpenHere() && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    expect(isOpenHere()).toBe(true);
    child.kill('SIGKILL');
    await exited(child);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('rewritten'), 0, 9, SLEEP.length + 1);
    closeSync(fd);
    await filled;
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('changed');
    expect(hasher.stats().hashedFiles).toBe(0);
    const again = eventOf(snapshot);
    expect(hasher.fill(again, snapshot)).not.toBeUndefined(); // not cached
  });

  it('lets an event go without its hash after waitMs, and caches the hash for the next one', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 64 << 20, waitMs: 0 });
    const { snapshot } = await run(program(Buffer.alloc(8 << 20, 7)));
    const started = Date.now();
    const event = await hashed(hasher, snapshot);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('timeout');
    expect(hasher.stats().hashTimeouts).toBe(1);
    const deadline = Date.now() + 10_000;
    while (hasher.stats().hashedFiles === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const next = eventOf(snapshot);
    expect(hasher.fill(next, snapshot)).toBeUndefined();
    expect(next.process.hash).toEqual({ sha256: sha256(readFileSync(snapshot.executable as string)) });
  });
});
