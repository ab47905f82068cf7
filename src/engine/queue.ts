import type { ProcessEvent } from '../ecs/types.js';
import type { Logger } from '../log.js';
import type { DetectionEngine } from './index.js';

/**
 * How long evaluation may hold the event loop at a time. Past it the rest of the batch waits for the next
 * turn (setImmediate), so timers, the status socket, SIGTERM and output I/O keep being served even when an
 * event flood meets an expensive rule set.
 */
export const EVALUATION_SLICE_MS = 50;

/**
 * Events waiting for their turn, at most (between two batches). Beyond it the sensor's callback returns only
 * once evaluation has brought the backlog back to it, the reader thread stops reading once its own queue is
 * full, and the kernel's losses are counted by the sensor (overruns): memory stays bounded, and the loss
 * shows in the counters instead of in a growing queue.
 */
export const MAX_EVALUATION_BACKLOG = 16_384;

/**
 * Every matcher is linear in the event's size, and the sensor bounds the size (sensor.maxArgsBytes), so an
 * event costs at most a few milliseconds per rule. One that takes longer than this is worth knowing about:
 * counted, and logged with its slowest rule at most once per SLOW_LOG_INTERVAL_MS.
 */
export const SLOW_EVALUATION_MS = 10;
const SLOW_LOG_INTERVAL_MS = 60_000;

export interface EvaluationQueueStats {
  /** Events waiting for evaluation now. */
  backlog: number;
  /** The most that ever waited. */
  peakBacklog: number;
  /** Times evaluation gave the event loop back mid-batch. */
  yields: number;
  /** Events whose evaluation by all rules together took longer than SLOW_EVALUATION_MS. */
  slowEvaluations: number;
  /** The longest evaluation of one event by all rules, in milliseconds. */
  slowestEvaluationMs: number;
}

/** The live agent's events, evaluated in arrival order, in slices of at most EVALUATION_SLICE_MS. */
export class EvaluationQueue {
  /** Arrival order; entries before `next` are evaluated and cleared. */
  private waiting: (ProcessEvent | undefined)[] = [];
  private next = 0;
  private resumeScheduled = false;
  private peakBacklog = 0;
  private yields = 0;
  private slowEvaluations = 0;
  private slowestEvaluationMs = 0;
  private lastSlowLogMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly engine: Pick<DetectionEngine, 'evaluate' | 'slowestRule'>,
    private readonly logger: Logger,
  ) {}

  push(events: readonly ProcessEvent[]): void {
    for (const event of events) this.waiting.push(event);
    const backlog = this.waiting.length - this.next;
    if (backlog > this.peakBacklog) this.peakBacklog = backlog;
    if (!this.resumeScheduled) this.run();
    // Over the bound the sensor's callback waits for evaluation: the backlog stops growing here, and the
    // pressure goes back to the reader thread and the kernel, where losses are counted.
    else if (backlog > MAX_EVALUATION_BACKLOG) this.evaluateDownTo(MAX_EVALUATION_BACKLOG);
  }

  /** Evaluates everything still waiting, without yielding (at stop, after the sensor stopped). */
  finish(): void {
    this.evaluateDownTo(0);
  }

  stats(): EvaluationQueueStats {
    return {
      backlog: this.waiting.length - this.next,
      peakBacklog: this.peakBacklog,
      yields: this.yields,
      slowEvaluations: this.slowEvaluations,
      slowestEvaluationMs: this.slowestEvaluationMs,
    };
  }

  private run(): void {
    const startedMs = performance.now();
    while (this.next < this.waiting.length) {
      const nowMs = this.evaluateNext();
      const backlog = this.waiting.length - this.next;
      if (backlog > 0 && backlog <= MAX_EVALUATION_BACKLOG && nowMs - startedMs > EVALUATION_SLICE_MS) {
        this.yields += 1;
        this.resumeScheduled = true;
        setImmediate(() => {
          this.resumeScheduled = false;
          this.run();
        });
        return;
      }
    }
  }

  private evaluateDownTo(backlog: number): void {
    while (this.waiting.length - this.next > backlog) this.evaluateNext();
  }

  /** Evaluates the next event; returns the clock (performance.now()) after it, one reading per event. */
  private evaluateNext(): number {
    const event = this.waiting[this.next]!;
    this.waiting[this.next++] = undefined;
    const startedMs = performance.now();
    this.engine.evaluate(event, Date.now());
    const endedMs = performance.now();
    const tookMs = endedMs - startedMs;
    if (tookMs > this.slowestEvaluationMs) this.slowestEvaluationMs = Math.round(tookMs * 1000) / 1000;
    if (tookMs > SLOW_EVALUATION_MS) this.countSlow(event, tookMs);
    if (this.next === this.waiting.length) {
      this.waiting = [];
      this.next = 0;
    } else if (this.next >= 1024 && this.next * 2 >= this.waiting.length) {
      // What was evaluated goes: under a lasting backlog the queue would otherwise keep every event since it was last empty.
      this.waiting = this.waiting.slice(this.next);
      this.next = 0;
    }
    return endedMs;
  }

  private countSlow(event: ProcessEvent, tookMs: number): void {
    this.slowEvaluations += 1;
    const wallMs = Date.now();
    if (wallMs - this.lastSlowLogMs < SLOW_LOG_INTERVAL_MS) return;
    this.lastSlowLogMs = wallMs;
    const slowest = this.engine.slowestRule(event);
    this.logger.warn(
      { tookMs: Math.round(tookMs * 1000) / 1000, slowestRule: slowest?.rule, slowestRuleMs: slowest?.ms, pid: event.process?.pid, slowEvaluations: this.slowEvaluations },
      `one event took ${Math.round(tookMs)} ms to evaluate (over ${SLOW_EVALUATION_MS} ms); counted in evaluation.slowEvaluations, logged at most once a minute`,
    );
  }
}
