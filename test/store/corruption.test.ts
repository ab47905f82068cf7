import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeFileHeader } from '../../src/store/codec.js';
import { HISTORY_FILE_NAME, openHistoryStore } from '../../src/store/index.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { stagedPath } from '../helpers/staged.js';
import { DAY_MS, capturingLogger, openTestStore, tempStateDir } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);
const FIELDS = ['process.executable'];
const repo = fileURLToPath(new URL('../../', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/store-child.mjs', import.meta.url));
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

beforeAll(() => {
  // the child process and the CLI run the compiled code
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repo, encoding: 'utf8' });
  expect(existsSync(join(repo, 'dist/store/index.js')), build.stdout).toBe(true);
}, 120_000);

function stateDir(): string {
  const { dir, cleanup } = tempStateDir();
  cleanups.push(cleanup);
  return dir;
}

/** A history file holding /tool-0 … /tool-(n-1); returns the offset of every sighting record. */
async function populated(n: number): Promise<{ dir: string; file: string; offsets: number[] }> {
  const dir = stateDir();
  const { store } = await openTestStore(dir);
  const rule = store.history('rule-a', FIELDS, 30 * DAY_MS);
  for (let i = 0; i < n; i++) await rule.recordNew([`/tool-${i}`], T0 + i * 1000);
  await store.close();
  const file = join(dir, HISTORY_FILE_NAME);
  const bytes = readFileSync(file);
  const offsets: number[] = [];
  for (let at = 16; at < bytes.length; at += 8 + bytes.readUInt32LE(at + 4)) offsets.push(at);
  return { dir, file, offsets: offsets.slice(1) }; // [0] is the history definition
}

function terms(store: { tuples(): Iterable<{ terms: string[] }> }): string[] {
  return [...store.tuples()].map((t) => t.terms[0]!);
}

describe('torn tail', () => {
  it('drops a last record cut short by a crash, says where, and appends cleanly after it', async () => {
    const { dir, file, offsets } = await populated(5);
    const size = readFileSync(file).length;
    truncateSync(file, size - 3);
    const { store, records } = await openTestStore(dir);
    expect(terms(store)).toEqual(['/tool-0', '/tool-1', '/tool-2', '/tool-3']);
    expect(store.stats()).toMatchObject({ tornRecordsDropped: 1, damagedRanges: 0, setAside: [] });
    const warning = records.find((r) => r.level === 40)!;
    expect(warning.msg).toContain(`torn last record at offset ${offsets[4]}`);
    expect(warning.file).toBe(file);
    await store.history('rule-a', FIELDS, 30 * DAY_MS).recordNew(['/after'], T0);
    await store.close();
    const reopened = await openTestStore(dir);
    expect(terms(reopened.store)).toEqual(['/tool-0', '/tool-1', '/tool-2', '/tool-3', '/after']);
    expect(reopened.records).toEqual([]);
    await reopened.store.close();
  });

  it('treats a tail of zeros (blocks allocated, never written) as torn', async () => {
    const { dir, file } = await populated(2);
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.alloc(4096)]));
    const { store, records } = await openTestStore(dir);
    expect(terms(store)).toEqual(['/tool-0', '/tool-1']);
    expect(store.stats().tornRecordsDropped).toBe(1);
    expect(records.map((r) => r.level)).toEqual([40]);
    await store.close();
  });
});

describe('damage in the middle', () => {
  it('reports file and offset, keeps the file aside and starts with every record that could be read', async () => {
    const { dir, file, offsets } = await populated(6);
    const original = readFileSync(file);
    const damaged = Buffer.from(original);
    damaged[offsets[2]! + 12]! ^= 0x5a; // inside /tool-2's payload
    writeFileSync(file, damaged);
    const { store, records } = await openTestStore(dir);
    expect(terms(store)).toEqual(['/tool-0', '/tool-1', '/tool-3', '/tool-4', '/tool-5']);
    const error = records.find((r) => r.level === 50)!;
    expect(error.msg).toContain(`${file} is damaged at offset ${offsets[2]}`);
    expect(error.msg).toContain('checksum mismatch');
    expect(error.offset).toBe(offsets[2]);
    const aside = store.stats().setAside;
    expect(aside).toHaveLength(1);
    expect(aside[0]).toMatch(/new-terms-history\.log\.corrupt-/);
    expect(readFileSync(aside[0]!).equals(damaged)).toBe(true); // kept byte for byte
    expect(error.msg).toContain(aside[0]);
    await store.close();
    const reopened = await openTestStore(dir);
    expect(reopened.records).toEqual([]);
    expect(terms(reopened.store)).toEqual(['/tool-0', '/tool-1', '/tool-3', '/tool-4', '/tool-5']);
    await reopened.store.close();
  });

  it('finds the next record after a damaged length field', async () => {
    const { dir, file, offsets } = await populated(5);
    const damaged = readFileSync(file);
    damaged.writeUInt32LE(7, offsets[1]! + 4); // /tool-1 claims a 7-byte payload
    writeFileSync(file, damaged);
    const { store, records } = await openTestStore(dir);
    expect(terms(store)).toEqual(['/tool-0', '/tool-2', '/tool-3', '/tool-4']);
    expect(records.find((r) => r.level === 50)!.offset).toBe(offsets[1]);
    await store.close();
  });

  it('reports a damaged file header and still reads the records', async () => {
    const { dir, file } = await populated(3);
    const damaged = readFileSync(file);
    damaged[13]! ^= 1;
    writeFileSync(file, damaged);
    const { store, records } = await openTestStore(dir);
    expect(terms(store)).toEqual(['/tool-0', '/tool-1', '/tool-2']);
    expect(records.find((r) => r.level === 50)!.msg).toContain('offset 0 (16 bytes: file header checksum mismatch)');
    await store.close();
  });

  it('in read-only mode reports the damage but moves nothing', async () => {
    const { dir, file, offsets } = await populated(3);
    const damaged = readFileSync(file);
    damaged[offsets[1]! + 10]! ^= 0xff;
    writeFileSync(file, damaged);
    const { store, records } = await openTestStore(dir, { readOnly: true });
    expect(terms(store)).toEqual(['/tool-0', '/tool-2']);
    expect(records.find((r) => r.level === 50)!.msg).toContain(`damaged at offset ${offsets[1]}`);
    await store.close();
    expect(readFileSync(file).equals(damaged)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['execsentry.lock', HISTORY_FILE_NAME]);
  });
});

