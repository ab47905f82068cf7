import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { EqlPatternError } from '../../src/eql/regex.js';
import { compileEqlWildcard, compileEqlWildcardScript } from '../../src/eql/wildcard.js';

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
