import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  caseVariants,
  compileJavaRegex,
  compileLuceneRegex,
  EqlPatternError,
  MAX_DETERMINIZED_STATES,
} from '../../src/eql/regex.js';

const lucene = (pattern: string, caseInsensitive = false) => compileLuceneRegex(pattern, { caseInsensitive });
const java = (pattern: string, caseInsensitive = false) => compileJavaRegex(pattern, { caseInsensitive });

function expectMatches(matcher: (text: string) => boolean, yes: readonly string[], no: readonly string[]): void {
  for (const text of yes) expect(matcher(text), `should match ${JSON.stringify(text)}`).toBe(true);
  for (const text of no) expect(matcher(text), `should not match ${JSON.stringify(text)}`).toBe(false);
}

function patternError(compile: () => unknown): EqlPatternError {
  try {
    compile();
  } catch (err) {
    expect(err).toBeInstanceOf(EqlPatternError);
    return err as EqlPatternError;
  }
  throw new Error('expected an EqlPatternError');
}

describe('compileLuceneRegex: syntax', () => {
  it('is anchored at both ends', () => {
    expectMatches(lucene('abc'), ['abc'], ['xabc', 'abcx', 'ab', '']);
    expectMatches(lucene(''), [''], ['a']);
  });

  it('treats . as any one code point, newlines and astral characters included', () => {
    expectMatches(lucene('a.c'), ['abc', 'a\nc', 'a😀c', 'a\u{10ffff}c'], ['ac', 'abbc']);
    expectMatches(lucene('..'), ['ab', '😀😀'], ['😀']);
    // A lone surrogate is one character of its own.
    expectMatches(lucene('a.'), ['a\ud800'], ['a\ud800\ud800']);
  });

  it('supports ? * + and counted repetition', () => {
    expectMatches(lucene('ab?c'), ['ac', 'abc'], ['abbc']);
    expectMatches(lucene('ab*c'), ['ac', 'abbbc'], ['adc']);
    expectMatches(lucene('ab+c'), ['abc', 'abbc'], ['ac']);
    expectMatches(lucene('a{3}'), ['aaa'], ['aa', 'aaaa']);
    expectMatches(lucene('a{2,}'), ['aa', 'aaaaa'], ['a']);
    expectMatches(lucene('a{1,3}'), ['a', 'aaa'], ['', 'aaaa']);
    expectMatches(lucene('a{0}'), [''], ['a']);
    expectMatches(lucene('(ab){2}c?'), ['abab', 'ababc'], ['ab', 'abc']);
    expectMatches(lucene('a+?*'), ['', 'aaa'], ['b']);
  });

  it('supports | and groups, () being the empty string', () => {
    expectMatches(lucene('cat|dog'), ['cat', 'dog'], ['catdog', 'ca']);
    expectMatches(lucene('a(b|c)d'), ['abd', 'acd'], ['ad', 'abcd']);
    expectMatches(lucene('a()b'), ['ab'], ['a b']);
    expectMatches(lucene('(|b)'), ['|b'], ['', 'b']);
  });

  it('supports classes with ranges, negation and escapes', () => {
    expectMatches(lucene('[a-c]x'), ['ax', 'cx'], ['dx', 'Ax']);
    expectMatches(lucene('[^a-c]'), ['d', '😀', '\n'], ['a', 'b', '']);
    expectMatches(lucene('[abx-z]+'), ['abyz'], ['abc']);
    expectMatches(lucene('[]a]'), [']', 'a'], ['b']);
    expectMatches(lucene('[-a]'), ['-', 'a'], ['b']);
    expectMatches(lucene('[.*+(]'), ['.', '*', '+', '('], ['a']);
    expectMatches(lucene('[\\]\\-]'), [']', '-'], ['\\']);
    expectMatches(lucene('[😀-😂]'), ['😁'], ['😃']);
    // An escaped member cannot start a range: this is '.', '-' and 'z'.
    expectMatches(lucene('[\\.-z]'), ['.', '-', 'z'], ['a']);
  });

  it('supports the predefined classes \\d \\D \\s \\S \\w \\W, inside classes too', () => {
    expectMatches(lucene('\\d+'), ['0123456789'], ['a', '٣']);
    expectMatches(lucene('\\D'), ['a', '😀'], ['5']);
    expectMatches(lucene('\\s'), [' ', '\t', '\n', '\r'], ['\f', '\u000b', 'a']);
    expectMatches(lucene('\\S'), ['a'], [' ']);
    expectMatches(lucene('\\w+'), ['az_AZ09'], ['é', '-']);
    expectMatches(lucene('\\W'), ['-', 'é'], ['a']);
    expectMatches(lucene('[\\d\\s]+'), ['1 2'], ['a']);
  });

  it('takes \\ before a non-letter as that character, inside quotes nothing is special', () => {
    expectMatches(lucene('a\\.b\\\\c\\*'), ['a.b\\c*'], ['axb\\c*']);
    expectMatches(lucene('"a.b*(c)"'), ['a.b*(c)'], ['axb(c)']);
    expectMatches(lucene('x"\\"'), ['x\\'], ['x']);
    expectMatches(lucene('\\"'), ['"'], []);
  });

  it('reads a misplaced operator as a literal, as Lucene does', () => {
    expectMatches(lucene('|a'), ['|a'], ['a', '']);
    expectMatches(lucene('*a'), ['*a'], ['a']);
    expectMatches(lucene('a||b'), ['a', '|b'], ['b']);
    expectMatches(lucene('{2}'), ['{2}'], []);
    expectMatches(lucene(']'), [']'], []);
  });

  it('supports the optional operators ES enables: & ~ # @ <n-m>', () => {
    expectMatches(lucene('[a-z]+&.*q.*'), ['aqz'], ['abc', 'a1q']);
    expectMatches(lucene('~(foo)'), ['', 'fo', 'fooo', 'bar'], ['foo']);
    expectMatches(lucene('~a'), ['', 'b', 'aa'], ['a']);
    expectMatches(lucene('~ab'), ['bb', 'b'], ['ab']);
    expectMatches(lucene('@&~(.*secret.*)'), ['public'], ['my secret file']);
    expectMatches(lucene('a#|b'), ['b'], ['a', '']);
    expectMatches(lucene('#'), [], ['', 'a']);
    expectMatches(lucene('@'), ['', 'anything 😀'], []);
    expectMatches(lucene('x@y'), ['xy', 'x--y'], ['x-']);
    expectMatches(lucene('port<1-1024>'), ['port1', 'port80', 'port0080', 'port1024'], ['port0', 'port1025', 'port']);
    expectMatches(lucene('<08-12>'), ['08', '10', '12'], ['8', '13', '008']);
    expectMatches(lucene('<20-5>'), ['5', '15', '020'], ['4', '21']);
  });
});

