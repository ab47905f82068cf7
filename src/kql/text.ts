/**
 * Analysis of text and match_only_text fields (`message`, the `*.text` multi-fields) as Elasticsearch's
 * `standard` analyzer does it: Lucene's StandardTokenizer, then its lowercase filter.
 *
 * The tokenizer follows Lucene's grammar (StandardTokenizerImpl.jflex, UAX #29 word boundaries) and the way
 * its JFlex scanner applies it: at each position the longest match of any token rule, or, when none
 * matches, one code point skipped. Tokens are words (letters and digits, with UAX #29's joiners: `can't`,
 * `x.com`, `1,000.5`, `a:b`, `foo_bar`; Katakana and Hangul runs), runs of South-East Asian script (Thai,
 * Lao, Myanmar, Khmer, …: one token, no dictionary), each Han ideograph and each Hiragana character alone, and
 * emoji sequences (`👍🏽`, `👩‍❤️‍👩`, `🇫🇷`, `#️⃣`, `©`).
 *
 * Token length: "max_token_length: The maximum token length. If a token is seen that exceeds this length
 * then it is split at max_token_length intervals. Defaults to 255." (Elasticsearch reference, "Standard
 * tokenizer"). Lucene does it with the scanner's buffer (`%buffer 255`, a skeleton that never grows it): a
 * match never extends past the 255 UTF-16 units from its start (254 when the 255th is a high surrogate,
 * which the buffer keeps back with its pair), and scanning resumes after it.
 *
 * Cost is linear in the text: a failed match only looks ahead across one run (connectors `___`, joiners,
 * combining marks) beyond what the next match consumes, and the runs that could be re-read from every
 * position inside them are measured once.
 *
 * Known differences from Lucene: character properties are the JavaScript engine's (Node 20's Unicode), where
 * Lucene's grammar is generated from Unicode 9 and emoji 11 data, so characters assigned since then form
 * tokens here and are skipped there; Word_Break and Line_Break=Complex_Context, which JavaScript does not
 * expose, are derived from their UAX #29 and UAX #14 definitions (the few Complex_Context punctuation marks
 * and digits are missed).
 */

const MAX_TOKEN_LENGTH = 255;

// ---- character classes: Word_Break values, plus the scripts and emoji properties the grammar names ------

const LETTER = 1 << 0; // ALetter or Hebrew_Letter
const HEBREW = 1 << 1; // Hebrew_Letter
const NUMERIC = 1 << 2;
const KATAKANA = 1 << 3;
const MID_LETTER = 1 << 4; // MidLetter, MidNumLet or Single_Quote: may join two letters
const MID_NUM = 1 << 5; // MidNum, MidNumLet or Single_Quote: may join two digits
const SINGLE_QUOTE = 1 << 6;
const DOUBLE_QUOTE = 1 << 7;
const CONNECTOR = 1 << 8; // ExtendNumLet
const EXTEND = 1 << 9; // Extend, Format or ZWJ: belongs to what precedes it (WB4)
const PRESENTATION = 1 << 10; // U+FE0E, U+FE0F: Extend, but not part of an emoji's own extension
const EMOJI_PRESENTATION = 1 << 11; // U+FE0F
const ZWJ = 1 << 12;
const HAN = 1 << 13;
const HIRAGANA = 1 << 14;
const SOUTHEAST_ASIAN = 1 << 15; // Line_Break = Complex_Context
const REGIONAL = 1 << 16;
const EMOJI = 1 << 17; // Extended_Pictographic, or Emoji other than RI, keycap bases and modifiers
const MODIFIER_BASE = 1 << 18;
const MODIFIER = 1 << 19;
const KEYCAP_BASE = 1 << 20; // 0-9 # *
const KEYCAP = 1 << 21; // U+20E3
const TAG_SPEC = 1 << 22;
const TAG_TERM = 1 << 23;

