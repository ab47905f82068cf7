import type { Alert, ProcessEvent } from '../ecs/types.js';
import { RuntimeFailure, ValidationError } from '../errors.js';
import { formatBytes } from '../io/files.js';
import { lineText, MAX_LINE_BYTES, readLines } from '../io/lines.js';
import { dateValueMs } from '../kql/date.js';
import type { Logger } from '../log.js';
import type { LoadedRule } from '../rules/index.js';
import type { HistoryStore } from '../store/index.js';
import { DetectionEngine, evaluatesAction, type EngineStats } from './index.js';

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
  /** The events' name in messages ("file:line: …"). */
  eventsName: string;
  events: AsyncIterable<Buffer | string>;
  emit: (alert: Alert) => void;
  /** `rules test --explain`: receives, per event and enabled rule, one line saying whether and why (not) it matched. */
  explain?: (line: string) => void;
}

export async function replayEvents(options: ReplayOptions): Promise<EngineStats> {
  const engine = new DetectionEngine(options.rules, { store: options.store, logger: options.logger, emit: options.emit });
  let lastNowMs = Date.now();
  try {
    for await (const line of readLines(options.events)) {
      if (line.tooLong === true) {
        throw new ValidationError(`${options.eventsName}:${line.number}: longer than ${formatBytes(MAX_LINE_BYTES)}`);
      }
      const text = lineText(line.bytes);
      if (text.trim() === '') continue;
      const { event, timeMs } = parseEvent(options.eventsName, line.number, text);
      lastNowMs = timeMs;
      engine.tick(lastNowMs);
      // file order is time order in a replay: nothing older than this event follows it
      engine.advanceSequences(lastNowMs);
      if (options.explain !== undefined) explainEvent(options, line.number, event);
      engine.evaluate(event, lastNowMs);
    }
    engine.finishSequences(lastNowMs);
  } catch (err) {
    if (err instanceof ValidationError || err instanceof RuntimeFailure) throw err;
    throw new RuntimeFailure(`${options.eventsName}: reading failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    await engine.drain(lastNowMs);
  }
  return engine.stats();
}

/**
 * Whether each enabled rule's query matches the event and, if not, the first top-level condition that
 * fails; for a sequence rule, the stages the event matches. Whether a match alerts is the engine's (new
 * terms, max_signals): the alerts and the summary line show that.
 */
function explainEvent(options: ReplayOptions, lineNumber: number, event: ProcessEvent): void {
  const action = (event.event as { action?: unknown } | undefined)?.action;
  for (const rule of options.rules) {
    if (!rule.enabled) continue;
    const compiled = rule.compiled;
    let verdict: string;
    if (!evaluatesAction(rule, action)) {
      verdict = `not evaluated: a rule sees ${String(action)} events only when its query can match them (README: Fork and end events)`;
    } else if (compiled.kind === 'sequence') {
      const stages = compiled.matchingStages(event);
      verdict = stages.length === 0 ? 'matches no stage of the sequence' : `matches sequence stage ${stages.join(', ')} of ${compiled.spec.stages.length}`;
    } else {
      const failed = compiled.explain(event);
      verdict = failed === undefined ? (rule.type === 'new_terms' ? 'matched (alerts if its terms are new)' : 'matched') : `no match: ${failed}`;
    }
    options.explain!(`${options.eventsName}:${lineNumber}: rule ${JSON.stringify(rule.name)}: ${verdict}`);
  }
}

function parseEvent(name: string, line: number, text: string): { event: ProcessEvent; timeMs: number } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`${name}:${line}: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`${name}:${line}: an event must be a JSON object`);
  }
  const timestamp = (value as Record<string, unknown>)['@timestamp'];
  // As an Elastic Defend index maps @timestamp (a date with the default format): strict ISO 8601 in UTC
  // unless it names its offset, or epoch milliseconds. Date.parse would read "1" or "Mar 5 2024" in local time.
  const timeMs = dateValueMs(timestamp);
  if (timeMs === null) {
    throw new ValidationError(
      `${name}:${line}: @timestamp: ${timestamp === undefined ? 'required' : `not a date (strict ISO 8601 or epoch milliseconds): ${JSON.stringify(timestamp)}`}`,
    );
  }
  return { event: value as ProcessEvent, timeMs };
}
