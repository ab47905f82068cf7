/**
 * Reading an append-only file of checksummed records that may be damaged. Each format says what a record
 * that verifies looks like; the scan walks the file, and after damage it resumes at the next offset where
 * a record verifies, so damage in the middle costs only the damaged records. An unreadable end that no
 * record follows is either a torn tail (an append a crash cut short, which the format recognises) or
 * damage.
 */

export interface RecordFraming {
  /** The end offset of a record that starts at `offset` and verifies (plausible length, checksum), or 0. */
  recordEnd(buf: Buffer, offset: number): number;
  /** Why no record verifies at `offset`, for the report. */
  describeBadRecord(buf: Buffer, offset: number): string;
  /** Whether the bytes from `offset` to the end, where no record verifies, are an append cut short by a crash. */
  isTornTail(buf: Buffer, offset: number): boolean;
}

/** A byte range that could not be read: reported with its offset, never silently skipped. */
export interface DamagedRange {
  offset: number;
  bytes: number;
  reason: string;
}

export interface RecordScan {
  /** End of the last record accepted. */
  validBytes: number;
  damage: DamagedRange[];
  tornTail?: { offset: number; bytes: number };
}

/**
 * Walks the records of `buf` from `start`, in order. `accept` sees each record that verifies; it returns
 * a reason when the record's content does not parse, which makes the record damage like a bad checksum.
 */
export function scanRecords(
  buf: Buffer,
  start: number,
  framing: RecordFraming,
  accept: (offset: number, end: number) => string | undefined,
): RecordScan {
  const scan: RecordScan = { validBytes: start, damage: [] };
  let offset = start;
  while (offset < buf.length) {
    const end = framing.recordEnd(buf, offset);
    if (end > 0) {
      const malformed = accept(offset, end);
      if (malformed === undefined) {
        scan.validBytes = end;
        offset = end;
        continue;
      }
      const next = nextRecord(buf, offset + 1, framing);
      scan.damage.push({ offset, bytes: next - offset, reason: malformed });
      offset = next;
      continue;
    }
    const next = nextRecord(buf, offset + 1, framing);
    if (next === buf.length && framing.isTornTail(buf, offset)) {
      scan.tornTail = { offset, bytes: buf.length - offset };
      break;
    }
    scan.damage.push({ offset, bytes: next - offset, reason: framing.describeBadRecord(buf, offset) });
    offset = next;
  }
  return scan;
}

function nextRecord(buf: Buffer, from: number, framing: RecordFraming): number {
  for (let at = from; at < buf.length; at++) if (framing.recordEnd(buf, at) > 0) return at;
  return buf.length;
}