const ATOM = LETTER | NUMERIC | KATAKANA;
const EMOJI_START = ZWJ | EMOJI | MODIFIER_BASE | MODIFIER | KEYCAP_BASE | REGIONAL;
const TOKEN_START = ATOM | CONNECTOR | HAN | HIRAGANA | SOUTHEAST_ASIAN | EMOJI_START;

const GRAPHEME_EXTEND_OR_SPACING_MARK = /[\p{Grapheme_Extend}\p{Mc}]/u;
const FORMAT = /\p{Cf}/u;
const KATAKANA_WB = /[\p{Script=Katakana}\u3031-\u3035\u309b\u309c\u30a0\u30fc\uff70]/u;
const HEBREW_LETTER = /(?=\p{Script=Hebrew})\p{Lo}/u;
const ALETTER_CANDIDATE = /[\p{Alphabetic}\u02c2-\u02c5\u02d2-\u02d7\u02de\u02df\u02e5-\u02eb\u02ed\u02ef-\u02ff\u055a-\u055c\u055e\u058a\u05f3\ua708-\ua716\ua720\ua721\ua789\ua78a\uab5b]/u;
const IDEOGRAPHIC = /\p{Ideographic}/u;
const HIRAGANA_SCRIPT = /\p{Script=Hiragana}/u;
const HAN_SCRIPT = /\p{Script=Han}/u;
const COMPLEX_CONTEXT =
  /(?=[\p{Script=Thai}\p{Script=Lao}\p{Script=Myanmar}\p{Script=Khmer}\p{Script=Tai_Le}\p{Script=New_Tai_Lue}\p{Script=Tai_Tham}\p{Script=Tai_Viet}\p{Script=Ahom}])[\p{L}\p{M}]/u;
const DECIMAL_DIGIT = /\p{Nd}/u;
const CONNECTOR_PUNCTUATION = /\p{Pc}/u;
const REGIONAL_INDICATOR = /\p{Regional_Indicator}/u;
const PICTOGRAPHIC = /\p{Extended_Pictographic}/u;
const EMOJI_PROPERTY = /\p{Emoji}/u;
const EMOJI_MODIFIER_BASE = /\p{Emoji_Modifier_Base}/u;
const EMOJI_MODIFIER = /\p{Emoji_Modifier}/u;

const MID_NUM_LET_CHARS = new Set([0x2e, 0x2018, 0x2019, 0x2024, 0xfe52, 0xff07, 0xff0e]);
const MID_LETTER_CHARS = new Set([0x3a, 0xb7, 0x387, 0x55f, 0x5f4, 0x2027, 0xfe13, 0xfe55, 0xff1a]);
const MID_NUM_CHARS = new Set([0x2c, 0x3b, 0x37e, 0x589, 0x60c, 0x60d, 0x66c, 0x7f8, 0x2044, 0xfe10, 0xfe14, 0xfe50, 0xfe54, 0xff0c, 0xff1b]);

/**
 * The Word_Break value, from UAX #29's definitions as of Unicode 9 (Lucene's): emoji modifiers are not
 * Extend there, and ExtendNumLet is only connector punctuation.
 */
function wordBreak(cp: number, character: string): number {
  if (cp === 0x200d || GRAPHEME_EXTEND_OR_SPACING_MARK.test(character)) return EXTEND;
  if (REGIONAL_INDICATOR.test(character)) return 0;
  if (FORMAT.test(character)) return cp === 0x200b ? 0 : EXTEND;
  if (KATAKANA_WB.test(character)) return KATAKANA;
  if (HEBREW_LETTER.test(character)) return LETTER | HEBREW;
  if (
    ALETTER_CANDIDATE.test(character) &&
    !IDEOGRAPHIC.test(character) &&
    !COMPLEX_CONTEXT.test(character) &&
    !HIRAGANA_SCRIPT.test(character)
  ) {
    return LETTER;
  }
  if (cp === 0x27) return SINGLE_QUOTE | MID_LETTER | MID_NUM;
  if (cp === 0x22) return DOUBLE_QUOTE;
  if (MID_NUM_LET_CHARS.has(cp)) return MID_LETTER | MID_NUM;
  if (MID_LETTER_CHARS.has(cp)) return MID_LETTER;
  if (MID_NUM_CHARS.has(cp)) return MID_NUM;
  // Numeric is Line_Break=Numeric: the decimal digits and U+066B (U+066C is MidNum above)
  if (DECIMAL_DIGIT.test(character) || cp === 0x66b) return NUMERIC;
  if (CONNECTOR_PUNCTUATION.test(character)) return CONNECTOR;
  return 0;
}

