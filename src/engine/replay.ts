import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Alert, ProcessEvent } from '../ecs/types.js';
import { RuntimeFailure, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LoadedRule } from '../rules/index.js';
import type { HistoryStore } from '../store/index.js';
import { DetectionEngine, type EngineStats } from './index.js';

/**
 * Offline replay (`rules test`): NDJSON events in file order through the engine, each event's @timestamp
 * serving as "now" for history windows and max_signals, so history semantics can be tested
 * deterministically. A line that is not an event with a valid @timestamp stops the replay with its line
 * number; alerts emitted before it stay emitted and the history keeps what was recorded.
 */

export interface ReplayOptions {
  rules: readonly LoadedRule[];
  store: HistoryStore;
  logger: Logger;
  eventsFile: string;
  emit: (alert: Alert) => void;
}

export async function replayEvents(options: ReplayOptions): Promise<EngineStats> {
  const engine = new DetectionEngine(options.rules, { store: options.store, logger: options.logger, emit: options.emit });
  const input = createReadStream(options.eventsFile, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', (err: NodeJS.ErrnoException) => reject(new RuntimeFailure(`${options.eventsFile}: cannot read: ${err.code ?? err.message}`)));
  });
  await opened;
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let lastNowMs = Date.now();
  try {
    for await (const line of lines) {
      lineNumber += 1;
      if (line.trim() === '') continue;
      const event = parseEvent(options.eventsFile, lineNumber, line);
      lastNowMs = Date.parse(event['@timestamp']);
      engine.tick(lastNowMs);
      engine.evaluate(event, lastNowMs);
    }
  } finally {
    lines.close();
    input.destroy();
    await engine.drain(lastNowMs);
  }
  return engine.stats();
}

function parseEvent(file: string, line: number, text: string): ProcessEvent {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`${file}:${line}: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`${file}:${line}: an event must be a JSON object`);
  }
  const timestamp = (value as Record<string, unknown>)['@timestamp'];
  if (typeof timestamp !== 'string' || Number.isNaN(Date.parse(timestamp))) {
    throw new ValidationError(
      `${file}:${line}: @timestamp: ${timestamp === undefined ? 'required' : `not an ISO 8601 date: ${JSON.stringify(timestamp)}`}`,
    );
  }
  return value as ProcessEvent;
}