describe('compileLuceneRegex: case insensitivity (regex~)', () => {
  it('folds literals and quoted strings, with Unicode simple case folding', () => {
    expectMatches(lucene('cmd\\.exe', true), ['CMD.EXE', 'Cmd.Exe'], ['cmdxexe']);
    expectMatches(lucene('"PowerShell"', true), ['powershell', 'POWERSHELL'], []);
    expectMatches(lucene('école', true), ['ÉCOLE', 'École'], ['ECOLE']);
    expectMatches(lucene('k', true), ['k', 'K', '\u212a'], ['x']);
    expectMatches(lucene('σ', true), ['σ', 'ς', 'Σ'], []);
    expectMatches(lucene('ß', true), ['ß', 'ẞ'], ['ss', 'SS']);
    expectMatches(lucene('𐐨', true), ['𐐀'], []);
  });

  it('keeps the dotless and dotted Turkic i apart from i, as simple case folding does', () => {
    expectMatches(lucene('i', true), ['i', 'I'], ['ı', 'İ']);
    expect(caseVariants(0x131)).toEqual([0x131]);
  });

  it('folds single class members but not ranges or predefined classes', () => {
    expectMatches(lucene('[abc]', true), ['A', 'c'], ['d']);
    expectMatches(lucene('[a-c]', true), ['b'], ['B']);
    expectMatches(lucene('[^a]', true), ['b'], ['a', 'A']);
    expectMatches(lucene('\\w', true), ['A', 'a'], []);
    // Lucene turns a one-member class into a plain character, which is folded even when escaped.
    expectMatches(lucene('[\\é]', true), ['É'], []);
    expectMatches(lucene('[\\é\\ü]', true), ['é'], ['É']);
  });

  it('is case-sensitive without the flag', () => {
    expectMatches(lucene('abc'), ['abc'], ['ABC']);
  });
});

