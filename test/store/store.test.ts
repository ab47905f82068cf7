import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RuntimeFailure } from '../../src/errors.js';
import { HISTORY_FILE_NAME, openHistoryStore } from '../../src/store/index.js';
import { DAY_MS, capturingLogger, openTestStore, tempStateDir } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1); // a whole second
const FIELDS = ['process.executable'];
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function stateDir(): string {
  const { dir, cleanup } = tempStateDir();
  cleanups.push(cleanup);
  return dir;
}

describe('history store', () => {
  it('keeps recorded tuples across a reopen, at 1-second resolution', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, 14 * DAY_MS);
    expect(rule.lastSeen(['/bin/bash'])).toBeUndefined();
    await rule.recordNew(['/bin/bash'], T0 + 999);
    expect(rule.lastSeen(['/bin/bash'])).toBe(T0);
    await store.close();

    const reopened = await openTestStore(dir);
    expect(reopened.store.history('rule-a', FIELDS, 14 * DAY_MS).lastSeen(['/bin/bash'])).toBe(T0);
    expect(reopened.records.filter((r) => r.level >= 40)).toEqual([]);
    await reopened.store.close();
  });

  it('keeps one history per rule id and field list', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    await store.history('rule-a', FIELDS, DAY_MS).recordNew(['/bin/sh'], T0);
    expect(store.history('rule-b', FIELDS, DAY_MS).lastSeen(['/bin/sh'])).toBeUndefined();
    expect(store.history('rule-a', ['process.name'], DAY_MS).lastSeen(['/bin/sh'])).toBeUndefined();
    expect(store.history('rule-a', FIELDS, DAY_MS).lastSeen(['/bin/sh'])).toBe(T0);
    // field names are length-prefixed too: ["a:b"] and ["a","b"]-like splits never meet
    const pair = store.history('rule-c', ['x', 'y'], DAY_MS);
    await pair.recordNew(['a:b', 'c'], T0);
    expect(pair.lastSeen(['a', 'b:c'])).toBeUndefined();
    expect(pair.lastSeen(['a:b', 'c'])).toBe(T0);
    expect(() => pair.lastSeen(['only-one'])).toThrow(/1 values for 2 new_terms_fields/);
    expect(store.stats().rules).toBe(4);
    await store.close();
  });

  it('shares one write and fsync among the recordNew calls of one tick', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, DAY_MS);
    const before = store.stats().commits;
    await Promise.all(Array.from({ length: 500 }, (_, i) => rule.recordNew([`/opt/tool-${i}`], T0)));
    expect(store.stats().commits - before).toBe(1);
    expect(store.stats().recordsWritten).toBe(501); // the history's definition + 500 sightings
    await store.close();
  });

  it('updates memory at once on recordNew, before the write completes', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, DAY_MS);
    const written = rule.recordNew(['/bin/zsh'], T0);
    expect(rule.lastSeen(['/bin/zsh'])).toBe(T0);
    await written;
    await store.close();
  });

  it('batches touches: memory at once, one record per tuple per flush', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, 30 * DAY_MS);
    await rule.recordNew(['/bin/bash'], T0);
    const written = store.stats().recordsWritten;
    for (let i = 1; i <= 1000; i++) rule.touch(['/bin/bash'], T0 + i * 1000);
    expect(rule.lastSeen(['/bin/bash'])).toBe(T0 + 1000 * 1000);
    expect(store.stats().pendingTouches).toBe(1);
    expect(store.stats().recordsWritten).toBe(written);
    await store.flush();
    expect(store.stats().recordsWritten).toBe(written + 1);
    expect(store.stats().pendingTouches).toBe(0);
    // an older sighting never moves last-seen back
    rule.touch(['/bin/bash'], T0);
    expect(rule.lastSeen(['/bin/bash'])).toBe(T0 + 1000 * 1000);
    await store.close();
    const reopened = await openTestStore(dir);
    expect(reopened.store.history('rule-a', FIELDS, 30 * DAY_MS).lastSeen(['/bin/bash'])).toBe(T0 + 1000 * 1000);
    await reopened.store.close();
  });

  it('writes pending touches on close', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    store.history('rule-a', FIELDS, DAY_MS).touch(['/usr/bin/env'], T0);
    await store.close();
    const reopened = await openTestStore(dir);
    expect(reopened.store.history('rule-a', FIELDS, DAY_MS).lastSeen(['/usr/bin/env'])).toBe(T0);
    await reopened.store.close();
  });

  it('rejects a tuple too large to write, and does not remember it', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, DAY_MS);
    const huge = '/' + 'x'.repeat(64 * 1024 * 1024);
    await expect(rule.recordNew([huge], T0)).rejects.toThrow(/exceeds the 67108864-byte limit/);
    expect(rule.lastSeen([huge])).toBeUndefined();
    await rule.recordNew(['/bin/sh'], T0);
    await store.close();
  });

  it('rejects use after close, and closes only once', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, DAY_MS);
    await Promise.all([store.close(), store.close()]);
    await expect(rule.recordNew(['/bin/sh'], T0)).rejects.toThrow(/closed/);
    expect(() => rule.touch(['/bin/sh'], T0)).toThrow(/closed/);
  });

  it('creates its directory 0700 and its files 0600', async () => {
    const dir = join(stateDir(), 'nested', 'state');
    const { store } = await openTestStore(dir);
    await store.history('rule-a', FIELDS, DAY_MS).recordNew(['/bin/sh'], T0);
    await store.compact();
    await store.close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(dir)) expect([name, statSync(join(dir, name)).mode & 0o777]).toEqual([name, 0o600]);
  });
});

