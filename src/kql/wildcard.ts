/**
 * A compiled `*` pattern: anchored at both ends, `*` matches any run of characters (none included, `/` and
 * newlines too). No regular expression: prefix and suffix checks, then the middle parts found left to right
 * (leftmost placement is always right when `*` is the only wildcard).
 */
export function compileWildcard(parts: readonly string[]): (text: string) => boolean {
  const first = parts[0] ?? '';
  const last = parts.length > 1 ? (parts[parts.length - 1] ?? '') : '';
  const middle = parts.slice(1, -1).filter((part) => part !== '');
  const minLength = first.length + last.length + middle.reduce((sum, part) => sum + part.length, 0);
  if (parts.length === 1) return (text) => text === first;
  if (middle.length === 0) {
    if (first === '' && last === '') return () => true;
    return (text) => text.length >= minLength && text.startsWith(first) && text.endsWith(last);
  }
  return (text) => {
    if (text.length < minLength || !text.startsWith(first) || !text.endsWith(last)) return false;
    let from = first.length;
    const limit = text.length - last.length;
    for (let i = 0; i < middle.length; i++) {
      const part = middle[i]!;
      const at = text.indexOf(part, from);
      if (at < 0 || at + part.length > limit) return false;
      from = at + part.length;
    }
    return true;
  };
}
