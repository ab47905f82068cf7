/**
 * The term tuples of one event for a new_terms rule: the values of each new_terms field, and for array
 * fields every combination of them (Kibana's semantics). An event missing any of the fields has none.
 */

import { fieldRead, getField } from '../kql/index.js';
import { escapeBytes } from '../sensor/escape-bytes.js';

type TermReader = (doc: unknown) => unknown[];

/**
 * Ends every term read from repaired bytes. No value the host gives can hold a NUL (paths, argv strings and
 * names are NUL-terminated in the kernel and in NSS), so a repaired term never equals a plain one: a file
 * really named `x\xff` (backslash, x, f, f) and one whose name ends in the byte 0xff stay two terms.
 */
const REPAIRED_MARK = '\u0000';

/** A term as an alert shows it (execsentry.new_terms): without the mark of repaired bytes. */
export function shownTerm(term: string): string {
  return term.endsWith(REPAIRED_MARK) ? term.slice(0, -REPAIRED_MARK.length) : term;
}

/**
 * The readers of a rule's new_terms fields, each keyed by the original bytes where the sensor repaired a
 * value (bytes that were not UTF-8 shown as U+FFFD): two programs differing only in those bytes look alike
 * but are two terms. The bytes come escaped from `execsentry.raw.<field>` (for a multi-field, its parent's),
 * normalized as the field's own values are (a caseless field lowercases them); a raw array stands for the
 * field's whole array. Whether a value has a term at all is still decided by the value as Elasticsearch
 * indexes it: the escaped form is longer, and an attacker must not be able to push a value over
 * ignore_above by putting bad bytes in it.
 */
export function repairedTermReaders(fields: readonly string[], readers: readonly TermReader[]): TermReader[] {
  return fields.map((field, index) => {
    const reader = readers[index]!;
    const read = fieldRead(field);
    const rawPath = `execsentry.raw.${read}`;
    return (event) => {
      const raw = getField(event, rawPath);
      if (raw.length === 0) return reader(event);
      const shown = getField(event, read);
      // Raw values that do not pair up with the field's (an event edited by hand) describe something else.
      if (raw.length !== shown.length) return reader(event);
      const terms: unknown[] = [];
      for (let i = 0; i < raw.length; i++) {
        const plain = reader({ [read]: shown[i] });
        if (plain.length === 0) continue;
        // In a raw array, the elements that needed no repair are their shown text escaped: they keep the
        // plain term, as the same argument in any other event has it.
        if (typeof shown[i] === 'string' && raw[i] === escapeBytes(Buffer.from(shown[i] as string))) {
          terms.push(plain[0]);
          continue;
        }
        // Over ignore_above only once escaped: the escaped form as it is (a caseless field cannot lowercase it).
        terms.push(`${String(reader({ [read]: raw[i] })[0] ?? raw[i])}${REPAIRED_MARK}`);
      }
      return terms;
    };
  });
}

/** Terms compare as Elasticsearch keyword values do: strings as they are, numbers and booleans as text. */
export function termValues(values: readonly unknown[]): string[] {
  const terms: string[] = [];
  for (const value of values) {
    let term: string;
    if (typeof value === 'string') term = value;
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') term = String(value);
    else continue;
    if (!terms.includes(term)) terms.push(term);
  }
  return terms;
}

/**
 * Every combination of one value per field, in field order, at most `limit` of them (an attacker controls
 * array fields such as process.args; three of them multiply). Returns the tuples and whether any were cut.
 */
export function termCombinations(perField: readonly (readonly string[])[], limit: number): { tuples: string[][]; truncated: boolean } {
  const tuples: string[][] = [];
  if (perField.length === 0 || perField.some((values) => values.length === 0)) return { tuples, truncated: false };
  const indexes = new Array<number>(perField.length).fill(0);
  for (;;) {
    if (tuples.length === limit) return { tuples, truncated: true };
    tuples.push(indexes.map((valueIndex, field) => perField[field]![valueIndex]!));
    // Advance like an odometer, the last field fastest.
    let field = perField.length - 1;
    while (field >= 0) {
      indexes[field]! += 1;
      if (indexes[field]! < perField[field]!.length) break;
      indexes[field] = 0;
      field -= 1;
    }
    if (field < 0) return { tuples, truncated: false };
  }
}
