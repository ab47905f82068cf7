/**
 * What happens inside one of Elasticsearch's EQL Painless scripts, on single values: the comparison and
 * arithmetic operators of QL (`Comparisons`, `Arithmetics`, `InProcessor` behind `InternalQlScriptUtils`), EQL's
 * case-insensitive equality (`StringComparisons` behind `InsensitiveBinaryComparisonProcessor`) and the EQL
 * function library (`*FunctionProcessor.doProcess` behind `InternalEqlScriptUtils`), with the static type checks
 * of each function's `resolveType`.
 *
 * Iterating a field's doc values, the query-translated cases and `nullSafeFilter` belong to the compiler. ES file
 * paths below are under x-pack/plugin/{ql,eql}/src/main/java/org/elasticsearch/xpack/{ql,eql}/ unless absolute.
 */

import type { EqlFunctionName } from './ast.js';

/**
 * One value inside a script: a string (keyword or ip doc value), a number, a boolean or null. Java tells Long
 * from Double at run time; here the caller carries that as the `integer` flags (doc values of integer-family
 * fields are Longs, of float-family fields Doubles; literals are Integer/Long or Double). Longs beyond 2^53 lose
 * precision, as they would anywhere in this agent.
 */
export type ScriptValue = string | number | boolean | null;

/**
 * What the compiler knows statically about an argument. `typeName` is ES's `DataType.typeName()` for the error
 * messages when it differs from the default for `type` ('string' → keyword, 'date' → datetime, 'integer' →
 * integer or long by the constant's range): e.g. `long`, `text`, `float` for fields.
 */
export interface ArgumentInfo {
  readonly type: 'string' | 'integer' | 'double' | 'boolean' | 'null' | 'ip' | 'date' | 'unknown';
  readonly constant: boolean;
  readonly value?: ScriptValue;
  /** The argument as written (ES's `Expressions.name`: a field's name, otherwise the source text). */
  readonly text: string;
  readonly typeName?: string;
}

/**
 * An exception ES throws while evaluating a script or folding a constant (QlIllegalArgumentException,
 * ArithmeticException, StringIndexOutOfBoundsException…): the whole search fails with this message, it never
 * just makes the condition false.
 */
export class EqlScriptError extends Error {
  override readonly name = 'EqlScriptError';
}

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

// ---------------------------------------------------------------------------------------------------------------
// Java's string forms
// ---------------------------------------------------------------------------------------------------------------

/**
 * Java's `Double.toString` (JDK 19+, which ES bundles): the shortest digits that round-trip, as JavaScript
 * gives, but at least two significant digits when one would do (so `Double.MIN_VALUE` is `4.9E-324`), plain
 * notation with at least one fraction digit for 1e-3 ≤ |d| < 1e7, otherwise `d.dddE±n`.
 */
export function javaDoubleToString(d: number): string {
  if (Number.isNaN(d)) return 'NaN';
  if (d === Infinity) return 'Infinity';
  if (d === -Infinity) return '-Infinity';
  if (d === 0) return Object.is(d, -0) ? '-0.0' : '0.0';
  const sign = d < 0 ? '-' : '';
  const magnitude = Math.abs(d);
  let [mantissa = '', exponent = ''] = magnitude.toExponential().split('e');
  if (mantissa.length === 1) {
    // toExponential(1) is the 2-digit decimal closest to the exact binary value, which is what Java picks.
    [mantissa = '', exponent = ''] = magnitude.toExponential(1).split('e');
  }
  const digits = mantissa.replace('.', '').replace(/(?<=.)0+$/, '');
  const exp = Number(exponent);
  if (magnitude >= 1e-3 && magnitude < 1e7) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    const whole = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    return `${sign}${whole}.${digits.slice(exp + 1) || '0'}`;
  }
  return `${sign}${digits[0]}.${digits.slice(1) || '0'}E${exp}`;
}

/** `Object.toString()` of a script value, the Java way (`integer`: the number is a Long/Integer). */
function javaToString(value: ScriptValue, integer: boolean): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return integer && Number.isFinite(value) ? BigInt(Math.trunc(value)).toString() : javaDoubleToString(value);
  return String(value);
}

/** How a value reads in ES's `[{}]` messages, where its Java class is not known here. */
function shown(value: ScriptValue): string {
  return javaToString(value, typeof value === 'number' && Number.isInteger(value));
}

// ---------------------------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------------------------

/** Java's `Double.compare`: NaN equals NaN and sorts above +Infinity; -0.0 sorts below 0.0. */
function doubleCompare(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) {
    if (a !== 0) return 0;
    const negA = Object.is(a, -0);
    return negA === Object.is(b, -0) ? 0 : negA ? -1 : 1;
  }
  const nanA = Number.isNaN(a);
  return nanA === Number.isNaN(b) ? 0 : nanA ? 1 : -1;
}