function classify(cp: number): number {
  const character = String.fromCodePoint(cp);
  let mask = wordBreak(cp, character);
  if (cp === 0x200d) mask |= ZWJ;
  if (cp === 0xfe0e) mask |= PRESENTATION;
  if (cp === 0xfe0f) mask |= PRESENTATION | EMOJI_PRESENTATION;
  if (cp === 0x20e3) mask |= KEYCAP;
  if (cp >= 0xe0020 && cp <= 0xe007e) mask |= TAG_SPEC;
  if (cp === 0xe007f) mask |= TAG_TERM;
  if (HAN_SCRIPT.test(character)) mask |= HAN;
  if (HIRAGANA_SCRIPT.test(character)) mask |= HIRAGANA;
  if (COMPLEX_CONTEXT.test(character)) mask |= SOUTHEAST_ASIAN;
  if (REGIONAL_INDICATOR.test(character)) mask |= REGIONAL;
  if ((cp >= 0x30 && cp <= 0x39) || cp === 0x23 || cp === 0x2a) mask |= KEYCAP_BASE;
  if (EMOJI_MODIFIER.test(character)) mask |= MODIFIER;
  if (EMOJI_MODIFIER_BASE.test(character)) mask |= MODIFIER_BASE;
  // Lucene also removes © ® ™ 〰 〽 from the Emoji set, but they are Extended_Pictographic anyway
  if (PICTOGRAPHIC.test(character) || (EMOJI_PROPERTY.test(character) && (mask & (REGIONAL | KEYCAP_BASE | MODIFIER)) === 0)) mask |= EMOJI;
  return mask;
}

const ASCII_CLASSES = Int32Array.from({ length: 128 }, (_, cp) => classify(cp));

/**
 * Classes of non-ASCII code points, computed when first seen (the property lookups are regular expressions,
 * too slow to run per character): 256-code-point pages of indexes into the few distinct masks.
 */
const UNSEEN = 0xff;
const pages: (Uint8Array | undefined)[] = [];
const masks: number[] = [];
const maskIndex = new Map<number, number>();

function classOf(cp: number): number {
  if (cp < 128) return ASCII_CLASSES[cp]!;
  let page = pages[cp >> 8];
  if (page === undefined) page = pages[cp >> 8] = new Uint8Array(256).fill(UNSEEN);
  let index = page[cp & 0xff]!;
  if (index === UNSEEN) {
    const mask = classify(cp);
    index = maskIndex.get(mask) ?? masks.length;
    if (index === masks.length) {
      if (index === UNSEEN) throw new Error('more distinct character classes than the class pages can hold');
      masks.push(mask);
      maskIndex.set(mask, index);
    }
    page[cp & 0xff] = index;
  }
  return masks[index]!;
}

// ---- the scanner ----------------------------------------------------------------------------------------

/** States of the word rule (letters, digits, Katakana, joined by UAX #29's rules). */
const enum Word {
  Dead,
  Start,
  Leading, // connectors before the first letter, digit or Katakana
  Letter,
  Hebrew,
  Digit,
  Kana,
  Joined, // after connectors that follow a letter, digit or Katakana
  MidLetter, // a letter then a mid-letter mark: needs a letter
  MidNum, // a digit then a mid-number mark: needs a digit
  HebrewDoubleQuote, // a Hebrew letter then `"`: needs a Hebrew letter
  HebrewQuote, // a Hebrew letter then `'`
}

