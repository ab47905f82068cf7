import { describe, expect, it } from 'vitest';
import { compileKql, getField, parseKql } from '../../src/kql/index.js';
import { analyze } from '../../src/kql/text.js';
import { leastRatio } from '../helpers/growth.js';

/**
 * Input an attacker controls (a command line, a document piped into `execsentry kql`, a rule's field name)
 * must cost time linear in its size. Each check times the same work on an input and on one ten times larger,
 * in the same run: linear gives a ratio near 10, quadratic near 100. Timings take the best of several rounds
 * (the machine is shared), each on an input never seen before (analyses and field paths are cached).
 */
let rounds = 0;
function growth<T>(make: (size: number, round: number) => T, run: (input: T) => unknown, size: number): number {
  const best = (scale: number): number => {
    const inputs = [0, 1, 2, 3, 4].map(() => make(size * scale, rounds++));
    let fastest = Number.POSITIVE_INFINITY;
    for (const input of inputs) {
      const start = performance.now();
      run(input);
      fastest = Math.min(fastest, performance.now() - start);
    }
    return fastest;
  };
  best(1); // warm-up: compile the code paths before measuring
  return leastRatio(() => best(10) / best(1), LINEAR);
}

const KIB = 1024;
const LINEAR = 30;

/** `text` repeated and cut to `length` characters, starting with a per-round marker. */
const fill = (text: string) => (length: number, round: number): string => `${round} ${text.repeat(Math.ceil(length / text.length))}`.slice(0, length);

describe('text analysis is linear in the value', () => {
  const inputs: [string, string][] = [
    ['prose', 'Interactive shell launched by daemon, see /var/log/auth.log for details. '],
    ['a command line', '/usr/bin/python3 -c "import socket,os;s=socket.socket();s.connect((\'10.0.0.1\',4444))" '],
    ['one long word', 'a'],
    ['underscores', '_'],
    ['zero-width joiners', '\u200d'],
    ['letters before a dangling apostrophe and combining marks', "a'\u0301\u0301\u0301\u0301 "],
    ['CJK, kana and Thai', '東京都に住むカタカナ ภาษาไทย '],
    ['emoji', '👩\u200d❤️\u200d👩 🇫🇷 #️⃣ 👍🏽'],
  ];

  it.each(inputs)('for %s: 640 KiB costs about ten times 64 KiB', (_name, text) => {
    expect(growth(fill(text), analyze, 64 * KIB)).toBeLessThan(LINEAR);
  });

  it('through a compiled query on a text field (execsentry kql message:b)', () => {
    const query = compileKql('message:b and process.command_line.text:"connect 10.0.0.1"');
    const ratio = growth((length, round) => ({ message: fill('a b c d ')(length, round), process: { command_line: fill('x ')(length, round) } }), (doc) => query.matches(doc), 64 * KIB);
    expect(ratio).toBeLessThan(LINEAR);
  });
});

describe('tokens are at most 255 characters (StandardTokenizer max_token_length)', () => {
  it('splits a longer token every 255 characters', () => {
    expect(analyze('A'.repeat(600)).map((token) => token.length)).toEqual([255, 255, 90]);
    expect(analyze(`x ${'A'.repeat(255)} y`)).toEqual(['x', 'a'.repeat(255), 'y']);
    expect(analyze('A'.repeat(256))).toEqual(['a'.repeat(255), 'a']);
  });

  it('cuts at the last complete token within the 255 characters', () => {
    // the 255th character is a dot, which only joins letters on both sides: the token ends before it
    expect(analyze(`${'a'.repeat(254)}.bc`)).toEqual(['a'.repeat(254), 'bc']);
    // a surrogate pair is never cut: the window stops before it
    expect(analyze(`${'a'.repeat(254)}\u{10400}b`).map((token) => token.length)).toEqual([254, 3]);
  });

  it('matches queries against the split terms', () => {
    const doc = { message: `prefix ${'Z'.repeat(300)} suffix` };
    expect(compileKql(`message:${'z'.repeat(255)}`).matches(doc)).toBe(true);
    expect(compileKql(`message:${'z'.repeat(45)}`).matches(doc)).toBe(true);
    expect(compileKql(`message:${'z'.repeat(300)}`).matches(doc)).toBe(true);
    expect(compileKql(`message:"${'z'.repeat(300)}"`).matches(doc)).toBe(true);
    expect(compileKql(`message:${'z'.repeat(46)}`).matches(doc)).toBe(false);
  });
});

