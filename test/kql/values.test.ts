import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getField } from '../../src/kql/index.js';
import { parseDate, parseDateMath } from '../../src/kql/date.js';
import { parseIp, parseIpOrCidr } from '../../src/kql/ip.js';
import { analyze } from '../../src/kql/text.js';
import { compileWildcard } from '../../src/kql/wildcard.js';
import { ECS_FIELD_TYPES } from '../../src/ecs/field-types.js';

describe('getField', () => {
  it('returns [] for missing fields, null, [] and non-object documents', () => {
    expect(getField({}, 'a.b')).toEqual([]);
    expect(getField({ a: null }, 'a.b')).toEqual([]);
    expect(getField({ a: { b: null } }, 'a.b')).toEqual([]);
    expect(getField({ a: { b: [] } }, 'a.b')).toEqual([]);
    expect(getField(null, 'a')).toEqual([]);
    expect(getField('text', 'length')).toEqual([]);
    expect(getField({ a: 'scalar' }, 'a.b')).toEqual([]);
  });

  it('skips nulls inside arrays and keeps falsy values', () => {
    expect(getField({ a: [null, 0, '', false, 'x'] }, 'a')).toEqual([0, '', false, 'x']);
  });

  it('returns objects at an intermediate path', () => {
    expect(getField({ process: { parent: { pid: 1 } } }, 'process.parent')).toEqual([{ pid: 1 }]);
  });

  it('reads dotted keys at any depth', () => {
    const doc = { 'a.b': { c: 1, 'd.e': 2 }, a: { 'b.c': 3, b: { c: 4 } } };
    // per object, the shorter key first: a → b → c, a → b.c, then a.b → c
    expect(getField(doc, 'a.b.c')).toEqual([4, 3, 1]);
    expect(getField(doc, 'a.b.d.e')).toEqual([2]);
  });
});

