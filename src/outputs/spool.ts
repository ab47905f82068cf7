import { close as closeFd, constants as fsConstants, fdatasync as fdatasyncCallback, ftruncate as ftruncateCallback, open as openCallback, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../log.js';
import { kindOf, plantedFileProblem } from '../io/files.js';
import { scanRecords, type DamagedRange } from '../io/record-scan.js';
import { HEADER_BYTES, encodeRecord, parseRecord, spoolFraming } from './spool-record.js';
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
 *
 * Recovery errs towards sending again: a state.json that cannot be trusted means delivering from the
 * oldest segment, and damaged bytes in a segment are skipped, never the records after them. The agent may
 * run as root, and reads past permissions (CAP_DAC_READ_SEARCH), so no spool file is opened through a
 * symbolic link and every new one is created exclusively.
 */

const STATE_FILE = 'state.json';
const SEGMENT_SUFFIX = '.seg';
const SEGMENT_NAME = /^\d{16}\.seg$/;
const { O_APPEND, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY } = fsConstants;
/** A new file: never through a planted link, never into a file something else put there first. */
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
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
  /** records committed, not counting those lost to damage */
  records: number;
  /** damaged byte ranges, which the reader steps over */
  holes: DamagedRange[];
  deleted: boolean;
}

/** What recovery learnt about one segment on disk. */
interface SegmentScan {
  segment: Segment;
  /** records before the acknowledged offset, when the segment holds it */
  recordsBeforeAck: number;
  /** whether the acknowledged offset is one this segment's records could have produced */
  ackFits: boolean;
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

interface LoadedState {
  /** undefined: no position to trust, deliver from the oldest segment */
  ack: SpoolPosition | undefined;
  unreportedDrops: number;
  firstDropAt?: string;
  /** what was wrong with state.json, for its one warning */
  problems: string[];
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
  private ackPosition: SpoolPosition = { segment: 0, offset: 0 };
  private readPosition: SpoolPosition = { segment: 0, offset: 0 };
  /** records of the reader's segment already handed out */
  private readRecordsInSegment = 0;
  private readHandle: { segment: number; handle: FileHandle } | undefined;
  private dataWaiters: Array<() => void> = [];
  private closed = false;
  private pendingRecords = 0;
  private droppedSinceOpen = 0;
  private unreportedDrops = 0;
  private firstDropAt: string | undefined;
  private stateDirty = false;
  private stateTimer: NodeJS.Timeout | undefined;
  private stateWrite: Promise<void> = Promise.resolve();
  /** segment deletions under way: close waits for them, so a closed spool no longer changes its directory */
  private removals = new Set<Promise<void>>();
  private readonly segmentBytes: number;
  private readonly statePath: string;

  private constructor(private readonly options: SpoolOptions) {
    this.segmentBytes =
      options.segmentBytes ?? Math.min(16 * 1024 * 1024, Math.max(4096, Math.floor(options.maxBytes / 8)));
    this.statePath = join(options.dir, STATE_FILE);
  }

  /** Opens (creating) the spool directory, checks every segment, and starts a fresh segment for appends. */
  static async open(options: SpoolOptions): Promise<Spool> {
    await prepareDirectory(options.dir);
    const spool = new Spool(options);
    await spool.recover(await readState(spool.statePath));
    return spool;
  }

