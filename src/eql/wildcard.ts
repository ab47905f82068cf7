/**
 * EQL `like` / `like~` / `:` patterns. EQL has no escape character: the parser hands the unquoted string to
 * `toLikePattern` (elasticsearch: x-pack/plugin/eql/.../eql/util/StringUtils.java), which maps `*` → `%` and
 * `?` → `_` with U+0001 as the LIKE escape; QL's `LikePattern` then writes a Lucene wildcard, escaping `\`, `*`
 * and `?` (x-pack/plugin/ql/.../ql/util/StringUtils.java `likeToLuceneWildcard`). So `*` is any run, `?` is
 * exactly one character and `\` is an ordinary character. Lucene's wildcard automaton works on code points
 * (`?` is `Automata.makeAnyChar`, one code point; a surrogate pair counts once: AutomatonQueries.toWildcardNFA /
 * lucene WildcardQuery.toAutomaton), and the pattern is anchored at both ends.
 *
 * Two flavours, as for regex (see regex.ts):
 * - `compileEqlWildcard`: the `wildcard` query on a field. `like~`/`:` fold case with Unicode simple case
 *   folding (`caseVariants`, as Elasticsearch since #153513; before it, wildcard folding was ASCII-only).
 * - `compileEqlWildcardScript`: `like` on a non-field (a function result), which Elasticsearch runs as a script:
 *   `likeToJavaPattern` → `java.util.regex` `matches()`, so `*` and `?` do not match line terminators
 *   (\n \r \u0085 \u2028 \u2029) and `like~` is Java's CASE_INSENSITIVE: ASCII letters only.
 *
 * A pattern without `?` reuses the KQL matcher (prefix/suffix checks and left-to-right `indexOf`), on the
 * folded forms (`foldCase`) of pattern and value when case does not count: folding maps each code point to one
 * representative of its case variants, so a literal code point matches exactly the code points folding to the
 * same one, and `*` sees the same number of code points. Other patterns (and the script flavour) simulate the
 * pattern's position automaton (one flag per pattern token): a match costs O(n·m) for n input code points and
 * m pattern tokens, with O(m) memory and no backtracking.
 */
import { compileWildcard } from '../kql/wildcard.js';
import { caseVariants, EqlPatternError, foldCase, type PatternOptions } from './regex.js';

const STAR = 0;
const ONE = 1;
const LITERAL = 2;

interface Token {
  readonly kind: number;
  /** For a literal: the code points it matches (itself and, when folding, its case variants). */
  readonly points: readonly number[];
}

export function compileEqlWildcard(pattern: string, options: PatternOptions): (text: string) => boolean {
  checkEscapeCollision(pattern);
  // indexOf compares code units; it agrees with code points only when the pattern has no lone surrogate.
  if (pattern.includes('?') || LONE_SURROGATE.test(pattern)) return compileEqlWildcardAutomaton(pattern, options);
  if (!options.caseInsensitive) return compileWildcard(pattern.split('*'));
  const matches = compileWildcard(foldCase(pattern).split('*'));
  return (text) => matches(foldOnce(text));
}

let lastText = '';
let lastFolded = '';

/** A list of patterns is one matcher per pattern, each given the same value in turn: that value is folded once. */
function foldOnce(text: string): string {
  if (text !== lastText) {
    lastFolded = foldCase(text);
    lastText = text;
  }
  return lastFolded;
}

/** compileEqlWildcard's answers for any pattern, by the position automaton. */
export function compileEqlWildcardAutomaton(pattern: string, options: PatternOptions): (text: string) => boolean {
  checkEscapeCollision(pattern);
  const fold = options.caseInsensitive ? caseVariants : (cp: number): readonly number[] => [cp];
  return positionMatcher(tokenize(pattern, fold), () => true, true);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function compileEqlWildcardScript(pattern: string, options: PatternOptions): (text: string) => boolean {
  checkEscapeCollision(pattern);
  const fold = options.caseInsensitive ? asciiVariants : (cp: number): readonly number[] => [cp];
  return positionMatcher(tokenize(pattern, fold), (cp) => !isJavaLineTerminator(cp), false);
}

/**
 * `toLikePattern` uses U+0001 as its LIKE escape without escaping it, so a pattern holding U+0001 either fails in
 * Elasticsearch ("Invalid sequence") or silently turns the next wildcard into a literal; rejecting it is the
 * only behaviour that cannot disagree with a query that ran there.
 */
function checkEscapeCollision(pattern: string): void {
  const at = pattern.indexOf('\u0001');
  if (at >= 0) throw new EqlPatternError(pattern, at, 'U+0001 cannot appear in a like pattern');
}

function tokenize(pattern: string, fold: (cp: number) => readonly number[]): Token[] {
  const tokens: Token[] = [];
  for (const ch of pattern) {
    if (ch === '*') {
      if (tokens[tokens.length - 1]?.kind !== STAR) tokens.push({ kind: STAR, points: [] });
    } else if (ch === '?') {
      tokens.push({ kind: ONE, points: [] });
    } else {
      tokens.push({ kind: LITERAL, points: fold(ch.codePointAt(0)!) });
    }
  }
  return tokens;
}

function asciiVariants(cp: number): readonly number[] {
  if (cp >= 0x41 && cp <= 0x5a) return [cp, cp + 0x20];
  if (cp >= 0x61 && cp <= 0x7a) return [cp, cp - 0x20];
  return [cp];
}

function isJavaLineTerminator(cp: number): boolean {
  return cp === 0x0a || cp === 0x0d || cp === 0x85 || cp === 0x2028 || cp === 0x2029;
}

/**
 * `wild(cp)`: whether `*` and `?` may consume cp. `starTakesAll`: `*` consumes anything, so reaching a final
 * `*` decides the match without reading the rest of the input.
 */
function positionMatcher(
  tokens: readonly Token[],
  wild: (cp: number) => boolean,
  starTakesAll: boolean,
): (text: string) => boolean {
  const m = tokens.length;
  const trailingStar = starTakesAll && m > 0 && tokens[m - 1]!.kind === STAR;
  const activate = (set: Uint8Array, from: number): void => {
    for (let i = from; i <= m && set[i] === 0; i++) {
      set[i] = 1;
      if (i === m || tokens[i]!.kind !== STAR) break;
    }
  };
  // Shared by every call: matching is synchronous and calls nothing that could match again.
  let current = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  return (text) => {
    current.fill(0);
    activate(current, 0);
    for (let at = 0; at < text.length; ) {
      if (trailingStar && current[m - 1] === 1) return true;
      const cp = text.codePointAt(at)!;
      at += cp > 0xffff ? 2 : 1;
      next.fill(0);
      let alive = false;
      for (let i = 0; i < m; i++) {
        if (current[i] === 0) continue;
        const token = tokens[i]!;
        if (token.kind === STAR) {
          if (wild(cp)) {
            activate(next, i);
            alive = true;
          }
        } else if (token.kind === ONE ? wild(cp) : token.points.includes(cp)) {
          activate(next, i + 1);
          alive = true;
        }
      }
      if (!alive) return false;
      const swap = current;
      current = next;
      next = swap;
    }
    return current[m] === 1;
  };
}
