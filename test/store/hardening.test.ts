import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, linkSync, lstatSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RuntimeFailure } from '../../src/errors.js';
import { HISTORY_FILE_NAME, LOCK_FILE_NAME } from '../../src/store/index.js';
import { execEvent } from '../engine/helpers.js';
import { isRoot } from '../helpers/privilege.js';
import { DAY_MS, openTestStore, REPO, storeCli } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);
const FIELDS = ['process.executable'];
/**
 * Written by execsentry's format-version-1 store (before 64-bit times): rule-a (1 field, 3650-day window)
 * holds /usr/bin/bash (recorded at T0, touched at T0 + 1 day: two records), a tuple of awkward characters at
 * T0 + 1 s and /opt/future recorded as 2200-01-01, which version 1 stored as 0xffffffff (2106-02-07); rule-b
 * (2 fields) holds [/bin/sh, daemon] at T0 + 2 s.
 */
const V1_FIXTURE = fileURLToPath(new URL('./fixtures/new-terms-history-v1.bin', import.meta.url));
const V1_MAX_SECONDS = 0xffffffff;
const { stateDir, execsentry } = storeCli();

/** A file outside the state directory that a planted link points at (root's, when the tests run as root). */
function precious(): { path: string; content: string } {
  const path = join(stateDir(), 'precious');
  const content = 'root:$y$j9T$secret:20000:0:99999:7:::\n';
  writeFileSync(path, content, { mode: 0o600 });
  return { path, content };
}

describe('links planted in the state directory are never followed', () => {
  it('refuses a lock file that is a symbolic link, and its target keeps its content', async () => {
    const target = precious();
    // The tester's set-up: a directory others can write to, where one of them planted the link.
    const dir = stateDir();
    chmodSync(dir, 0o777);
    const lock = join(dir, LOCK_FILE_NAME);
    symlinkSync(target.path, lock);
    const refusal = new RuntimeFailure(
      `the lock file ${lock} is a symbolic link (to ${target.path}); execsentry never follows links in its state directory: remove it and find out who put it there`,
    );
    await expect(openTestStore(dir, { allowInsecureStateDir: true })).rejects.toThrow(refusal);
    await expect(openTestStore(dir, { allowInsecureStateDir: true, readOnly: true })).rejects.toThrow(refusal);
    // In a private directory (planted before it was made private) it is refused all the same.
    chmodSync(dir, 0o700);
    await expect(openTestStore(dir)).rejects.toThrow(refusal);
    expect(readFileSync(target.path, 'utf8')).toBe(target.content);
    expect(statSync(target.path).mode & 0o777).toBe(0o600);
    expect(lstatSync(lock).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir)).toEqual([LOCK_FILE_NAME]);

    const run = execsentry('store', 'list', '--state-dir', dir);
    expect(run.stderr).toBe(`execsentry: ${refusal.message}\n`);
    expect(run.status).toBe(1);
  });

  it('sets a history file that is a symbolic link aside without reading or writing through it', async () => {
    const elsewhere = stateDir();
    const other = await openTestStore(elsewhere);
    await other.store.history('rule-a', FIELDS, DAY_MS).recordNew(['/elsewhere'], T0);
    await other.store.close();
    const target = join(elsewhere, HISTORY_FILE_NAME);
    const before = readFileSync(target);

    const dir = stateDir();
    const file = join(dir, HISTORY_FILE_NAME);
    symlinkSync(target, file);
    await expect(openTestStore(dir, { readOnly: true })).rejects.toThrow(
      new RuntimeFailure(`new-terms history ${file} is a symbolic link (to ${target}); execsentry never follows links in its state directory`),
    );
    const { store, records } = await openTestStore(dir);
    expect([...store.tuples()]).toEqual([]);
    const aside = store.stats().setAside;
    expect(aside).toHaveLength(1);
    expect(aside[0]).toMatch(/new-terms-history\.log\.symlink-/);
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      [50, `new-terms history ${file} is a symbolic link (to ${target}); execsentry never follows links in its state directory; kept it as ${aside[0]} and started with an empty history`],
    ]);
    await store.history('rule-a', FIELDS, DAY_MS).recordNew(['/mine'], T0);
    await store.close();

    expect(readFileSync(target).equals(before)).toBe(true);
    expect(lstatSync(aside[0]!).isSymbolicLink()).toBe(true);
    expect(lstatSync(file).isFile()).toBe(true);
    const reopened = await openTestStore(dir);
    expect([...reopened.store.tuples()].map((t) => t.terms[0])).toEqual(['/mine']);
    await reopened.store.close();
  });
});

