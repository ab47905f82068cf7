import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** What the process itself costs: memory and how late the event loop runs (a wedged loop loses events). */
export interface HealthSnapshot {
  rssBytes: number;
  heapUsedBytes: number;
  /** Event-loop delay since the previous snapshot that reset the window, in milliseconds. */
  eventLoopDelayMs: { mean: number; p99: number; max: number };
}

/** Resolution of the event-loop delay sampler: fine enough to see a stall, cheap enough to leave on. */
const SAMPLE_RESOLUTION_MS = 20;

export class HealthMonitor {
  private histogram: IntervalHistogram | undefined;

  start(): void {
    if (this.histogram !== undefined) return;
    this.histogram = monitorEventLoopDelay({ resolution: SAMPLE_RESOLUTION_MS });
    this.histogram.enable();
  }

  /** Idempotent. */
  stop(): void {
    this.histogram?.disable();
    this.histogram = undefined;
  }

  /**
   * The current figures; `resetWindow` starts a new delay window (the periodic stats line does, so each
   * line reports its own interval; the status socket and metrics read without resetting).
   */
  snapshot(resetWindow = false): HealthSnapshot {
    const memory = process.memoryUsage();
    const histogram = this.histogram;
    // The histogram holds the time between two samples, which includes the sampling interval itself.
    const ms = (nanoseconds: number): number =>
      Number.isFinite(nanoseconds) ? Math.max(0, Math.round((nanoseconds / 1e6 - SAMPLE_RESOLUTION_MS) * 100) / 100) : 0;
    const delay =
      histogram === undefined || histogram.count === 0
        ? { mean: 0, p99: 0, max: 0 }
        : { mean: ms(histogram.mean), p99: ms(histogram.percentile(99)), max: ms(histogram.max) };
    if (resetWindow) histogram?.reset();
    return { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, eventLoopDelayMs: delay };
  }
}
