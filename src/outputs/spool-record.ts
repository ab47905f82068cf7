import { crc32 } from 'node:zlib';
import type { RecordFraming } from '../io/record-scan.js';

/**
 * One spool record: `u32 body length | u32 CRC-32 of body | body`, body = `u16 key length | key (UTF-8) |
 * payload`, integers little-endian. The key is the alert's delivery id (event.id), the payload its JSON.
 */

export const HEADER_BYTES = 8;
const KEY_LENGTH_BYTES = 2;
const MAX_KEY_BYTES = 0xffff;

/** The bytes a record of this key and payload takes in a segment. */
export function recordBytes(key: string, payload: string): number {
  return HEADER_BYTES + KEY_LENGTH_BYTES + Buffer.byteLength(key) + Buffer.byteLength(payload);
}

/** Encodes one record. */
export function encodeRecord(key: string, payload: string): Buffer {
  const keyBytes = Buffer.byteLength(key);
  if (keyBytes > MAX_KEY_BYTES) throw new RangeError('spool record key longer than 65535 bytes');
  const payloadBytes = Buffer.byteLength(payload);
  const record = Buffer.allocUnsafe(HEADER_BYTES + KEY_LENGTH_BYTES + keyBytes + payloadBytes);
  const bodyLength = KEY_LENGTH_BYTES + keyBytes + payloadBytes;
  record.writeUInt32LE(bodyLength, 0);
  record.writeUInt16LE(keyBytes, HEADER_BYTES);
  record.write(key, HEADER_BYTES + KEY_LENGTH_BYTES);
  record.write(payload, HEADER_BYTES + KEY_LENGTH_BYTES + keyBytes);
  record.writeUInt32LE(crc32(record.subarray(HEADER_BYTES)), 4);
  return record;
}

export type ParseOutcome =
  | { kind: 'record'; key: string; payload: Buffer; next: number }
  | { kind: 'incomplete' }
  | { kind: 'corrupt'; reason: string };

export function parseRecord(buffer: Buffer, offset: number): ParseOutcome {
  if (buffer.length - offset < HEADER_BYTES) return { kind: 'incomplete' };
  const bodyLength = buffer.readUInt32LE(offset);
  if (bodyLength < KEY_LENGTH_BYTES) return { kind: 'corrupt', reason: `impossible record length ${bodyLength}` };
  const next = offset + HEADER_BYTES + bodyLength;
  if (next > buffer.length) return { kind: 'incomplete' };
  const body = buffer.subarray(offset + HEADER_BYTES, next);
  if (crc32(body) !== buffer.readUInt32LE(offset + 4)) return { kind: 'corrupt', reason: 'checksum mismatch' };
  const keyLength = body.readUInt16LE(0);
  if (KEY_LENGTH_BYTES + keyLength > bodyLength) return { kind: 'corrupt', reason: 'key longer than record' };
  return {
    kind: 'record',
    key: body.toString('utf8', KEY_LENGTH_BYTES, KEY_LENGTH_BYTES + keyLength),
    payload: body.subarray(KEY_LENGTH_BYTES + keyLength),
    next,
  };
}

/**
 * The spool's records for scanRecords. A crash can tear only the append in progress, so an unreadable end
 * is a torn tail only in the segment appends went to last (`lastAppended`); anywhere else it is damage.
 */
export function spoolFraming(lastAppended: boolean): RecordFraming {
  return {
    recordEnd(buffer, offset) {
      const parsed = parseRecord(buffer, offset);
      return parsed.kind === 'record' ? parsed.next : 0;
    },
    describeBadRecord(buffer, offset) {
      const parsed = parseRecord(buffer, offset);
      if (parsed.kind === 'corrupt') return parsed.reason;
      return buffer.length - offset < HEADER_BYTES ? 'record header cut short' : 'record length runs past the end of the file';
    },
    isTornTail: () => lastAppended,
  };
}
