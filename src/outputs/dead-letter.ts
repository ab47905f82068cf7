import { join } from 'node:path';
import type { Logger } from '../log.js';
import { RotatingFile } from './rotating-file.js';
import { errorText } from './types.js';
import { WriteQueue } from './write-queue.js';

const MiB = 1024 * 1024;
/** The longest collector response kept per dead-lettered alert. */
const MAX_RESPONSE_CHARS = 16 * 1024;

/**
 * Alerts a collector refused for good (a 4xx other than 408/429, a mapping error), one JSON object per
 * line with the reason and the collector's response, so nothing refused disappears and an operator can
 * fix and resend them: `{"@timestamp", "output", "reason", "response", "alert"}`. Rotated at 100 MiB,
 * 5 kept, mode 0600, in `<stateDir>/dead-letter/<output id>.ndjson`.
 */
export class DeadLetterFile {
  private file: RotatingFile | undefined;
  private readonly queue: WriteQueue;
  written = 0;

  constructor(
    readonly path: string,
    private readonly outputName: string,
    private readonly logger: Logger,
  ) {
    this.queue = new WriteQueue({
      sink: async (buffer) => {
        this.file ??= await RotatingFile.open(this.path, { maxBytes: 100 * MiB, keep: 5, directoryMode: 0o700 });
        await this.file.write(buffer);
      },
      maxPendingBytes: 64 * MiB,
      onWritten: (lines) => {
        this.written += lines;
      },
      onError: (err, lines) => this.logger.error({ err: errorText(err), file: this.path, lost: lines }, 'writing the dead-letter file failed'),
    });
  }

  static forOutput(stateDir: string, outputId: string, outputName: string, logger: Logger): DeadLetterFile {
    return new DeadLetterFile(join(stateDir, 'dead-letter', `${outputId}.ndjson`), outputName, logger);
  }

  /** `alertJson` is the alert exactly as spooled (already JSON). */
  add(alertJson: string, reason: string, response: string | undefined): void {
    const head = JSON.stringify({
      '@timestamp': new Date().toISOString(),
      output: this.outputName,
      reason,
      response: response === undefined ? undefined : response.slice(0, MAX_RESPONSE_CHARS),
    });
    // splice the alert in verbatim: it is valid JSON already, re-encoding would cost a parse
    if (!this.queue.push(`${head.slice(0, -1)},"alert":${alertJson}}\n`))
      this.logger.error({ file: this.path, reason }, 'dead-letter queue full; a refused alert was lost');
  }

  async close(): Promise<void> {
    await this.queue.idle();
    await this.file?.close();
  }
}
