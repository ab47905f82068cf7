import { write } from 'node:fs';

/**
 * Writes the whole buffer to a file descriptor on libuv's thread pool, so a slow disk or a stalled pipe
 * reader never blocks the JavaScript thread. Retries partial writes and EAGAIN (a descriptor someone
 * switched to non-blocking mode, e.g. a terminal).
 */
export async function writeAllToFd(fd: number, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += await new Promise<number>((resolve, reject) => {
        write(fd, buffer, offset, buffer.length - offset, null, (err, written) => (err ? reject(err) : resolve(written)));
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

export interface WriteQueueOptions {
  /** Writes one batch of whole lines; called one at a time, in order. */
  sink(buffer: Buffer, lines: number): Promise<void>;
  /** Lines beyond this many queued bytes are refused (the caller counts them as dropped). */
  maxPendingBytes: number;
  onWritten(lines: number): void;
  /** A failed batch: its lines are lost; the queue keeps going with the next batch unless closed. */
  onError(err: unknown, lines: number): void;
}

/**
 * Collects lines from the hot path without doing I/O there and hands them to an asynchronous sink in
 * batches (everything queued while the previous write ran), so many alerts cost one write.
 */
export class WriteQueue {
  private chunks: string[] = [];
  private chunkBytes = 0;
  private writing = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: WriteQueueOptions) {}

  /** Number of lines queued or being written. */
  pending = 0;

  get pendingBytes(): number {
    return this.chunkBytes;
  }

  /** Queues one line (with its newline). False when refused: closed, or the bound is reached. */
  push(line: string): boolean {
    if (this.closed) return false;
    const bytes = Buffer.byteLength(line);
    if (this.chunkBytes + bytes > this.options.maxPendingBytes && this.chunkBytes > 0) return false;
    this.chunks.push(line);
    this.chunkBytes += bytes;
    this.pending += 1;
    if (!this.writing) {
      this.writing = true;
      setImmediate(() => void this.run());
    }
    return true;
  }

  /** Refuses further lines and discards what is queued but not yet being written; returns how many. */
  abandon(): number {
    this.closed = true;
    const discarded = this.chunks.length;
    this.pending -= discarded;
    this.chunks = [];
    this.chunkBytes = 0;
    if (!this.writing) this.wakeIdle();
    return discarded;
  }

  /** Resolves when nothing is queued or being written. */
  idle(): Promise<void> {
    if (!this.writing && this.chunks.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    while (this.chunks.length > 0) {
      const lines = this.chunks.length;
      const buffer = Buffer.from(this.chunks.join(''));
      this.chunks = [];
      this.chunkBytes = 0;
      try {
        await this.options.sink(buffer, lines);
        this.pending -= lines;
        this.options.onWritten(lines);
      } catch (err) {
        this.pending -= lines;
        this.options.onError(err, lines);
      }
    }
    this.writing = false;
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
