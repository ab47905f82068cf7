import type { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';
import { formatBytes, openDocumentStream, UnreadableFile } from '../io/files.js';
import { lineText, MAX_LINE_BYTES, readLines } from '../io/lines.js';
import { escapeControl } from '../log.js';

/**
 * The NDJSON documents a command reads (`kql [FILE]`, `rules test --events FILE`): the file, or stdin for
 * "-". A file that cannot be opened is the user's input error (exit 2), named in one line.
 */
export async function openDocuments(path: string): Promise<Readable> {
  try {
    return await openDocumentStream(path);
  } catch (err) {
    if (err instanceof UnreadableFile) throw new ValidationError(`cannot read ${escapeControl(path)}: ${err.reason}`);
    throw err;
  }
}

/** One NDJSON document as read: its line number, its bytes exactly as they came (no newline) and the object. */
export interface DocumentLine {
  readonly number: number;
  readonly bytes: Buffer;
  readonly doc: object;
}

/**
 * The JSON objects of an NDJSON stream, in order. Blank lines are passed over; a line that is too long, not
 * JSON or not an object is reported to `skip` with its line number and the reason, and reading goes on.
 */
export async function* readDocuments(input: Readable, skip: (lineNumber: number, why: string) => void): AsyncGenerator<DocumentLine> {
  for await (const line of readLines(input as AsyncIterable<Buffer | string>)) {
    if (line.tooLong === true) {
      skip(line.number, `longer than ${formatBytes(MAX_LINE_BYTES)}`);
      continue;
    }
    const text = lineText(line.bytes);
    if (text.trim() === '') continue;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      skip(line.number, `not valid JSON (${escapeControl((err as Error).message)})`);
      continue;
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      skip(line.number, 'not a JSON object');
      continue;
    }
    yield { number: line.number, bytes: line.bytes, doc };
  }
}
