import { crc32c } from './crc32c.js';

/**
 * The byte layout of the new-terms history file and the in-memory tuple keys. Everything here is pure
 * (no I/O), so the encoding can be tested exhaustively on its own.
 *
 * File:    header (16 bytes) then records, appended.
 * Header:  "ESNTHIST" | u32le format version | u32le CRC-32C of the 12 bytes before it
 * Record:  u32le CRC-32C of (length field + payload) | u32le payload length | payload
 * Payload: u8 kind, then
 *   HISTORY      varint history id | varint window seconds | string rule id | varint field count | string × count
 *   SIGHTING     varint history id | zigzag varint last-seen (epoch seconds) | string × the history's field count
 *   SIGHTING_U32 (version 1, read only) as SIGHTING, with last-seen as u32le epoch seconds (1970 to 2106)
 * String:  varint (byteLength × 2 + encoding bit) | bytes — bit 0: UTF-8 (the string is well-formed
 *          UTF-16), bit 1: UTF-16LE code units (lone surrogates survive; nothing is ever replaced).
 *
 * Version 2 changed only how sightings hold their time. A version-1 file is read as it is and rewritten as
 * version 2 when opened for writing; the version in the header is what keeps an older execsentry, which
 * would take the new records for damage, from touching a version-2 file.
 */

export const FILE_MAGIC = Buffer.from('ESNTHIST', 'latin1');
export const FORMAT_VERSION = 2;
export const FILE_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 8;
/** A record claiming more than this is damage, not data (tuples are bounded by the sensor's argv cap). */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** The JavaScript date range (±8.64e15 ms) in seconds: every last-seen lies within it. */
export const MAX_DATE_SECONDS = 8.64e12;

export const RECORD_HISTORY = 1;
export const RECORD_SIGHTING_U32 = 2;
export const RECORD_SIGHTING = 3;

// ---- tuple keys (in memory) ----------------------------------------------------------------------

/**
 * The Map key of a tuple within one history. Every history has a fixed arity, so a single-field tuple
 * is keyed by its value itself (no allocation on lookup); longer tuples are length-prefixed field by field
 * (`<length in base 36>:<value>`), which no two different tuples can share whatever their characters.
 */
export function tupleKey(tuple: readonly string[]): string {
  if (tuple.length === 1) return tuple[0]!;
  // join() builds one flat string; `+=` would keep a rope of parts costing ~100 more bytes per stored key.
  const parts: string[] = [];
  for (const value of tuple) parts.push(value.length.toString(36), ':', value);
  return parts.join('');
}

/** The inverse of tupleKey for a history of `arity` fields. */
export function tupleFromKey(key: string, arity: number): string[] {
  if (arity === 1) return [key];
  const tuple: string[] = [];
  let at = 0;
  for (let i = 0; i < arity; i++) {
    const colon = key.indexOf(':', at);
    const length = parseInt(key.slice(at, colon), 36);
    tuple.push(key.slice(colon + 1, colon + 1 + length));
    at = colon + 1 + length;
  }
  return tuple;
}

// ---- varints and strings -------------------------------------------------------------------------

export function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

function writeVarint(buf: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    buf[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  buf[at++] = value;
  return at;
}

interface StringWithWellFormed {
  isWellFormed(): boolean;
}

/** How a string field is stored: its encoding and byte count, decided once per write. */
interface FieldEncoding {
  utf16: boolean;
  bytes: number;
}

function fieldEncoding(value: string): FieldEncoding {
  // String.prototype.isWellFormed is in V8 since Node 20 (ES2024, not yet in TypeScript's ES2023 lib).
  const utf16 = !(value as unknown as StringWithWellFormed).isWellFormed();
  return { utf16, bytes: utf16 ? value.length * 2 : Buffer.byteLength(value, 'utf8') };
}

function fieldSize(encoding: FieldEncoding): number {
  return varintBytes(encoding.bytes * 2 + (encoding.utf16 ? 1 : 0)) + encoding.bytes;
}

function writeString(buf: Buffer, at: number, value: string, encoding: FieldEncoding): number {
  at = writeVarint(buf, at, encoding.bytes * 2 + (encoding.utf16 ? 1 : 0));
  buf.write(value, at, encoding.bytes, encoding.utf16 ? 'utf16le' : 'utf8');
  return at + encoding.bytes;
}

// ---- records -------------------------------------------------------------------------------------

export class RecordTooLargeError extends Error {}

function frame(payloadBytes: number): Buffer {
  if (payloadBytes > MAX_PAYLOAD_BYTES)
    throw new RecordTooLargeError(`a new-terms record of ${payloadBytes} bytes exceeds the ${MAX_PAYLOAD_BYTES}-byte limit`);
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payloadBytes);
  buf.writeUInt32LE(payloadBytes, 4);
  return buf;
}