describe('ip parsing', () => {
  it.each([
    ['10.0.0.1', 0xffff0a000001n],
    ['::ffff:10.0.0.1', 0xffff0a000001n],
    ['::', 0n],
    ['::1', 1n],
    ['2001:db8::1', 0x20010db8000000000000000000000001n],
    ['2001:DB8:0:0:0:0:0:1', 0x20010db8000000000000000000000001n],
    ['fe80::1:2', 0xfe800000000000000000000000010002n],
    ['64:ff9b::192.0.2.33', 0x0064ff9b0000000000000000c0000221n],
  ])('reads %s', (text, value) => {
    expect(parseIp(text)).toBe(value);
  });

  it.each(['10.0.0', '10.0.0.256', '1.2.3.4.5', ':::', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', '', 'localhost', '1:2:3:4:5:6:7::8'])(
    'rejects %j',
    (text) => {
      expect(parseIp(text)).toBeNull();
    },
  );

  it('reads CIDR blocks as inclusive ranges, masking host bits', () => {
    expect(parseIpOrCidr('10.1.2.3/8')).toEqual({ low: 0xffff0a000000n, high: 0xffff0affffffn });
    expect(parseIpOrCidr('2001:db8::/32')?.low).toBe(0x20010db8000000000000000000000000n);
    expect(parseIpOrCidr('10.0.0.0/33')).toBeNull();
    expect(parseIpOrCidr('::/129')).toBeNull();
    expect(parseIpOrCidr('10.0.0.0/x')).toBeNull();
  });
});

describe('date parsing', () => {
  it('reads strict_date_optional_time and epoch_millis, in UTC', () => {
    expect(parseDate('2024-03-15T10:30:00Z', false)).toBe(Date.UTC(2024, 2, 15, 10, 30));
    expect(parseDate('2024-03-15T10:30:00.123456789Z', false)).toBe(Date.UTC(2024, 2, 15, 10, 30, 0, 123));
    expect(parseDate('2024-03-15T10:30:00+0130', false)).toBe(Date.UTC(2024, 2, 15, 9, 0));
    expect(parseDate('2024-03-15', false)).toBe(Date.UTC(2024, 2, 15));
    expect(parseDate('1710498600000', false)).toBe(1710498600000);
    expect(parseDate('2024-02-30', false)).toBeNull();
    expect(parseDate('2024-03-15 10:30', false)).toBeNull();
  });

  it('rounds the missing time of day up when asked, but fills a missing month or day with 01', () => {
    expect(parseDate('2024-02', true)).toBe(Date.UTC(2024, 1, 1, 23, 59, 59, 999));
    expect(parseDate('2024', true)).toBe(Date.UTC(2024, 0, 1, 23, 59, 59, 999));
    expect(parseDate('2024-02-29', true)).toBe(Date.UTC(2024, 1, 29, 23, 59, 59, 999));
    expect(parseDate('2024-03-15T10', true)).toBe(Date.UTC(2024, 2, 15, 10, 59, 59, 999));
  });

  it('evaluates date math with every unit and rounding', () => {
    const now = Date.UTC(2026, 10, 28, 12, 34, 56, 789); // a Saturday
    expect(parseDateMath('now', false, now)).toBe(now);
    expect(parseDateMath('now-14d', false, now)).toBe(now - 14 * 86_400_000);
    expect(parseDateMath('now+1h-30m', false, now)).toBe(now + 30 * 60_000);
    expect(parseDateMath('now-1M', false, now)).toBe(Date.UTC(2026, 9, 28, 12, 34, 56, 789));
    expect(parseDateMath('now-1y', false, now)).toBe(Date.UTC(2025, 10, 28, 12, 34, 56, 789));
    expect(parseDateMath('now/d', false, now)).toBe(Date.UTC(2026, 10, 28));
    expect(parseDateMath('now/d', true, now)).toBe(Date.UTC(2026, 10, 29) - 1);
    expect(parseDateMath('now/w', false, now)).toBe(Date.UTC(2026, 10, 23));
    expect(parseDateMath('now/M', false, now)).toBe(Date.UTC(2026, 10, 1));
    expect(parseDateMath('now/y', true, now)).toBe(Date.UTC(2027, 0, 1) - 1);
    expect(parseDateMath('now-2H/h', false, now)).toBe(Date.UTC(2026, 10, 28, 10));
    expect(parseDateMath('now-10s/m', false, now)).toBe(Date.UTC(2026, 10, 28, 12, 34));
    // Months and years clamp to the last day the target month has, as java.time does in Elasticsearch.
    expect(parseDateMath('2024-01-31||+1M', false, now)).toBe(Date.UTC(2024, 1, 29));
    expect(parseDateMath('2023-01-31T08:00:00Z||+1M', false, now)).toBe(Date.UTC(2023, 1, 28, 8));
    expect(parseDateMath('2024-03-31||-1M', false, now)).toBe(Date.UTC(2024, 1, 29));
    expect(parseDateMath('2024-05-31||-13M', false, now)).toBe(Date.UTC(2023, 3, 30));
    expect(parseDateMath('2024-02-29||+1y', false, now)).toBe(Date.UTC(2025, 1, 28));
    expect(parseDateMath('2024-02-29||-4y', false, now)).toBe(Date.UTC(2020, 1, 29));
    expect(parseDateMath('2024-01-31||+1M+1M', false, now)).toBe(Date.UTC(2024, 2, 29));
    expect(parseDateMath('now-1x', false, now)).toBeNull();
    expect(parseDateMath('now-', false, now)).toBeNull();
  });
});

describe('wildcard matcher', () => {
  it('anchors and matches across any characters', () => {
    expect(compileWildcard(['a', 'b'])('a\n/b')).toBe(true);
    expect(compileWildcard(['ab', 'ba'])('aba')).toBe(false);
    expect(compileWildcard(['ab', 'ba'])('abba')).toBe(true);
    expect(compileWildcard(['', 'x', 'x', ''])('xx')).toBe(true);
    expect(compileWildcard(['', 'x', 'x', ''])('x')).toBe(false);
    expect(compileWildcard(['a', 'x', 'a'])('axa')).toBe(true);
    expect(compileWildcard(['a', 'x', 'a'])('axxa')).toBe(true);
    expect(compileWildcard(['a', 'x', 'a'])('aa')).toBe(false);
    expect(compileWildcard(['', ''])('')).toBe(true);
  });
});

describe('text analysis and field types', () => {
  it('splits words and lowercases', () => {
    expect(analyze('Interactive shell: /bin/BASH -i (pid 42)')).toEqual(['interactive', 'shell', 'bin', 'bash', 'i', 'pid', '42']);
  });

  it('gives the standard analyzer\'s terms (Elasticsearch\'s and Lucene\'s own examples)', () => {
    expect(analyze("The 2 QUICK Brown-Foxes jumped over the lazy dog's bone.")).toEqual(['the', '2', 'quick', 'brown', 'foxes', 'jumped', 'over', 'the', 'lazy', "dog's", 'bone']);
    expect(analyze('我是中国人。 １２３４ Ｔｅｓｔｓ ')).toEqual(['我', '是', '中', '国', '人', '１２３４', 'ｔｅｓｔｓ']);
    expect(analyze('안녕하세요 한글입니다')).toEqual(['안녕하세요', '한글입니다']);
    expect(analyze('moͤchte')).toEqual(['moͤchte']);
  });

  it('keeps UAX #29 joiners inside words and numbers', () => {
    expect(analyze("can't O'Reilly's 1,000.5 216.239.63.104 R2D2 x.com/a_b __init__ user:root")).toEqual([
      "can't", "o'reilly's", '1,000.5', '216.239.63.104', 'r2d2', 'x.com', 'a_b', '__init__', 'user:root',
    ]);
    expect(analyze('e.g. a..b 1.a a\'1 __ _')).toEqual(['e.g', 'a', 'b', '1', 'a', 'a', '1']);
    expect(analyze('\u05d0"\u05d1 \u05d0\' \u05d0"')).toEqual(['\u05d0"\u05d1', "\u05d0'", '\u05d0']);
  });

  it('treats CJK and South-East Asian scripts as Lucene does: ideographs and Hiragana alone, runs otherwise', () => {
    expect(analyze('東京都に住む')).toEqual(['東', '京', '都', 'に', '住', 'む']);
    expect(analyze('カタカナabc')).toEqual(['カタカナ', 'abc']);
    expect(analyze('ภาษาไทย ພາສາລາວ')).toEqual(['ภาษาไทย', 'ພາສາລາວ']);
  });

  it('keeps emoji sequences as terms', () => {
    expect(analyze('I ❤️ you 👍🏽 🇫🇷🇫🇷 #️⃣ 👩\u200d❤️\u200d👩 💩💩 ©2024 ✔\ufe0e')).toEqual([
      'i', '❤️', 'you', '👍🏽', '🇫🇷', '🇫🇷', '#️⃣', '👩\u200d❤️\u200d👩', '💩', '💩', '©', '2024', '✔',
    ]);
  });

  it('lowercases code point by code point', () => {
    expect(analyze('İSTANBUL ΟΔΟΣ')).toEqual(['istanbul', 'οδοσ']);
  });

  it('splits ASCII text as the Unicode segmentation it replaced did', () => {
    // Intl.Segmenter (ICU) was the analyzer before; for ASCII the two agree, except that ICU calls a run of
    // underscores alone a word, which Lucene's grammar does not
    const segmenter = new Intl.Segmenter('en', { granularity: 'word' });
    const ascii = fc.array(fc.constantFrom(...'aZq09 .,;:\'"_-/\\()!?@#*\t\n'), { maxLength: 16 }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(ascii, (text) => {
        const icu = [...segmenter.segment(text)].filter((s) => s.isWordLike && !/^_+$/.test(s.segment)).map((s) => s.segment.toLowerCase());
        expect(analyze(text)).toEqual(icu);
      }),
      { numRuns: 2000 },
    );
  });

  it('has the generated ECS field types for the fields rules use', () => {
    expect(ECS_FIELD_TYPES.get('process.interactive')).toBe('boolean');
    expect(ECS_FIELD_TYPES.get('process.pid')).toBe('integer');
    expect(ECS_FIELD_TYPES.get('@timestamp')).toBe('date');
    expect(ECS_FIELD_TYPES.get('host.ip')).toBe('ip');
    expect(ECS_FIELD_TYPES.get('message')).toBe('text');
    expect(ECS_FIELD_TYPES.get('process.command_line')).toBe('wildcard');
    expect(ECS_FIELD_TYPES.get('threat.enrichments')).toBe('nested');
    expect(ECS_FIELD_TYPES.has('process.name')).toBe(false);
    expect(ECS_FIELD_TYPES.has('user.name')).toBe(false);
  });
});