describe('state directory checks', () => {
  it('refuses a state directory that is a file', async () => {
    const file = join(stateDir(), 'not-a-dir');
    writeFileSync(file, '');
    await expect(openTestStore(file)).rejects.toThrow(new RuntimeFailure(`the state directory ${file} is not a directory`));
  });

  it('warns about an existing directory other users can read, without changing it', async () => {
    const dir = stateDir();
    chmodSync(dir, 0o755);
    const { store, records } = await openTestStore(dir);
    expect(records.map((r) => [r.level, r.msg, r.mode])).toEqual([[40, 'state directory is accessible to other users; 0700 is recommended', '755']]);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    await store.close();
  });
});

describe('windows and compaction', () => {
  it('drops tuples whose last-seen fell out of the window, on the clock of the newest sighting', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, 14 * DAY_MS);
    await rule.recordNew(['/old'], T0);
    await rule.recordNew(['/kept'], T0 + 7 * DAY_MS);
    await rule.recordNew(['/new'], T0 + 20 * DAY_MS);
    await store.compact();
    expect(rule.lastSeen(['/old'])).toBeUndefined();
    expect(rule.lastSeen(['/kept'])).toBe(T0 + 7 * DAY_MS);
    expect(store.stats()).toMatchObject({ expired: 1, tuples: 2, compactions: 1 });
    await store.close();
    const reopened = await openTestStore(dir);
    expect([...reopened.store.tuples()].map((t) => t.terms[0])).toEqual(['/kept', '/new']);
    await reopened.store.close();
  });

  it('never expires by a wall clock that is ahead of the history (replays of old events)', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, 14 * DAY_MS);
    await rule.recordNew(['/replayed'], Date.UTC(2021, 5, 1));
    await store.compact();
    expect(rule.lastSeen(['/replayed'])).toBe(Date.UTC(2021, 5, 1));
    await store.close();
  });

  it('rewrites a grown file into one record per live tuple', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir, { compactionMinBytes: 1 << 30 });
    const rule = store.history('rule-a', FIELDS, 30 * DAY_MS);
    await Promise.all(Array.from({ length: 100 }, (_, i) => rule.recordNew([`/usr/bin/tool-${i}`], T0)));
    const oneCopy = store.stats().diskBytes;
    for (let round = 1; round <= 20; round++) {
      for (let i = 0; i < 100; i++) rule.touch([`/usr/bin/tool-${i}`], T0 + round * 1000);
      await store.flush();
    }
    expect(store.stats().diskBytes).toBeGreaterThan(15 * oneCopy);
    await store.compact();
    expect(store.stats().diskBytes).toBe(oneCopy);
    expect(statSync(join(dir, HISTORY_FILE_NAME)).size).toBe(oneCopy);
    expect(readdirSync(dir).sort()).toEqual(['execsentry.lock', HISTORY_FILE_NAME]);
    await store.close();
    const reopened = await openTestStore(dir);
    const reread = reopened.store.history('rule-a', FIELDS, 30 * DAY_MS);
    for (let i = 0; i < 100; i++) expect(reread.lastSeen([`/usr/bin/tool-${i}`])).toBe(T0 + 20_000);
    await reopened.store.close();
  });

  it('compacts by itself when the file outgrows a multiple of the live size', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir, { compactionMinBytes: 4096, compactionRatio: 2 });
    const rule = store.history('rule-a', FIELDS, 30 * DAY_MS);
    await Promise.all(Array.from({ length: 50 }, (_, i) => rule.recordNew([`/usr/bin/tool-${i}`], T0)));
    expect(store.stats().compactions).toBe(0);
    for (let round = 1; round <= 20 && store.stats().compactions === 0; round++) {
      for (let i = 0; i < 50; i++) rule.touch([`/usr/bin/tool-${i}`], T0 + round * 1000);
      await store.flush();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await store.flush();
    expect(store.stats().compactions).toBeGreaterThan(0);
    await store.close();
  });

  it('loses nothing recorded while a compaction is writing its snapshot', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, 30 * DAY_MS);
    await Promise.all(Array.from({ length: 30_000 }, (_, i) => rule.recordNew([`/usr/lib/pkg/bin/tool-${i}`], T0)));
    const compaction = store.compact();
    const during: Promise<void>[] = [];
    for (let batch = 0; batch < 20; batch++) {
      for (let i = 0; i < 50; i++) during.push(rule.recordNew([`/during/${batch}/${i}`], T0 + 1000));
      rule.touch([`/usr/lib/pkg/bin/tool-${batch}`], T0 + 2000);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all([compaction, ...during]);
    await store.close();
    const reopened = await openTestStore(dir);
    const reread = reopened.store.history('rule-a', FIELDS, 30 * DAY_MS);
    expect(reopened.store.stats().tuples).toBe(31_000);
    for (let batch = 0; batch < 20; batch++) {
      expect(reread.lastSeen([`/during/${batch}/49`])).toBe(T0 + 1000);
      expect(reread.lastSeen([`/usr/lib/pkg/bin/tool-${batch}`])).toBe(T0 + 2000);
    }
    await reopened.store.close();
  });
});

