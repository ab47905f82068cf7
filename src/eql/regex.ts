/**
 * Regular-expression matchers for EQL's `regex` / `regex~`, in the two flavours Elasticsearch applies:
 *
 * - `compileLuceneRegex`: the pattern as a `regexp` query sees it (the usual case, `field regex "…"`). EQL's
 *   `Match` becomes QL's `RLike`, which the planner turns into `RegexQuery` → `RegexpQueryBuilder` with the
 *   default flags (`RegexpFlag.ALL` = Lucene `RegExp.ALL | DEPRECATED_COMPLEMENT`: `&`, `~`, `#`, `@`, `<…>` all
 *   on) and `case_insensitive` for `regex~` (elasticsearch: x-pack/plugin/eql/.../parser/ExpressionBuilder.java,
 *   .../scalar/string/Match.java, x-pack/plugin/ql/.../querydsl/query/RegexQuery.java,
 *   server/.../index/query/RegexpQueryBuilder.java, RegexpFlag.java).
 * - `compileJavaRegex`: the same pattern string when the left side is not a field (a function result): QL's
 *   `ExpressionTranslators.Likes` falls back to a script, and `RegexProcessor.RegexOperation.match` runs
 *   `java.util.regex.Pattern.compile(pattern, ci ? CASE_INSENSITIVE : 0).matcher(v).matches()`
 *   (x-pack/plugin/ql/.../expression/predicate/regex/RegexProcessor.java). Java syntax differs from Lucene's
 *   (`"`, `@`, `#`, `~`, `&`, `<` are literals there; `\n` is a newline; `.` skips line terminators; CASE_INSENSITIVE
 *   alone is ASCII-only), so the flavours are separate parsers over one engine.
 *
 * Engine: the pattern becomes a term (hash-consed, normalised), and a DFA is built eagerly from Brzozowski
 * derivatives over code-point ranges. Derivatives handle `&` and `~` natively, and the DFA makes matching one
 * table step per code point: linear in the input, no backtracking. Building is bounded like Lucene's
 * determinization: more than `MAX_DETERMINIZED_STATES` DFA states (ES's `max_determinized_states` default) or
 * too many intermediate terms is an `EqlPatternError`, at compile time, never while matching. Elasticsearch
 * rejects such queries too (TooComplexToDeterminizeException); our state count is not Lucene's work measure,
 * so a pattern right at the limit can land on different sides of it.
 *
 * Input strings are walked by code point (a surrogate pair is one character, as in Lucene and Java); a lone
 * surrogate is matched as the code point it is.
 */
import { ValidationError } from '../errors.js';

const MAX_CODE_POINT = 0x10ffff;
/** ES `RegexpQueryBuilder.DEFAULT_MAX_DETERMINIZED_STATES` (Lucene `Operations.DEFAULT_DETERMINIZE_WORK_LIMIT`). */
export const MAX_DETERMINIZED_STATES = 10_000;
/** Bounds compile work (term constructions, repetition expansion) so a short pattern cannot stall the agent. */
const TERM_BUDGET = 500_000;

export class EqlPatternError extends ValidationError {
  constructor(
    readonly pattern: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    const shown = pattern.length > 200 ? `${pattern.slice(0, 200)}…` : pattern;
    super(`invalid pattern ${JSON.stringify(shown)}: ${reason} (at offset ${offset})`);
    this.name = 'EqlPatternError';
  }
}

export interface PatternOptions {
  readonly caseInsensitive: boolean;
}

/** Lucene `RegExp` syntax, anchored at both ends, as Elasticsearch's `regexp` query evaluates it. */
export function compileLuceneRegex(pattern: string, options: PatternOptions): (text: string) => boolean {
  return compileWith(pattern, (terms) => new LuceneParser(pattern, terms, options.caseInsensitive).parse());
}

/**
 * The `java.util.regex` subset Elasticsearch's script fallback accepts, with `matches()` semantics (whole
 * input). Supported: literals; `.` (any code point but \n \r \u0085 \u2028 \u2029); `[…]` classes with ranges,
 * `^` negation and escapes; `\d \D \s \S \w \W` (ASCII, as Java's defaults); escapes `\t \n \r \f \a \e \0ooo
 * \xhh \x{h…} \uhhhh \cX \Q…\E` and `\` before any non-alphanumeric; `|`; groups `(…)`, `(?:…)`, `(?<name>…)`;
 * `* + ? {n} {n,} {n,m}` and their lazy `?` forms (same language); `^` first and `$` last in a top-level branch.
 * Unsupported (EqlPatternError): backreferences, lookaround, atomic groups, possessive quantifiers, inline flags,
 * `\b \B \A \z \Z \G \R \X \p{…} \h \v \N{…}`, nested classes and `&&` in classes, `^`/`$` anywhere else, and
 * patterns whose DFA exceeds `MAX_DETERMINIZED_STATES` (Java has no such limit; it backtracks instead).
 * `caseInsensitive` is Java's `CASE_INSENSITIVE` without `UNICODE_CASE`: ASCII letters only, ranges included.
 */
