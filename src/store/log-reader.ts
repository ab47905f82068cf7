import { scanRecords, type DamagedRange, type RecordFraming } from '../io/record-scan.js';
import { crc32c } from './crc32c.js';
import {
  FILE_HEADER_BYTES,
  FILE_MAGIC,
  FORMAT_VERSION,
  MAX_DATE_SECONDS,
  MAX_PAYLOAD_BYTES,
  MalformedRecordError,
  PayloadReader,
  RECORD_HEADER_BYTES,
  RECORD_HISTORY,
  RECORD_SIGHTING,
  RECORD_SIGHTING_U32,
  encodeFileHeader,
  tupleKey,
  type HistoryDefinition,
} from './codec.js';

/** What the reader hands over, record by record, in file order. */
export interface LogSink {
  history(def: HistoryDefinition): void;
  /** `key` is the tuple's key (codec.tupleKey) for the history's arity. */
  sighting(historyId: number, lastSeenSeconds: number, key: string, recordBytes: number): void;
}

export type { DamagedRange };

export interface LogReadResult {
  /**
   * ok: read (perhaps with damage); empty: no header yet (zero-length or torn while being created);
   * future: written by a newer format version, records not read; foreign: not a history file at all.
   */
  state: 'ok' | 'empty' | 'future' | 'foreign';
  version: number;
  records: number;
  /** End of the last record kept; the file's valid length once a torn tail is cut. */
  validBytes: number;
  /** The torn last record (a write cut short by a crash), dropped. */
  tornTail?: { offset: number; bytes: number };
  damage: DamagedRange[];
  /** Sightings whose history definition was lost in a damaged range. */
  orphanSightings: number;
}

/**
 * Decodes a whole history file. A record is trusted only when its length is plausible and its CRC-32C
 * matches; after a bad record the reader searches forward for the next valid one, so damage in the middle
 * costs only the damaged records. An unreadable end is a torn tail when it looks like an interrupted append
 * (too short for a header, a length past the end of the file, or nothing but zeros), damage otherwise.
 */
export function readLog(buf: Buffer, sink: LogSink): LogReadResult {
  const result: LogReadResult = { state: 'ok', version: FORMAT_VERSION, records: 0, validBytes: 0, damage: [], orphanSightings: 0 };
  if (buf.length < FILE_HEADER_BYTES) {
    // An interrupted creation leaves a prefix of a header (of any version we know); anything else is not ours.
    let prefixOfHeader = false;
    for (let version = 1; version <= FORMAT_VERSION && !prefixOfHeader; version++)
      prefixOfHeader = buf.equals(encodeFileHeader(version).subarray(0, buf.length));
    result.state = prefixOfHeader ? 'empty' : 'foreign';
    return result;
  }
  if (!buf.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) {
    result.state = 'foreign';
    return result;
  }
  const headerIntact = buf.readUInt32LE(12) === crc32c(buf, 0, 12);
  result.version = buf.readUInt32LE(8);
  if (!headerIntact) {
    // The magic is ours, and records say by their kind which version wrote them: read them, report the header.
    result.damage.push({ offset: 0, bytes: FILE_HEADER_BYTES, reason: 'file header checksum mismatch' });
    result.version = FORMAT_VERSION;
  } else if (result.version > FORMAT_VERSION) {
    result.state = 'future';
    return result;
  }
  const arities = new Map<number, number>();
  const scan = scanRecords(buf, FILE_HEADER_BYTES, HISTORY_FRAMING, (offset, end) => {
    try {
      applyRecord(buf, offset, end, arities, sink, result);
    } catch (err) {
      if (!(err instanceof MalformedRecordError)) throw err;
      return `record does not parse: ${err.message}`;
    }
    result.records++;
    return undefined;
  });
  result.validBytes = scan.validBytes;
  result.damage = result.damage.concat(scan.damage);
  if (scan.tornTail !== undefined) result.tornTail = scan.tornTail;
  return result;
}

/** The end offset of a valid record starting at `offset`, or 0. */
function validRecordEnd(buf: Buffer, offset: number): number {
  if (offset + RECORD_HEADER_BYTES + 1 > buf.length) return 0;
  const length = buf.readUInt32LE(offset + 4);
  if (length < 1 || length > MAX_PAYLOAD_BYTES) return 0;
  const end = offset + RECORD_HEADER_BYTES + length;
  if (end > buf.length) return 0;
  const kind = buf[offset + RECORD_HEADER_BYTES];
  if (kind !== RECORD_HISTORY && kind !== RECORD_SIGHTING && kind !== RECORD_SIGHTING_U32) return 0;
  return crc32c(buf, offset + 4, end) === buf.readUInt32LE(offset) ? end : 0;
}

function looksLikeInterruptedAppend(buf: Buffer, offset: number): boolean {
  if (offset + RECORD_HEADER_BYTES > buf.length) return true;
  const length = buf.readUInt32LE(offset + 4);
  if (length >= 1 && length <= MAX_PAYLOAD_BYTES && offset + RECORD_HEADER_BYTES + length > buf.length) return true;
  for (let at = offset; at < buf.length; at++) if (buf[at] !== 0) return false;
  return true;
}

function describeBadRecord(buf: Buffer, offset: number): string {
  if (offset + RECORD_HEADER_BYTES > buf.length) return 'record header cut short';
  const length = buf.readUInt32LE(offset + 4);
  if (length < 1 || length > MAX_PAYLOAD_BYTES) return `implausible record length ${length}`;
  if (offset + RECORD_HEADER_BYTES + length > buf.length) return `record length ${length} runs past the end of the file`;
  return 'checksum mismatch';
}

const HISTORY_FRAMING: RecordFraming = { recordEnd: validRecordEnd, describeBadRecord, isTornTail: looksLikeInterruptedAppend };

function applyRecord(
  buf: Buffer,
  offset: number,
  end: number,
  arities: Map<number, number>,
  sink: LogSink,
  result: LogReadResult,
): void {
  const reader = new PayloadReader(buf, offset + RECORD_HEADER_BYTES, end);
  const kind = reader.byte();
  if (kind === RECORD_HISTORY) {
    const id = reader.varint();
    const windowSeconds = reader.varint();
    const ruleId = reader.string();
    const count = reader.varint();
    if (count < 1 || count > 64) throw new MalformedRecordError(`history with ${count} fields`);
    const fields: string[] = [];
    for (let i = 0; i < count; i++) fields.push(reader.string());
    if (!reader.done()) throw new MalformedRecordError('trailing bytes');
    const known = arities.get(id);
    if (known !== undefined && known !== count) throw new MalformedRecordError(`history ${id} redefined with another arity`);
    arities.set(id, count);
    sink.history({ id, windowSeconds, ruleId, fields });
    return;
  }
  const historyId = reader.varint();
  const seconds = kind === RECORD_SIGHTING ? reader.signedVarint() : reader.u32();
  if (Math.abs(seconds) > MAX_DATE_SECONDS) throw new MalformedRecordError(`last-seen ${seconds} s is no JavaScript date`);
  const arity = arities.get(historyId);
  if (arity === undefined) {
    result.orphanSightings++;
    return;
  }
  let key: string;
  if (arity === 1) key = reader.string();
  else {
    const tuple: string[] = [];
    for (let i = 0; i < arity; i++) tuple.push(reader.string());
    key = tupleKey(tuple);
  }
  if (!reader.done()) throw new MalformedRecordError('trailing bytes');
  sink.sighting(historyId, seconds, key, end - offset);
}
