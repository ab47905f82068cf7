import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/store/crc32c.js';
import {
  FILE_HEADER_BYTES,
  encodeFileHeader,
  encodeHistoryRecord,
  encodeSightingRecord,
  tupleFromKey,
  tupleKey,
  varintBytes,
} from '../../src/store/codec.js';
import { readLog } from '../../src/store/log-reader.js';

/** Any UTF-16 code units, lone surrogates, NUL and separators included. */
const anyString = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const trickyString = fc.oneof(anyString, fc.constantFrom('', ':', '1:', 'a:b', '\ud800', '\udc00\ud800', '\n', 'é', '🦀'));

function decodeAll(buf: Buffer) {
  const histories: { id: number; ruleId: string; fields: readonly string[]; windowSeconds: number }[] = [];
  const sightings: { historyId: number; seconds: number; key: string }[] = [];
  const result = readLog(buf, {
    history: (def) => histories.push(def),
    sighting: (historyId, seconds, key) => sightings.push({ historyId, seconds, key }),
  });
  return { result, histories, sightings };
}

describe('CRC-32C', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  });
  it('checks only the given range', () => {
    const bytes = Buffer.from('xx123456789yy');
    expect(crc32c(bytes, 2, 11)).toBe(0xe3069283);
  });
});

describe('tuple keys', () => {
  it('round-trip any tuple of any arity', () => {
    fc.assert(
      fc.property(fc.array(trickyString, { minLength: 1, maxLength: 3 }), (tuple) => {
        expect(tupleFromKey(tupleKey(tuple), tuple.length)).toEqual(tuple);
      }),
    );
  });
  it('never give two different tuples of the same arity the same key', () => {
    fc.assert(
      fc.property(fc.array(trickyString, { minLength: 2, maxLength: 3 }), fc.array(trickyString, { minLength: 2, maxLength: 3 }), (a, b) => {
        fc.pre(a.length === b.length && JSON.stringify(a) !== JSON.stringify(b));
        expect(tupleKey(a)).not.toBe(tupleKey(b));
      }),
    );
    // the classic separator collisions
    expect(tupleKey(['a:b', 'c'])).not.toBe(tupleKey(['a', 'b:c']));
    expect(tupleKey(['1:', ''])).not.toBe(tupleKey(['', '1:']));
  });
  it('key a single-field tuple by the value itself', () => {
    expect(tupleKey(['/usr/bin/bash'])).toBe('/usr/bin/bash');
  });
});

describe('records', () => {
  it('varints grow by one byte per 7 bits', () => {
    expect([0, 127, 128, 16383, 16384, 2 ** 32].map(varintBytes)).toEqual([1, 1, 2, 2, 3, 5]);
  });

  it('decode exactly what was encoded, whatever the strings (lone surrogates included)', () => {
    fc.assert(
      fc.property(
        trickyString,
        fc.array(trickyString, { minLength: 1, maxLength: 3 }),
        fc.array(fc.array(trickyString, { minLength: 3, maxLength: 3 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        // every JavaScript date, in whole seconds
        fc.integer({ min: -8.64e12, max: 8.64e12 }),
        (ruleId, fields, values, windowSeconds, seconds) => {
          const tuples = values.map((v) => v.slice(0, fields.length));
          const records = [
            encodeFileHeader(),
            encodeHistoryRecord({ id: 300, ruleId, fields, windowSeconds }),
            ...tuples.map((t) => encodeSightingRecord(300, seconds, tupleKey(t), fields.length)),
          ];
          const { result, histories, sightings } = decodeAll(Buffer.concat(records));
          expect(result.state).toBe('ok');
          expect(result.damage).toEqual([]);
          expect(histories).toEqual([{ id: 300, ruleId, fields, windowSeconds }]);
          expect(sightings.map((s) => tupleFromKey(s.key, fields.length))).toEqual(tuples);
          expect(sightings.every((s) => s.historyId === 300 && s.seconds === seconds)).toBe(true);
        },
      ),
    );
  });

  it('spend about 56 bytes on a 40-byte path', () => {
    const path = '/usr/lib/x86_64-linux-gnu/libexec/tool-1';
    expect(path).toHaveLength(40);
    // frame, kind, history id, last-seen (5 bytes from 1974 to 2514), string length, string
    expect(encodeSightingRecord(1, 1_700_000_000, path, 1).length).toBe(8 + 1 + 1 + 5 + 1 + 40);
  });

  it('take a last-seen outside the JavaScript date range for damage', () => {
    const buf = Buffer.concat([
      encodeFileHeader(),
      encodeHistoryRecord({ id: 1, ruleId: 'r', fields: ['f'], windowSeconds: 60 }),
      encodeSightingRecord(1, 8.64e12 + 1, '/x', 1),
      encodeSightingRecord(1, -8.64e12, '/y', 1),
    ]);
    const { result, sightings } = decodeAll(buf);
    expect(result.damage.map((d) => d.reason)).toEqual(['record does not parse: last-seen 8640000000001 s is no JavaScript date']);
    expect(sightings.map((s) => s.key)).toEqual(['/y']);
  });

  it('read the sightings of format version 1 (u32 seconds) too', () => {
    const { result, histories, sightings } = decodeAll(readFileSync(fileURLToPath(new URL('./fixtures/new-terms-history-v1.bin', import.meta.url))));
    expect(result).toMatchObject({ state: 'ok', version: 1, damage: [], records: 7 });
    expect(histories.map((h) => h.ruleId)).toEqual(['rule-a', 'rule-b']);
    expect(sightings.map((s) => [s.key, s.seconds])).toEqual([
      ['/usr/bin/bash', 1_767_225_600],
      ['/tmp/evil\n\u001b[2J\ud800', 1_767_225_601],
      ['/opt/future', 0xffffffff],
      [tupleKey(['/bin/sh', 'daemon']), 1_767_225_602],
      ['/usr/bin/bash', 1_767_312_000],
    ]);
  });

  it('have a header that names the format version', () => {
    const header = encodeFileHeader();
    expect(header).toHaveLength(FILE_HEADER_BYTES);
    expect(header.subarray(0, 8).toString('latin1')).toBe('ESNTHIST');
    expect(header.readUInt32LE(8)).toBe(2);
  });
});
