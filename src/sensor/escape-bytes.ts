const BACKSLASH = 0x5c;
const X = 0x78;
const HEX_DIGITS = Buffer.from('0123456789abcdef');

/**
 * Bytes read from the host that are not all UTF-8 (a path, an argument), as readable text that still tells
 * every byte string apart, which U+FFFD does not: valid UTF-8 stays as it is, a backslash becomes `\\` and
 * each byte that is not part of a valid UTF-8 character becomes `\xNN` (lowercase hex). A backslash only
 * ever starts one of those two escapes, so the text reads back into exactly these bytes.
 *
 * An attacker can hand the sensor 64 KiB of such bytes per exec: the escape is written as bytes in one
 * pass and decoded once.
 */
export function escapeBytes(bytes: Uint8Array): string {
  const out = Buffer.allocUnsafe(bytes.length * 4);
  let n = 0;
  let i = 0;
  while (i < bytes.length) {
    const byte = bytes[i]!;
    const length = byte === BACKSLASH ? 0 : sequenceLength(bytes, i);
    if (length > 0) {
      for (const end = i + length; i < end; i++) out[n++] = bytes[i]!;
      continue;
    }
    out[n++] = BACKSLASH;
    if (byte === BACKSLASH) {
      out[n++] = BACKSLASH;
    } else {
      out[n++] = X;
      out[n++] = HEX_DIGITS[byte >> 4]!;
      out[n++] = HEX_DIGITS[byte & 0xf]!;
    }
    i++;
  }
  return out.toString('utf8', 0, n);
}

/**
 * Length of the well-formed UTF-8 character at bytes[i], 0 when none starts there: Unicode's Table 3-7,
 * which is also what the addon's decoder replaces by U+FFFD (no overlong forms, no surrogates, nothing
 * beyond U+10FFFF).
 */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i]!;
  if (lead < 0x80) return 1;
  let length: number;
  // The second byte's range; the later ones are always 80..BF.
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0;
    else if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90;
    else if (lead === 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (i + length > bytes.length) return 0;
  const second = bytes[i + 1]!;
  if (second < low || second > high) return 0;
  for (let k = 2; k < length; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return 0;
  return length;
}