function wordAtom(mask: number): Word {
  if (mask & HEBREW) return Word.Hebrew;
  if (mask & LETTER) return Word.Letter;
  if (mask & NUMERIC) return Word.Digit;
  if (mask & KATAKANA) return Word.Kana;
  return Word.Dead;
}

function wordStep(state: Word, mask: number): Word {
  switch (state) {
    case Word.Start:
    case Word.Leading:
    case Word.Joined:
      return mask & CONNECTOR ? (state === Word.Joined ? Word.Joined : Word.Leading) : wordAtom(mask);
    case Word.Hebrew:
      if (mask & SINGLE_QUOTE) return Word.HebrewQuote;
      if (mask & DOUBLE_QUOTE) return Word.HebrewDoubleQuote;
      return wordStep(Word.Letter, mask);
    case Word.Letter:
      if (mask & (LETTER | NUMERIC)) return wordAtom(mask);
      if (mask & CONNECTOR) return Word.Joined;
      return mask & MID_LETTER ? Word.MidLetter : Word.Dead;
    case Word.Digit:
      if (mask & (LETTER | NUMERIC)) return wordAtom(mask);
      if (mask & CONNECTOR) return Word.Joined;
      return mask & MID_NUM ? Word.MidNum : Word.Dead;
    case Word.Kana:
      if (mask & KATAKANA) return Word.Kana;
      return mask & CONNECTOR ? Word.Joined : Word.Dead;
    case Word.MidLetter:
      return mask & LETTER ? wordAtom(mask) : Word.Dead;
    case Word.MidNum:
      return mask & NUMERIC ? Word.Digit : Word.Dead;
    case Word.HebrewDoubleQuote:
      return mask & HEBREW ? Word.Hebrew : Word.Dead;
    case Word.HebrewQuote:
      if (mask & (LETTER | NUMERIC)) return wordAtom(mask);
      return mask & CONNECTOR ? Word.Joined : Word.Dead;
    case Word.Dead:
      return Word.Dead;
  }
}

function wordAccepts(state: Word): boolean {
  return state === Word.Letter || state === Word.Hebrew || state === Word.Digit || state === Word.Kana || state === Word.Joined || state === Word.HebrewQuote;
}

/*
 * The emoji rule as a set of positions (bits) in it, several live at once. An emoji sequence is a first
 * element (F_*), then either more elements each after a ZWJ (G_*) or a tag sequence. An element: ZWJs, then
 * an emoji and an optional U+FE0F, or a modifier base and a modifier; each character followed by its own
 * extension (Extend/Format/ZWJ except the presentation selectors). Besides: keycaps (K_*) and flags (R_*).
 */
const F_ZWJ = 1 << 0;
const F_EMOJI = 1 << 1;
const F_BASE = 1 << 2;
const F_MODIFIED = 1 << 3;
const F_PRESENTED = 1 << 4;
const G_START = 1 << 5;
const G_ZWJ = 1 << 6;
const G_EMOJI = 1 << 7;
const G_BASE = 1 << 8;
const G_MODIFIED = 1 << 9;
const G_PRESENTED = 1 << 10;
const TAGS = 1 << 11;
const TAGGED = 1 << 12;
const K_BASE = 1 << 13;
const K_PRESENTED = 1 << 14;
const K_DONE = 1 << 15;
const R_ONE = 1 << 16;
const R_TWO = 1 << 17;
const FIRST_DONE = F_EMOJI | F_MODIFIED | F_PRESENTED;
const EMOJI_ACCEPTS = FIRST_DONE | G_EMOJI | G_MODIFIED | G_PRESENTED | TAGGED | K_DONE | R_TWO;

function emojiStart(mask: number): number {
  let state = 0;
  if (mask & ZWJ) state |= F_ZWJ;
  if (mask & EMOJI) state |= F_EMOJI;
  if (mask & MODIFIER_BASE) state |= F_BASE;
  if (mask & MODIFIER) state |= F_MODIFIED;
  if (mask & KEYCAP_BASE) state |= K_BASE;
  if (mask & REGIONAL) state |= R_ONE;
  return state;
}