describe('other files planted in the state directory', () => {
  it('refuses a lock file that is a hard link to another file, which keeps its content', async () => {
    const target = precious();
    const dir = stateDir();
    const lock = join(dir, LOCK_FILE_NAME);
    linkSync(target.path, lock);
    await expect(openTestStore(dir)).rejects.toThrow(
      new RuntimeFailure(`the lock file ${lock} is a hard link (one of 2 names of the same file): remove it and find out who put it there`),
    );
    expect(readFileSync(target.path, 'utf8')).toBe(target.content);
  });

  it('refuses a FIFO as the lock file and sets one aside as the history file, without hanging on either', async () => {
    const dir = stateDir();
    const lock = join(dir, LOCK_FILE_NAME);
    expect(spawnSync('mkfifo', [lock]).status).toBe(0);
    await expect(openTestStore(dir)).rejects.toThrow(new RuntimeFailure(`the lock file ${lock} is not a regular file (a FIFO): remove it and find out who put it there`));
    await expect(openTestStore(dir, { readOnly: true })).rejects.toThrow(/is not a regular file/);
    rmSync(lock);
    const file = join(dir, HISTORY_FILE_NAME);
    expect(spawnSync('mkfifo', [file]).status).toBe(0);
    const { store, records } = await openTestStore(dir);
    const aside = store.stats().setAside[0]!;
    expect(aside).toMatch(/new-terms-history\.log\.foreign-/);
    expect(lstatSync(aside).isFIFO()).toBe(true);
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      [50, `new-terms history ${file} is not a regular file (a FIFO); kept it as ${aside} and started with an empty history`],
    ]);
    await store.close();
  });
});

describe('state directories other users could plant files in', () => {
  it('refuses one that group or others can write to, sticky or not, naming mode, owner and the fix', async () => {
    const owner = `${userInfo().username} (uid ${process.geteuid!()})`;
    for (const [mode, who] of [
      [0o777, 'its group and others'],
      [0o1777, 'its group and others'],
      [0o770, 'its group'],
      [0o703, 'others'],
    ] as const) {
      const dir = stateDir();
      chmodSync(dir, mode);
      const shown = mode.toString(8).padStart(4, '0');
      await expect(openTestStore(dir), shown).rejects.toThrow(
        new RuntimeFailure(
          `the state directory ${dir} (mode ${shown}, owner ${owner}) is writable by ${who}, so someone else could plant files where execsentry keeps its lock and history; chmod 700 ${dir}`,
        ),
      );
      await expect(openTestStore(dir, { readOnly: true }), shown).rejects.toThrow(/is writable by/);
      expect(readdirSync(dir), shown).toEqual([]);
    }
  });

  it('accepts one with allowInsecureStateDir, with the warning', async () => {
    const dir = stateDir();
    chmodSync(dir, 0o1777);
    const { store, records } = await openTestStore(dir, { allowInsecureStateDir: true });
    expect(records.map((r) => [r.level, r.msg, r.mode])).toEqual([[40, 'state directory is accessible to other users; 0700 is recommended', '777']]);
    await store.close();
  });

  it('store list and forget and rules test refuse it, and accept it with --allow-insecure-state-dir', () => {
    const dir = stateDir();
    chmodSync(dir, 0o777);
    const events = join(stateDir(), 'events.ndjson');
    writeFileSync(events, JSON.stringify(execEvent('2024-05-01T10:00:00.000Z')) + '\n');
    const commands = [
      ['store', 'list', '--state-dir', dir],
      ['store', 'forget', '--rule', '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb', '--state-dir', dir],
      ['rules', 'test', '--rules', join(REPO, 'rules'), '--events', events, '--state-dir', dir],
    ];
    for (const args of commands) {
      const refused = execsentry(...args);
      expect(refused.stderr, args.join(' ')).toMatch(new RegExp(`^execsentry: the state directory ${dir} \\(mode 0777, .*; chmod 700 ${dir}\\n$`));
      expect(refused.status, args.join(' ')).toBe(1);
    }
    // rules test records the alert's tuple, which store forget then finds
    for (const args of [commands[2]!, commands[0]!, commands[1]!]) {
      const allowed = execsentry(...args, '--allow-insecure-state-dir');
      expect(allowed.status, `${args.join(' ')}: ${allowed.stderr}`).toBe(0);
      expect(allowed.stdout, args.join(' ')).not.toBe('');
    }
  });

  it.skipIf(!isRoot)('refuses one owned by another user, naming both users (needs root to chown)', async () => {
    const dir = stateDir();
    chownSync(dir, 65534, 65534);
    await expect(openTestStore(dir)).rejects.toThrow(
      new RuntimeFailure(
        `the state directory ${dir} (mode 0700, owner nobody (uid 65534)) is not owned by root (uid 0), the user execsentry runs as, so someone else could plant files where execsentry keeps its lock and history; run execsentry as nobody, or chown root ${dir}`,
      ),
    );
    await expect(openTestStore(dir, { readOnly: true })).rejects.toThrow(/is not owned by root \(uid 0\)/);
    expect(readdirSync(dir)).toEqual([]);
    const { store, records } = await openTestStore(dir, { allowInsecureStateDir: true });
    expect(records.map((r) => [r.level, r.msg, r.owner])).toEqual([[40, 'state directory is accessible to other users; 0700 is recommended', 65534]]);
    await store.close();
  });
});