describe('per-rule cap', () => {
  it('evicts the least recently seen first and counts it', async () => {
    const dir = stateDir();
    const { store, records } = await openTestStore(dir, { maxTuplesPerRule: 3 });
    const rule = store.history('rule-a', FIELDS, 30 * DAY_MS);
    const other = store.history('rule-b', FIELDS, 30 * DAY_MS);
    for (let i = 1; i <= 3; i++) await rule.recordNew([`/t${i}`], T0 + i * 1000);
    rule.touch(['/t1'], T0 + 10_000); // /t1 is now the most recent
    await rule.recordNew(['/t4'], T0 + 11_000);
    expect(rule.lastSeen(['/t2'])).toBeUndefined();
    expect(['/t1', '/t3', '/t4'].map((t) => rule.lastSeen([t]) !== undefined)).toEqual([true, true, true]);
    await other.recordNew(['/t9'], T0); // the cap is per rule
    expect(store.stats()).toMatchObject({ evicted: 1, tuples: 4 });
    expect(records.some((r) => r.level === 40 && /evicting the least recently seen/.test(r.msg))).toBe(true);
    await store.close();
    const reopened = await openTestStore(dir, { maxTuplesPerRule: 3 });
    expect([...reopened.store.tuples('rule-a')].map((t) => t.terms[0]).sort()).toEqual(['/t1', '/t3', '/t4']);
    await reopened.store.close();
  });
});

describe('forget', () => {
  it('forgets single tuples or a whole rule, durably', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const rule = store.history('rule-a', FIELDS, DAY_MS);
    await rule.recordNew(['/a'], T0);
    await rule.recordNew(['/b'], T0);
    await store.history('rule-b', FIELDS, DAY_MS).recordNew(['/a'], T0);
    expect(await store.forget('rule-a', [['/a'], ['/missing']])).toEqual({ forgotten: 1, notFound: [['/missing']] });
    expect(rule.lastSeen(['/a'])).toBeUndefined();
    await store.close();
    const reopened = await openTestStore(dir);
    expect([...reopened.store.tuples()].map((t) => `${t.ruleId} ${t.terms[0]}`)).toEqual(['rule-a /b', 'rule-b /a']);
    expect(await reopened.store.forget('rule-b')).toEqual({ forgotten: 1, notFound: [] });
    await reopened.store.close();
    const again = await openTestStore(dir);
    expect(again.store.summaries().map((s) => s.ruleId)).toEqual(['rule-a']);
    await again.store.close();
  });
});

describe('state directory lock (same process, separate open file)', () => {
  it('refuses a second store on the same directory, naming the holder pid', async () => {
    const dir = stateDir();
    const { store } = await openTestStore(dir);
    const { logger } = capturingLogger();
    await expect(openHistoryStore({ stateDir: dir, maxTuplesPerRule: 10, logger })).rejects.toThrow(
      new RegExp(`in use by another execsentry \\(pid ${process.pid}\\)`),
    );
    await store.close();
    const second = await openHistoryStore({ stateDir: dir, maxTuplesPerRule: 10, logger });
    await second.close();
  });
});