/**
 * `Comparisons.compare` (ql/expression/predicate/operator/comparison/Comparisons.java): null when either side is
 * null; numbers by `Double.compare` once either is a Double, else `Long.compare` (identical on the values a
 * number holds here, since Longs have no -0 or NaN); otherwise `Comparable.compareTo`, and null when the classes
 * differ (the ClassCastException is swallowed): String by UTF-16 code units, Boolean with false < true.
 */
function compare(left: ScriptValue, right: ScriptValue): number | null {
  if (left === null || right === null) return null;
  if (typeof left === 'number' && typeof right === 'number') return doubleCompare(left, right);
  if (typeof left === 'string' && typeof right === 'string') return left < right ? -1 : left > right ? 1 : 0;
  if (typeof left === 'boolean' && typeof right === 'boolean') return Number(left) - Number(right);
  return null;
}

/**
 * `InternalQlScriptUtils.eq/neq/lt/lte/gt/gte` → `BinaryComparisonProcessor.BinaryComparisonOperation.apply`
 * (null in, null out) → `Comparisons`. Type resolution never rejects a string compared with a number
 * (`BinaryComparison.resolveInputType` only checks exactness), so at run time that comparison is null. `x == null`
 * never gets here: EQL's Optimizer.ReplaceNullChecks turns it into IsNull.
 */
export function compareValues(
  op: '==' | '!=' | '<' | '<=' | '>' | '>=',
  left: ScriptValue,
  right: ScriptValue,
): boolean | null {
  const order = compare(left, right);
  if (order === null) return null;
  switch (op) {
    case '==':
      return order === 0;
    case '!=':
      return order !== 0;
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '>':
      return order > 0;
    case '>=':
      return order >= 0;
  }
}

function isSingleCodePoint(s: string): boolean {
  const cp = s.codePointAt(0);
  return cp !== undefined && s.length === (cp > 0xffff ? 2 : 1);
}

/**
 * Java's `Character.toUpperCase(int)`: the simple (one-to-one) mapping. JavaScript only offers the full one,
 * whose multi-character results (ß → SS) have no simple mapping but themselves.
 */
function upperCodePoint(cp: number): number {
  const upper = String.fromCodePoint(cp).toUpperCase();
  return isSingleCodePoint(upper) ? upper.codePointAt(0)! : cp;
}

/** Java's `Character.toLowerCase(int)`; the one multi-character full lowercase, İ → i̇, is simply i. */
function lowerCodePoint(cp: number): number {
  const lower = String.fromCodePoint(cp).toLowerCase();
  if (isSingleCodePoint(lower)) return lower.codePointAt(0)!;
  return cp === 0x130 ? 0x69 : cp;
}

/**
 * `String.compareToIgnoreCase(…) == 0`: code point by code point, equal when the characters are, or their
 * uppercases, or the lowercases of those. Not the same as comparing `toLowerCase()`s (the `~` functions do that).
 */
function equalsIgnoreCase(a: string, b: string): boolean {
  if (a === b) return true;
  const left = Array.from(a);
  const right = Array.from(b);
  if (left.length !== right.length) return false;
  for (let i = 0; i < left.length; i++) {
    const c1 = left[i]!.codePointAt(0)!;
    const c2 = right[i]!.codePointAt(0)!;
    if (c1 === c2) continue;
    const u1 = upperCodePoint(c1);
    const u2 = upperCodePoint(c2);
    if (u1 !== u2 && lowerCodePoint(u1) !== lowerCodePoint(u2)) return false;
  }
  return true;
}

/**
 * `StringComparisons.insensitiveEquals` (eql/expression/predicate/operator/comparison/StringComparisons.java):
 * two strings compare with `compareToIgnoreCase`; otherwise a null side gives null, and anything else throws.
 */
export function insensitiveEquals(left: ScriptValue, right: ScriptValue): boolean | null {
  if (typeof left === 'string' && typeof right === 'string') return equalsIgnoreCase(left, right);
  if (left === null || right === null) return null;
  throw new EqlScriptError('Insensitive comparison can be applied only on strings');
}

/** QL's three-valued OR (BinaryLogicProcessor): true wins, then null, then false. */
function or(left: boolean | null, right: boolean | null): boolean | null {
  if (left === true || right === true) return true;
  return left === null || right === null ? null : false;
}

/**
 * `in`: `InProcessor.apply` — true on the first `Comparisons.eq` that is true, else null if any was null (a null
 * value, or a null in the list), else false. `in~`: EQL's ExpressionBuilder builds an OR of InsensitiveEquals, one
 * per list item. The list is expected already converted to the value's type (`In.foldAndConvertListOfValues`).
 */
export function inList(value: ScriptValue, list: readonly ScriptValue[], caseInsensitive: boolean): boolean | null {
  let result: boolean | null = false;
  if (caseInsensitive) {
    // Every disjunct is evaluated (BinaryLogicProcessor evaluates both sides), so a throwing one always throws.
    for (const item of list) result = or(result, insensitiveEquals(value, item));
    return result;
  }
  for (const item of list) {
    const order = compare(value, item);
    if (order === 0) return true;
    if (order === null) result = null;
  }
  return result;
}