describe('times on disk', () => {
  it('keeps any JavaScript date exactly (to the second) across a reopen', async () => {
    const dir = stateDir();
    const dates = [Date.UTC(2200, 0, 1), Date.UTC(1900, 0, 1, 12), -8.64e15, 8.64e15, Date.UTC(2106, 1, 8)];
    const exact = { maxFutureMs: Number.POSITIVE_INFINITY };
    const { store } = await openTestStore(dir, exact);
    const rule = store.history('rule-a', FIELDS, 100_000 * 365 * DAY_MS);
    for (const [i, at] of dates.entries()) await rule.recordNew([`/t${i}`], at);
    await store.close();
    const reopened = await openTestStore(dir, exact);
    const reread = reopened.store.history('rule-a', FIELDS, 100_000 * 365 * DAY_MS);
    expect(dates.map((_, i) => reread.lastSeen([`/t${i}`]))).toEqual(dates);
    expect(reopened.records).toEqual([]);
    await reopened.store.close();
  });

  it('cuts a sighting dated after the machine clock back to it (+ maxFutureMs), so it silences for one window at most', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const window = 14 * DAY_MS;
    const rule = store.history('rule-a', FIELDS, window);
    const before = Date.now();
    await rule.recordNew(['/from-the-future'], Date.UTC(2200, 0, 1));
    rule.touch(['/touched'], Date.UTC(2300, 0, 1));
    const after = Date.now();
    for (const term of ['/from-the-future', '/touched']) {
      const lastSeen = rule.lastSeen([term])!;
      expect(lastSeen).toBeGreaterThanOrEqual(Math.floor((before + 60_000) / 1000) * 1000);
      expect(lastSeen).toBeLessThanOrEqual(after + 60_000);
      // the engine's check for an event a window and two minutes from now: not in the window, so it alerts
      expect(lastSeen >= after + 2 * 60_000).toBe(false);
    }
    await store.close();
    const reopened = await openTestStore(dir);
    expect(reopened.store.history('rule-a', FIELDS, window).lastSeen(['/from-the-future'])).toBeLessThanOrEqual(after + 60_000);
    await reopened.store.close();
  });

  it('cuts back a future-dated sighting already on disk when opened for writing, and rewrites the file', async () => {
    const dir = stateDir();
    const exact = { maxFutureMs: Number.POSITIVE_INFINITY };
    // e.g. `rules test --state-dir` of future-dated events, or a clock that was set ahead and corrected
    const yesterday = Math.floor(Date.now() / 1000) * 1000 - DAY_MS;
    const replayed = await openTestStore(dir, exact);
    await replayed.store.history('rule-a', FIELDS, 14 * DAY_MS).recordNew(['/from-the-future'], Date.UTC(2200, 0, 1));
    await replayed.store.history('rule-a', FIELDS, 14 * DAY_MS).recordNew(['/yesterday'], yesterday);
    await replayed.store.close();

    const listed = await openTestStore(dir, { readOnly: true });
    expect([...listed.store.tuples()].map((t) => t.lastSeenMs)).toEqual([Date.UTC(2200, 0, 1), yesterday]);
    await listed.store.close();

    const { store, records } = await openTestStore(dir);
    const opened = Date.now();
    const lastSeen = store.history('rule-a', FIELDS, 14 * DAY_MS).lastSeen(['/from-the-future'])!;
    expect(lastSeen).toBeLessThanOrEqual(opened + 60_000);
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      [
        40,
        `new-terms history ${join(dir, HISTORY_FILE_NAME)}: 1 sighting(s) dated after the machine clock (the latest 2200-01-01T00:00:00.000Z) cut back to ${new Date(lastSeen).toISOString()}`,
      ],
    ]);
    await store.close();
    const reread = await openTestStore(dir, exact);
    expect(reread.store.history('rule-a', FIELDS, 14 * DAY_MS).lastSeen(['/from-the-future'])).toBe(lastSeen);
    expect(reread.store.history('rule-a', FIELDS, 14 * DAY_MS).lastSeen(['/yesterday'])).toBe(yesterday);
    await reread.store.close();
  });

  it('rules test replays future-dated events as dated (its clock is the events, not the machine)', () => {
    const dir = stateDir();
    const events = join(dir, 'events.ndjson');
    const first = '2300-01-01T00:00:00.000Z';
    const second = new Date(Date.parse(first) + 25 * DAY_MS).toISOString();
    writeFileSync(events, [execEvent(first), execEvent(second), execEvent(second)].map((e) => JSON.stringify(e)).join('\n') + '\n');
    const run = execsentry('rules', 'test', '--rules', join(REPO, 'rules'), '--events', events);
    expect(run.status, run.stderr).toBe(0);
    // outside the 14-day window: the second sighting alerts again; the third is within it
    expect(run.stdout.trimEnd().split('\n').map((line) => (JSON.parse(line) as { '@timestamp': string })['@timestamp'])).toEqual([first, second]);
  });
});

