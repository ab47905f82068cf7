import { close as closeFd, constants as fsConstants, fdatasync as fdatasyncCallback, ftruncate as ftruncateCallback, open as openCallback } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { HEADER_BYTES, encodeRecord, findRecordAfter, parseRecord } from './spool-record.js';
import { errorText } from './types.js';
import { writeAllToFd } from './write-queue.js';

/**
 * The disk spool of one network output: every alert is appended here and fsynced before the output counts
 * it as taken, and forgotten only when the collector acknowledged it. An agent restart resends what is
 * left, first and in order.
 *
 * Layout: `<dir>/<16-digit segment number>.seg` files of checksummed records (spool-record.ts), and
 * `<dir>/state.json` (the acknowledged position and the drops not yet reported).
 *
 * Appends are group-committed: every append that arrives while one write+fdatasync runs goes into the
 * next one, so the fsync cost is shared. The spool is bounded: when an append would pass `maxBytes`, the
 * oldest whole segment is deleted and its undelivered records counted as dropped.
 */

const STATE_FILE = 'state.json';
const SEGMENT_SUFFIX = '.seg';
/** How often the acknowledged position is persisted; a crash resends at most this much (by id, so no duplicates in Elasticsearch). */
const STATE_WRITE_INTERVAL_MS = 200;
const READ_CHUNK_BYTES = 1024 * 1024;

export interface SpoolPosition {
  segment: number;
  offset: number;
}

export interface SpoolRecord {
  key: string;
  payload: Buffer;
  /** Where the next record starts: acknowledging this record = ack(end). */
  end: SpoolPosition;
}

export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  /** Segment size; default maxBytes/8 within 4 KiB..16 MiB (the unit in which a full spool drops). */
  segmentBytes?: number;
  logger: Logger;
}

export interface SpoolStats {
  bytes: number;
  records: number;
  /** records dropped because the spool was full (since open) */
  dropped: number;
}

interface Segment {
  id: number;
  /** bytes committed (written and fsynced) */
  size: number;
  /** records committed */
  records: number;
  deleted: boolean;
}

interface PendingAppend {
  record: Buffer;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface PersistedState {
  ack: SpoolPosition;
  unreportedDrops: number;
  firstDropAt?: string;
}

function segmentName(id: number): string {
  return `${String(id).padStart(16, '0')}${SEGMENT_SUFFIX}`;
}

function comparePositions(a: SpoolPosition, b: SpoolPosition): number {
  return a.segment !== b.segment ? a.segment - b.segment : a.offset - b.offset;
}

export class Spool {
  private segments: Segment[] = [];
  private writeFd = -1;
  private appendQueue: PendingAppend[] = [];
  private appending = false;
  private ackPosition: SpoolPosition;
  private readPosition: SpoolPosition;
  /** records of the reader's segment already handed out */
  private readRecordsInSegment = 0;
  private readHandle: { segment: number; handle: FileHandle } | undefined;
  private dataWaiters: Array<() => void> = [];
  private closed = false;
  private pendingRecords = 0;
  private droppedSinceOpen = 0;
  private unreportedDrops: number;
  private firstDropAt: string | undefined;
  private stateDirty = false;
  private stateTimer: NodeJS.Timeout | undefined;
  private stateWrite: Promise<void> = Promise.resolve();
  private readonly segmentBytes: number;

  private constructor(
    private readonly options: SpoolOptions,
    state: PersistedState,
  ) {
    this.segmentBytes =
      options.segmentBytes ?? Math.min(16 * 1024 * 1024, Math.max(4096, Math.floor(options.maxBytes / 8)));
    this.ackPosition = state.ack;
    this.readPosition = state.ack;
    this.unreportedDrops = state.unreportedDrops;
    this.firstDropAt = state.firstDropAt;
  }

  /** Opens (creating) the spool directory, checks every segment, and starts a fresh segment for appends. */
  static async open(options: SpoolOptions): Promise<Spool> {
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
    const state = await readState(options.dir, options.logger);
    const spool = new Spool(options, state);
    await spool.recover();
    return spool;
  }

