import { randomUUID } from 'node:crypto';
import { ECS_VERSION, SEVERITY_NUMBER, type EcsAgent, type EcsHost, type HealthAlert } from '../ecs/types.js';
import type { Logger } from '../log.js';
import { DeadLetterFile } from './dead-letter.js';
import { Spool, type SpoolRecord } from './spool.js';
import { CancellableSleep, LogThrottle, backoffDelayMs, withTimeout } from './time.js';
import { emptyStats, errorText, type DeadLetterTarget, type EncodedAlert, type Output, type OutputStats } from './types.js';

/** What the collector said about one record of a batch. */
export type ItemOutcome = 'ack' | 'retry' | { deadLetter: string; response?: string };

export interface BatchResult {
  /** one per record, in order */
  outcomes: ItemOutcome[];
  /** the collector's Retry-After, when it gave one */
  retryAfterMs?: number;
  /** why some records must be retried (for lastError and the log) */
  error?: string;
}

/**
 * A protocol: turns a batch of spooled alerts into one request (or a run of messages) and reports the
 * outcome of each. Throwing means "nothing got through" (network error, timeout): the whole batch is
 * retried.
 */
export interface Transport {
  readonly kind: string;
  deliver(records: readonly SpoolRecord[]): Promise<BatchResult>;
  close(): Promise<void>;
}

export interface NetworkOutputOptions {
  name: string;
  transport: Transport;
  spool: Spool;
  deadLetter: DeadLetterFile;
  batchSize: number;
  logger: Logger;
}

export const HEALTH_RULE = {
  id: 'execsentry-alerts-dropped',
  uuid: '0d4c3f5e-1b1e-4c7a-9f43-9b2f7b1d5e21',
  name: 'execsentry: alerts dropped',
  description: 'A delivery spool was full and execsentry dropped its oldest undelivered alerts.',
  version: '1',
  license: 'Apache-2.0',
  author: ['execsentry'],
  category: 'health',
} as const;

/**
 * Every network output: alerts go into the output's disk spool (send resolves once fsynced) and one
 * delivery loop takes them out in order, in batches, through the transport. A batch is settled record by
 * record — acknowledged, dead-lettered, or retried with exponential backoff — before the spool forgets
 * it, so a dead collector only grows the (bounded) spool and never slows the caller.
 */
export class NetworkOutput implements Output {
  readonly name: string;
  private readonly counters: OutputStats;
  private readonly sleeper = new CancellableSleep();
  private closing = false;
  private loop: Promise<void> | undefined;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private lastHost: EcsHost | undefined;
  private lastAgent: EcsAgent | undefined;
  private spoolFailures = 0;
  private readonly retryLog = new LogThrottle();
  private readonly refusalLog = new LogThrottle();

  readonly deadLetters: DeadLetterTarget;

  constructor(private readonly options: NetworkOutputOptions) {
    this.name = options.name;
    this.counters = emptyStats(options.transport.kind);
    // unlike send, a spool failure is the caller's to handle: a replayed alert must stay where it was
    this.deadLetters = {
      path: options.deadLetter.path,
      requeue: (id, alertJson) => options.spool.append(id, alertJson),
      freeBytes: () => options.spool.freeBytes(),
    };
  }

  start(): void {
    this.loop ??= this.deliverForever().catch((err: unknown) => {
      this.options.logger.error({ output: this.name, err: errorText(err) }, 'delivery loop stopped');
      this.noteError(err);
    });
  }

  send(encoded: EncodedAlert): Promise<void> {
    const { alert } = encoded;
    this.lastHost = alert.host;
    this.lastAgent = alert.agent;
    return this.options.spool.append(alert.event.id, encoded.json).catch((err: unknown) => {
      // the disk refused (full, read-only): counted and logged, never thrown at the engine
      this.spoolFailures += 1;
      this.noteError(err);
    });
  }

  private noteError(err: unknown): void {
    this.counters.lastError = errorText(err);
    this.counters.lastErrorAt = new Date().toISOString();
  }