describe('files that are not a readable history', () => {
  it('starts empty on a zero-length file, says so, and is clean afterwards', async () => {
    const dir = stateDir();
    writeFileSync(join(dir, HISTORY_FILE_NAME), '');
    const { store, records } = await openTestStore(dir);
    expect(store.stats().tuples).toBe(0);
    expect(records.map((r) => [r.level, r.msg])).toEqual([[40, expect.stringContaining('holds no header (0 bytes')]]);
    await store.history('rule-a', FIELDS, DAY_MS).recordNew(['/x'], T0);
    await store.close();
    const reopened = await openTestStore(dir);
    expect(terms(reopened.store)).toEqual(['/x']);
    expect(reopened.records).toEqual([]);
    await reopened.store.close();
  });

  it('keeps a file from a newer format version aside, untouched, and starts empty', async () => {
    const dir = stateDir();
    const file = join(dir, HISTORY_FILE_NAME);
    const future = Buffer.concat([encodeFileHeader(7), Buffer.from('records we cannot read')]);
    writeFileSync(file, future);

    const { logger } = capturingLogger();
    await expect(openHistoryStore({ stateDir: dir, maxTuplesPerRule: 10, logger, readOnly: true })).rejects.toThrow(
      /was written by a newer execsentry \(format version 7; this one reads up to 2\); upgrade execsentry to read it/,
    );

    const { store, records } = await openTestStore(dir);
    expect(store.stats().tuples).toBe(0);
    const aside = store.stats().setAside[0]!;
    expect(aside).toMatch(/new-terms-history\.log\.v7-/);
    expect(readFileSync(aside).equals(future)).toBe(true);
    expect(records.find((r) => r.level === 50)!.msg).toContain(`kept it as ${aside} and started with an empty history`);
    await store.close();
  });

  it('keeps a file that is not a history at all aside', async () => {
    const dir = stateDir();
    writeFileSync(join(dir, HISTORY_FILE_NAME), 'hello, I am somebody else\'s file\n');
    const { store, records } = await openTestStore(dir);
    expect(store.stats().setAside[0]).toMatch(/\.foreign-/);
    expect(records.find((r) => r.level === 50)!.msg).toContain('is not an execsentry new-terms history');
    await store.close();
  });
});

describe('read-only state directory', () => {
  it('fails with a clear message when the directory is not writable (as an unprivileged user)', () => {
    const dir = stateDir();
    chmodSync(dir, 0o755);
    const state = join(dir, 'state');
    mkdirSync(state, { mode: 0o755 });
    chownSync(state, 0, 0);
    const run = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, stagedPath('test/store/fixtures/store-child.mjs'), 'open', state], {
      encoding: 'utf8',
    });
    expect(run.stdout.trim()).toBe(
      `RuntimeFailure: the state directory ${state} is not writable: permission denied (EACCES); execsentry keeps its new-terms history and lock there — point --state-dir (stateDir) at a writable directory`,
    );
    expect(run.status).toBe(1);
  });
});

describeAsRoot('read-only file system', () => {
  it('refuses to run the agent on it but lists what it holds', async () => {
    const { dir } = await populated(2);
    // A private mount namespace: the read-only bind mount never shows up on the host.
    const readOnly = (command: string[]) =>
      spawnSync(
        'unshare',
        ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"', 'sh', dir, ...command],
        { encoding: 'utf8' },
      );
    const run = readOnly([process.execPath, child, 'open', dir]);
    expect(run.stdout.trim()).toBe(
      `RuntimeFailure: the state directory ${dir} is not writable: the file system is read-only (EROFS); execsentry keeps its new-terms history and lock there — point --state-dir (stateDir) at a writable directory`,
    );
    expect(run.status).toBe(1);
    const list = readOnly([process.execPath, join(repo, 'dist/cli.js'), 'store', 'list', '--state-dir', dir]);
    expect(list.stderr).toBe('');
    expect(list.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { terms: string[] }).terms[0])).toEqual(['/tool-0', '/tool-1']);
    expect(list.status).toBe(0);
  });
});

describeAsRoot('disk full', () => {
  it('rejects the recordNew it cannot write, cuts the partial write, and writes it once space is back', () => {
    const dir = stateDir();
    const run = spawnSync(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=64k,mode=0700 tmpfs "$1" && exec "$2" "$3" disk-full "$1"', 'sh', dir, process.execPath, child],
      { encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    const [full, reopened] = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(full).toEqual({
      step: 'full',
      rejected: true,
      message: `writing the new-terms history ${join(dir, HISTORY_FILE_NAME)} failed: no space left on the device (ENOSPC)`,
      inMemory: true,
    });
    expect(reopened).toMatchObject({ terms: ['/before', 'BIG', '/after'], stats: { damagedRanges: 0, tornRecordsDropped: 0, setAside: [] } });
  });
});
