import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DAY_MS, openTestStore, storeCli } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);
const child = fileURLToPath(new URL('./fixtures/store-child.mjs', import.meta.url));
const { stateDir, afterTest, execsentry } = storeCli();

/** A real second process holding the store open (and so the lock) until killed. */
async function holder(dir: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [child, 'hold-lock', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  afterTest(() => proc.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (data: Buffer) => {
      if (data.toString().includes('ready')) resolve();
    });
    proc.on('exit', (code) => reject(new Error(`holder exited early (${code})`)));
  });
  return proc;
}

async function seed(dir: string): Promise<void> {
  const { store } = await openTestStore(dir);
  const single = store.history('rule-a', ['process.executable'], 14 * DAY_MS);
  await single.recordNew(['/usr/bin/bash'], T0);
  await single.recordNew(['/tmp/evil\n\u001b[2J\ud800'], T0 + 1000);
  await store.history('rule-b', ['process.executable', 'user.name'], 14 * DAY_MS).recordNew(['/bin/sh', 'daemon'], T0 + 2000);
  await store.close();
}

describe('state directory lock across processes', () => {
  it('names the pid of the process holding it, and frees it when that process is killed', async () => {
    const dir = stateDir();
    const proc = await holder(dir);
    expect(readFileSync(join(dir, 'execsentry.lock'), 'utf8')).toBe(`${proc.pid}\n`);
    await expect(openTestStore(dir)).rejects.toThrow(
      `the state directory ${dir} is in use by another execsentry (pid ${proc.pid}) holding ${join(dir, 'execsentry.lock')}; stop it first or use another --state-dir`,
    );
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
    const { store } = await openTestStore(dir);
    await store.close();
  });

  it('makes store list and store forget refuse while an agent holds it', async () => {
    const dir = stateDir();
    await seed(dir);
    const proc = await holder(dir);
    for (const args of [['list'], ['forget', '--rule', 'rule-a']]) {
      const run = execsentry('store', ...args, '--state-dir', dir);
      expect(run.stderr).toBe(
        `execsentry: the state directory ${dir} is in use by another execsentry (pid ${proc.pid}) holding ${join(dir, 'execsentry.lock')}; stop it first or use another --state-dir\n`,
      );
      expect(run.status).toBe(1);
      expect(run.stdout).toBe('');
    }
  });
});

describe('execsentry store list / forget', () => {
  it('lists every tuple as NDJSON, exact whatever the characters', async () => {
    const dir = stateDir();
    await seed(dir);
    const run = execsentry('store', 'list', '--state-dir', dir);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as unknown)).toEqual([
      { rule_id: 'rule-a', new_terms_fields: ['process.executable'], terms: ['/usr/bin/bash'], last_seen: '2026-01-01T00:00:00.000Z' },
      { rule_id: 'rule-a', new_terms_fields: ['process.executable'], terms: ['/tmp/evil\n\u001b[2J\ud800'], last_seen: '2026-01-01T00:00:01.000Z' },
      { rule_id: 'rule-b', new_terms_fields: ['process.executable', 'user.name'], terms: ['/bin/sh', 'daemon'], last_seen: '2026-01-01T00:00:02.000Z' },
    ]);
    // one object per line: the control characters are JSON escapes, not raw bytes
    expect(run.stdout.split('\n')).toHaveLength(4);
    expect(run.stdout).not.toContain('\u001b');
    const only = execsentry('store', 'list', '--rule', 'rule-b', '--state-dir', dir);
    expect(only.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('forgets tuples (N values per tuple for N fields) and whole rules', async () => {
    const dir = stateDir();
    await seed(dir);
    const some = execsentry('store', 'forget', '--rule', 'rule-a', '--term', '/usr/bin/bash', '--term', '/nope', '--state-dir', dir);
    expect(some.status).toBe(0);
    expect(JSON.parse(some.stdout)).toEqual({ rule_id: 'rule-a', forgotten: 1, not_found: [['/nope']] });
    const pair = execsentry('store', 'forget', '--rule', 'rule-b', '--term', '/bin/sh', 'daemon', '--state-dir', dir);
    expect(JSON.parse(pair.stdout)).toEqual({ rule_id: 'rule-b', forgotten: 1, not_found: [] });
    const whole = execsentry('store', 'forget', '--rule', 'rule-a', '--state-dir', dir);
    expect(JSON.parse(whole.stdout)).toEqual({ rule_id: 'rule-a', forgotten: 1, not_found: [] });
    const { store } = await openTestStore(dir);
    expect([...store.tuples()]).toEqual([]);
    await store.close();
  });

  it('says what is wrong with a forget it cannot do', async () => {
    const dir = stateDir();
    await seed(dir);
    const unknown = execsentry('store', 'forget', '--rule', 'no-such-rule', '--state-dir', dir);
    expect(unknown.stderr).toBe(`execsentry: no new-terms history for rule no-such-rule in ${dir}\n`);
    expect(unknown.status).toBe(1);
    const odd = execsentry('store', 'forget', '--rule', 'rule-b', '--term', '/bin/sh', '--state-dir', dir);
    expect(odd.stderr).toBe('execsentry: the history of this rule has 2 fields: give --term 2 times per tuple (got 1)\n');
    expect(odd.status).toBe(2);
    const missing = execsentry('store', 'list', '--state-dir', join(dir, 'absent'));
    expect(missing.stderr).toBe(`execsentry: cannot read the state directory ${join(dir, 'absent')}: no such file or directory (ENOENT)\n`);
    expect(missing.status).toBe(1);
  });
});
