import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDirectories, openDocumentStream, readRegularFile, readRegularFileSync, UnreadableFile } from '../../src/io/files.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'execsentry-files-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function reason(read: () => unknown): Promise<string> {
  try {
    await read();
  } catch (err) {
    if (err instanceof UnreadableFile) return err.reason;
    throw err;
  }
  throw new Error('expected an UnreadableFile');
}

describe('readRegularFile', () => {
  it('reads a regular file whole, sync and async', async () => {
    const file = join(dir, 'ok.json');
    writeFileSync(file, '{"a": 1}');
    chmodSync(file, 0o640);
    expect(readRegularFileSync(file, 100)).toEqual({ bytes: Buffer.from('{"a": 1}'), mode: 0o640 });
    expect((await readRegularFile(file, 100)).toString()).toBe('{"a": 1}');
  });

  it('refuses a FIFO at once instead of waiting for a writer', async () => {
    const fifo = join(dir, 'rules.toml');
    execFileSync('mkfifo', [fifo]);
    expect(await reason(() => readRegularFileSync(fifo, 100))).toBe('not a regular file (a FIFO)');
    expect(await reason(() => readRegularFile(fifo, 100))).toBe('not a regular file (a FIFO)');
  });

  it('never opens the FIFO it refuses: a writer waiting on it goes on waiting', async () => {
    const fifo = join(dir, 'waited.toml');
    execFileSync('mkfifo', [fifo]);
    // the shell's open for writing blocks until some reader opens the FIFO
    const writer = spawn('sh', ['-c', `echo planted > '${fifo}'`]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await reason(() => readRegularFileSync(fifo, 100))).toBe('not a regular file (a FIFO)');
    expect(await reason(() => readRegularFile(fifo, 100))).toBe('not a regular file (a FIFO)');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(writer.exitCode).toBeNull();
    // let the writer go
    const drained = await import('node:fs/promises').then(({ readFile }) => readFile(fifo, 'utf8'));
    expect(drained).toBe('planted\n');
  });

  it('refuses devices and directories, and names a missing file', async () => {
    expect(await reason(() => readRegularFileSync('/dev/zero', 100))).toBe('not a regular file (a character device)');
    expect(await reason(() => readRegularFile('/dev/zero', 100))).toBe('not a regular file (a character device)');
    expect(await reason(() => readRegularFileSync(dir, 100))).toBe('it is a directory (EISDIR)');
    expect(await reason(() => readRegularFileSync(join(dir, 'missing'), 100))).toBe('no such file or directory (ENOENT)');
  });

  it('refuses a file over the limit, counted on what is read (a /proc file says it is empty)', async () => {
    const file = join(dir, 'big.json');
    writeFileSync(file, 'x'.repeat(101));
    expect(await reason(() => readRegularFileSync(file, 100))).toBe('larger than 100 bytes, the limit for this kind of file');
    expect(await reason(() => readRegularFile(file, 100))).toBe('larger than 100 bytes, the limit for this kind of file');
    expect(await reason(() => readRegularFileSync('/proc/self/maps', 10))).toContain('larger than 10 bytes');
  });
});

describe('openDocumentStream', () => {
  it('refuses a directory before reading, and reads a FIFO once a writer comes', async () => {
    expect(await reason(() => openDocumentStream(dir))).toBe('it is a directory (EISDIR)');
    const fifo = join(dir, 'events.fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = import('node:fs').then(({ promises }) => promises.writeFile(fifo, 'line\n'));
    const stream = await openDocumentStream(fifo);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    await writer;
    expect(Buffer.concat(chunks).toString()).toBe('line\n');
  });
});

describe('makeDirectories', () => {
  it('creates what is missing with the mode, and says where it began', () => {
    const target = join(dir, 'a', 'b', 'c');
    expect(makeDirectories(target, 0o700)).toBe(join(dir, 'a'));
    expect(statSync(target).mode & 0o777).toBe(0o700);
    expect(makeDirectories(target, 0o700)).toBeUndefined();
  });

  it('fails at once under /proc, where Node\'s recursive mkdir never returns', () => {
    expect(() => makeDirectories('/proc/execsentry-test/state', 0o700)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('fails on a file in the way', () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, '');
    expect(() => makeDirectories(join(file, 'x'), 0o700)).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });
});