/** `NotProcessor.apply`: null stays null. */
export function not(value: boolean | null): boolean | null {
  return value === null ? null : !value;
}

// ---------------------------------------------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------------------------------------------

function requireNumber(value: ScriptValue): number {
  if (typeof value !== 'number') throw new EqlScriptError(`A number is required; received ${shown(value)}`);
  return value;
}

/** `Number.longValue()` of an integer-typed operand (a Long never holds a fraction; truncating is Java's cast). */
function toLong(value: number): bigint {
  return BigInt(Math.trunc(value));
}

function exactLong(result: bigint): number {
  if (result < LONG_MIN || result > LONG_MAX) throw new EqlScriptError('long overflow');
  return Number(result);
}

/**
 * `Arithmetics.add/sub/mul/div/mod` (ql/expression/predicate/operator/arithmetic/Arithmetics.java) via
 * `DefaultBinaryArithmeticOperation`: null in, null out; a non-number throws. Two integers compute in long with
 * `Math.addExact`-style overflow errors ("long overflow"), `/` truncating toward zero and `%` taking the dividend's
 * sign, and both throwing Java's "/ by zero"; otherwise IEEE doubles (x / 0.0 is ±Infinity or NaN, x % 0.0 NaN).
 * Judgement call: Integer∘Integer (only int literals and length()/indexOf() results) is computed in long, so
 * overflow past 2^31 that ES reports as "integer overflow" yields the long result here.
 */
export function arithmetic(
  op: '+' | '-' | '*' | '/' | '%',
  left: ScriptValue,
  right: ScriptValue,
  integer: boolean,
): ScriptValue {
  if (left === null || right === null) return null;
  const l = requireNumber(left);
  const r = requireNumber(right);
  if (!integer) {
    switch (op) {
      case '+':
        return l + r;
      case '-':
        return l - r;
      case '*':
        return l * r;
      case '/':
        return l / r;
      case '%':
        return l % r;
    }
  }
  const a = toLong(l);
  const b = toLong(r);
  switch (op) {
    case '+':
      return exactLong(a + b);
    case '-':
      return exactLong(a - b);
    case '*':
      return exactLong(a * b);
    case '/':
      if (b === 0n) throw new EqlScriptError('/ by zero');
      // Long.MIN_VALUE / -1 wraps in Java rather than throwing.
      return Number(BigInt.asIntN(64, a / b));
    case '%':
      if (b === 0n) throw new EqlScriptError('/ by zero');
      return Number(a % b);
  }
}

/**
 * `Arithmetics.negate`: `Math.negateExact` for integers; for doubles a quirk kept as is — ES throws "double
 * overflow" for exactly `Double.MIN_VALUE` (4.9E-324), mistaking it for the most negative double.
 */
export function negate(value: ScriptValue, integer: boolean): ScriptValue {
  if (value === null) return null;
  const n = requireNumber(value);
  if (integer) return exactLong(-toLong(n));
  if (n === Number.MIN_VALUE) throw new EqlScriptError('double overflow');
  return -n;
}

// ---------------------------------------------------------------------------------------------------------------
// Static checks (TypeResolutions, ql/expression/TypeResolutions.java, and the function registries)
// ---------------------------------------------------------------------------------------------------------------

const ORDINALS = ['first', 'second', 'third', 'fourth', 'fifth'] as const;

/** `ParamOrdinal.fromIndex`: past the fifth argument ES names no ordinal at all. */
function ordinalPrefix(index: number | null): string {
  const ordinal = index === null ? undefined : ORDINALS[index];
  return ordinal === undefined ? '' : `${ordinal} `;
}

function typeName(arg: ArgumentInfo): string {
  if (arg.typeName !== undefined) return arg.typeName;
  switch (arg.type) {
    case 'string':
      return 'keyword';
    case 'date':
      return 'datetime';
    case 'integer':
      return typeof arg.value === 'number' && (arg.value < INT_MIN || arg.value > INT_MAX) ? 'long' : 'integer';
    default:
      return arg.type;
  }
}

type Expected = 'string' | 'integer' | 'numeric' | 'boolean' | 'ip';

function accepts(expected: Expected, type: ArgumentInfo['type']): boolean {
  switch (expected) {
    case 'string':
      return type === 'string';
    case 'integer':
      return type === 'integer';
    case 'numeric':
      return type === 'integer' || type === 'double';
    case 'boolean':
      return type === 'boolean';
    case 'ip':
      return type === 'ip';
  }
}

