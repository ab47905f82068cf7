import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { escapeBytes } from '../../src/sensor/escape-bytes.js';

const bytes = (...values: (number | string)[]) =>
  Buffer.concat(values.map((value) => (typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from([value]))));

/** The inverse the escape promises exists: `\\` is a backslash, `\xNN` one byte, anything else its UTF-8. */
function unescape(text: string): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < text.length; ) {
    if (text[i] === '\\') {
      if (text[i + 1] === '\\') {
        out.push(Buffer.from('\\'));
        i += 2;
        continue;
      }
      const hex = /^x([0-9a-f]{2})/.exec(text.slice(i + 1, i + 4));
      if (hex === null) throw new Error(`not an escape at ${i}: ${JSON.stringify(text)}`);
      out.push(Buffer.from([parseInt(hex[1]!, 16)]));
      i += 4;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(i)!);
    out.push(Buffer.from(char, 'utf8'));
    i += char.length;
  }
  return Buffer.concat(out);
}

/** Pieces that make escaping hard: every kind of ill-formed sequence, backslashes, text that looks like an escape. */
const tricky = fc.constantFrom(
  bytes(0xff),
  bytes(0xfe),
  bytes(0x80), // lone continuation byte
  bytes(0xc0, 0xaf), // overlong "/"
  bytes(0xe0, 0x80, 0xaf), // overlong, three bytes
  bytes(0xed, 0xa0, 0x80), // a surrogate
  bytes(0xf4, 0x90, 0x80, 0x80), // beyond U+10FFFF
  bytes(0xe2, 0x82), // a three-byte character cut short
  bytes(0xf0, 0x9f, 0x98), // a four-byte character cut short
  bytes(0xc3), // a two-byte character cut short
  bytes('\\'),
  bytes('\\\\'),
  bytes('\\xff'), // the text an 0xff byte escapes to
  bytes('\\x'),
  bytes('x'),
  bytes('f'),
  bytes('é'),
  bytes('€'),
  bytes('😀'),
  bytes('\uFFFD'), // a real U+FFFD, as valid as any other character
  bytes('/'),
  bytes(' '),
  bytes(0x00),
);
const byteStrings = fc.oneof(
  fc.array(tricky, { maxLength: 8 }).map((pieces) => Buffer.concat(pieces)),
  fc.uint8Array({ maxLength: 12 }).map((array) => Buffer.from(array)),
);
/** Two byte strings, often the same but for one tricky piece (independent random strings seldom come close). */
const pairs = fc.oneof(
  fc.tuple(byteStrings, byteStrings),
  fc.tuple(byteStrings, tricky, tricky, byteStrings).map(([head, x, y, tail]) => [Buffer.concat([head, x, tail]), Buffer.concat([head, y, tail])] as const),
);

describe('escapeBytes', () => {
  it('keeps valid UTF-8 as it is, escapes each byte that is not part of it, and doubles backslashes', () => {
    expect(escapeBytes(bytes('/tmp/x', 0xff))).toBe('/tmp/x\\xff');
    expect(escapeBytes(bytes('/tmp/x', 0xfe))).toBe('/tmp/x\\xfe');
    expect(escapeBytes(bytes('café ', 0xc0, 0xaf, ' €😀'))).toBe('café \\xc0\\xaf €😀');
    expect(escapeBytes(bytes(0xed, 0xa0, 0x80))).toBe('\\xed\\xa0\\x80');
    expect(escapeBytes(bytes('a', 0xe2, 0x82))).toBe('a\\xe2\\x82');
    expect(escapeBytes(bytes(0xe2, 0x82, 'b'))).toBe('\\xe2\\x82b');
    expect(escapeBytes(bytes('C:\\x', 0xff))).toBe('C:\\\\x\\xff');
    expect(escapeBytes(bytes('\\xff'))).toBe('\\\\xff');
    expect(escapeBytes(bytes('\uFFFD'))).toBe('\uFFFD');
    expect(escapeBytes(bytes())).toBe('');
  });

  it('gives distinct byte strings distinct escapes (property)', () => {
    fc.assert(
      fc.property(pairs, ([a, b]) => {
        if (!a.equals(b)) expect(escapeBytes(a)).not.toBe(escapeBytes(b));
      }),
      { numRuns: 5000 },
    );
  });

  it('can be undone: the escape determines the bytes (property)', () => {
    fc.assert(
      fc.property(byteStrings, (a) => {
        expect(unescape(escapeBytes(a)).equals(a)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('escapes a byte exactly when the bytes are not UTF-8 by Node\'s own validator (property)', () => {
    fc.assert(
      fc.property(byteStrings, (a) => {
        expect(escapeBytes(a).replaceAll('\\\\', '').includes('\\x')).toBe(!isUtf8(a));
      }),
      { numRuns: 5000 },
    );
  });

  it('changes nothing but backslashes in valid UTF-8 (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        expect(escapeBytes(Buffer.from(text, 'utf8'))).toBe(text.replaceAll('\\', '\\\\'));
      }),
    );
  });
});