describe('compileLuceneRegex: invalid patterns', () => {
  const cases: [string, number, RegExp][] = [
    ['(ab', 3, /expected '\)'/],
    ['ab)', 2, /end of pattern expected/],
    ['[ab', 3, /expected '\]'/],
    ['[]', 2, /expected '\]'/],
    ['[b-a]', 3, /invalid range/],
    ['a{2,1}', 1, /out of order/],
    ['a{x}', 2, /integer expected/],
    ['a{2', 3, /expected '\}'/],
    ['a{99999999999}', 2, /too large/],
    ['"abc', 4, /expected '"'/],
    ['<name>', 0, /named automaton/],
    ['<1-x>', 0, /interval syntax/],
    ['<1-2-3>', 0, /interval syntax/],
    ['<12', 3, /expected '>'/],
    ['\\n', 0, /invalid character class \\n/],
    ['[\\t]', 1, /invalid character class \\t/],
    ['a|', 2, /unexpected end/],
    ['a\\', 2, /unexpected end/],
    ['~', 1, /unexpected end/],
  ];
  it.each(cases)('rejects %j', (pattern, offset, reason) => {
    const err = patternError(() => lucene(pattern));
    expect(err.pattern).toBe(pattern);
    expect(err.offset).toBe(offset);
    expect(err.reason).toMatch(reason);
    expect(err.message).toContain(JSON.stringify(pattern));
    expect(err.name).toBe('EqlPatternError');
  });

  it(`rejects patterns needing more than ${MAX_DETERMINIZED_STATES} DFA states, like max_determinized_states`, () => {
    expect(patternError(() => lucene('.*a.{20}')).reason).toMatch(/max_determinized_states/);
    expectMatches(lucene('.*a.{5}'), ['xxabcdef'], ['xxabcde']);
  });

  it('compiles realistic detection patterns well within the limits', () => {
    const words = Array.from({ length: 300 }, (_, i) => `tool${i}\\.exe`);
    expectMatches(lucene(`.*\\\\(${words.join('|')})`, true), ['C:\\bin\\TOOL299.EXE'], ['C:\\bin\\tool300.exe']);
    expectMatches(lucene('[0-9a-f]{64}'), ['a'.repeat(64)], ['a'.repeat(63)]);
    expectMatches(lucene(`.*${'invoke-expression'.repeat(4)}.*`, true), [`x${'INVOKE-EXPRESSION'.repeat(4)}y`], []);
    expectMatches(lucene('.*(curl|wget) .*\\| *(ba)?sh.*'), ['curl http://x | bash'], ['curl http://x']);
  });

  it('rejects runaway repetition and nesting at compile time', () => {
    expect(patternError(() => lucene('a{1000000}')).reason).toMatch(/too complex/);
    expect(patternError(() => lucene('(((a{1,100}){1,100}){1,100})')).reason).toMatch(/too complex|states/);
    expect(patternError(() => lucene(`${'('.repeat(20000)}a${')'.repeat(20000)}`)).reason).toMatch(/nested too deeply/);
  });
});

describe('compileLuceneRegex: linear time on hostile input', () => {
  const megabyte = 'a'.repeat(1 << 20);
  it.each(['(a|aa)*b', '(a*)*b', '(a+)+b', '(.*a){12}b', '([a-z]+)*=', '(a|a?)+b', '~(.*a.*)'])(
    '%s returns false on 1 MB of "a" without hanging',
    (pattern) => {
      expect(lucene(pattern)(megabyte)).toBe(false);
    },
  );

  it('still matches at the end of a long input', () => {
    expect(lucene('(a|aa)*b')(`${megabyte}b`)).toBe(true);
    expect(lucene('.*needle', true)(`${megabyte}NEEDLE`)).toBe(true);
  });
});

