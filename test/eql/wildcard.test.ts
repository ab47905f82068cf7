import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { EqlPatternError } from '../../src/eql/regex.js';
import { compileEqlWildcard, compileEqlWildcardAutomaton, compileEqlWildcardScript } from '../../src/eql/wildcard.js';

const like = (pattern: string, caseInsensitive = false) => compileEqlWildcard(pattern, { caseInsensitive });
const script = (pattern: string, caseInsensitive = false) => compileEqlWildcardScript(pattern, { caseInsensitive });

function expectMatches(matcher: (text: string) => boolean, yes: readonly string[], no: readonly string[]): void {
  for (const text of yes) expect(matcher(text), `should match ${JSON.stringify(text)}`).toBe(true);
  for (const text of no) expect(matcher(text), `should not match ${JSON.stringify(text)}`).toBe(false);
}

describe('compileEqlWildcard', () => {
  it('is anchored, * matching any run and ? exactly one character', () => {
    expectMatches(like('cmd.exe'), ['cmd.exe'], ['xcmd.exe', 'cmd.exex', 'cmd_exe']);
    expectMatches(like('*.exe'), ['.exe', 'a\nb.exe'], ['a.exe.bak']);
    expectMatches(like('a*b*c'), ['abc', 'a--b--c', 'abbc'], ['ab', 'acb']);
    expectMatches(like('a?c'), ['abc', 'a\nc'], ['ac', 'abbc']);
    expectMatches(like('??'), ['ab'], ['a', 'abc']);
    expectMatches(like('*'), ['', 'anything'], []);
    expectMatches(like('**a**'), ['a', 'xax'], ['']);
    expectMatches(like(''), [''], ['a']);
  });

  it('has no escape character: \\ is literal', () => {
    expectMatches(like('C:\\Windows\\*'), ['C:\\Windows\\System32'], ['C:Windows']);
    expectMatches(like('a\\*'), ['a\\', 'a\\bc'], ['a*', 'a']);
    expectMatches(like('a\\?'), ['a\\x'], ['a?', 'ax']);
    expectMatches(like('%_[]().+^$|'), ['%_[]().+^$|'], ['x_[]().+^$|']);
  });

  it('counts code points: ? takes a whole astral character', () => {
    expectMatches(like('a?b'), ['a😀b'], ['a\ud83d\ude00\ud83d\ude00b']);
    expectMatches(like('??'), ['😀😀', 'a😀'], ['😀']);
    expectMatches(like('*😀?'), ['x😀😀', '😀a'], ['😀']);
    expectMatches(like('a?'), ['a\ud800'], []);
  });

  it('folds case for like~ and : with Unicode simple case folding', () => {
    expectMatches(like('*\\powershell.exe', true), ['C:\\WINDOWS\\PowerShell.EXE'], ['powershell.exe']);
    expectMatches(like('école*', true), ['ÉCOLE.txt'], ['ECOLE.txt']);
    expectMatches(like('?k', true), ['xK', 'x\u212a'], ['x']);
    expectMatches(like('σ*', true), ['ς', 'Σx'], []);
    expectMatches(like('i', true), ['I'], ['ı']);
    expectMatches(like('abc'), ['abc'], ['ABC']);
  });

  it('rejects U+0001, which collides with the escape Elasticsearch inserts', () => {
    expect(() => like('a\u0001*')).toThrow(EqlPatternError);
    try {
      like('ab\u0001');
    } catch (err) {
      expect((err as EqlPatternError).offset).toBe(2);
    }
  });

  it('stays linear on hostile input', () => {
    const megabyte = 'a'.repeat(1 << 20);
    expect(like('*a*a*a*a*a*a*a*a*b')(megabyte)).toBe(false);
    expect(like('*a?a?a?a?a?b', true)(megabyte)).toBe(false);
    expect(like('*?*?*?*?*?b')(megabyte)).toBe(false);
    expect(like('*a*a*a*a*a*a*a*a*b')(`${megabyte}b`)).toBe(true);
    expect(like('a*', true)(megabyte)).toBe(true);
  });
});

describe('compileEqlWildcardScript (like on a function result)', () => {
  it('does not let * or ? cross line terminators, as java.util.regex . does not', () => {
    expectMatches(script('a*b'), ['ab', 'axxb'], ['a\nb', 'a\rb', 'a\u2028b', 'a\u0085b']);
    expectMatches(script('a?b'), ['a😀b'], ['a\nb']);
    expectMatches(script('a\n*'), ['a\nbc'], ['a\nb\nc']);
  });

  it('folds ASCII letters only', () => {
    expectMatches(script('CMD*', true), ['cmd.exe'], []);
    expectMatches(script('é', true), ['é'], ['É']);
  });
});

