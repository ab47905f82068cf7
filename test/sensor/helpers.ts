import type { ProcessEvent } from '../../src/ecs/types.js';

/**
 * A wait on `events` (filled by a running sensor): the first exec event, in kernel order, that satisfies
 * `match`, or an error naming `what` after `timeoutMs`.
 */
export function eventFinder(events: readonly ProcessEvent[]): (match: (event: ProcessEvent) => boolean, what: string, timeoutMs?: number) => Promise<ProcessEvent> {
  return async (match, what, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = events.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no exec event for ${what} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
}
