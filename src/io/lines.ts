import { MiB } from './files.js';

/**
 * NDJSON line reading for every command that reads documents (`kql`, `rules test`): linear in the input
 * (a line spread over many chunks is joined once, when its newline arrives) and bounded in memory (a line
 * longer than the limit is not kept: its bytes are counted and dropped up to the next newline, so even
 * /dev/zero costs no memory).
 */

/** The longest line kept; an ECS event is a few KiB, one with a maximal command line well under 16 MiB. */
export const MAX_LINE_BYTES = 16 * MiB;

export type Line =
  /** `bytes` without its newline; \r of a \r\n line is kept (the input, byte for byte). */
  | { number: number; bytes: Buffer; tooLong?: undefined }
  /**
   * A line that went over the limit, reported as soon as it did (a reader that stops at a bad line must
   * not wait for a newline that /dev/zero never sends); the rest of it is skipped.
   */
  | { number: number; tooLong: true };

const NEWLINE = 0x0a;

export async function* readLines(input: AsyncIterable<Buffer | string>, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<Line> {
  let number = 0;
  let parts: Buffer[] = [];
  let partBytes = 0;
  // set from a line's overflow to its newline: its bytes are dropped
  let skipping = false;

  for await (const chunk of input) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (let newline = data.indexOf(NEWLINE, start); newline >= 0; newline = data.indexOf(NEWLINE, start)) {
      const tail = data.subarray(start, newline);
      start = newline + 1;
      if (skipping) {
        skipping = false;
        continue;
      }
      number++;
      if (partBytes + tail.length > maxLineBytes) {
        parts = [];
        partBytes = 0;
        yield { number, tooLong: true };
        continue;
      }
      const bytes = parts.length === 0 ? tail : Buffer.concat([...parts, tail], partBytes + tail.length);
      parts = [];
      partBytes = 0;
      yield { number, bytes };
    }
    const rest = data.subarray(start);
    if (skipping || rest.length === 0) continue;
    if (partBytes + rest.length > maxLineBytes) {
      parts = [];
      partBytes = 0;
      skipping = true;
      yield { number: ++number, tooLong: true };
      continue;
    }
    // a view, like the lines above: a stream hands each chunk over to its reader for good
    parts.push(rest);
    partBytes += rest.length;
  }
  if (partBytes > 0) yield { number: ++number, bytes: Buffer.concat(parts, partBytes) };
}

/** The line's text for JSON.parse: UTF-8, without the \r of a \r\n line. */
export function lineText(bytes: Buffer): string {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
  return bytes.toString('utf8', 0, end);
}