/** `TypeResolutions.isType`: a null always passes; an unknown type cannot be judged here, so it passes too. */
function isType(arg: ArgumentInfo | undefined, expected: Expected, call: string, index: number | null): string | null {
  if (arg === undefined || arg.type === 'null' || arg.type === 'unknown' || accepts(expected, arg.type)) return null;
  return `${ordinalPrefix(index)}argument of [${call}] must be [${expected}], found value [${arg.text}] type [${typeName(arg)}]`;
}

function isFoldable(arg: ArgumentInfo, call: string, index: number): string | null {
  return arg.constant ? null : `${ordinalPrefix(index)}argument of [${call}] must be a constant, received [${arg.text}]`;
}

/** Checks one argument per expected type, in order, stopping at the first failure as `resolveType` does. */
function checkEach(expected: readonly (Expected | null)[], ordinals: boolean) {
  return (args: readonly ArgumentInfo[], call: string): string | null => {
    for (let i = 0; i < expected.length; i++) {
      const type = expected[i];
      if (type === null || type === undefined) continue;
      const failure = isType(args[i], type, call, ordinals ? i : null);
      if (failure !== null) return failure;
    }
    return null;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Function helpers, as the processors check their inputs at run time
// ---------------------------------------------------------------------------------------------------------------

function requireString(value: ScriptValue): string {
  if (typeof value !== 'string') throw new EqlScriptError(`A string/char is required; received [${shown(value)}]`);
  return value;
}

function requireNumberArg(value: ScriptValue): number {
  if (typeof value !== 'number') throw new EqlScriptError(`A number is required; received [${shown(value)}]`);
  return value;
}

/** `Number.intValue()`: a Long keeps its low 32 bits; a Double saturates (NaN → 0). */
function intValue(value: number): number {
  if (Number.isInteger(value)) return Number(BigInt.asIntN(32, BigInt(value)));
  if (Number.isNaN(value)) return 0;
  return Math.min(INT_MAX, Math.max(INT_MIN, Math.trunc(value)));
}

/** `String.toLowerCase(Locale.ROOT)`: JavaScript's `toLowerCase` is the same locale-free full mapping. */
function lower(s: string): string {
  return s.toLowerCase();
}

/**
 * `StringUtils.between` (eql/util/StringUtils.java): an empty source, left or right returns the source as is;
 * `~` lowercases source, left and right for the search but cuts the original source at the indices found
 * (Java's `substring`, which throws when greedy matching finds `right` only before the end of `left`).
 */
function between(source: string, left: string, right: string, greedy: boolean, caseInsensitive: boolean): string {
  if (source === '' || left === '' || right === '') return source;
  const haystack = caseInsensitive ? lower(source) : source;
  const l = caseInsensitive ? lower(left) : left;
  const r = caseInsensitive ? lower(right) : right;
  const leftAt = haystack.indexOf(l);
  if (leftAt === -1) return '';
  const start = leftAt + l.length;
  const end = greedy ? haystack.lastIndexOf(r) : haystack.indexOf(r, start);
  if (end === -1) return '';
  if (start > end || end > source.length) {
    throw new EqlScriptError(`begin ${start}, end ${end}, length ${source.length}`);
  }
  return source.substring(start, end);
}

/** `StringUtils.substringSlice`: Python slicing in UTF-16 code units; an empty source stays empty. */
function substringSlice(source: string, start: number, end: number): string {
  if (source === '') return source;
  const length = source.length;
  const from = start < 0 ? Math.max(start + length, 0) : start;
  const to = end < 0 ? Math.max(end + length, 0) : Math.min(end, length);
  return from >= to ? '' : source.substring(from, to);
}

// --- number(): Long.valueOf / Double.valueOf / Long.parseLong --------------------------------------------------

/** `String.trim()`: every char ≤ U+0020, which is not JavaScript's notion of whitespace. */
function javaTrim(s: string): string {
  let from = 0;
  let to = s.length;
  while (from < to && s.charCodeAt(from) <= 0x20) from++;
  while (to > from && s.charCodeAt(to - 1) <= 0x20) to--;
  return s.slice(from, to);
}

/** `Long.parseLong(s, radix)`, ASCII digits only (Java's Character.digit also takes other Unicode digits). */
function parseLong(s: string, radix: number): bigint | null {
  if (radix < 2 || radix > 36) return null;
  const match = /^([+-]?)([0-9a-z]+)$/i.exec(s);
  if (match === null) return null;
  let value = 0n;
  for (const ch of match[2]!) {
    const digit = parseInt(ch, 36);
    if (digit >= radix) return null;
    value = value * BigInt(radix) + BigInt(digit);
  }
  if (match[1] === '-') value = -value;
  return value < LONG_MIN || value > LONG_MAX ? null : value;
}

const JAVA_DECIMAL = /^[+-]?(?:NaN|Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFdD]?)$/;
const JAVA_HEX_FLOAT = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?[pP]([+-]?\d+)[fFdD]?$/;

/** `Double.valueOf(String)`: trimmed; Java literals including NaN, Infinity, a d/f suffix and hex floats. */
function parseJavaDouble(raw: string): number | null {
  const s = javaTrim(raw);
  if (JAVA_DECIMAL.test(s)) {
    const body = s.replace(/[fFdD]$/, '');
    return body.endsWith('NaN') ? NaN : Number(body);
  }
  const hex = JAVA_HEX_FLOAT.exec(s);
  if (hex === null || hex[2]! + (hex[3] ?? '') === '') return null;
  const fraction = hex[3] ?? '';
  const mantissa = parseInt(hex[2]! + fraction || '0', 16);
  const value = mantissa * 2 ** (Number(hex[4]) - 4 * fraction.length);
  return hex[1] === '-' ? -value : value;
}

interface ParsedNumber {
  readonly value: number;
  readonly integer: boolean;
}

/**
 * `ToNumberFunctionProcessor.doProcess` (eql/expression/function/scalar/math/ToNumberFunctionProcessor.java): a
 * `0x` prefix (case-sensitive, no sign before it) means base 16 when no base is given and is stripped for base
 * 16; base 10 tries `Long.valueOf` (no whitespace) and falls back to `Double.valueOf` (trims, takes `1e3`, `NaN`…),
 * so `"  1337  "` is the double 1337.0; other bases use `Long.parseLong` alone. Failures throw.
 */
function parseNumber(value: ScriptValue, base: ScriptValue, baseInteger: boolean): ParsedNumber | null {
  if (value === null) return null;
  let text = requireString(value);
  const hexPrefix = text.startsWith('0x');
  let radix: number;
  if (base === null) radix = hexPrefix ? 16 : 10;
  else if (typeof base === 'number' && baseInteger && base >= INT_MIN && base <= INT_MAX) radix = base;
  else throw new EqlScriptError(`An integer base is required; received [${shown(base)}]`);
  if (hexPrefix && radix === 16) text = text.slice(2);
  const asLong = parseLong(text, radix);
  if (asLong !== null) return { value: Number(asLong), integer: true };
  const asDouble = radix === 10 ? parseJavaDouble(text) : null;
  if (asDouble !== null) return { value: asDouble, integer: false };
  throw new EqlScriptError(`Unable to convert [${text}] to number of base [${radix}]`);
}

// --- cidrMatch(): InetAddresses.forString / parseCidr, CIDRUtils.isInRange -------------------------------------

/** `InetAddresses.textToNumericFormatV4`: four decimal octets ≤ 255, no leading zero. */
function parseIpv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^\d+$/.test(part) || (part.length > 1 && part.startsWith('0'))) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    bytes.push(octet);
  }
  return bytes;
}

