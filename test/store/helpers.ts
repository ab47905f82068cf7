import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeAll, expect } from 'vitest';
import type { Logger } from '../../src/log.js';
import { openHistoryStore, type HistoryStore, type HistoryStoreOptions } from '../../src/store/index.js';

export interface CapturedLog {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A real pino logger whose records are kept for assertions. */
export function capturingLogger(): { logger: Logger; records: CapturedLog[] } {
  const records: CapturedLog[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as CapturedLog) });
  return { logger, records };
}

export function tempStateDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'execsentry-store-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function openTestStore(dir: string, overrides: Partial<HistoryStoreOptions> = {}): Promise<{ store: HistoryStore; records: CapturedLog[] }> {
  const { logger, records } = capturingLogger();
  const store = await openHistoryStore({ stateDir: dir, maxTuplesPerRule: 1_000_000, logger, ...overrides });
  return { store, records };
}

export const DAY_MS = 86_400_000;

/** The checkout this test runs from. */
export const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * For a test file that runs the built CLI: builds dist/ once before its tests, and hands out state
 * directories that are removed after each test.
 */
export function storeCli(): { stateDir(): string; afterTest(cleanup: () => void): void; execsentry(...args: string[]): SpawnSyncReturns<string> } {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));
  beforeAll(() => {
    const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO, encoding: 'utf8' });
    expect(existsSync(join(REPO, 'dist/commands/store.js')), build.stdout).toBe(true);
  }, 120_000);
  return {
    stateDir() {
      const { dir, cleanup } = tempStateDir();
      cleanups.push(cleanup);
      return dir;
    },
    afterTest: (cleanup) => void cleanups.push(cleanup),
    execsentry: (...args) => spawnSync(process.execPath, [join(REPO, 'dist/cli.js'), ...args], { encoding: 'utf8' }),
  };
}
