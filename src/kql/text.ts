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
    if (segment.isWordLike === true) tokens.push(segment.segment.toLowerCase());
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