describe('field names are linear in their length', () => {
  const dotted = (parts: number, round: number): string => `r${round}.${Array.from({ length: parts - 1 }, () => 'a').join('.')}`;

  it('parses, compiles and evaluates a 30,000-part name in about ten times a 3,000-part one', () => {
    const ratio = growth(
      (parts, round) => dotted(parts, round),
      (name) => {
        const query = compileKql(parseKql(`${name}:x`));
        const cut = name.indexOf('.', name.length >> 1);
        expect(query.matches({ [name]: 'x' })).toBe(true);
        expect(query.matches({ [name.slice(0, cut)]: { [name.slice(cut + 1)]: ['y', 'x'] } })).toBe(true);
        expect(query.matches({ [name.slice(0, cut)]: { [name.slice(cut + 1)]: 'y' }, [name]: null })).toBe(false);
        expect(getField({ [name.slice(0, cut)]: { [name.slice(cut + 1)]: 'x' } }, name)).toEqual(['x']);
      },
      3_000,
    );
    expect(ratio).toBeLessThan(LINEAR);
  });

  it('reads long names like short ones: dotted keys, nesting, arrays, shorter keys first', () => {
    const name = Array.from({ length: 40 }, (_, i) => `s${i}`).join('.');
    const cut = name.indexOf('.s20');
    const doc = {
      [name]: 1,
      [name.slice(0, cut)]: [{ [name.slice(cut + 1)]: 2 }, { [name.slice(cut + 1)]: [3, null] }],
      s0: { 's1.s2': { [name.slice(name.indexOf('.s3') + 1)]: 4 } },
    };
    expect(getField(doc, name)).toEqual([4, 2, 3, 1]);
    expect(getField(doc, `${name}.more`)).toEqual([]);
    expect(getField({ [`${name}x`]: 1, [name.slice(0, -1)]: 2 }, name)).toEqual([]);
    expect(compileKql(`${name}:3`).matches(doc)).toBe(true);
    expect(compileKql(`${name}:5`).matches(doc)).toBe(false);
    expect(getField({ 'a..b': 1, a: { '': { b: 2 } } }, 'a..b')).toEqual([2, 1]);
  });

  it('never reads inherited members through a long name', () => {
    const name = Array.from({ length: 40 }, () => 'constructor').join('.');
    expect(getField({}, name)).toEqual([]);
    expect(getField(JSON.parse(`{"__proto__": {"x": 1}}`), `__proto__.${name}`)).toEqual([]);
  });
});

describe('documents are read down to 1,000 levels of nesting, not 1,001', () => {
  /** `levels` nested objects (the document itself is the first), the innermost holding `a: leaf`. */
  const nested = (levels: number, leaf: unknown): Record<string, unknown> => {
    let doc: Record<string, unknown> = { a: leaf };
    for (let level = 1; level < levels; level++) doc = { a: doc };
    return doc;
  };
  const path = (parts: number): string => Array.from({ length: parts }, () => 'a').join('.');

  it('through a field path', () => {
    expect(compileKql(`${path(1000)}:x`).matches(nested(1000, 'x'))).toBe(true);
    expect(compileKql(`${path(1001)}:x`).matches(nested(1001, 'x'))).toBe(false);
    expect(getField(nested(1000, 'x'), path(1000))).toEqual(['x']);
    expect(getField(nested(1001, 'x'), path(1001))).toEqual([]);
  });

  it('through arrays', () => {
    let inner: unknown = 'x';
    for (let level = 1; level < 1000; level++) inner = [inner];
    // the document and 999 arrays: 1,000 levels
    expect(compileKql('a:x').matches({ a: inner })).toBe(true);
    expect(compileKql('a:x').matches({ a: [inner] })).toBe(false);
  });

  it('through every leaf (values without a field, field patterns)', () => {
    expect(compileKql('x').matches(nested(1000, 'x'))).toBe(true);
    expect(compileKql('x').matches(nested(1001, 'x'))).toBe(false);
    expect(compileKql('a.*:x').matches(nested(1000, 'x'))).toBe(true);
    expect(compileKql('a.*:x').matches(nested(1001, 'x'))).toBe(false);
  });

  it('inside an object found at a path (exists on an object, flattened fields, nested queries)', () => {
    expect(compileKql('a:*').matches(nested(1000, 'x'))).toBe(true);
    expect(compileKql('a:*').matches(nested(1001, 'x'))).toBe(false);
    // dll.pe.imports is flattened; the document, dll and pe are three levels
    expect(compileKql('dll.pe.imports:x').matches({ dll: { pe: { imports: nested(997, 'x') } } })).toBe(true);
    expect(compileKql('dll.pe.imports:x').matches({ dll: { pe: { imports: nested(998, 'x') } } })).toBe(false);
    expect(compileKql(`a:{ ${path(999)}:x }`).matches(nested(1000, 'x'))).toBe(true);
    expect(compileKql(`a:{ ${path(1000)}:x }`).matches(nested(1001, 'x'))).toBe(false);
  });
});