describe('wildcards agree with a reference RegExp', () => {
  const pattern = fc
    .array(fc.constantFrom('a', 'B', 'é', '😀', '\\', '*', '?', '\n'), { maxLength: 8 })
    .map((cs) => cs.join(''));
  const text = fc.array(fc.constantFrom('a', 'A', 'b', 'B', 'é', 'É', '😀', '\\', '\n'), { maxLength: 10 }).map((cs) => cs.join(''));
  const escape = (ch: string) => ch.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  const reference = (p: string, flags: string, any: string) =>
    new RegExp(`^${Array.from(p, (ch) => (ch === '*' ? `${any}*` : ch === '?' ? any : escape(ch))).join('')}$`, flags);

  it('query flavour: /^…$/su, with i for like~ (Unicode folding)', () => {
    fc.assert(
      fc.property(pattern, fc.array(text, { maxLength: 6 }), fc.boolean(), (p, texts, ci) => {
        const ours = like(p, ci);
        const ref = reference(p, ci ? 'sui' : 'su', '.');
        for (const t of texts) expect(ours(t), `${JSON.stringify(p)} on ${JSON.stringify(t)}`).toBe(ref.test(t));
      }),
      { numRuns: 400 },
    );
  });

  it('script flavour: . without s, ASCII-only i', () => {
    fc.assert(
      fc.property(pattern, fc.array(text, { maxLength: 6 }), (p, texts) => {
        const ours = script(p);
        const ref = reference(p, 'u', '[^\\n\\r\\u0085\\u2028\\u2029]');
        for (const t of texts) expect(ours(t), `${JSON.stringify(p)} on ${JSON.stringify(t)}`).toBe(ref.test(t));
      }),
      { numRuns: 300 },
    );
  });
});

describe('the folded fast path (patterns without ?) agrees with the position automaton', () => {
  // Case classes that folding must keep whole or apart: Kelvin sign, long s, sharp s and its capital, final
  // sigma, dotless/dotted i, Deseret (astral letters with case), and lone surrogates of either kind.
  const classes: readonly (readonly string[])[] = [
    ['k', 'K', '\u212a'],
    ['s', 'S', '\u017f'],
    ['ß', '\u1e9e'],
    ['σ', 'ς', 'Σ'],
    ['é', 'É'],
    ['i', 'I'],
    ['ı'],
    ['İ'],
    ['\u{10400}', '\u{10428}'],
    ['😀'],
    ['\ud83d'],
    ['\ude00'],
    ['\\'],
    ['a', 'A'],
    ['\n'],
  ];
  const letters = classes.flat();
  const letter = fc.constantFrom(...letters);
  const token = fc.oneof({ weight: 1, arbitrary: fc.constant('*') }, { weight: 4, arbitrary: letter });
  const patternTokens = fc.array(token, { maxLength: 8 });
  /** A text built to match the pattern (a case variant per literal, a run per star), then perhaps damaged. */
  const derived = (tokens: readonly string[]) =>
    fc
      .tuple(
        fc.array(fc.nat(), { minLength: tokens.length, maxLength: tokens.length }),
        fc.array(fc.array(letter, { maxLength: 3 }), { minLength: tokens.length, maxLength: tokens.length }),
        fc.option(fc.tuple(fc.nat(), fc.oneof(fc.constant(''), letter)), { nil: undefined }),
      )
      .map(([picks, runs, damage]) => {
        const parts = tokens.map((t, i) => {
          if (t === '*') return runs[i]!.join('');
          const variants = classes.find((c) => c.includes(t))!;
          return variants[picks[i]! % variants.length]!;
        });
        if (damage !== undefined && parts.length > 0) parts[damage[0] % parts.length] = damage[1];
        return parts.join('');
      });
  const anyText = fc.array(letter, { maxLength: 10 }).map((cs) => cs.join(''));
  const cases = patternTokens.chain((tokens) => fc.tuple(fc.constant(tokens.join('')), fc.array(fc.oneof(derived(tokens), anyText), { minLength: 1, maxLength: 6 }), fc.boolean()));

  it('answers as the automaton does, case-insensitive or not', () => {
    fc.assert(
      fc.property(cases, ([p, texts, ci]) => {
        const fast = like(p, ci);
        const slow = compileEqlWildcardAutomaton(p, { caseInsensitive: ci });
        for (const t of texts) expect(fast(t), `${JSON.stringify(p)} on ${JSON.stringify(t)} (ci: ${ci})`).toBe(slow(t));
      }),
      { numRuns: 3000 },
    );
  });

  it('and the automaton (which also takes ?) answers as /^…$/su(i) does on the same text', () => {
    const codePoint = (ch: string) => `\\u{${ch.codePointAt(0)!.toString(16)}}`;
    const withOne = fc.array(fc.oneof(token, fc.constant('?')), { maxLength: 8 });
    fc.assert(
      fc.property(withOne, fc.array(anyText, { minLength: 1, maxLength: 6 }), fc.boolean(), (tokens, texts, ci) => {
        const pattern = tokens.join('');
        const ours = compileEqlWildcardAutomaton(pattern, { caseInsensitive: ci });
        // By the pattern's code points, not its tokens: a high and a low surrogate drawn as two tokens are
        // one character of the pattern the automaton is given.
        const ref = new RegExp(`^${[...pattern].map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : codePoint(ch))).join('')}$`, ci ? 'sui' : 'su');
        for (const t of texts) expect(ours(t), `${JSON.stringify(tokens.join(''))} on ${JSON.stringify(t)}`).toBe(ref.test(t));
      }),
      { numRuns: 2000 },
    );
  });

  it('folds the classes it must', () => {
    expectMatches(like('*k*', true), ['\u212a', 'xKy'], ['x']);
    expectMatches(like('*ss*', true), ['\u017fS', 'Ss'], ['ß']);
    expectMatches(like('*ß', true), ['x\u1e9e', 'ß'], ['ss']);
    expectMatches(like('\u{10400}*', true), ['\u{10428}x', '\u{10400}'], ['\ud801']);
    expectMatches(like('*\ude00', true), ['x\ude00'], ['😀']);
    expectMatches(like('*\ude00'), ['x\ude00'], ['😀']);
  });
});