function emojiStep(state: number, mask: number): number {
  const extension = (mask & (EXTEND | PRESENTATION)) === EXTEND;
  let next = 0;
  // F_ZWJ's own loop is the run of ZWJs the scanner skips whole
  if (state & F_ZWJ) {
    if (mask & EMOJI) next |= F_EMOJI;
    if (mask & MODIFIER_BASE) next |= F_BASE;
  }
  if (state & (G_START | G_ZWJ)) {
    if (mask & ZWJ) next |= G_ZWJ;
    if (mask & EMOJI) next |= G_EMOJI;
    if (mask & MODIFIER_BASE) next |= G_BASE;
    if (state & G_START && mask & MODIFIER) next |= G_MODIFIED;
  }
  if (extension) next |= state & (F_EMOJI | F_BASE | F_MODIFIED | G_EMOJI | G_BASE | G_MODIFIED | K_BASE | K_DONE);
  if (mask & EMOJI_PRESENTATION) {
    if (state & F_EMOJI) next |= F_PRESENTED;
    if (state & G_EMOJI) next |= G_PRESENTED;
    if (state & K_BASE) next |= K_PRESENTED;
  }
  if (mask & MODIFIER) {
    if (state & F_BASE) next |= F_MODIFIED;
    if (state & G_BASE) next |= G_MODIFIED;
  }
  if (mask & ZWJ && state & (FIRST_DONE | G_EMOJI | G_MODIFIED | G_PRESENTED)) next |= G_START;
  if (mask & TAG_SPEC && state & (FIRST_DONE | TAGS)) next |= TAGS;
  if (mask & TAG_TERM && state & TAGS) next |= TAGGED;
  if (mask & KEYCAP && state & (K_BASE | K_PRESENTED)) next |= K_DONE;
  if (mask & EXTEND) next |= state & (R_ONE | R_TWO);
  if (mask & REGIONAL && state & R_ONE) next |= R_TWO;
  return next;
}

/** The end of the characters of `classes` from `at`, at most `limit`. */
function classesEnd(text: string, at: number, limit: number, classes: number): number {
  while (at < limit) {
    const cp = text.codePointAt(at)!;
    if ((classOf(cp) & classes) === 0) break;
    at += cp > 0xffff ? 2 : 1;
  }
  return at;
}

/**
 * A run of characters of some classes that a match must look across whole (it accepts nothing before the
 * run's end): measured once, then known for every later position inside it, which would otherwise each
 * look across the rest of it again.
 */
class Run {
  private from = 0;
  private end = 0;

  constructor(private readonly classes: number) {}

  endFrom(text: string, at: number): number {
    if (at < this.from || at >= this.end) {
      this.from = at;
      this.end = classesEnd(text, at, text.length, this.classes);
    }
    return this.end;
  }
}

/** The scan of one text. */
class Scanner {
  private readonly connectors = new Run(CONNECTOR | EXTEND);
  private readonly joiners = new Run(ZWJ);

  constructor(private readonly text: string) {}

  /** Where the token starting at `start` (of class `mask`) ends, at most at `limit`; `start` when none. */
  tokenEnd(start: number, mask: number, width: number, limit: number): number {
    let end = start;
    if (mask & (ATOM | CONNECTOR)) end = this.word(start, mask, limit);
    if (mask & SOUTHEAST_ASIAN) end = Math.max(end, classesEnd(this.text, start + width, limit, SOUTHEAST_ASIAN | EXTEND));
    if (mask & (HAN | HIRAGANA)) end = Math.max(end, classesEnd(this.text, start + width, limit, EXTEND));
    if (mask & EMOJI_START) end = Math.max(end, this.emoji(start, mask, width, limit));
    return end;
  }