  private get writeSegment(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private segmentPath(id: number): string {
    return join(this.options.dir, segmentName(id));
  }

  private async recover(saved: LoadedState): Promise<void> {
    const { logger } = this.options;
    this.unreportedDrops = saved.unreportedDrops;
    this.firstDropAt = saved.firstDropAt;
    const problems = [...saved.problems];
    let ack = saved.ack;
    const ids = await this.segmentsOnDisk();
    const scans: SegmentScan[] = [];
    for (const id of ids) scans.push(await this.scanSegment(id, id === ids[ids.length - 1], ack?.segment === id ? ack.offset : undefined));
    const misfit = ack === undefined ? undefined : ackMisfit(ack, scans);
    if (misfit !== undefined) {
      problems.push(misfit);
      ack = undefined;
    }
    if (problems.length > 0)
      logger.warn(
        { file: this.statePath, problems },
        `spool: state file ${this.statePath}: ${problems.join('; ')}; delivering every spooled alert again, from the oldest segment`,
      );
    const held = scans.find((scan) => scan.segment.id === ack?.segment);
    for (const { segment } of scans) {
      if (held !== undefined && segment.id < held.segment.id) {
        await this.removeSegmentFile(segment.id, 'info', 'spool: deleting a segment delivered before the last stop (it lies before the acknowledged position)');
        continue;
      }
      const file = this.segmentPath(segment.id);
      for (const { offset, bytes, reason } of segment.holes)
        logger.error(
          { file, offset, bytes, reason },
          `spool: ${file} is damaged at offset ${offset} (${bytes} bytes: ${reason}); those bytes are skipped, the records after them are delivered`,
        );
      this.segments.push(segment);
      this.pendingRecords += segment.records;
    }
    await this.startSegment((this.segments[this.segments.length - 1]?.id ?? 0) + 1);
    if (held !== undefined) {
      // resume right after the last acknowledged record; what came before it in that segment was delivered
      this.ackPosition = { segment: held.segment.id, offset: Math.min(ack!.offset, held.segment.size) };
      this.readRecordsInSegment = held.recordsBeforeAck;
      this.pendingRecords -= held.recordsBeforeAck;
    } else {
      this.ackPosition = { segment: this.segments[0]!.id, offset: 0 };
    }
    this.readPosition = { ...this.ackPosition };
    // the untrustworthy file goes at once, so the next start does not report it again
    if (problems.length > 0) this.scheduleStateWrite(true);
  }

  /**
   * The segment numbers with something to read, oldest first. Anything else named like a segment is dealt
   * with here, each with a log line: empty ones are deleted, whatever is not a regular file is set aside
   * without being opened (a link is never followed, a FIFO never blocks the start).
   */
  private async segmentsOnDisk(): Promise<number[]> {
    const ids: number[] = [];
    for (const name of (await readdir(this.options.dir)).filter((entry) => SEGMENT_NAME.test(entry)).sort()) {
      const id = Number(name.slice(0, 16));
      const file = this.segmentPath(id);
      const stat = await lstat(file);
      const planted = stat.isSymbolicLink() ? 'a symbolic link' : plantedFileProblem(stat);
      if (planted !== undefined) {
        const aside = `${file}.${stat.isSymbolicLink() ? 'symlink' : 'foreign'}-${Date.now()}`;
        // rename moves the entry itself: a link is moved, not what it points to
        await rename(file, aside);
        this.options.logger.error(
          { file, kind: planted, setAside: aside },
          `spool: ${file} is ${planted}, not a segment the spool wrote; set aside as ${aside} without opening it`,
        );
      } else if (stat.size === 0) {
        await this.removeSegmentFile(id, 'debug', 'spool: deleting an empty segment (it holds no record)');
      } else {
        ids.push(id);
      }
    }
    return ids;
  }

  /**
   * Reads one segment whole and checks every record. Damage becomes holes the reader steps over; a torn
   * tail, which only the segment appended to last can have, is cut off.
   */
  private async scanSegment(id: number, lastAppended: boolean, ackOffset: number | undefined): Promise<SegmentScan> {
    const file = this.segmentPath(id);
    const handle = await openExisting(file, O_RDWR);
    try {
      const content = await handle.readFile();
      let records = 0;
      let recordsBeforeAck = 0;
      let ackFits = ackOffset === 0;
      const scan = scanRecords(content, 0, spoolFraming(lastAppended), (offset, end) => {
        records += 1;
        if (ackOffset !== undefined) {
          if (offset < ackOffset) recordsBeforeAck += 1;
          if (offset === ackOffset || end === ackOffset) ackFits = true;
        }
        return undefined;
      });
      // An acknowledged offset inside bytes that no longer verify was a record boundary before they were
      // damaged; what follows those bytes comes after it, so trusting it loses nothing readable.
      if (ackOffset !== undefined && !ackFits)
        ackFits = [...scan.damage, ...(scan.tornTail === undefined ? [] : [scan.tornTail])].some(
          (range) => range.offset < ackOffset && ackOffset <= range.offset + range.bytes,
        );
      let size = content.length;
      if (scan.tornTail !== undefined) {
        // The append a crash interrupted: it was never acknowledged to the caller.
        const { offset, bytes } = scan.tornTail;
        this.options.logger.warn({ file, offset, bytes }, `spool: dropping the torn tail of ${file} at offset ${offset} (${bytes} bytes, an append a crash cut short)`);
        await handle.truncate(offset);
        await handle.sync();
        size = offset;
      }
      return { segment: { id, size, records, holes: scan.damage, deleted: false }, recordsBeforeAck, ackFits };
    } finally {
      await handle.close();
    }
  }

  private async startSegment(id: number): Promise<void> {
    const file = this.segmentPath(id);
    // opened before the current one is closed: when creating fails, the current segment stays usable
    const fd = await openFd(file, CREATE_FLAGS | O_APPEND, 0o600).catch((err: unknown) => {
      throw (err as NodeJS.ErrnoException).code === 'EEXIST'
        ? new Error(`spool: ${file} already exists; the spool creates every segment itself and never writes into or through one it did not create`)
        : err;
    });
    if (this.writeFd >= 0) closeFd(this.writeFd, () => undefined);
    this.writeFd = fd;
    this.segments.push({ id, size: 0, records: 0, holes: [], deleted: false });
    await syncDirectory(this.options.dir);
  }

  /** Deletes a segment file, saying what and why; a failure is logged, never thrown (it only costs disk space). */
  private removeSegmentFile(id: number, level: 'debug' | 'info' | 'warn', message: string, fields: Record<string, unknown> = {}): Promise<void> {
    const file = this.segmentPath(id);
    this.options.logger[level]({ file, ...fields }, message);
    const removal = rm(file, { force: true }).catch((err: unknown) =>
      this.options.logger.error({ file, err: errorText(err) }, 'spool: could not delete a segment'),
    );
    this.removals.add(removal);
    void removal.then(() => this.removals.delete(removal));
    return removal;
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
        this.countDropped(lost);
        void this.removeSegmentFile(oldest.id, 'warn', 'spool full: dropped the oldest undelivered alerts', {
          dropped: lost,
          droppedTotal: this.droppedSinceOpen,
          maxBytes: this.options.maxBytes,
        });
      } else {
        void this.removeSegmentFile(oldest.id, 'debug', 'spool full: deleting the oldest segment, every alert in it already handed to the collector');
      }
      this.scheduleStateWrite(true);
    }
  }

