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
 * Matching is a simulation of the pattern's position automaton (one flag per pattern token), so a match costs
 * O(n·m) for n input code points and m pattern tokens, with O(m) memory and no backtracking; a case-sensitive
 * pattern without `?` reuses the KQL matcher (prefix/suffix checks and left-to-right `indexOf`).
 */
import { compileWildcard } from '../kql/wildcard.js';
import { caseVariants, EqlPatternError, type PatternOptions } from './regex.js';

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
  if (!options.caseInsensitive && !pattern.includes('?')) return compileWildcard(pattern.split('*'));
  const fold = options.caseInsensitive ? caseVariants : (cp: number): readonly number[] => [cp];
  return positionMatcher(tokenize(pattern, fold), () => true, true);
}

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
  return (text) => {
    let current = new Uint8Array(m + 1);
    let next = new Uint8Array(m + 1);
    activate(current, 0);
    for (const ch of text) {
      if (trailingStar && current[m - 1] === 1) return true;
      const cp = ch.codePointAt(0)!;
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
      [current, next] = [next, current];
    }
    return current[m] === 1;
  };
}