describe('format version 1 files', () => {
  function v1StateDir(): { dir: string; file: string } {
    const dir = stateDir();
    const file = join(dir, HISTORY_FILE_NAME);
    copyFileSync(V1_FIXTURE, file);
    return { dir, file };
  }

  const v1Tuples = [
    { ruleId: 'rule-a', terms: ['/tmp/evil\n\u001b[2J\ud800'], lastSeenMs: T0 + 1000 },
    { ruleId: 'rule-a', terms: ['/usr/bin/bash'], lastSeenMs: T0 + DAY_MS },
    { ruleId: 'rule-b', terms: ['/bin/sh', 'daemon'], lastSeenMs: T0 + 2000 },
  ];

  function withoutFuture(tuples: Iterable<{ ruleId: string; terms: string[]; lastSeenMs: number }>) {
    return [...tuples].filter((t) => t.terms[0] !== '/opt/future').map(({ ruleId, terms, lastSeenMs }) => ({ ruleId, terms, lastSeenMs }));
  }

  it('are read as they are by store list, and left untouched', async () => {
    const { dir, file } = v1StateDir();
    const { store, records } = await openTestStore(dir, { readOnly: true });
    expect(records).toEqual([]);
    expect(withoutFuture(store.tuples())).toEqual(v1Tuples);
    expect(store.history('rule-a', FIELDS, 3650 * DAY_MS).lastSeen(['/opt/future'])).toBe(V1_MAX_SECONDS * 1000);
    await store.close();
    expect(readFileSync(file).equals(readFileSync(V1_FIXTURE))).toBe(true);
  });

  it('load with everything recorded, and are rewritten as the current version', async () => {
    const { dir, file } = v1StateDir();
    const { store, records } = await openTestStore(dir);
    expect(withoutFuture(store.tuples())).toEqual(v1Tuples);
    // version 1's 2106 (its largest time, where a later date was clamped) is a future date like any other
    const future = store.history('rule-a', FIELDS, 3650 * DAY_MS).lastSeen(['/opt/future'])!;
    expect(future).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      [40, expect.stringContaining('1 sighting(s) dated after the machine clock (the latest 2106-02-07T06:28:15.000Z) cut back to')],
      [30, `new-terms history ${file} was in format version 1; rewrote it as version 2`],
    ]);
    expect(readFileSync(file).readUInt32LE(8)).toBe(2);
    await store.history('rule-a', FIELDS, 3650 * DAY_MS).recordNew(['/after-upgrade'], T0 + 5000);
    await store.close();

    const reopened = await openTestStore(dir);
    expect(reopened.records).toEqual([]);
    expect(withoutFuture(reopened.store.tuples())).toEqual([
      ...v1Tuples.slice(0, 2),
      { ruleId: 'rule-a', terms: ['/after-upgrade'], lastSeenMs: T0 + 5000 },
      v1Tuples[2],
    ]);
    expect(reopened.store.history('rule-a', FIELDS, 3650 * DAY_MS).lastSeen(['/opt/future'])).toBe(future);
    expect(reopened.store.stats()).toMatchObject({ damagedRanges: 0, tornRecordsDropped: 0, setAside: [] });
    await reopened.store.close();
  });
});