export function compileJavaRegex(pattern: string, options: PatternOptions): (text: string) => boolean {
  return compileWith(pattern, (terms) => new JavaParser(pattern, terms, options.caseInsensitive).parse());
}

function compileWith(pattern: string, parse: (terms: Terms) => Term): (text: string) => boolean {
  const terms = new Terms();
  try {
    return runner(buildDfa(terms, parse(terms)));
  } catch (err) {
    if (err instanceof TooComplex) throw new EqlPatternError(pattern, 0, err.message);
    // Parsing and deriving recurse on nesting depth; a stack overflow means the pattern is too deep.
    if (err instanceof RangeError) throw new EqlPatternError(pattern, 0, 'pattern is nested too deeply');
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Case folding

let foldClasses: Map<number, readonly number[]> | undefined;

/**
 * The code points that are case variants of `cp` (itself included), under Unicode simple case folding
 * (CaseFolding.txt C+S mappings, as V8's `/iu` canonicalises). Lucene ≥ 10.2 `RegExp` treats
 * ASCII_CASE_INSENSITIVE (what ES passes for `case_insensitive`) as full Unicode case-insensitivity
 * (lucene: util/automaton/RegExp.java, `toCaseInsensitiveChar` and the CASE_INSENSITIVE javadoc), and ES itself
 * moved its wildcard/term/prefix folding from ASCII-only to the same Unicode folding (elastic/elasticsearch#153513,
 * replacing `AutomatonQueries.toCaseInsensitiveChar`, which folded only code points ≤ 128). The table is built
 * once, on first use, from the JS engine's own case mappings (~40 ms).
 */
export function caseVariants(cp: number): readonly number[] {
  foldClasses ??= buildFoldClasses();
  return foldClasses.get(cp) ?? [cp];
}

/**
 * `text` with every code point replaced by one representative of its case variants (the smallest), so that
 * two strings are equal under the folding caseVariants describes exactly when their folds are equal; a
 * prefix or a substring keeps its place, since each code point stays one code point. ASCII text, the common
 * case, takes the fast path: an ASCII letter's smallest variant is its upper case.
 */
export function foldCase(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return text.toUpperCase();
  let folded = '';
  for (const character of text) {
    const variants = caseVariants(character.codePointAt(0)!);
    let smallest = variants[0]!;
    for (const variant of variants) if (variant < smallest) smallest = variant;
    folded += String.fromCodePoint(smallest);
  }
  return folded;
}

function buildFoldClasses(): Map<number, readonly number[]> {
  const parent = new Map<number, number>();
  const find = (x: number): number => {
    let root = x;
    for (let p = parent.get(root); p !== undefined && p !== root; p = parent.get(root)) root = p;
    parent.set(x, root);
    return root;
  };
  const union = (a: number, b: number): void => {
    if (!parent.has(a)) parent.set(a, a);
    if (!parent.has(b)) parent.set(b, b);
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(ra, rb);
  };
  // Every cased letter lives below U+20000. Linking each code point to its single-code-point upper and lower
  // forms reaches the titlecase and special forms too (ᾈ → ᾀ, ẞ → ß, K → k) without a Unicode table.
  for (let cp = 0; cp < 0x20000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const s = String.fromCodePoint(cp);
    for (const mapped of [s.toLowerCase(), s.toUpperCase()]) {
      const other = mapped.codePointAt(0)!;
      if (mapped !== s && mapped.length === (other > 0xffff ? 2 : 1)) union(cp, other);
    }
  }
  const groups = new Map<number, number[]>();
  for (const cp of parent.keys()) {
    const root = find(cp);
    const group = groups.get(root);
    if (group) group.push(cp);
    else groups.set(root, [cp]);
  }
  // Upper/lower links over-join a few letters that simple folding keeps apart (Turkic ı joins I/i through
  // toUpperCase); the engine's `/iu`, which is defined by CaseFolding.txt, splits them again.
  const table = new Map<number, readonly number[]>();
  for (const members of groups.values()) {
    const classes: number[][] = [];
    for (const cp of members.sort((a, b) => a - b)) {
      const home = classes.find((c) => new RegExp(`^\\u{${c[0]!.toString(16)}}$`, 'iu').test(String.fromCodePoint(cp)));
      if (home) home.push(cp);
      else classes.push([cp]);
    }
    for (const c of classes) if (c.length > 1) for (const cp of c) table.set(cp, c);
  }
  return table;
}

// ---------------------------------------------------------------------------------------------------------
// Code-point sets: sorted, disjoint, inclusive ranges, flattened [lo0, hi0, lo1, hi1, …].

type CodeSet = readonly number[];

function normalizeRanges(pairs: [number, number][]): CodeSet {
  pairs.sort((x, y) => x[0] - y[0]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    const last = out.length - 1;
    if (last > 0 && lo <= out[last]! + 1) out[last] = Math.max(out[last]!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function setOf(points: readonly number[]): CodeSet {
  return normalizeRanges(points.map((p) => [p, p]));
}

function setUnion(sets: readonly CodeSet[]): CodeSet {
  const pairs: [number, number][] = [];
  for (const s of sets) for (let i = 0; i < s.length; i += 2) pairs.push([s[i]!, s[i + 1]!]);
  return normalizeRanges(pairs);
}

function setComplement(s: CodeSet): CodeSet {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < s.length; i += 2) {
    if (s[i]! > next) out.push(next, s[i]! - 1);
    next = s[i + 1]! + 1;
  }
  if (next <= MAX_CODE_POINT) out.push(next, MAX_CODE_POINT);
  return out;
}

function setHas(s: CodeSet, cp: number): boolean {
  for (let i = 0; i < s.length; i += 2) {
    if (cp < s[i]!) return false;
    if (cp <= s[i + 1]!) return true;
  }
  return false;
}

const ALL: CodeSet = [0, MAX_CODE_POINT];
const DIGITS: CodeSet = [0x30, 0x39];
const WORD: CodeSet = setUnion([DIGITS, [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]]);

// ---------------------------------------------------------------------------------------------------------
// Terms: regular expressions with intersection and complement, hash-consed so equal derivatives are one DFA state.

const NONE = 0; // no string
const EPS = 1; // the empty string
const SET = 2; // one code point from `set`
const CAT = 3; // kids[0] then kids[1]
const STAR = 4;
const OR = 5;
const AND = 6;
const NOT = 7;

class Term {
  derivatives: Map<number, Term> | undefined;
  cuts: readonly number[] | undefined;
  constructor(
    readonly id: number,
    readonly kind: number,
    readonly nullable: boolean,
    readonly set: CodeSet,
    readonly kids: readonly Term[],
  ) {}
}

class TooComplex extends Error {}

class Terms {
  private readonly table = new Map<string, Term>();
  private spent = 0;
  readonly none = this.make(NONE, false, [], [], 'N');
  readonly eps = this.make(EPS, true, [], [], 'E');
  readonly any = this.set(ALL);
  readonly anyString = this.make(STAR, true, [], [this.any], `*${this.any.id}`);

  /** Work is counted in term constructions weighted by their size, so wide alternations cost what they take. */
  charge(weight = 1): void {
    this.spent += weight;
    if (this.spent > TERM_BUDGET) throw new TooComplex('pattern is too complex to compile');
  }

  private make(kind: number, nullable: boolean, set: CodeSet, kids: readonly Term[], key: string): Term {
    const known = this.table.get(key);
    if (known) return known;
    this.charge(1 + kids.length + (set.length >> 1));
    const term = new Term(this.table.size, kind, nullable, set, kids);
    this.table.set(key, term);
    return term;
  }

  set(s: CodeSet): Term {
    return s.length === 0 ? this.none : this.make(SET, false, s, [], `S${s.join(',')}`);
  }

  chars(points: readonly number[]): Term {
    return this.set(setOf(points));
  }

  cat(a: Term, b: Term): Term {
    if (a.kind === NONE || b.kind === NONE) return this.none;
    if (a.kind === EPS) return b;
    if (b.kind === EPS) return a;
    if (a.kind === CAT) return this.cat(a.kids[0]!, this.cat(a.kids[1]!, b));
    return this.make(CAT, a.nullable && b.nullable, [], [a, b], `.${a.id},${b.id}`);
  }

  seq(parts: readonly Term[]): Term {
    let out = this.eps;
    for (let i = parts.length - 1; i >= 0; i--) out = this.cat(parts[i]!, out);
    return out;
  }

  star(a: Term): Term {
    if (a.kind === NONE || a.kind === EPS) return this.eps;
    if (a.kind === STAR) return a;
    return this.make(STAR, true, [], [a], `*${a.id}`);
  }

  not(a: Term): Term {
    if (a.kind === NOT) return a.kids[0]!;
    if (a === this.none) return this.anyString;
    if (a === this.anyString) return this.none;
    return this.make(NOT, !a.nullable, [], [a], `!${a.id}`);
  }

  or(list: readonly Term[]): Term {
    const flat = new Map<number, Term>();
    const sets: CodeSet[] = [];
    const add = (t: Term): boolean => {
      if (t === this.anyString) return true;
      if (t.kind === OR) return t.kids.some(add);
      if (t.kind === SET) sets.push(t.set);
      else if (t.kind !== NONE) flat.set(t.id, t);
      return false;
    };
    if (list.some(add)) return this.anyString;
    if (sets.length > 0) {
      const merged = this.set(setUnion(sets));
      flat.set(merged.id, merged);
    }
    return this.group(OR, [...flat.values()], this.none, (xs) => xs.some((x) => x.nullable));
  }

  and(list: readonly Term[]): Term {
    const flat = new Map<number, Term>();
    const add = (t: Term): boolean => {
      if (t.kind === NONE) return true;
      if (t.kind === AND) return t.kids.some(add);
      if (t !== this.anyString) flat.set(t.id, t);
      return false;
    };
    if (list.some(add)) return this.none;
    return this.group(AND, [...flat.values()], this.anyString, (xs) => xs.every((x) => x.nullable));
  }

  private group(kind: number, xs: Term[], empty: Term, nullable: (xs: Term[]) => boolean): Term {
    if (xs.length === 0) return empty;
    if (xs.length === 1) return xs[0]!;
    xs.sort((a, b) => a.id - b.id);
    return this.make(kind, nullable(xs), [], xs, `${kind === OR ? '|' : '&'}${xs.map((x) => x.id).join(',')}`);
  }

  repeat(e: Term, min: number, max: number | undefined): Term {
    if (e.kind === EPS || e.kind === NONE) return min === 0 || e.kind === EPS ? this.eps : this.none;
    let tail = max === undefined ? this.star(e) : this.eps;
    for (let i = min; max !== undefined && i < max; i++) {
      this.charge();
      tail = this.or([this.eps, this.cat(e, tail)]);
    }
    for (let i = 0; i < min; i++) {
      this.charge();
      tail = this.cat(e, tail);
    }
    return tail;
  }

  /** d(term)/d(cp): the strings w such that cp·w is in the term. */
  derive(t: Term, cp: number): Term {
    let memo = t.derivatives;
    const known = memo?.get(cp);
    if (known) return known;
    let d: Term;
    switch (t.kind) {
      case SET:
        d = setHas(t.set, cp) ? this.eps : this.none;
        break;
      case CAT: {
        const [a, b] = t.kids as [Term, Term];
        const first = this.cat(this.derive(a, cp), b);
        d = a.nullable ? this.or([first, this.derive(b, cp)]) : first;
        break;
      }
      case STAR:
        d = this.cat(this.derive(t.kids[0]!, cp), t);
        break;
      case OR:
        d = this.or(t.kids.map((k) => this.derive(k, cp)));
        break;
      case AND:
        d = this.and(t.kids.map((k) => this.derive(k, cp)));
        break;
      case NOT:
        d = this.not(this.derive(t.kids[0]!, cp));
        break;
      default:
        d = this.none;
    }
    if (!memo) t.derivatives = memo = new Map();
    memo.set(cp, d);
    return d;
  }

  /** Code points where the term's derivative may change: the starts of its alphabet blocks, 0 excluded. */
  cutsOf(t: Term): readonly number[] {
    if (t.cuts) return t.cuts;
    const out = new Set<number>();
    const collect = (u: Term): void => {
      switch (u.kind) {
        case SET:
          for (let i = 0; i < u.set.length; i += 2) {
            out.add(u.set[i]!);
            out.add(u.set[i + 1]! + 1);
          }
          break;
        case CAT:
          for (const c of this.cutsOf(u.kids[0]!)) out.add(c);
          if (u.kids[0]!.nullable) for (const c of this.cutsOf(u.kids[1]!)) out.add(c);
          break;
        default:
          for (const k of u.kids) for (const c of this.cutsOf(k)) out.add(c);
      }
    };
    collect(t);
    out.delete(0);
    out.delete(MAX_CODE_POINT + 1);
    t.cuts = [...out].sort((a, b) => a - b);
    return t.cuts;
  }
}

// ---------------------------------------------------------------------------------------------------------
// DFA

interface Dfa {
  /** ascii[state * 128 + c]: the next state for an ASCII code point. */
  readonly ascii: Int32Array;
  /** Per state: block starts (ascending, > 0) and the next state for each block (one more entry). */
  readonly cuts: readonly Int32Array[];
  readonly next: readonly Int32Array[];
  readonly accepting: Uint8Array;
  /** A state that can never accept (-1 when none), and one that accepts every continuation (-1 when none). */
  readonly dead: number;
  readonly full: number;
}

function buildDfa(terms: Terms, root: Term): Dfa {
  const states: Term[] = [root];
  const index = new Map<number, number>([[root.id, 0]]);
  const cuts: Int32Array[] = [];
  const next: Int32Array[] = [];
  for (let s = 0; s < states.length; s++) {
    const term = states[s]!;
    const starts = [0, ...terms.cutsOf(term)];
    const blockStarts: number[] = [];
    const targets: number[] = [];
    for (const start of starts) {
      const d = terms.derive(term, start);
      let target = index.get(d.id);
      if (target === undefined) {
        if (states.length >= MAX_DETERMINIZED_STATES) {
          throw new TooComplex(`needs more than ${MAX_DETERMINIZED_STATES} automaton states (max_determinized_states)`);
        }
        target = states.length;
        states.push(d);
        index.set(d.id, target);
      }
      if (targets.length > 0 && targets[targets.length - 1] === target) continue;
      if (targets.length > 0) blockStarts.push(start);
      targets.push(target);
    }
    cuts.push(Int32Array.from(blockStarts));
    next.push(Int32Array.from(targets));
  }
  const ascii = new Int32Array(states.length * 128);
  for (let s = 0; s < states.length; s++) {
    for (let c = 0; c < 128; c++) ascii[s * 128 + c] = step(cuts[s]!, next[s]!, c);
  }
  return {
    ascii,
    cuts,
    next,
    accepting: Uint8Array.from(states, (t) => (t.nullable ? 1 : 0)),
    dead: index.get(terms.none.id) ?? -1,
    full: index.get(terms.anyString.id) ?? -1,
  };
}

function step(cuts: Int32Array, next: Int32Array, cp: number): number {
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cuts[mid]! <= cp) lo = mid + 1;
    else hi = mid;
  }
  return next[lo]!;
}

function runner(dfa: Dfa): (text: string) => boolean {
  const { ascii, cuts, next, accepting, dead, full } = dfa;
  if (dead === 0) return () => false;
  if (full === 0) return () => true;
  return (text) => {
    let state = 0;
    for (let i = 0; i < text.length; i++) {
      let cp = text.charCodeAt(i);
      if (cp < 128) {
        state = ascii[state * 128 + cp]!;
      } else {
        if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) {
          const low = text.charCodeAt(i + 1);
          if (low >= 0xdc00 && low <= 0xdfff) {
            cp = (cp - 0xd800) * 0x400 + (low - 0xdc00) + 0x10000;
            i++;
          }
        }
        state = step(cuts[state]!, next[state]!, cp);
      }
      if (state === dead) return false;
      if (state === full) return true;
    }
    return accepting[state] === 1;
  };
}

// ---------------------------------------------------------------------------------------------------------
// Shared parser plumbing

abstract class Parser {
  protected pos = 0;
  /** `ci`: the pattern ignores case, folded as each flavour folds (Lucene: Unicode; Java: its CASE_INSENSITIVE). */
  constructor(
    protected readonly src: string,
    protected readonly t: Terms,
    protected readonly ci: boolean,
  ) {}

  protected fail(reason: string, at: number = this.pos): never {
    throw new EqlPatternError(this.src, at, reason);
  }

  protected more(): boolean {
    return this.pos < this.src.length;
  }

  protected peekCp(): number | undefined {
    return this.more() ? this.src.codePointAt(this.pos) : undefined;
  }

  protected peek(chars: string): boolean {
    const cp = this.peekCp();
    return cp !== undefined && cp < 0x10000 && chars.includes(String.fromCharCode(cp));
  }

  protected match(ch: string): boolean {
    if (this.src.startsWith(ch, this.pos)) {
      this.pos += ch.length;
      return true;
    }
    return false;
  }

  protected next(): number {
    const cp = this.peekCp();
    if (cp === undefined) this.fail('unexpected end of pattern');
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }

  protected integer(what: string): number {
    const start = this.pos;
    while (this.peek('0123456789')) this.pos++;
    if (start === this.pos) this.fail(`${what}: integer expected`);
    const n = Number(this.src.slice(start, this.pos));
    // Both engines parse counts as a Java int; larger values are errors there.
    if (n > 0x7fffffff) this.fail(`${what}: number too large`, start);
    return n;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Lucene RegExp syntax. Follows the recursive-descent grammar of lucene's util/automaton/RegExp.java (10.x)
// production by production, quirks included: a `|`, `)`, `*`, `{` or `]` where an atom is expected is a literal
// (`|a` is the string "|a"); `\` before an ASCII letter other than d D s S w W is an error (`\n` is not a
// newline); `\` before anything else is that character; inside `[…]` the first character is always a member
// (`[]a]`), `-` after a member makes a range, and an escaped member cannot start a range. Elastic's "Regular
// expression syntax" reference (query DSL) documents the same operators.

class LuceneParser extends Parser {
  parse(): Term {
    if (this.src.length === 0) return this.t.eps;
    const e = this.union();
    if (this.more()) this.fail('end of pattern expected');
    return e;
  }

  private union(): Term {
    const alts = [this.inter()];
    while (this.match('|')) alts.push(this.inter());
    return this.t.or(alts);
  }

  private inter(): Term {
    const parts = [this.concat()];
    while (this.match('&')) parts.push(this.concat());
    return this.t.and(parts);
  }

  private concat(): Term {
    const parts = [this.repeat()];
    while (this.more() && !this.peek(')|&')) parts.push(this.repeat());
    return this.t.seq(parts);
  }

  private repeat(): Term {
    let e = this.complement();
    while (this.peek('?*+{')) {
      if (this.match('?')) e = this.t.or([this.t.eps, e]);
      else if (this.match('*')) e = this.t.star(e);
      else if (this.match('+')) e = this.t.repeat(e, 1, undefined);
      else {
        const at = this.pos;
        this.pos++;
        const min = this.integer('repetition');
        let max: number | undefined = min;
        if (this.match(',')) max = this.peek('0123456789') ? this.integer('repetition') : undefined;
        if (!this.match('}')) this.fail("expected '}'");
        if (max !== undefined && min > max) this.fail(`repetition range out of order: ${min}..${max}`, at);
        e = this.t.repeat(e, min, max);
      }
    }
    return e;
  }

  // `~` is Lucene's DEPRECATED_COMPLEMENT, which ES still enables by default (RegexpFlag.ALL).
  private complement(): Term {
    if (this.match('~')) return this.t.not(this.complement());
    return this.charClass();
  }

  private charClass(): Term {
    if (!this.match('[')) return this.simple();
    const negate = this.match('^');
    const members = this.classMembers();
    if (!this.match(']')) this.fail("expected ']'");
    return this.t.set(negate ? setComplement(members) : members);
  }

  private classMembers(): CodeSet {
    const pairs: [number, number][] = [];
    do {
      if (this.match('\\')) {
        if (this.peek('\\ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')) {
          const s = this.predefined();
          for (let i = 0; i < s.length; i += 2) pairs.push([s[i]!, s[i + 1]!]);
        } else {
          const c = this.next();
          pairs.push([c, c]);
        }
      } else {
        const c = this.charExp();
        if (this.match('-')) {
          const at = this.pos;
          const to = this.charExp();
          if (c > to) this.fail(`invalid range: from (${c}) cannot be > to (${to})`, at);
          pairs.push([c, to]);
        } else {
          for (const v of this.ci ? caseVariants(c) : [c]) pairs.push([v, v]);
        }
      }
    } while (this.more() && !this.peek(']'));
    // A one-character class is a plain character in Lucene, and so case-folded even when it was escaped.
    if (pairs.length === 1 && pairs[0]![0] === pairs[0]![1]) return this.charSet(pairs[0]![0]);
    return normalizeRanges(pairs);
  }

  /** After a `\`, at a letter or a backslash (the caller checked). */
  private predefined(): CodeSet {
    const at = this.pos;
    const c = String.fromCodePoint(this.next());
    switch (c) {
      case '\\':
        return [0x5c, 0x5c];
      case 'd':
        return DIGITS;
      case 'D':
        return setComplement(DIGITS);
      case 's':
        return LUCENE_SPACE;
      case 'S':
        return setComplement(LUCENE_SPACE);
      case 'w':
        return WORD;
      case 'W':
        return setComplement(WORD);
      default:
        return this.fail(`invalid character class \\${c}`, at - 1);
    }
  }

  private simple(): Term {
    const start = this.pos;
    if (this.match('.')) return this.t.any;
    if (this.match('#')) return this.t.none;
    if (this.match('@')) return this.t.anyString;
    if (this.match('"')) {
      const end = this.src.indexOf('"', this.pos);
      if (end < 0) this.fail("expected '\"'", this.src.length);
      const text = this.src.slice(this.pos, end);
      this.pos = end + 1;
      return this.t.seq(Array.from(text, (ch) => this.t.set(this.charSet(ch.codePointAt(0)!))));
    }
    if (this.match('(')) {
      if (this.match(')')) return this.t.eps;
      const e = this.union();
      if (!this.match(')')) this.fail("expected ')'");
      return e;
    }
    if (this.match('<')) return this.interval(start);
    if (this.match('\\')) {
      if (this.peek('\\ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')) return this.t.set(this.predefined());
      return this.t.set(this.charSet(this.next()));
    }
    return this.t.set(this.charSet(this.next()));
  }

  private charExp(): number {
    this.match('\\');
    return this.next();
  }

  private charSet(c: number): CodeSet {
    return this.ci ? setOf(caseVariants(c)) : [c, c];
  }

  /**
   * `<n-m>`: decimal integers from n to m; when n and m are written with the same number of digits, exactly
   * that many (zero-padded), otherwise any number of leading zeros (Lucene `Automata.makeDecimalInterval`).
   * `<name>` (no dash) is a named automaton, which ES's regexp query never provides: an error there too.
   */
  private interval(start: number): Term {
    const close = this.src.indexOf('>', this.pos);
    if (close < 0) this.fail("expected '>'", this.src.length);
    const body = this.src.slice(this.pos, close);
    this.pos = close + 1;
    const dash = body.indexOf('-');
    if (dash < 0) this.fail(`named automaton <${body}> is not available`, start);
    const bound = /^\+?[0-9]+$/;
    const low = body.slice(0, dash);
    const high = body.slice(dash + 1);
    if (!bound.test(low) || !bound.test(high)) this.fail('interval syntax error', start);
    let min = Number(low);
    let max = Number(high);
    if (min > 0x7fffffff || max > 0x7fffffff) this.fail('interval syntax error', start);
    if (min > max) [min, max] = [max, min];
    const digits = low.length === high.length ? low.length : 0;
    if (digits > 0) return this.fixedWidth(String(min).padStart(digits, '0'), String(max).padStart(digits, '0'));
    const byLength: Term[] = [];
    for (let len = String(min).length; len <= String(max).length; len++) {
      const from = len === 1 ? min : Math.max(min, 10 ** (len - 1));
      const to = Math.min(max, 10 ** len - 1);
      if (from <= to) byLength.push(this.fixedWidth(String(from), String(to).padStart(len, '0')));
    }
    return this.t.cat(this.t.star(this.t.chars([0x30])), this.t.or(byLength));
  }

  /** Digit strings of one width between two bounds of that width. */
  private fixedWidth(low: string, high: string): Term {
    if (low.length === 0) return this.t.eps;
    const a = low.charCodeAt(0);
    const z = high.charCodeAt(0);
    const restLow = low.slice(1);
    const restHigh = high.slice(1);
    if (a === z) return this.t.cat(this.t.chars([a]), this.fixedWidth(restLow, restHigh));
    const width = restLow.length;
    const alts = [
      this.t.cat(this.t.chars([a]), this.fixedWidth(restLow, '9'.repeat(width))),
      this.t.cat(this.t.chars([z]), this.fixedWidth('0'.repeat(width), restHigh)),
    ];
    if (z - a > 1) alts.push(this.t.cat(this.t.set([a + 1, z - 1]), this.t.repeat(this.t.set(DIGITS), width, width)));
    return this.t.or(alts);
  }
}

const LUCENE_SPACE: CodeSet = setUnion([[0x09, 0x0a], [0x0d, 0x0d], [0x20, 0x20]]);

// ---------------------------------------------------------------------------------------------------------
// java.util.regex subset (see compileJavaRegex)

const JAVA_LINE_TERMINATORS: CodeSet = setUnion([[0x0a, 0x0a], [0x0d, 0x0d], [0x85, 0x85], [0x2028, 0x2029]]);
const JAVA_SPACE: CodeSet = setUnion([[0x09, 0x0d], [0x20, 0x20]]);

class JavaParser extends Parser {
  private depth = 0;

  parse(): Term {
    const e = this.alternation();
    if (this.more()) this.fail("unmatched ')'");
    return e;
  }

  private unsupported(what: string, at: number = this.pos): never {
    return this.fail(`${what} is not supported`, at);
  }

  private alternation(): Term {
    const alts = [this.branch()];
    while (this.match('|')) alts.push(this.branch());
    return this.t.or(alts);
  }

  private branch(): Term {
    const parts: Term[] = [];
    if (this.depth === 0) this.match('^');
    while (this.more() && !this.peek('|)')) {
      if (this.peek('$')) {
        const at = this.pos;
        this.pos++;
        if (this.depth > 0 || (this.more() && !this.peek('|'))) this.unsupported("'$' before the end of the pattern", at);
        break;
      }
      parts.push(this.quantified());
    }
    return this.t.seq(parts);
  }

  /** One quantifier at most: Java rejects a second one (`a**`) as a dangling meta character. */
  private quantified(): Term {
    const e = this.atom();
    const at = this.pos;
    let min: number;
    let max: number | undefined;
    if (this.match('*')) [min, max] = [0, undefined];
    else if (this.match('+')) [min, max] = [1, undefined];
    else if (this.match('?')) [min, max] = [0, 1];
    else if (this.match('{')) {
      if (!this.peek('0123456789')) this.fail('illegal repetition', at);
      min = this.integer('repetition');
      max = min;
      if (this.match(',')) max = this.peek('0123456789') ? this.integer('repetition') : undefined;
      if (!this.match('}')) this.fail('unclosed counted closure', at);
      if (max !== undefined && min > max) this.fail('illegal repetition range', at);
    } else return e;
    if (this.peek('+')) this.unsupported('a possessive quantifier');
    this.match('?');
    return this.t.repeat(e, min, max);
  }

  private atom(): Term {
    const at = this.pos;
    const cp = this.next();
    switch (cp) {
      case 0x2e: // .
        return this.t.set(setComplement(JAVA_LINE_TERMINATORS));
      case 0x5b: // [
        return this.t.set(this.javaClass(at));
      case 0x28: // (
        return this.group(at);
      case 0x5c: // backslash
        return this.escapeAtom(at);
      case 0x2a: // * + ?
      case 0x2b:
      case 0x3f:
        return this.fail(`dangling meta character '${String.fromCodePoint(cp)}'`, at);
      case 0x7b: // {
        return this.fail('illegal repetition', at);
      case 0x5e: // ^
        return this.unsupported("'^' after the start of the pattern", at);
      default:
        return this.t.set(this.literal(cp));
    }
  }

  private group(at: number): Term {
    if (this.match('?')) {
      if (this.match(':')) {
        // non-capturing: same language
      } else if (this.src.startsWith('<', this.pos) && /^<[A-Za-z][A-Za-z0-9]*>/.test(this.src.slice(this.pos))) {
        this.pos = this.src.indexOf('>', this.pos) + 1;
      } else {
        this.unsupported('lookaround, atomic groups and inline flags', at);
      }
    }
    this.depth++;
    const e = this.alternation();
    this.depth--;
    if (!this.match(')')) this.fail("unclosed group '('", at);
    return e;
  }

  private escapeAtom(at: number): Term {
    if (this.match('Q')) {
      const end = this.src.indexOf('\\E', this.pos);
      const text = this.src.slice(this.pos, end < 0 ? this.src.length : end);
      this.pos = end < 0 ? this.src.length : end + 2;
      return this.t.seq(Array.from(text, (ch) => this.t.set(this.literal(ch.codePointAt(0)!))));
    }
    const cls = this.predefined();
    if (cls) return this.t.set(cls);
    return this.t.set(this.literal(this.escapedChar(at)));
  }

  private predefined(): CodeSet | undefined {
    const sets: Record<string, CodeSet> = {
      d: DIGITS,
      D: setComplement(DIGITS),
      s: JAVA_SPACE,
      S: setComplement(JAVA_SPACE),
      w: WORD,
      W: setComplement(WORD),
    };
    const cp = this.peekCp();
    const set = cp === undefined ? undefined : sets[String.fromCodePoint(cp)];
    if (set) this.pos++;
    return set;
  }

  /** After a `\` that is not a class or `\Q`: the character it denotes. */
  private escapedChar(at: number): number {
    const cp = this.next();
    const c = String.fromCodePoint(cp);
    const simple: Record<string, number> = { t: 0x09, n: 0x0a, r: 0x0d, f: 0x0c, a: 0x07, e: 0x1b };
    if (simple[c] !== undefined) return simple[c];
    if (c === '0') {
      const m = /^[0-7]{1,3}/.exec(this.src.slice(this.pos));
      if (!m) this.fail('illegal octal escape sequence', at);
      const digits = Number.parseInt(m[0], 8) > 0o377 ? m[0].slice(0, 2) : m[0];
      this.pos += digits.length;
      return Number.parseInt(digits, 8);
    }
    if (c === 'x') {
      const m = /^(?:\{([0-9A-Fa-f]{1,6})\}|([0-9A-Fa-f]{2}))/.exec(this.src.slice(this.pos));
      const value = m ? Number.parseInt(m[1] ?? m[2]!, 16) : NaN;
      if (!m || value > MAX_CODE_POINT) this.fail('illegal hexadecimal escape sequence', at);
      this.pos += m[0].length;
      return value;
    }
    if (c === 'u') {
      const m = /^[0-9A-Fa-f]{4}/.exec(this.src.slice(this.pos));
      if (!m) this.fail('illegal Unicode escape sequence', at);
      this.pos += 4;
      const high = Number.parseInt(m[0], 16);
      const low = /^\\u([Dd][C-Fc-f][0-9A-Fa-f]{2})/.exec(this.src.slice(this.pos));
      if (high >= 0xd800 && high <= 0xdbff && low) {
        this.pos += 6;
        return (high - 0xd800) * 0x400 + (Number.parseInt(low[1]!, 16) - 0xdc00) + 0x10000;
      }
      return high;
    }
    if (c === 'c') return this.next() ^ 0x40;
    if (/[0-9A-Za-z]/.test(c)) return this.unsupported(`the escape \\${c}`, at);
    return cp;
  }

  private javaClass(open: number): CodeSet {
    const negate = this.match('^');
    if (this.peek(']')) this.unsupported("']' as the first member of a class");
    const parts: CodeSet[] = [];
    while (!this.match(']')) {
      if (!this.more()) this.fail("unclosed character class '['", open);
      if (this.peek('[') || this.src.startsWith('&&', this.pos)) this.unsupported('nested classes and && in a class');
      const at = this.pos;
      let from: number;
      if (this.match('\\')) {
        const cls = this.predefined();
        if (cls) {
          parts.push(cls);
          continue;
        }
        from = this.classChar(at);
      } else {
        from = this.next();
      }
      if (this.peek('-') && !this.src.startsWith('-]', this.pos)) {
        this.pos++;
        const toAt = this.pos;
        if (this.peek('[')) this.unsupported('nested classes and && in a class');
        const to = this.match('\\') ? this.classChar(toAt) : this.next();
        if (from > to) this.fail('illegal character range', at);
        parts.push(this.fold([from, to]));
      } else {
        parts.push(this.fold([from, from]));
      }
    }
    const members = setUnion(parts);
    return negate ? setComplement(members) : members;
  }

  private classChar(at: number): number {
    if (this.peek('Q')) this.unsupported('\\Q inside a class', at);
    return this.escapedChar(at);
  }

  private literal(cp: number): CodeSet {
    return this.fold([cp, cp]);
  }

  /** Java CASE_INSENSITIVE without UNICODE_CASE: a code point also matches its ASCII other-case letter. */
  private fold(range: CodeSet): CodeSet {
    if (!this.ci) return range;
    const [lo, hi] = range as [number, number];
    const parts: CodeSet[] = [range];
    const shifted = (from: number, to: number, by: number): void => {
      const a = Math.max(lo, from);
      const b = Math.min(hi, to);
      if (a <= b) parts.push([a + by, b + by]);
    };
    shifted(0x41, 0x5a, 0x20);
    shifted(0x61, 0x7a, -0x20);
    return setUnion(parts);
  }
}
