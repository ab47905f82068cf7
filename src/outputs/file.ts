import { RotatingFile } from './rotating-file.js';
import { LogThrottle, withTimeout } from './time.js';
import { emptyStats, errorText, type EncodedAlert, type Output, type OutputContext, type OutputStats } from './types.js';
import { WriteQueue } from './write-queue.js';

const MiB = 1024 * 1024;
export const FILE_DEFAULTS = { rotateBytes: 100 * MiB, rotateKeep: 5 } as const;
const MAX_PENDING_BYTES = 64 * MiB;

/**
 * `file:///path`: NDJSON appended (one alert per line), written in batches on the thread pool, rotated by
 * size. Local, so no spool: an alert counts as acknowledged once written.
 */
export class FileOutput implements Output {
  readonly name: string;
  private readonly counters: OutputStats = emptyStats('file');
  private readonly queue: WriteQueue;
  private readonly dropLog = new LogThrottle();

  private constructor(
    private readonly file: RotatingFile,
    private readonly context: OutputContext,
  ) {
    this.name = `file://${file.path}`;
    this.queue = new WriteQueue({
      sink: (buffer) => this.file.write(buffer),
      maxPendingBytes: MAX_PENDING_BYTES,
      onWritten: (lines) => {
        this.counters.acknowledged += lines;
      },
      onError: (err, lines) => {
        this.counters.dropped += lines;
        this.counters.lastError = errorText(err);
        this.counters.lastErrorAt = new Date().toISOString();
        this.context.logger.error({ err: errorText(err), file: this.file.path, lost: lines }, 'writing alerts to the file failed');
      },
    });
  }

  static async open(path: string, rotation: { rotateBytes: number; rotateKeep: number }, context: OutputContext): Promise<FileOutput> {
    const file = await RotatingFile.open(path, { maxBytes: rotation.rotateBytes, keep: rotation.rotateKeep, directoryMode: 0o750 });
    return new FileOutput(file, context);
  }

  send(encoded: EncodedAlert): Promise<void> {
    this.counters.sent += 1;
    if (!this.queue.push(encoded.json + '\n')) {
      this.counters.dropped += 1;
      this.dropLog.note(1, (count) => this.context.logger.warn({ dropped: count, file: this.file.path }, 'the alert file cannot keep up; alerts dropped'));
    }
    return Promise.resolve();
  }

  async flush(timeoutMs: number): Promise<void> {
    await withTimeout(this.queue.idle(), timeoutMs);
  }

  async close(): Promise<void> {
    await this.queue.idle();
    await this.file.close();
  }

  stats(): OutputStats {
    return { ...this.counters, pending: this.queue.pending };
  }
}