  private get writeSegment(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private async recover(): Promise<void> {
    const names = (await readdir(this.options.dir)).filter((name) => /^\d{16}\.seg$/.test(name)).sort();
    let ackSegmentFound = false;
    let ackBoundaryFound = false;
    let recordsBeforeAckTotal = 0;
    for (const name of names) {
      const id = Number(name.slice(0, 16));
      const path = join(this.options.dir, name);
      if (id < this.ackPosition.segment) {
        await rm(path, { force: true });
        continue;
      }
      const content = await readFile(path);
      if (content.length === 0) {
        // a segment started by an earlier run that never got a record
        await rm(path, { force: true });
        continue;
      }
      let offset = 0;
      let records = 0;
      let recordsBeforeAck = 0;
      let corruption: string | undefined;
      for (;;) {
        const parsed = parseRecord(content, offset);
        if (parsed.kind === 'incomplete') break;
        if (parsed.kind === 'corrupt') {
          corruption = parsed.reason;
          break;
        }
        if (id === this.ackPosition.segment && offset === this.ackPosition.offset) ackBoundaryFound = true;
        if (id === this.ackPosition.segment && offset < this.ackPosition.offset) recordsBeforeAck += 1;
        records += 1;
        offset = parsed.next;
      }
      if (id === this.ackPosition.segment) {
        ackSegmentFound = true;
        if (offset === this.ackPosition.offset) ackBoundaryFound = true;
      }
      recordsBeforeAckTotal += recordsBeforeAck;
      // Only the last append can be torn, so a failure with no valid record after it is a torn tail (cut
      // short, or blocks a crash left unwritten); a valid record after it means damage in the middle.
      if (offset < content.length) {
        if (findRecordAfter(content, offset + 1) === undefined) {
          // A torn tail: the last append did not complete before a crash, so it was never acknowledged to the caller.
          this.options.logger.warn({ file: path, offset, bytes: content.length - offset }, 'spool: dropping the torn tail of a segment');
          const handle = await open(path, 'r+');
          await handle.truncate(offset);
          await handle.sync();
          await handle.close();
        } else {
          // Corruption in the middle: keep the file for inspection, keep the good records before it.
          const aside = `${path}.corrupt-${Date.now()}`;
          this.options.logger.error(
            { file: path, offset, reason: corruption ?? 'record length runs past the end of the file', setAside: aside, unreadableBytes: content.length - offset },
            'spool: corrupt segment; records before the damage are kept, the file is set aside',
          );
          await rename(path, aside);
          await writeFile(path, content.subarray(0, offset), { mode: 0o600, flush: true });
        }
      }
      this.segments.push({ id, size: offset, records, deleted: false });
      this.pendingRecords += records - recordsBeforeAck;
    }
    if (ackSegmentFound && !ackBoundaryFound) {
      this.options.logger.warn({ ack: this.ackPosition }, 'spool: acknowledged position does not match a record; resending the whole spool');
      this.pendingRecords += recordsBeforeAckTotal;
      recordsBeforeAckTotal = 0;
      this.ackPosition = { segment: this.segments[0]!.id, offset: 0 };
    }
    await this.startSegment((this.segments[this.segments.length - 1]?.id ?? this.ackPosition.segment) + 1);
    if (ackSegmentFound) {
      // resume right after the last acknowledged record; what came before it in that segment was delivered
      this.readPosition = { ...this.ackPosition };
      this.readRecordsInSegment = recordsBeforeAckTotal;
    } else {
      this.ackPosition = { segment: this.segments[0]!.id, offset: 0 };
      this.readPosition = { ...this.ackPosition };
      this.readRecordsInSegment = 0;
    }
  }

  private async startSegment(id: number): Promise<void> {
    if (this.writeFd >= 0) closeFd(this.writeFd, () => undefined);
    this.writeFd = -1;
    this.writeFd = await openFd(join(this.options.dir, segmentName(id)), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND, 0o600);
    this.segments.push({ id, size: 0, records: 0, deleted: false });
    await syncDirectory(this.options.dir);
  }

  /** Appends one record; resolves once it is on disk (fdatasync). */
  append(key: string, payload: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('spool is closed'));
    let record: Buffer;
    try {
      record = encodeRecord(key, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.appendQueue.push({ record, resolve, reject });
      if (!this.appending) {
        this.appending = true;
        setImmediate(() => void this.commitLoop());
      }
    });
  }