  private countDropped(count: number): void {
    this.droppedSinceOpen += count;
    this.unreportedDrops += count;
    this.firstDropAt ??= new Date().toISOString();
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

  /**
   * Reads records of `segment` from the read position; undefined when there is none to hand out this
   * time (the segment was dropped meanwhile, or the reader stepped over damage).
   */
  private async readFrom(segment: Segment, max: number): Promise<SpoolRecord[] | undefined> {
    const start = this.readPosition.offset;
    const hole = segment.holes.find((h) => h.offset <= start && start < h.offset + h.bytes);
    if (hole !== undefined) {
      this.readPosition = { segment: segment.id, offset: hole.offset + hole.bytes };
      return undefined;
    }
    const limit = segment.holes.reduce((nearest, h) => (h.offset > start && h.offset < nearest ? h.offset : nearest), segment.size);
    const handle = await this.readHandleFor(segment);
    if (handle === undefined) return undefined;
    let length = Math.min(limit - start, READ_CHUNK_BYTES);
    let buffer = Buffer.allocUnsafe(length);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, length, start);
      if (this.movedOn(segment, start)) return undefined;
      buffer = buffer.subarray(0, bytesRead);
      if (bytesRead < HEADER_BYTES) break;
      const needed = HEADER_BYTES + buffer.readUInt32LE(0);
      if (needed <= bytesRead || needed > limit - start) break;
      // one record larger than the chunk: read it whole
      length = needed;
      buffer = Buffer.allocUnsafe(length);
    }
    const records: SpoolRecord[] = [];
    let offset = 0;
    // a file shorter than what was committed to it is damage too
    let damaged = buffer.length === 0;
    while (records.length < max && offset < buffer.length) {
      const parsed = parseRecord(buffer, offset);
      if (parsed.kind !== 'record') {
        // Only the chunk's end may cut a record short (the next read starts with it); a record that does not
        // verify, or does not fit before the limit, means committed bytes changed (disk error or tampering).
        damaged = parsed.kind === 'corrupt' || offset === 0 || start + buffer.length >= limit;
        break;
      }
      offset = parsed.next;
      records.push({ key: parsed.key, payload: parsed.payload, end: { segment: segment.id, offset: start + offset } });
    }
    this.readPosition = { segment: segment.id, offset: start + offset };
    this.readRecordsInSegment += records.length;
    if (damaged) await this.skipDamage(segment, handle, start + offset);
    return records.length > 0 ? records : undefined;
  }

  private async readHandleFor(segment: Segment): Promise<FileHandle | undefined> {
    if (this.readHandle?.segment === segment.id) return this.readHandle.handle;
    await this.readHandle?.handle.close();
    this.readHandle = undefined;
    try {
      this.readHandle = { segment: segment.id, handle: await openExisting(this.segmentPath(segment.id), O_RDONLY) };
    } catch (err) {
      if (segment.deleted) return undefined;
      throw err;
    }
    return this.readHandle.handle;
  }

  /** Whether the reader's position changed while it waited for the disk (acknowledged, or dropped when full). */
  private movedOn(segment: Segment, offset: number): boolean {
    return segment.deleted || this.readPosition.segment !== segment.id || this.readPosition.offset !== offset;
  }

  /**
   * Committed bytes from `at` on no longer verify. The rest of the segment is scanned as at start: the
   * damage becomes holes, the reader goes on at the next record that verifies, and the records the damage
   * took are counted as dropped.
   */
  private async skipDamage(segment: Segment, handle: FileHandle, at: number): Promise<void> {
    const rest = Buffer.allocUnsafe(segment.size - at);
    const { bytesRead } = await handle.read(rest, 0, rest.length, at);
    if (this.movedOn(segment, at)) return;
    let intact = 0;
    const scan = scanRecords(rest.subarray(0, bytesRead), 0, spoolFraming(false), () => {
      intact += 1;
      return undefined;
    });
    const found = scan.damage.map((range) => ({ ...range, offset: at + range.offset }));
    if (bytesRead < rest.length) found.push({ offset: at + bytesRead, bytes: rest.length - bytesRead, reason: 'missing: the file is shorter than what was written to it' });
    const fresh = found.filter((range) => !segment.holes.some((hole) => hole.offset === range.offset));
    const lost = Math.max(0, segment.records - this.readRecordsInSegment - intact);
    if (fresh.length === 0 && lost === 0) return;
    segment.holes = segment.holes.concat(fresh);
    segment.records -= lost;
    this.pendingRecords -= lost;
    if (lost > 0) this.countDropped(lost);
    const file = this.segmentPath(segment.id);
    this.options.logger.error(
      { file, offset: at, damage: fresh, lost },
      `spool: ${file} changed on disk after it was written, at offset ${at}; skipping the damaged bytes (${lost} alert(s) lost), delivery goes on with the next intact record`,
    );
    this.scheduleStateWrite(true);
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
      void this.removeSegmentFile(oldest.id, 'debug', 'spool: deleting a delivered segment (every record in it was acknowledged)');
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

  /** Bytes that can still be appended before the oldest undelivered alerts would have to be dropped. */
  freeBytes(): number {
    return Math.max(0, this.options.maxBytes - this.bytes());
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

  /** Saves state.json; chained so writes never interleave. */
  private writeState(): Promise<void> {
    this.stateWrite = this.stateWrite.then(async () => {
      if (!this.stateDirty) return;
      this.stateDirty = false;
      const state: PersistedState = { ack: this.ackPosition, unreportedDrops: this.unreportedDrops };
      if (this.firstDropAt !== undefined) state.firstDropAt = this.firstDropAt;
      try {
        await this.saveState(JSON.stringify(state));
      } catch (err) {
        this.options.logger.error({ file: this.statePath, err: errorText(err) }, 'spool: could not save the acknowledged position');
      }
    });
    return this.stateWrite;
  }

  /** Atomically: a new temporary file, fsynced, renamed over state.json (which replaces a link, never follows it). */
  private async saveState(json: string): Promise<void> {
    const temporary = `${this.statePath}.tmp`;
    let handle: FileHandle;
    try {
      handle = await open(temporary, CREATE_FLAGS, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Left by a crash or a failed save, or planted: removing it unlinks the name, whatever it points to.
      this.options.logger.warn({ file: temporary }, `spool: removing ${temporary}, left over or planted, before saving the state`);
      await rm(temporary);
      handle = await open(temporary, CREATE_FLAGS, 0o600);
    }
    try {
      await handle.writeFile(json);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.statePath);
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
    await Promise.all(this.removals);
    await this.readHandle?.handle.close();
    this.readHandle = undefined;
    const fd = this.writeFd;
    this.writeFd = -1;
    if (fd >= 0) await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
  }
}

/** Why an acknowledged position cannot have come from these segments, or undefined when it can. */
function ackMisfit(ack: SpoolPosition, scans: readonly SegmentScan[]): string | undefined {
  if (scans.length === 0) return undefined;
  const held = scans.find((scan) => scan.segment.id === ack.segment);
  if (held !== undefined) {
    if (held.ackFits) return undefined;
    return ack.offset > held.segment.size
      ? `acknowledged offset ${ack.offset} lies beyond the end of segment ${ack.segment} (${held.segment.size} bytes)`
      : `acknowledged offset ${ack.offset} is not a record boundary of segment ${ack.segment}`;
  }
  const oldest = scans[0]!.segment.id;
  const newest = scans[scans.length - 1]!.segment.id;
  // an older segment was delivered and deleted: everything left comes after it
  if (ack.segment < oldest) return undefined;
  if (ack.segment > newest) return `acknowledged segment ${ack.segment} lies beyond the spooled segments (the newest is ${newest})`;
  return `acknowledged segment ${ack.segment} does not exist, though segments before and after it do (${oldest} to ${newest})`;
}

/** state.json as saved, or what was wrong with it; a missing file is a spool that never saved one. */
async function readState(file: string): Promise<LoadedState> {
  let text: string;
  try {
    const handle = await openExisting(file, O_RDONLY);
    try {
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ack: undefined, unreportedDrops: 0, problems: [] };
    const problem = err instanceof NotASpoolFile ? `it is ${err.kind}, not read through` : `it cannot be read (${errorText(err)})`;
    return { ack: undefined, unreportedDrops: 0, problems: [problem] };
  }
  return parseState(text);
}

function parseState(text: string): LoadedState {
  const state: LoadedState = { ack: undefined, unreportedDrops: 0, problems: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    state.problems.push(`not valid JSON (${errorText(err)})`);
    return state;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    state.problems.push('not an object');
    return state;
  }
  const { ack, unreportedDrops, firstDropAt } = parsed as Record<string, unknown>;
  if (typeof ack !== 'object' || ack === null) state.problems.push('ack is missing or not an object');
  else {
    const { segment, offset } = ack as Record<string, unknown>;
    if (!isCount(segment)) state.problems.push(`ack.segment must be a non-negative integer, got ${JSON.stringify(segment)}`);
    if (!isCount(offset)) state.problems.push(`ack.offset must be a non-negative integer, got ${JSON.stringify(offset)}`);
    if (isCount(segment) && isCount(offset)) state.ack = { segment, offset };
  }
  if (isCount(unreportedDrops)) state.unreportedDrops = unreportedDrops;
  else state.problems.push(`unreportedDrops must be a non-negative integer, got ${JSON.stringify(unreportedDrops)}`);
  if (typeof firstDropAt === 'string' && !Number.isNaN(Date.parse(firstDropAt))) state.firstDropAt = firstDropAt;
  else if (firstDropAt !== undefined) state.problems.push(`firstDropAt must be a date string, got ${JSON.stringify(firstDropAt)}`);
  // a file wrong in any part is no witness for its position either
  if (state.problems.length > 0) state.ack = undefined;
  return state;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasyncCallback(fd, (err) => (err ? reject(err) : resolve())));
}

function openFd(path: string, flags: number, mode: number): Promise<number> {
  return new Promise((resolve, reject) => openCallback(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

/** A file in the spool's directory that is not one of its own regular files. */
class NotASpoolFile extends Error {
  constructor(
    readonly file: string,
    readonly kind: string,
  ) {
    super(`${file} is ${kind}; the spool never follows, opens or writes through anything but its own regular files`);
    this.name = 'NotASpoolFile';
  }
}

/** Opens a file the spool wrote before: never through a link, without blocking on a FIFO, only a regular file. */
async function openExisting(file: string, flags: number): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(file, flags | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'ELOOP' ? new NotASpoolFile(file, 'a symbolic link') : err;
  }
  const planted = plantedFileProblem(await handle.stat());
  if (planted === undefined) return handle;
  await handle.close();
  throw new NotASpoolFile(file, planted);
}

/**
 * The spool's directory, and `spool/` above it, must be real ones: through a planted link, root would create
 * files wherever it points. (The state directory itself is the store's to check.)
 */
async function prepareDirectory(dir: string): Promise<void> {
  for (const path of [dirname(dir), dir]) {
    const stat = await lstat(path).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    });
    if (stat === undefined) await mkdir(path, { mode: 0o700 });
    else if (!stat.isDirectory()) throw new NotASpoolFile(path, kindOf(stat));
  }
}

/** A new segment's directory entry must be durable too, or a crash could lose the whole file. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