/**
 * `InetAddresses.textToNumericFormatV6`: hextets of any number of hex digits up to 0xffff, one `::` at most, no
 * single colon at either end.
 */
function parseIpv6(s: string): number[] | null {
  if (s.length < 2) return null;
  if ((s[0] === ':' && s[1] !== ':') || (s.endsWith(':') && s[s.length - 2] !== ':')) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const hextets = (half: string): number[] | null => {
    if (half === '') return [];
    const values: number[] = [];
    for (const group of half.split(':')) {
      if (!/^[0-9a-fA-F]+$/.test(group)) return null;
      const value = parseInt(group, 16);
      if (value > 0xffff) return null;
      values.push(value);
    }
    return values;
  };
  const head = hextets(halves[0]!);
  const tail = halves.length === 2 ? hextets(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const present = head.length + tail.length;
  if (halves.length === 2 ? present >= 8 : present !== 8) return null;
  return [...head, ...new Array<number>(8 - present).fill(0), ...tail].flatMap((h) => [h >> 8, h & 0xff]);
}

/**
 * `InetAddresses.forString(…).getAddress()` (server/…/common/network/InetAddresses.java): ASCII only, a `%scope`
 * suffix ignored, a dotted-quad tail after the last colon; 4 bytes for IPv4 and for IPv4-mapped IPv6 (Java's
 * InetAddress.getByAddress turns ::ffff:a.b.c.d into an Inet4Address), 16 otherwise.
 */
function inetBytes(address: string): number[] {
  const bytes = ipStringToBytes(address);
  if (bytes === null) throw new EqlScriptError(`'${address}' is not an IP string literal.`);
  const mapped = bytes.length === 16 && bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

function ipStringToBytes(address: string): number[] | null {
  if (!/^[\x00-\x7f]*$/.test(address)) return null;
  let text = address;
  const scope = text.indexOf('%');
  if (scope >= 0) {
    if (scope === text.length - 1) return null;
    text = text.slice(0, scope);
  }
  const lastColon = text.lastIndexOf(':');
  const firstDot = text.indexOf('.');
  if (lastColon < 0) return firstDot >= 0 ? parseIpv4(text) : null;
  if (firstDot < 0) return parseIpv6(text);
  if (firstDot < lastColon) return null;
  const quad = parseIpv4(text.slice(lastColon + 1));
  if (quad === null) return null;
  const [a = 0, b = 0, c = 0, d = 0] = quad;
  const hextet = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16);
  return parseIpv6(`${text.slice(0, lastColon + 1)}${hextet(a, b)}:${hextet(c, d)}`);
}

/** `CIDRUtils.encode`: IPv4 as the IPv4-mapped IPv6 address, so mixed families compare. */
function asIpv6(bytes: readonly number[]): number[] {
  return bytes.length === 4 ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...bytes] : [...bytes];
}