  private async commitLoop(): Promise<void> {
    while (this.appendQueue.length > 0) {
      const batch = this.appendQueue;
      this.appendQueue = [];
      try {
        const buffer = batch.length === 1 ? batch[0]!.record : Buffer.concat(batch.map((item) => item.record));
        if (this.writeSegment.size > 0 && this.writeSegment.size + buffer.length > this.segmentBytes) {
          await this.startSegment(this.writeSegment.id + 1);
        }
        this.makeRoom(buffer.length);
        await writeAllToFd(this.writeFd, buffer);
        await fdatasync(this.writeFd);
        this.writeSegment.size += buffer.length;
        this.writeSegment.records += batch.length;
        this.pendingRecords += batch.length;
        for (const item of batch) item.resolve();
        this.wakeReaders();
      } catch (err) {
        this.options.logger.error({ err: errorText(err) }, 'spool: append failed');
        for (const item of batch) item.reject(err);
        await this.discardUncommitted();
      }
    }
    this.appending = false;
  }

  /**
   * After a failed write (disk full, I/O error) part of the batch may be in the file past the committed
   * size; cut it off so the next append starts on a record boundary, or move to a new segment.
   */
  private async discardUncommitted(): Promise<void> {
    const fd = this.writeFd;
    const size = this.writeSegment.size;
    const cut = await new Promise<boolean>((resolve) => ftruncateCallback(fd, size, (err) => resolve(err === null)));
    if (!cut) await this.startSegment(this.writeSegment.id + 1).catch(() => undefined);
  }

  /** Deletes the oldest segments until `incoming` more bytes fit, counting undelivered records as dropped. */
  private makeRoom(incoming: number): void {
    while (this.bytes() + incoming > this.options.maxBytes && this.segments.length > 1) {
      const oldest = this.segments.shift()!;
      oldest.deleted = true;
      let lost: number;
      if (this.readPosition.segment === oldest.id) lost = oldest.records - this.readRecordsInSegment;
      else if (this.readPosition.segment < oldest.id) lost = oldest.records;
      else lost = 0; // all handed to the transport already; they may still be acknowledged
      const next = this.segments[0]!;
      if (this.readPosition.segment <= oldest.id) {
        this.readPosition = { segment: next.id, offset: 0 };
        this.readRecordsInSegment = 0;
      }
      if (this.ackPosition.segment <= oldest.id) this.ackPosition = { segment: next.id, offset: 0 };
      this.pendingRecords -= lost;
      if (lost > 0) {
        this.droppedSinceOpen += lost;
        this.unreportedDrops += lost;
        this.firstDropAt ??= new Date().toISOString();
        this.options.logger.warn(
          { dropped: lost, droppedTotal: this.droppedSinceOpen, maxBytes: this.options.maxBytes },
          'spool full: dropped the oldest undelivered alerts',
        );
      }
      void rm(join(this.options.dir, segmentName(oldest.id)), { force: true });
      this.scheduleStateWrite(true);
    }
  }

  private wakeReaders(): void {
    const waiters = this.dataWaiters;
    this.dataWaiters = [];
    for (const wake of waiters) wake();
  }

  private hasUnread(): boolean {
    const segment = this.segments.find((s) => s.id === this.readPosition.segment);
    if (segment === undefined) return this.segments.some((s) => s.id > this.readPosition.segment && s.size > 0);
    return this.readPosition.offset < segment.size || this.segments.some((s) => s.id > segment.id && s.size > 0);
  }

