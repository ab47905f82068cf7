import { colourWanted } from '../log.js';
import { formatPretty } from './pretty.js';
import { LogThrottle, withTimeout } from './time.js';
import { emptyStats, errorText, type EncodedAlert, type Output, type OutputContext, type OutputStats } from './types.js';
import { WriteQueue, writeAllToFd } from './write-queue.js';

const STDOUT_FD = 1;
// A reader that stops reading (a paused pager) must not grow the agent without bound.
const MAX_PENDING_BYTES = 64 * 1024 * 1024;

/**
 * Alerts on standard output: NDJSON (one exact JSON object per line, nothing else) or the pretty
 * one-line format. Writes go through the thread pool so a slow reader never blocks the event loop.
 * When the reader goes away (EPIPE) the output stops, counts what it could not write as dropped and
 * tells the caller once.
 */
export class StdoutOutput implements Output {
  readonly name = 'stdout';
  private readonly counters: OutputStats = emptyStats('stdout');
  private readonly queue: WriteQueue;
  private readonly format: (encoded: EncodedAlert) => string;
  private readerGone = false;
  private readonly dropLog = new LogThrottle();

  constructor(private readonly context: OutputContext) {
    const colour = colourWanted(process.env, process.stdout.isTTY === true);
    this.format = context.format === 'pretty' ? (encoded) => formatPretty(encoded.alert, { colour }) : (encoded) => encoded.json + '\n';
    this.queue = new WriteQueue({
      sink: (buffer) => writeAllToFd(STDOUT_FD, buffer),
      maxPendingBytes: MAX_PENDING_BYTES,
      onWritten: (lines) => {
        this.counters.acknowledged += lines;
      },
      onError: (err, lines) => this.writeFailed(err, lines),
    });
  }

  send(encoded: EncodedAlert): Promise<void> {
    this.counters.sent += 1;
    if (!this.queue.push(this.format(encoded))) {
      this.counters.dropped += 1;
      if (!this.readerGone)
        this.dropLog.note(1, (count) => this.context.logger.warn({ dropped: count }, 'stdout is not being read fast enough; alerts dropped'));
    }
    return Promise.resolve();
  }

  async flush(timeoutMs: number): Promise<void> {
    await withTimeout(this.queue.idle(), timeoutMs);
  }

  async close(): Promise<void> {
    await this.queue.idle();
  }

  stats(): OutputStats {
    return { ...this.counters, pending: this.queue.pending };
  }

  private writeFailed(err: unknown, lines: number): void {
    this.counters.dropped += lines;
    this.counters.lastError = errorText(err);
    this.counters.lastErrorAt = new Date().toISOString();
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
      if (this.readerGone) return;
      this.readerGone = true;
      this.counters.dropped += this.queue.abandon();
      this.context.logger.info('stdout was closed by its reader; alerts are no longer written to stdout');
      this.context.onStdoutClosed?.();
      return;
    }
    this.context.logger.error({ err: errorText(err), lost: lines }, 'writing alerts to stdout failed');
  }
}
