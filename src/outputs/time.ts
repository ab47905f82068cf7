/** Waits for `promise` at most `timeoutMs`; the timer does not keep the process alive. */
export async function withTimeout(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, timeoutMs));
    timer.unref();
  });
  try {
    await Promise.race([promise.then(() => undefined), expired]);
  } finally {
    clearTimeout(timer);
  }
}

const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 60_000;

/**
 * Delay before retry number `attempt` (1, 2, …): exponential from 250 ms up to 60 s with full jitter, so
 * many agents recovering at once do not hit the collector in step; a server's Retry-After is a floor.
 */
export function backoffDelayMs(attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt - 1, 20));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  return retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
}

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed), 3600) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, date - now), 3600 * 1000);
}

/** A sleep that `cancel()` ends early (close must not wait out a minute of backoff). */
export class CancellableSleep {
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.wake?.();
  }
}

/**
 * At most one log line per interval for a recurring condition (a collector pushing back on every batch
 * must not flood the log); the line carries how many times it happened since the previous one.
 */
export class LogThrottle {
  private lastAt = 0;
  private count = 0;

  constructor(private readonly intervalMs = 10_000) {}

  note(times: number, log: (count: number) => void): void {
    this.count += times;
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) return;
    log(this.count);
    this.lastAt = now;
    this.count = 0;
  }
}
