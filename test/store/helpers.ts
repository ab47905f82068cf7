import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
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