function compareUnsigned(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** `Integer.parseInt`; its NumberFormatException is an IllegalArgumentException, re-thrown by the processor. */
function parseInt32(s: string): number {
  const n = /^[+-]?\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isInteger(n) || n < INT_MIN || n > INT_MAX) throw new EqlScriptError(`For input string: "${s}"`);
  return n;
}

/** `CIDRUtils.isInRange`'s block bounds: `InetAddresses.parseCidr`, then the host bits cleared / set. */
function cidrRange(cidr: string): [number[], number[]] {
  if (!cidr.includes('/')) {
    const bytes = inetBytes(cidr);
    return [bytes, bytes];
  }
  // Java's String.split drops trailing empty strings: "10.0.0.0/" has one field.
  const fields = cidr.split('/');
  while (fields.length > 0 && fields[fields.length - 1] === '') fields.pop();
  if (fields.length !== 2) throw new EqlScriptError(`Expected [ip/prefix] but was [${cidr}]`);
  const address = fields[0]!;
  const bytes = inetBytes(address);
  if (address.includes(':') && bytes.length === 4) {
    throw new EqlScriptError(
      `CIDR notation is not allowed with IPv6-mapped IPv4 address [${address} as it introduces ambiguity as to whether the prefix length should be interpreted as a v4 prefix length or a v6 prefix length`,
    );
  }
  const prefix = parseInt32(fields[1]!);
  if (prefix < 0 || prefix > 8 * bytes.length) {
    throw new EqlScriptError(`Illegal prefix length [${prefix}] in [${cidr}]. Must be 0-32 for IPv4 ranges, 0-128 for IPv6 ranges`);
  }
  const low = [...bytes];
  const high = [...bytes];
  for (let bit = prefix; bit < 8 * bytes.length; bit++) {
    const mask = 1 << (7 - (bit & 7));
    low[bit >> 3]! &= ~mask;
    high[bit >> 3]! |= mask;
  }
  return [low, high];
}

/**
 * `CIDRMatchFunctionProcessor.doProcess` → `CIDRUtils.isInRange` (server/…/common/network/CIDRUtils.java): the
 * address is parsed first; blocks are tried in order and the first match returns, so a bad block after it is
 * never parsed; a block without `/` is a single address.
 */