  private word(start: number, mask: number, limit: number): number {
    const text = this.text;
    let state = Word.Start;
    let at = start;
    if (mask & CONNECTOR) {
      // connectors (and their extensions) before the first letter or digit
      at = this.connectors.endFrom(text, start);
      if (at >= limit) return start;
      state = Word.Leading;
    }
    let accepted = start;
    while (at < limit) {
      const cp = text.codePointAt(at)!;
      const next = classOf(cp);
      // WB4: an extension continues whatever it follows (a token never starts with one)
      if ((next & EXTEND) === 0) {
        state = wordStep(state, next);
        if (state === Word.Dead) break;
      }
      at += cp > 0xffff ? 2 : 1;
      if (wordAccepts(state)) accepted = at;
    }
    return accepted;
  }

  private emoji(start: number, mask: number, width: number, limit: number): number {
    const text = this.text;
    let state = emojiStart(mask);
    // leading ZWJs: the whole run, then an emoji must follow
    let at = mask & ZWJ ? this.joiners.endFrom(text, start) : start + width;
    let accepted = state & EMOJI_ACCEPTS ? at : start;
    while (state !== 0 && at < limit) {
      const cp = text.codePointAt(at)!;
      state = emojiStep(state, classOf(cp));
      at += cp > 0xffff ? 2 : 1;
      if (state & EMOJI_ACCEPTS) accepted = at;
    }
    return accepted;
  }
}

/** The end of the window a token starting at `start` must fit in (see max_token_length above). */
function windowEnd(text: string, start: number): number {
  const end = start + MAX_TOKEN_LENGTH;
  if (end > text.length) return text.length;
  const last = text.charCodeAt(end - 1);
  return last >= 0xd800 && last <= 0xdbff ? end - 1 : end;
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const scanner = new Scanner(text);
  let at = 0;
  while (at < text.length) {
    const cp = text.codePointAt(at)!;
    const mask = classOf(cp);
    const width = cp > 0xffff ? 2 : 1;
    const end = mask & TOKEN_START ? scanner.tokenEnd(at, mask, width, windowEnd(text, at)) : at;
    if (end > at) {
      tokens.push(luceneLowercase(text.slice(at, end)));
      at = end;
    } else {
      at += width;
    }
  }
  return tokens;
}

/**
 * Analyses of the last few long values: the rules that read the same command line through a text field
 * share one pass over it. Short values are cheaper to analyze again than to look up.
 */
const REMEMBERED = 8;
const REMEMBER_FROM_LENGTH = 1024;
const remembered: { text: string; tokens: readonly string[] }[] = [];

/** The terms the standard analyzer indexes for `text`, in order. */
export function analyze(text: string): readonly string[] {
  if (text.length < REMEMBER_FROM_LENGTH) return tokenize(text);
  for (const entry of remembered) if (entry.text === text) return entry.tokens;
  const tokens = tokenize(text);
  if (remembered.unshift({ text, tokens }) > REMEMBERED) remembered.pop();
  return tokens;
}

/** Whether `phrase` occurs as consecutive tokens of `tokens` (match_phrase). */
export function containsPhrase(tokens: readonly string[], phrase: readonly string[]): boolean {
  if (phrase.length === 0) return false;
  outer: for (let start = 0; start + phrase.length <= tokens.length; start++) {
    for (let k = 0; k < phrase.length; k++) if (tokens[start + k] !== phrase[k]) continue outer;
    return true;
  }
  return false;
}

const JAVA_LOWERCASE_DIFFERS = /[\u0130\u03a3]/g;

/**
 * Lowercasing as Lucene's lowercase filter and Elasticsearch's `lowercase` normalizer do it: code point by
 * code point (Java's Character.toLowerCase). JavaScript's toLowerCase differs for two characters: it turns
 * İ (U+0130) into two code points and a word-final Σ into ς.
 */
export function luceneLowercase(text: string): string {
  return text.replace(JAVA_LOWERCASE_DIFFERS, (character) => (character === '\u0130' ? 'i' : '\u03c3')).toLowerCase();
}