  private async deliverForever(): Promise<void> {
    const { spool, transport, deadLetter, batchSize, logger } = this.options;
    let failuresInARow = 0;
    /** when the current run of failed attempts began: the outage "delivery resumed" reports */
    let failingSince: number | undefined;
    for (;;) {
      const batch = await spool.read(batchSize);
      if (batch.length === 0 || this.closing) return;
      this.inFlight = batch.length;
      let pending: readonly SpoolRecord[] = batch;
      let firstAttempt = true;
      while (pending.length > 0) {
        if (this.closing) return;
        this.counters.sent += pending.length;
        if (!firstAttempt) this.counters.retried += pending.length;
        firstAttempt = false;
        let result: BatchResult;
        try {
          result = await transport.deliver(pending);
        } catch (err) {
          result = { outcomes: pending.map(() => 'retry'), error: errorText(err) };
        }
        if (result.outcomes.length !== pending.length)
          result = { outcomes: pending.map(() => 'retry'), error: `transport answered ${result.outcomes.length} outcomes for ${pending.length} alerts` };
        const retry: SpoolRecord[] = [];
        result.outcomes.forEach((outcome, index) => {
          const record = pending[index]!;
          if (outcome === 'ack') this.counters.acknowledged += 1;
          else if (outcome === 'retry') retry.push(record);
          else {
            this.counters.deadLettered += 1;
            deadLetter.add(record.payload.toString('utf8'), outcome.deadLetter, outcome.response);
          }
        });
        const refused = result.outcomes.find((outcome) => typeof outcome === 'object');
        if (refused !== undefined) {
          const refusedCount = result.outcomes.filter((outcome) => typeof outcome === 'object').length;
          // a refusal is the newest failure even when the batch before it was a retry: lastError must say so
          this.noteError(new Error(`${refused.deadLetter}: ${refusedCount} alert(s) refused, kept in the dead-letter file ${deadLetter.path}`));
          this.refusalLog.note(refusedCount, (count) =>
            logger.warn({ output: this.name, count, reason: refused.deadLetter, file: deadLetter.path }, 'collector refused alerts; kept in the dead-letter file'),
          );
        }
        if (retry.length < pending.length) {
          if (failingSince !== undefined)
            logger.info(
              { output: this.name, failedAttempts: failuresInARow, outageSeconds: Math.round((Date.now() - failingSince) / 100) / 10, pending: spool.stats().records },
              'delivery resumed',
            );
          failuresInARow = 0;
          failingSince = undefined;
          await this.reportDrops();
        }
        pending = retry;
        if (pending.length > 0) {
          failuresInARow += 1;
          failingSince ??= Date.now();
          const error = result.error ?? 'collector asked to retry';
          this.noteError(new Error(error));
          const delay = backoffDelayMs(failuresInARow, result.retryAfterMs);
          this.retryLog.note(1, (failures) =>
            logger.warn({ output: this.name, error, retrying: pending.length, attempt: failuresInARow, failures, delayMs: Math.round(delay) }, 'delivery failed; will retry'),
          );
          await this.sleeper.sleep(delay);
        }
      }
      spool.ack(batch[batch.length - 1]!.end, batch.length);
      this.inFlight = 0;
      if (spool.isEmpty()) this.wakeIdle();
    }
  }

  /** The collector took data again: if the spool had to drop alerts, say so once, through this output. */
  private async reportDrops(): Promise<void> {
    const { count, since } = this.options.spool.unreported();
    if (count === 0) return;
    const now = new Date().toISOString();
    const health: HealthAlert = {
      '@timestamp': now,
      message: `${HEALTH_RULE.name}: ${count} alert(s) for ${this.name} were lost because the delivery spool was full`,
      event: {
        kind: 'alert',
        category: ['host'],
        type: ['info'],
        action: 'alerts-dropped',
        id: randomUUID(),
        created: now,
        module: 'execsentry',
        dataset: 'execsentry.alerts',
        severity: SEVERITY_NUMBER.high,
        risk_score: SEVERITY_NUMBER.high,
      },
      ecs: { version: ECS_VERSION },
      rule: { ...HEALTH_RULE, author: [...HEALTH_RULE.author] },
      execsentry: { delivery: { output: this.name, dropped: count, ...(since === undefined ? {} : { first_dropped_at: since }) } },
    };
    if (this.lastHost !== undefined) health.host = this.lastHost;
    if (this.lastAgent !== undefined) health.agent = this.lastAgent;
    try {
      await this.options.spool.append(health.event.id, JSON.stringify(health));
      this.options.spool.markReported(count);
      this.options.logger.warn({ output: this.name, dropped: count, since }, 'reported dropped alerts with a health alert');
    } catch (err) {
      this.noteError(err);
    }
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  async flush(timeoutMs: number): Promise<void> {
    if (this.options.spool.isEmpty() && this.inFlight === 0) return;
    await withTimeout(new Promise<void>((resolve) => this.idleWaiters.push(resolve)), timeoutMs);
  }

  /** Stops delivering; whatever is not acknowledged stays in the spool for the next start. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.sleeper.cancel();
    await this.options.spool.close();
    await this.options.transport.close();
    await withTimeout(this.loop ?? Promise.resolve(), 5_000);
    await this.options.deadLetter.close();
    this.wakeIdle();
  }

  stats(): OutputStats {
    const spool = this.options.spool.stats();
    return {
      ...this.counters,
      dropped: spool.dropped + this.spoolFailures,
      spoolBytes: spool.bytes,
      pending: spool.records,
    };
  }
}
