import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { OutputContext } from '../../../src/outputs/index.js';

export interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** An OutputContext with a fresh state directory and a logger whose records the test can read. */
export function testContext(): OutputContext & { logs: LogRecord[]; cleanup(): void } {
  const stateDir = mkdtempSync(join(tmpdir(), 'execsentry-outputs-'));
  const logs: LogRecord[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogRecord) });
  return { stateDir, logger, logs, cleanup: () => rmSync(stateDir, { recursive: true, force: true }) };
}