function cidrMatch(source: string, blocks: readonly string[]): boolean {
  const address = inetBytes(source);
  for (const block of blocks) {
    let [low, high] = cidrRange(block);
    let addr = address;
    if (addr.length !== low.length) {
      addr = asIpv6(addr);
      low = asIpv6(low);
      high = asIpv6(high);
    }
    if (compareUnsigned(low, addr) <= 0 && compareUnsigned(high, addr) >= 0) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// The library
// ---------------------------------------------------------------------------------------------------------------

export interface EqlFunction {
  readonly minArgs: number;
  /** Infinity for concat and cidrMatch. */
  readonly maxArgs: number;
  /** Whether `name~(…)` exists in ES: the function extends CaseInsensitiveScalarFunction. */
  readonly caseInsensitiveVariant: boolean;
  /**
   * ES's build-time checks: the registry's argument count ("error building [name]: …"), then `resolveType` on
   * what is known statically. Null when they pass. Exactness (a text field without keyword sub-field) is the
   * compiler's to check.
   */
  check(args: readonly ArgumentInfo[], call: string): string | null;
  /**
   * The function on single values, as its processor computes it; an omitted optional argument is null (ES fills
   * in a null literal, or `false` for between's greedy). Throws EqlScriptError where ES throws.
   */
  evaluate(args: readonly ScriptValue[], caseInsensitive: boolean, integer: readonly boolean[]): ScriptValue;
  /**
   * Whether the number `evaluate` returns for these arguments is a Java Integer/Long rather than a Double, which
   * decides integer arithmetic and how `string()` prints it downstream. Only number() decides at run time.
   */
  integerResult(args: readonly ScriptValue[], integer: readonly boolean[]): boolean;
}

interface Definition {
  readonly registryName: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  /** The registry builder's message for a wrong count (null: any count builds). */
  readonly arity: string | null;
  readonly caseInsensitiveVariant: boolean;
  readonly resolve: (args: readonly ArgumentInfo[], call: string) => string | null;
  readonly evaluate: EqlFunction['evaluate'];
  readonly integerResult: EqlFunction['integerResult'];
}

function define(definition: Definition): EqlFunction {
  const { registryName, minArgs, maxArgs, arity, resolve } = definition;
  return {
    minArgs,
    maxArgs,
    caseInsensitiveVariant: definition.caseInsensitiveVariant,
    check(args, call) {
      if (arity !== null && (args.length < minArgs || args.length > maxArgs)) {
        return `error building [${registryName}]: ${arity}`;
      }
      return resolve(args, call);
    },
    evaluate: definition.evaluate,
    integerResult: definition.integerResult,
  };
}

const never = (): boolean => false;
const always = (): boolean => true;

/** Add/Sub/Mul/Div/Mod (ArithmeticOperation.resolveInputType: isNumeric), registered as two-argument builders. */
function arithmeticFunction(registryName: string, op: '+' | '-' | '*' | '/' | '%'): EqlFunction {
  return define({
    registryName,
    minArgs: 2,
    maxArgs: 2,
    arity: 'expects exactly two arguments',
    caseInsensitiveVariant: false,
    resolve: checkEach(['numeric', 'numeric'], true),
    evaluate: (args, _ci, integer) => arithmetic(op, args[0] ?? null, args[1] ?? null, integer[0] === true && integer[1] === true),
    integerResult: (_args, integer) => integer[0] === true && integer[1] === true,
  });
}

/**
 * startsWith (QL StartsWithFunctionProcessor), endsWith (EndsWithFunctionProcessor): null source or pattern
 * gives null; `~` compares `toLowerCase(Locale.ROOT)`s.
 */
function affixFunction(registryName: string, test: (source: string, pattern: string) => boolean): EqlFunction {
  return define({
    registryName,
    minArgs: 2,
    maxArgs: 2,
    arity: 'expects exactly two arguments',
    caseInsensitiveVariant: true,
    resolve: checkEach(['string', 'string'], true),
    evaluate: (args, caseInsensitive) => {
      const source = args[0] ?? null;
      if (source === null) return null;
      const s = requireString(source);
      const pattern = args[1] ?? null;
      if (pattern === null) return null;
      const p = requireString(pattern);
      return caseInsensitive ? test(lower(s), lower(p)) : test(s, p);
    },
    integerResult: never,
  });
}

export const EQL_FUNCTIONS: Readonly<Record<EqlFunctionName, EqlFunction>> = {
  add: arithmeticFunction('add', '+'),
  subtract: arithmeticFunction('subtract', '-'),
  multiply: arithmeticFunction('multiply', '*'),
  divide: arithmeticFunction('divide', '/'),
  modulo: arithmeticFunction('modulo', '%'),

  // eql/…/scalar/string/Between.java, BetweenFunctionProcessor.java: only a null source gives null; a null
  // left, right or greedy fails Check.isString/isBoolean.
  between: define({
    registryName: 'between',
    minArgs: 3,
    maxArgs: 4,
    arity: 'expects three or four arguments',
    caseInsensitiveVariant: true,
    resolve: checkEach(['string', 'string', 'string', 'boolean'], true),
    evaluate: (args, caseInsensitive) => {
      const source = args[0] ?? null;
      if (source === null) return null;
      const greedy = args.length > 3 ? (args[3] ?? null) : false;
      const s = requireString(source);
      const left = requireString(args[1] ?? null);
      const right = requireString(args[2] ?? null);
      if (typeof greedy !== 'boolean') throw new EqlScriptError(`A boolean is required; received [${shown(greedy)}]`);
      return between(s, left, right, greedy, caseInsensitive);
    },
    integerResult: never,
  }),

  // eql/…/scalar/string/CIDRMatch.java: the address must be of type ip (a string literal is keyword, so it is
  // rejected), the blocks constant strings; CIDRMatchFunctionProcessor: null address → null, a null block throws.
  cidrMatch: define({
    registryName: 'cidrmatch',
    minArgs: 2,
    maxArgs: Infinity,
    arity: 'expects at least two arguments',
    caseInsensitiveVariant: false,
    resolve: (args, call) => {
      const first = isType(args[0], 'ip', call, 0);
      if (first !== null) return first;
      for (let i = 1; i < args.length; i++) {
        const failure = isFoldable(args[i]!, call, i) ?? isType(args[i], 'string', call, i);
        if (failure !== null) return failure;
      }
      return null;
    },
    evaluate: (args) => {
      const source = args[0] ?? null;
      if (source === null) return null;
      const s = requireString(source);
      return cidrMatch(s, args.slice(1).map(requireString));
    },
    integerResult: never,
  }),

  // eql/…/scalar/string/Concat.java (any count, only exactness checked), ConcatFunctionProcessor: any null → null,
  // otherwise every value's Java toString.
  concat: define({
    registryName: 'concat',
    minArgs: 0,
    maxArgs: Infinity,
    arity: null,
    caseInsensitiveVariant: false,
    resolve: () => null,
    evaluate: (args, _ci, integer) => {
      let result = '';
      for (let i = 0; i < args.length; i++) {
        const value = args[i]!;
        if (value === null) return null;
        result += javaToString(value, integer[i] === true);
      }
      return result;
    },
    integerResult: never,
  }),

  endsWith: affixFunction('endswith', (s, p) => s.endsWith(p)),

  // eql/…/scalar/string/IndexOf.java, IndexOfFunctionProcessor: null source or substring → null; a null start is
  // 0 (the doc's "indexOf(url.domain, ".", null) returns null" is not what the code does); Java's indexOf clamps
  // a negative start to 0 and a start past the end finds nothing but "" (which is found at the length).
  indexOf: define({
    registryName: 'indexof',
    minArgs: 2,
    maxArgs: 3,
    arity: 'expects two or three arguments',
    caseInsensitiveVariant: true,
    resolve: checkEach(['string', 'string', 'integer'], true),
    evaluate: (args, caseInsensitive) => {
      const source = args[0] ?? null;
      if (source === null) return null;
      const s = requireString(source);
      const substring = args[1] ?? null;
      if (substring === null) return null;
      const sub = requireString(substring);
      const start = args[2] ?? null;
      const from = start === null ? 0 : intValue(requireNumberArg(start));
      const found = caseInsensitive ? lower(s).indexOf(lower(sub), from) : s.indexOf(sub, from);
      return found < 0 ? null : found;
    },
    integerResult: always,
  }),

  // eql/…/scalar/string/Length.java (isStringAndExact, no ordinal), LengthFunctionProcessor: String.length(),
  // i.e. UTF-16 code units, as JavaScript's length.
  length: define({
    registryName: 'length',
    minArgs: 1,
    maxArgs: 1,
    arity: 'expects exactly one argument',
    caseInsensitiveVariant: false,
    resolve: checkEach(['string'], false),
    evaluate: (args) => {
      const value = args[0] ?? null;
      return value === null ? null : requireString(value).length;
    },
    integerResult: always,
  }),

  // eql/…/scalar/math/ToNumber.java: a string and an integer base (static type DOUBLE, but the run-time value is a
  // Long when Long parsing succeeded).
  number: define({
    registryName: 'number',
    minArgs: 1,
    maxArgs: 2,
    arity: 'expects one or two arguments',
    caseInsensitiveVariant: false,
    resolve: checkEach(['string', 'integer'], true),
    evaluate: (args, _ci, integer) => parseNumber(args[0] ?? null, args[1] ?? null, integer[1] === true)?.value ?? null,
    integerResult: (args, integer) => parseNumber(args[0] ?? null, args[1] ?? null, integer[1] === true)?.integer ?? false,
  }),

  startsWith: affixFunction('startswith', (s, p) => s.startsWith(p)),

  // eql/…/scalar/string/ToString.java (any type), ToStringFunctionProcessor: Java toString — 42.0 prints "42.0"
  // and 1e10 "1.0E10" when it is a Double.
  string: define({
    registryName: 'string',
    minArgs: 1,
    maxArgs: 1,
    arity: 'expects exactly one argument',
    caseInsensitiveVariant: false,
    resolve: () => null,
    evaluate: (args, _ci, integer) => {
      const value = args[0] ?? null;
      return value === null ? null : javaToString(value, integer[0] === true);
    },
    integerResult: never,
  }),

  // eql/…/scalar/string/StringContains.java, StringContainsFunctionProcessor + eql/util/StringUtils.stringContains:
  // a null source gives null but a null substring throws; an empty source or substring is false.
  stringContains: define({
    registryName: 'stringcontains',
    minArgs: 2,
    maxArgs: 2,
    arity: 'expects exactly two arguments',
    caseInsensitiveVariant: true,
    resolve: checkEach(['string', 'string'], true),
    evaluate: (args, caseInsensitive) => {
      const source = args[0] ?? null;
      if (source === null) return null;
      const s = requireString(source);
      const sub = requireString(args[1] ?? null);
      if (s === '' || sub === '') return false;
      return caseInsensitive ? lower(s).includes(lower(sub)) : s.includes(sub);
    },
    integerResult: never,
  }),

  // eql/…/scalar/string/Substring.java, SubstringFunctionProcessor: a null start returns the source unchanged;
  // a null end means the length.
  substring: define({
    registryName: 'substring',
    minArgs: 2,
    maxArgs: 3,
    arity: 'expects two or three arguments',
    caseInsensitiveVariant: false,
    resolve: checkEach(['string', 'integer', 'integer'], true),
    evaluate: (args) => {
      const source = args[0] ?? null;
      if (source === null) return null;
      const s = requireString(source);
      const start = args[1] ?? null;
      if (start === null) return s;
      const from = intValue(requireNumberArg(start));
      const end = args[2] ?? null;
      const to = end === null ? s.length : intValue(requireNumberArg(end));
      return substringSlice(s, from, to);
    },
    integerResult: never,
  }),
};