  /**
   * The next records after the last ones handed out, at most `max`; waits until there is at least one.
   * Resolves with [] once closed.
   */
  async read(max: number): Promise<SpoolRecord[]> {
    for (;;) {
      if (this.closed) return [];
      if (!this.hasUnread()) {
        await new Promise<void>((resolve) => this.dataWaiters.push(resolve));
        continue;
      }
      let segment = this.segments.find((s) => s.id === this.readPosition.segment);
      if (segment === undefined || this.readPosition.offset >= segment.size) {
        if (segment !== undefined && segment === this.writeSegment) continue;
        const next = this.segments.find((s) => s.id > this.readPosition.segment);
        if (next === undefined) continue;
        this.readPosition = { segment: next.id, offset: 0 };
        this.readRecordsInSegment = 0;
        segment = next;
        if (segment.size === 0) continue;
      }
      const records = await this.readFrom(segment, max);
      if (records !== undefined) return records;
    }
  }

  /** Reads records of `segment` from the read position; undefined when the segment was dropped meanwhile. */
  private async readFrom(segment: Segment, max: number): Promise<SpoolRecord[] | undefined> {
    const start = this.readPosition.offset;
    if (this.readHandle?.segment !== segment.id) {
      await this.readHandle?.handle.close();
      this.readHandle = undefined;
      try {
        this.readHandle = { segment: segment.id, handle: await open(join(this.options.dir, segmentName(segment.id)), 'r') };
      } catch (err) {
        if (segment.deleted) return undefined;
        throw err;
      }
    }
    let length = Math.min(segment.size - start, READ_CHUNK_BYTES);
    let buffer = Buffer.allocUnsafe(length);
    for (;;) {
      const { bytesRead } = await this.readHandle.handle.read(buffer, 0, length, start);
      if (segment.deleted || this.readPosition.offset !== start || this.readPosition.segment !== segment.id) return undefined;
      buffer = buffer.subarray(0, bytesRead);
      if (bytesRead < HEADER_BYTES) break;
      const needed = HEADER_BYTES + buffer.readUInt32LE(0);
      if (needed <= bytesRead || needed > segment.size - start) break;
      // one record larger than the chunk: read it whole
      length = needed;
      buffer = Buffer.allocUnsafe(length);
    }
    const records: SpoolRecord[] = [];
    let offset = 0;
    while (records.length < max) {
      const parsed = parseRecord(buffer, offset);
      if (parsed.kind !== 'record') {
        if (parsed.kind === 'corrupt') {
          // committed bytes changed under us (disk error or tampering): report and skip the segment's rest
          this.options.logger.error({ segment: segmentName(segment.id), offset: start + offset, reason: parsed.reason }, 'spool: unreadable record; skipping the rest of the segment');
          const skipped = segment.records - this.readRecordsInSegment - records.length;
          this.pendingRecords -= skipped;
          this.droppedSinceOpen += skipped;
          this.unreportedDrops += skipped;
          this.firstDropAt ??= new Date().toISOString();
          this.readPosition = { segment: segment.id, offset: segment.size };
          this.readRecordsInSegment = segment.records;
          return records;
        }
        break;
      }
      offset = parsed.next;
      records.push({ key: parsed.key, payload: parsed.payload, end: { segment: segment.id, offset: start + offset } });
    }
    this.readPosition = { segment: segment.id, offset: start + offset };
    this.readRecordsInSegment += records.length;
    return records;
  }

  /** Forgets every record up to `position` (a record's `end`); `count` = how many records that acknowledges. */
  ack(position: SpoolPosition, count: number): void {
    this.pendingRecords = Math.max(0, this.pendingRecords - count);
    if (comparePositions(position, this.ackPosition) <= 0) return;
    this.ackPosition = position;
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      const fullyAcknowledged = oldest.id < position.segment || (oldest.id === position.segment && position.offset >= oldest.size);
      if (!fullyAcknowledged) break;
      this.segments.shift();
      oldest.deleted = true;
      if (this.readHandle?.segment === oldest.id) {
        void this.readHandle.handle.close();
        this.readHandle = undefined;
      }
      void rm(join(this.options.dir, segmentName(oldest.id)), { force: true });
    }
    this.scheduleStateWrite(false);
  }