describe('compileLuceneRegex: agrees with JavaScript RegExp on the common subset', () => {
  type Node = { lucene: string; js: string };
  const atom = fc.constantFrom<Node>(
    { lucene: 'a', js: 'a' },
    { lucene: 'b', js: 'b' },
    { lucene: '😀', js: '😀' },
    { lucene: '.', js: '.' },
    { lucene: '[ab]', js: '[ab]' },
    { lucene: '[^a]', js: '[^a]' },
    { lucene: '[a-c]', js: '[a-c]' },
    { lucene: '\\.', js: '\\.' },
    { lucene: '\\d', js: '\\d' },
  );
  const tree = fc.letrec<{ node: Node }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      atom,
      fc.tuple(tie('node'), tie('node')).map(([x, y]) => ({ lucene: x.lucene + y.lucene, js: x.js + y.js })),
      fc.tuple(tie('node'), tie('node')).map(([x, y]) => ({
        lucene: `(${x.lucene}|${y.lucene})`,
        js: `(?:${x.js}|${y.js})`,
      })),
      fc.tuple(tie('node'), fc.constantFrom('*', '+', '?', '{2}', '{0,2}', '{1,}')).map(([x, q]) => ({
        lucene: `(${x.lucene})${q}`,
        js: `(?:${x.js})${q}`,
      })),
    ),
  }));
  const text = fc.array(fc.constantFrom('a', 'b', 'c', '.', '1', '\n', '😀'), { maxLength: 8 }).map((cs) => cs.join(''));

  it('matches exactly when /^(?:…)$/su does', () => {
    fc.assert(
      fc.property(tree.node, fc.array(text, { minLength: 1, maxLength: 6 }), (node, texts) => {
        const ours = lucene(node.lucene);
        const reference = new RegExp(`^(?:${node.js})$`, 'su');
        for (const t of texts) expect(ours(t), `${node.lucene} on ${JSON.stringify(t)}`).toBe(reference.test(t));
      }),
      { numRuns: 400 },
    );
  });
});

describe('compileJavaRegex: the script flavour', () => {
  it('uses Java syntax: no Lucene operators, real escapes, anchors allowed at the ends', () => {
    expectMatches(java('"a"@#~&<b>'), ['"a"@#~&<b>'], ['a']);
    expectMatches(java('a\\tb\\n'), ['a\tb\n'], ['atbn']);
    expectMatches(java('^ab$'), ['ab'], ['xab', 'ab\n']);
    expectMatches(java('^a|b$'), ['a', 'b'], ['ab']);
    expectMatches(java('\\Q.*\\E+'), ['.*', '.*.*'], ['ab']);
    expectMatches(java('\\x41\\u0042\\x{1F600}\\0103'), ['AB😀C'], []);
    expectMatches(java('(?:ab)+(?<tail>c)?'), ['abab', 'abc'], ['ac']);
    expectMatches(java('a*?b'), ['aab', 'b'], ['a']);
  });

  it('stops . at line terminators and counts code points', () => {
    expectMatches(java('a.c'), ['abc', 'a😀c'], ['a\nc', 'a\rc', 'a\u2028c', 'a\u0085c']);
    expectMatches(java('[^a]'), ['\n'], ['a']);
    expectMatches(java('\\s+'), [' \t\n\u000b\f\r'], []);
  });

  it('is ASCII-only case-insensitive, ranges included', () => {
    expectMatches(java('cmd\\.exe', true), ['CMD.EXE'], []);
    expectMatches(java('[a-c]+', true), ['AbC'], ['d']);
    expectMatches(java('é', true), ['é'], ['É']);
    expectMatches(java('[^a]', true), ['b'], ['A']);
  });

  it.each([
    ['(a)\\1', /escape \\1/],
    ['(?=a)a', /lookaround/],
    ['(?i)a', /lookaround|inline flags/],
    ['a++', /possessive/],
    ['\\bword', /escape \\b/],
    ['a$b', /'\$'/],
    ['a^b', /'\^'/],
    ['[a[b]]', /nested/],
    ['\\p{L}', /escape \\p/],
    ['*a', /dangling/],
    ['a**', /dangling/],
    ['a{', /repetition/],
    ['(a', /unclosed group/],
    ['a)', /unmatched/],
    ['[a', /unclosed character class/],
    ['[z-a]', /range/],
    ['.*a.{20}', /max_determinized_states/],
  ])('rejects %j', (pattern, reason) => {
    expect(patternError(() => java(pattern)).reason).toMatch(reason);
  });

  it('is linear on hostile input', () => {
    expect(java('(a|aa)*b')('a'.repeat(1 << 20))).toBe(false);
  });
});
