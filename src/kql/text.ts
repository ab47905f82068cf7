/**
 * An approximation of Elasticsearch's standard analyzer, used for match_only_text/text fields such as
 * `message`: Unicode word segmentation (UAX #29, as the standard tokenizer does; here ICU's, through
 * Intl.Segmenter), keeping word-like segments, lowercased. Known differences: ICU segments Chinese/Japanese
 * text into dictionary words where Lucene emits one token per ideograph, and Lucene splits tokens longer
 * than 255 characters.
 */
const segmenter = new Intl.Segmenter('en', { granularity: 'word' });

export function analyze(text: string): string[] {
  const tokens: string[] = [];
  for (const segment of segmenter.segment(text)) {
    if (segment.isWordLike === true) tokens.push(luceneLowercase(segment.segment));
  }
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

const ASCII = /^[\x00-\x7f]*$/;

/**
 * Lowercasing as Lucene's lowercase filter and Elasticsearch's `lowercase` normalizer do it: code point by
 * code point (Java's Character.toLowerCase). JavaScript's toLowerCase differs for two characters: it turns
 * İ (U+0130) into two code points and a word-final Σ into ς.
 */
export function luceneLowercase(text: string): string {
  if (ASCII.test(text)) return text.toLowerCase();
  let lowered = '';
  for (const character of text) {
    if (character === '\u0130') lowered += 'i';
    else if (character === '\u03a3') lowered += '\u03c3';
    else lowered += character.toLowerCase();
  }
  return lowered;
}
