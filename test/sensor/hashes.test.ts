import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import type { ProcSnapshot } from '../../src/native.js';
import { Hasher } from '../../src/sensor/hashes.js';

/**
 * The hasher on real files and a real worker thread; the snapshot's file key is made here the way the
 * reader thread makes it (stat through /proc/PID/exe: device, inode, size, mtime, ctime).
 */
const scratch = mkdtempSync(join(tmpdir(), 'execsentry-hashes-'));
let counter = 0;
let hasher: Hasher | undefined;

afterEach(async () => {
  await hasher?.close();
  hasher = undefined;
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function file(content: string | Buffer): string {
  const path = join(scratch, `file-${++counter}`);
  writeFileSync(path, content);
  return path;
}

function keyOf(path: string): string {
  const st = statSync(path, { bigint: true });
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].map((n) => n.toString(16)).join(':');
}

/** A snapshot of a process (pid) running `path`, as the reader thread would take it. */
function snapshotOf(path: string, pid = 0x7ffffffe): ProcSnapshot {
  return { pid, partial: false, executable: path, exeFileKey: keyOf(path), exeFileSize: statSync(path).size };
}

function eventOf(snapshot: ProcSnapshot): ProcessEvent {
  return { process: { pid: snapshot.pid, entity_id: 'x', executable: snapshot.executable } } as ProcessEvent;
}

async function hashed(h: Hasher, snapshot: ProcSnapshot): Promise<ProcessEvent> {
  const event = eventOf(snapshot);
  await h.fill(event, snapshot);
  return event;
}

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('process hashes', () => {
  it('reads a file once: the second event of the same file comes from the cache', async () => {
    hasher = new Hasher({ algorithms: ['md5', 'sha1', 'sha256'], maxFileBytes: 1 << 20, waitMs: 5_000 });
    const path = file('#!/bin/sh\necho hello\n');
    const first = await hashed(hasher, snapshotOf(path));
    const bytes = readFileSync(path);
    expect(first.process.hash).toEqual({
      md5: createHash('md5').update(bytes).digest('hex'),
      sha1: createHash('sha1').update(bytes).digest('hex'),
      sha256: sha256(bytes),
    });
    expect(hasher.stats()).toMatchObject({ hashedFiles: 1, hashedBytes: bytes.length, hashCacheHits: 0 });
    const second = eventOf(snapshotOf(path));
    expect(hasher.fill(second, snapshotOf(path))).toBeUndefined(); // no wait: answered at once
    expect(second.process.hash).toEqual(first.process.hash);
    expect(hasher.stats()).toMatchObject({ hashedFiles: 1, hashedBytes: bytes.length, hashCacheHits: 1 });
  });

  it('hashes a modified file again (its key changed)', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 20, waitMs: 5_000 });
    const path = file('one');
    expect((await hashed(hasher, snapshotOf(path))).process.hash).toEqual({ sha256: sha256('one') });
    writeFileSync(path, 'two');
    expect((await hashed(hasher, snapshotOf(path))).process.hash).toEqual({ sha256: sha256('two') });
    expect(hasher.stats().hashedFiles).toBe(2);
  });

  it('hashes the same file once when several events wait for it at the same time', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 20, waitMs: 5_000 });
    const path = file('shared');
    const all = await Promise.all([1, 2, 3].map(() => hashed(hasher as Hasher, snapshotOf(path))));
    for (const event of all) expect(event.process.hash).toEqual({ sha256: sha256('shared') });
    expect(hasher.stats().hashedFiles).toBe(1);
  });

  it('gives a file over the cap no hash and reads nothing of it', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 16, waitMs: 5_000 });
    const path = file('seventeen bytes!!');
    const event = eventOf(snapshotOf(path));
    expect(hasher.fill(event, snapshotOf(path))).toBeUndefined();
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('too_large');
    expect(hasher.stats().hashedFiles).toBe(0);
  });

  it('refuses a path that is no longer the exec\'d file', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 1 << 20, waitMs: 5_000 });
    const path = file('original');
    const snapshot = snapshotOf(path);
    renameSync(file('replacement'), path);
    const event = await hashed(hasher, snapshot);
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('changed');
  });

  it('hashes what a live process runs through /proc/PID/exe, even when its path was replaced since', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 64 << 20, waitMs: 5_000 });
    const program = join(scratch, `sleep-${++counter}`);
    copyFileSync('/usr/bin/sleep', program);
    chmodSync(program, 0o755);
    const original = readFileSync(program);
    const snapshot = snapshotOf(program);
    const child = spawn(program, ['10'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => child.once('spawn', resolve));
      renameSync(file('not the program'), program);
      const event = await hashed(hasher, { ...snapshot, pid: child.pid as number });
      expect(event.execsentry?.hash_missing).toBeUndefined();
      expect(event.process.hash).toEqual({ sha256: sha256(original) });
    } finally {
      child.kill();
    }
  });

  it('lets an event go without its hash after waitMs, and caches the hash for the next one', async () => {
    hasher = new Hasher({ algorithms: ['sha256'], maxFileBytes: 64 << 20, waitMs: 0 });
    const path = file(Buffer.alloc(8 << 20, 7));
    const started = Date.now();
    const event = await hashed(hasher, snapshotOf(path));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(event.process.hash).toBeUndefined();
    expect(event.execsentry?.hash_missing).toBe('timeout');
    expect(hasher.stats().hashTimeouts).toBe(1);
    const deadline = Date.now() + 10_000;
    while (hasher.stats().hashedFiles === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const next = eventOf(snapshotOf(path));
    expect(hasher.fill(next, snapshotOf(path))).toBeUndefined();
    expect(next.process.hash).toEqual({ sha256: sha256(Buffer.alloc(8 << 20, 7)) });
  });
});
