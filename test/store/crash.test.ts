import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HISTORY_FILE_NAME } from '../../src/store/index.js';
import { DAY_MS, openTestStore, tempStateDir } from './helpers.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/store-child.mjs', import.meta.url));
// STORE_CRASH_ROUNDS=500 for a longer soak; 40 keeps the suite around 15 s.
const ROUNDS = Number(process.env.STORE_CRASH_ROUNDS ?? 40);

beforeAll(() => {
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repo, encoding: 'utf8' });
  expect(existsSync(join(repo, 'dist/store/index.js')), build.stdout).toBe(true);
}, 120_000);

interface Acknowledged {
  h: 1 | 2;
  tuple: string[];
  at: number;
}

/**
 * Runs the writer until a SIGKILL and returns what it acknowledged. The kill comes `killAfterMs` after the
 * writer reported its store open ("ready"): anywhere in a group commit, a batch of touches, a compaction's
 * snapshot or its rename. With `duringOpen` it comes that long after spawning instead, which on a growing
 * history lands while the store is being loaded and recovered.
 */
function runAndKill(
  stateDir: string,
  seed: number,
  killAfterMs: number,
  duringOpen: boolean,
): Promise<{ acknowledged: Acknowledged[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, 'crash-writer', stateDir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = () => (timer ??= setTimeout(() => proc.kill('SIGKILL'), killAfterMs));
    if (duringOpen) arm();
    proc.stdout.setEncoding('utf8').on('data', (data: string) => {
      stdout += data;
      if (stdout.startsWith('ready\n')) arm();
    });
    proc.stderr.setEncoding('utf8').on('data', (data: string) => (stderr += data));
    proc.on('error', reject);
    proc.on('close', (_code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') return reject(new Error(`writer ended by itself (${signal}): ${stderr}`));
      const complete = stdout.slice(0, stdout.lastIndexOf('\n') + 1);
      const acknowledged = complete
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Acknowledged);
      resolve({ acknowledged, stderr });
    });
  });
}

describe('crash safety with real processes killed by SIGKILL', () => {
  const { dir, cleanup } = tempStateDir();
  afterAll(cleanup);

  it(`keeps every acknowledged tuple and opens cleanly, over ${ROUNDS} kills at random moments`, async () => {
    const everAcknowledged: Acknowledged[] = [];
    let roundsWithAcks = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const duringOpen = round % 8 === 0;
      const killAfterMs = duringOpen ? 30 + Math.floor(Math.random() * 150) : 10 + Math.floor(Math.random() * 300);
      const { acknowledged, stderr } = await runAndKill(dir, round, killAfterMs, duringOpen);
      const context = `round ${round}, killed ${killAfterMs} ms after ${duringOpen ? 'spawning' : 'ready'}, writer stderr: ${stderr}`;
      expect(stderr, context).not.toMatch(/"level":50/);
      if (acknowledged.length > 0) roundsWithAcks++;
      everAcknowledged.push(...acknowledged);

      const { store, records } = await openTestStore(dir);
      try {
        expect(records.filter((r) => r.level >= 50), context).toEqual([]);
        expect(store.stats(), context).toMatchObject({ damagedRanges: 0, orphanSightings: 0, setAside: [] });
        const histories = {
          1: store.history('crash-rule-1', ['process.executable'], 365 * DAY_MS),
          2: store.history('crash-rule-2', ['process.executable', 'user.name'], 365 * DAY_MS),
        };
        const missing = everAcknowledged.filter(({ h, tuple, at }) => !((histories[h].lastSeen(tuple) ?? -1) >= Math.floor(at / 1000) * 1000));
        expect(missing, context).toEqual([]);
      } finally {
        await store.close();
      }
    }
    expect(readdirSync(dir).filter((name) => name.includes('.corrupt') || name.includes('.foreign'))).toEqual([]);
    expect(readdirSync(dir)).toContain(HISTORY_FILE_NAME);
    // the kills must have landed while work was acknowledged, or the test proves nothing
    expect(roundsWithAcks).toBeGreaterThan(ROUNDS / 2);
    expect(everAcknowledged.length).toBeGreaterThan(1000);
  }, ROUNDS * 6_000);
});