function seal(buf: Buffer): Buffer {
  buf.writeUInt32LE(crc32c(buf, 4, buf.length), 0);
  return buf;
}

export interface HistoryDefinition {
  id: number;
  windowSeconds: number;
  ruleId: string;
  fields: readonly string[];
}

export function encodeHistoryRecord(def: HistoryDefinition): Buffer {
  const strings = [def.ruleId, ...def.fields];
  const encodings = strings.map(fieldEncoding);
  let size = 1 + varintBytes(def.id) + varintBytes(def.windowSeconds) + varintBytes(def.fields.length);
  for (const encoding of encodings) size += fieldSize(encoding);
  const buf = frame(size);
  let at = RECORD_HEADER_BYTES;
  buf[at++] = RECORD_HISTORY;
  at = writeVarint(buf, at, def.id);
  at = writeVarint(buf, at, def.windowSeconds);
  at = writeString(buf, at, def.ruleId, encodings[0]!);
  at = writeVarint(buf, at, def.fields.length);
  for (let i = 1; i < strings.length; i++) at = writeString(buf, at, strings[i]!, encodings[i]!);
  return seal(buf);
}

/** One sighting; `key` is the tuple's key (see tupleKey) in a history of `arity` fields. */
export function encodeSightingRecord(historyId: number, lastSeenSeconds: number, key: string, arity: number): Buffer {
  const values = arity === 1 ? [key] : tupleFromKey(key, arity);
  const encodings = values.map(fieldEncoding);
  const time = zigzag(lastSeenSeconds);
  let size = 1 + varintBytes(historyId) + varintBytes(time);
  for (const encoding of encodings) size += fieldSize(encoding);
  const buf = frame(size);
  let at = RECORD_HEADER_BYTES;
  buf[at++] = RECORD_SIGHTING;
  at = writeVarint(buf, at, historyId);
  at = writeVarint(buf, at, time);
  for (let i = 0; i < values.length; i++) at = writeString(buf, at, values[i]!, encodings[i]!);
  return seal(buf);
}

/**
 * Signed whole seconds as an unsigned varint value (0, -1, 1, -2 … → 0, 1, 2, 3 …), in arithmetic rather than
 * bit operations: JavaScript's dates span ±8.64e12 s, past 32 bits. Today's dates take 5 bytes.
 */
function zigzag(seconds: number): number {
  return seconds >= 0 ? seconds * 2 : -seconds * 2 - 1;
}

function unzigzag(value: number): number {
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

export function encodeFileHeader(version = FORMAT_VERSION): Buffer {
  const buf = Buffer.alloc(FILE_HEADER_BYTES);
  FILE_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(version, 8);
  buf.writeUInt32LE(crc32c(buf, 0, 12), 12);
  return buf;
}

// ---- decoding ------------------------------------------------------------------------------------

/** Thrown for a payload whose checksum matched but whose content does not parse (treated as damage). */
export class MalformedRecordError extends Error {}

/** A cursor over one record's payload. */
export class PayloadReader {
  constructor(
    private readonly buf: Buffer,
    public at: number,
    private readonly end: number,
  ) {}

  byte(): number {
    if (this.at >= this.end) throw new MalformedRecordError('record ends early');
    return this.buf[this.at++]!;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 0x80;
      if (scale > 2 ** 49) throw new MalformedRecordError('varint too long');
    }
  }

  /** A zigzag varint (see zigzag). */
  signedVarint(): number {
    return unzigzag(this.varint());
  }

  u32(): number {
    if (this.at + 4 > this.end) throw new MalformedRecordError('record ends early');
    const value = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return value;
  }

  string(): string {
    const header = this.varint();
    const bytes = Math.floor(header / 2);
    if (this.at + bytes > this.end) throw new MalformedRecordError('string runs past the record');
    const utf16 = header % 2 === 1;
    if (utf16 && bytes % 2 !== 0) throw new MalformedRecordError('odd UTF-16 byte count');
    const value = this.buf.toString(utf16 ? 'utf16le' : 'utf8', this.at, this.at + bytes);
    this.at += bytes;
    return value;
  }

  done(): boolean {
    return this.at === this.end;
  }
}
