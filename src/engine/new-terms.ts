/**
 * The term tuples of one event for a new_terms rule: the values of each new_terms field, and for array
 * fields every combination of them (Kibana's semantics). An event missing any of the fields has none.
 */

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