  /** Drops counted but not yet reported by a health alert (persisted across restarts). */
  unreported(): { count: number; since?: string } {
    return { count: this.unreportedDrops, since: this.firstDropAt };
  }

  /** Call once the health alert reporting `count` drops is itself in the spool. */
  markReported(count: number): void {
    this.unreportedDrops = Math.max(0, this.unreportedDrops - count);
    if (this.unreportedDrops === 0) this.firstDropAt = undefined;
    this.scheduleStateWrite(true);
  }

  /** Nothing waiting to be written, read or acknowledged. */
  isEmpty(): boolean {
    return !this.appending && this.appendQueue.length === 0 && this.pendingRecords === 0;
  }

  stats(): SpoolStats {
    return { bytes: this.bytes(), records: this.pendingRecords, dropped: this.droppedSinceOpen };
  }

  private bytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.size;
    const first = this.segments[0];
    if (first !== undefined && first.id === this.ackPosition.segment) total -= Math.min(this.ackPosition.offset, first.size);
    return total;
  }

  private scheduleStateWrite(now: boolean): void {
    this.stateDirty = true;
    if (now) {
      clearTimeout(this.stateTimer);
      this.stateTimer = undefined;
      void this.writeState();
      return;
    }
    if (this.stateTimer !== undefined) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      void this.writeState();
    }, STATE_WRITE_INTERVAL_MS);
    this.stateTimer.unref();
  }

  /** Writes state.json atomically (temp file + rename); chained so writes never interleave. */
  private writeState(): Promise<void> {
    this.stateWrite = this.stateWrite.then(async () => {
      if (!this.stateDirty) return;
      this.stateDirty = false;
      const state: PersistedState = { ack: this.ackPosition, unreportedDrops: this.unreportedDrops };
      if (this.firstDropAt !== undefined) state.firstDropAt = this.firstDropAt;
      const path = join(this.options.dir, STATE_FILE);
      try {
        await writeFile(`${path}.tmp`, JSON.stringify(state), { mode: 0o600, flush: true });
        await rename(`${path}.tmp`, path);
      } catch (err) {
        this.options.logger.error({ err: errorText(err) }, 'spool: could not save the acknowledged position');
      }
    });
    return this.stateWrite;
  }

  /** Waits for pending appends, saves the acknowledged position and releases the files. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.appending) await new Promise((resolve) => setTimeout(resolve, 1));
    this.closed = true;
    this.wakeReaders();
    clearTimeout(this.stateTimer);
    this.stateDirty = true;
    await this.writeState();
    await this.readHandle?.handle.close();
    this.readHandle = undefined;
    const fd = this.writeFd;
    this.writeFd = -1;
    if (fd >= 0) await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
  }
}

async function readState(dir: string, logger: Logger): Promise<PersistedState> {
  const fresh: PersistedState = { ack: { segment: 0, offset: 0 }, unreportedDrops: 0 };
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fresh;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as PersistedState;
    if (Number.isSafeInteger(parsed.ack?.segment) && Number.isSafeInteger(parsed.ack?.offset) && Number.isSafeInteger(parsed.unreportedDrops))
      return parsed;
  } catch {
    // reported below
  }
  logger.warn({ file: join(dir, STATE_FILE) }, 'spool: unreadable state file; resending the whole spool');
  return fresh;
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasyncCallback(fd, (err) => (err ? reject(err) : resolve())));
}

function openFd(path: string, flags: number, mode: number): Promise<number> {
  return new Promise((resolve, reject) => openCallback(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

/** A new segment's directory entry must be durable too, or a crash could lose the whole file. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
