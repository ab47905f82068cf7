import { describe, expect, it } from 'vitest';

import {
  arithmetic,
  compareValues,
  EQL_FUNCTIONS,
  EqlScriptError,
  inList,
  insensitiveEquals,
  javaDoubleToString,
  negate,
  not,
  type ArgumentInfo,
  type ScriptValue,
} from '../../src/eql/script.js';
import { EQL_FUNCTION_NAMES, type EqlFunctionName } from '../../src/eql/ast.js';

// Sources: "doc" = Elastic's EQL function reference (elasticsearch docs/reference/query-languages/eql/eql-function-ref.md);
// otherwise the ES file named (x-pack/plugin/{ql,eql}/src/main/java/org/elasticsearch/xpack/{ql,eql}/…).

/** Evaluates with integer flags taken from the values (a test shorthand: integral numbers are Longs). */
function call(name: EqlFunctionName, args: ScriptValue[], caseInsensitive = false, integer?: boolean[]): ScriptValue {
  const flags = integer ?? args.map((a) => typeof a === 'number' && Number.isInteger(a));
  return EQL_FUNCTIONS[name].evaluate(args, caseInsensitive, flags);
}

const ci = (name: EqlFunctionName, ...args: ScriptValue[]): ScriptValue => call(name, args, true);
const cs = (name: EqlFunctionName, ...args: ScriptValue[]): ScriptValue => call(name, args, false);

const field = (text: string, type: ArgumentInfo['type'], typeName?: string): ArgumentInfo => ({ type, constant: false, text, typeName });
const lit = (value: ScriptValue, text = JSON.stringify(value)): ArgumentInfo => ({
  type: value === null ? 'null' : typeof value === 'string' ? 'string' : typeof value === 'boolean' ? 'boolean' : Number.isInteger(value) ? 'integer' : 'double',
  constant: true,
  value,
  text,
});

function throwsScript(fn: () => unknown, message: string): void {
  expect(fn).toThrow(EqlScriptError);
  expect(fn).toThrow(message);
}

describe('the library', () => {
  it('has every function of ast.ts, with the `~` variants ES has (CaseInsensitiveScalarFunction subclasses)', () => {
    expect(Object.keys(EQL_FUNCTIONS).sort()).toEqual([...EQL_FUNCTION_NAMES].sort());
    const withTilde = EQL_FUNCTION_NAMES.filter((n) => EQL_FUNCTIONS[n].caseInsensitiveVariant).sort();
    expect(withTilde).toEqual(['between', 'endsWith', 'indexOf', 'startsWith', 'stringContains']);
  });

  it('declares the argument counts of EqlFunctionRegistry / QL FunctionRegistry builders', () => {
    const arity = Object.fromEntries(EQL_FUNCTION_NAMES.map((n) => [n, [EQL_FUNCTIONS[n].minArgs, EQL_FUNCTIONS[n].maxArgs]]));
    expect(arity).toEqual({
      add: [2, 2], between: [3, 4], cidrMatch: [2, Infinity], concat: [0, Infinity], divide: [2, 2], endsWith: [2, 2],
      indexOf: [2, 3], length: [1, 1], modulo: [2, 2], multiply: [2, 2], number: [1, 2], startsWith: [2, 2],
      string: [1, 1], stringContains: [2, 2], substring: [2, 3], subtract: [2, 2],
    });
  });
});

describe('add / subtract / multiply / divide / modulo', () => {
  it('computes the doc examples', () => {
    // doc, add
    expect(cs('add', 4, 5)).toBe(9);
    expect(cs('add', 4, 0.5)).toBe(4.5);
    expect(cs('add', 0.5, 0.25)).toBe(0.75);
    expect(cs('add', 4, -2)).toBe(2);
    expect(cs('add', -2, -2)).toBe(-4);
    // doc, subtract
    expect(cs('subtract', 10, 2)).toBe(8);
    expect(call('subtract', [10.5, 0.5], false, [false, false])).toBe(10);
    expect(cs('subtract', 1, 0.2)).toBe(0.8);
    expect(cs('subtract', -2, -4)).toBe(2);
    // doc, multiply
    expect(cs('multiply', 0.5, 2)).toBe(1);
    expect(cs('multiply', -2, -2)).toBe(4);
    // doc, divide: integer operands round down
    expect(cs('divide', 4, 2)).toBe(2);
    expect(cs('divide', 4, 3)).toBe(1);
    expect(call('divide', [4, 3.0], false, [true, false])).toBeCloseTo(1.3333333333, 9);
    expect(cs('divide', 4, 0.5)).toBe(8);
    expect(cs('divide', 0.5, 4)).toBe(0.125);
    expect(cs('divide', 4, -2)).toBe(-2);
    expect(cs('divide', -4, -2)).toBe(2);
    // doc, modulo
    expect(cs('modulo', 10, 6)).toBe(4);
    expect(cs('modulo', 10, 5)).toBe(0);
    expect(cs('modulo', 10, 0.5)).toBe(0);
    expect(cs('modulo', 10, -6)).toBe(4);
    expect(cs('modulo', -10, -6)).toBe(-4);
    expect(cs('modulo', 106, 10)).toBe(6);
  });

  it('returns null for a null operand (doc null handling; PredicateBiFunction.apply)', () => {
    for (const name of ['add', 'subtract', 'multiply', 'divide', 'modulo'] as const) {
      expect(cs(name, null, 4)).toBeNull();
      expect(cs(name, 4, null)).toBeNull();
    }
  });

  it('divides integers toward zero, remainders take the dividend sign (Java `/`, `%` on long: Arithmetics.div/mod)', () => {
    expect(arithmetic('/', -7, 2, true)).toBe(-3);
    expect(arithmetic('%', -7, 2, true)).toBe(-1);
    expect(arithmetic('%', 7, -2, true)).toBe(1);
    // Long.MIN_VALUE / -1 wraps in Java instead of throwing.
    expect(arithmetic('/', -(2 ** 63), -1, true)).toBe(-(2 ** 63));
  });

  it('throws "/ by zero" for integer division or remainder by zero; doubles give IEEE results (Arithmetics.div/mod)', () => {
    throwsScript(() => arithmetic('/', 4, 0, true), '/ by zero');
    throwsScript(() => arithmetic('%', 4, 0, true), '/ by zero');
    expect(arithmetic('/', 4, 0, false)).toBe(Infinity);
    expect(arithmetic('/', -4, 0, false)).toBe(-Infinity);
    expect(arithmetic('/', 0, 0, false)).toBeNaN();
    expect(arithmetic('%', 4, 0, false)).toBeNaN();
  });

  it('throws on long overflow (Math.addExact/subtractExact/multiplyExact in Arithmetics)', () => {
    throwsScript(() => arithmetic('+', 2 ** 63 - 1024, 2 ** 62, true), 'long overflow');
    throwsScript(() => arithmetic('-', -(2 ** 63), 1, true), 'long overflow');
    throwsScript(() => arithmetic('*', 2 ** 32, 2 ** 32, true), 'long overflow');
    expect(arithmetic('*', 2 ** 31, 2 ** 31, true)).toBe(2 ** 62);
    expect(arithmetic('+', 1e308, 1e308, false)).toBe(Infinity);
  });

  it('throws on a non-number operand (Arithmetics.NumericArithmetic.wrap)', () => {
    throwsScript(() => arithmetic('+', 'a', 1, false), 'A number is required; received a');
  });

  it('reports integer-ness of the result by Java widening', () => {
    expect(EQL_FUNCTIONS.add.integerResult([1, 2], [true, true])).toBe(true);
    expect(EQL_FUNCTIONS.add.integerResult([1, 2.5], [true, false])).toBe(false);
  });

  it('checks the operands are numeric (ArithmeticOperation.resolveInputType → TypeResolutions.isNumeric)', () => {
    expect(EQL_FUNCTIONS.add.check([field('process.name', 'string'), lit(1)], 'add(process.name, 1)')).toBe(
      'first argument of [add(process.name, 1)] must be [numeric], found value [process.name] type [keyword]',
    );
    expect(EQL_FUNCTIONS.divide.check([lit(1), lit('a', '"a"')], '1 / "a"')).toBe(
      'second argument of [1 / "a"] must be [numeric], found value ["a"] type [keyword]',
    );
    expect(EQL_FUNCTIONS.add.check([lit(null, 'null'), field('pid', 'integer', 'long')], 'add(null, pid)')).toBeNull();
    expect(EQL_FUNCTIONS.add.check([lit(1)], 'add(1)')).toBe('error building [add]: expects exactly two arguments');
  });
});

describe('negate (Arithmetics.negate)', () => {
  it('negates, keeps null, and throws where Java does', () => {
    expect(negate(5, true)).toBe(-5);
    expect(negate(2.5, false)).toBe(-2.5);
    expect(negate(null, true)).toBeNull();
    throwsScript(() => negate(-(2 ** 63), true), 'long overflow');
    // ES's check for "overflow" compares with Double.MIN_VALUE, the smallest positive double.
    throwsScript(() => negate(Number.MIN_VALUE, false), 'double overflow');
  });
});

describe('between (BetweenFunctionProcessor, eql/util/StringUtils.between)', () => {
  const path = 'C:\\Windows\\System32\\cmd.exe';
  it('computes the doc examples', () => {
    expect(cs('between', path, 'System32\\', '.exe')).toBe('cmd');
    expect(cs('between', path, 'system32\\', '.exe')).toBe('');
    expect(cs('between', path, 'workspace\\', '.exe')).toBe('');
    expect(ci('between', path, 'system32\\', '.exe')).toBe('cmd');
    expect(cs('between', path, '\\', '\\', false)).toBe('Windows');
    expect(cs('between', path, '\\', '\\', true)).toBe('Windows\\System32');
    expect(cs('between', '', 'System32\\', '.exe')).toBe('');
    expect(cs('between', '', '', '')).toBe('');
    expect(cs('between', null, 'System32\\', '.exe')).toBeNull();
  });

  it('returns the source itself when left or right is empty (hasLength checks)', () => {
    expect(cs('between', 'abc', '', 'c')).toBe('abc');
    expect(cs('between', 'abc', 'a', '')).toBe('abc');
  });

  it('cuts the original string at indices found in the lowercased one for `~`', () => {
    expect(ci('between', 'xAbCdEx', 'ab', 'de')).toBe('C');
  });

  it('throws like Java substring when greedy matching finds `right` only inside or before `left`', () => {
    throwsScript(() => cs('between', 'a-b', '-', 'a', true), 'begin 2, end 0, length 3');
  });

  it('throws for a null left/right/greedy (Check.isString / Check.isBoolean)', () => {
    throwsScript(() => cs('between', 'abc', null, 'c'), 'A string/char is required; received [null]');
    throwsScript(() => cs('between', 'abc', 'a', 'c', null), 'A boolean is required; received [null]');
  });

  it('checks types (Between.resolveType)', () => {
    const check = EQL_FUNCTIONS.between.check;
    expect(check([field('file.path', 'string'), lit('a', '"a"'), lit('b', '"b"'), lit('yes', '"yes"')], 'between(file.path, "a", "b", "yes")')).toBe(
      'fourth argument of [between(file.path, "a", "b", "yes")] must be [boolean], found value ["yes"] type [keyword]',
    );
    expect(check([lit(5), lit('a', '"a"'), lit('b', '"b"')], 'between(5, "a", "b")')).toBe(
      'first argument of [between(5, "a", "b")] must be [string], found value [5] type [integer]',
    );
    expect(check([lit('a', '"a"'), lit('b', '"b"')], 'between("a", "b")')).toBe('error building [between]: expects three or four arguments');
  });
});

describe('cidrMatch (CIDRMatchFunctionProcessor, common/network/CIDRUtils)', () => {
  const address = '192.168.152.12';
  it('computes the doc examples', () => {
    expect(cs('cidrMatch', address, '192.168.0.0/16')).toBe(true);
    expect(cs('cidrMatch', address, '192.168.0.0/16', '10.0.0.0/8')).toBe(true);
    expect(cs('cidrMatch', address, '10.0.0.0/8')).toBe(false);
    expect(cs('cidrMatch', address, '10.0.0.0/8', '10.128.0.0/9')).toBe(false);
    expect(cs('cidrMatch', null, '10.0.0.0/8')).toBeNull();
  });

  it('matches IPv6, IPv4-mapped addresses and single addresses', () => {
    expect(cs('cidrMatch', '2001:db8::1', '2001:db8::/32')).toBe(true);
    expect(cs('cidrMatch', '2001:db9::1', '2001:db8::/32')).toBe(false);
    expect(cs('cidrMatch', '::ffff:10.1.2.3', '10.0.0.0/8')).toBe(true);
    expect(cs('cidrMatch', 'fe80::1%eth0', 'fe80::/10')).toBe(true);
    expect(cs('cidrMatch', '::00001', '::1')).toBe(true);
    expect(cs('cidrMatch', '::1', '::1')).toBe(true);
    expect(cs('cidrMatch', '10.0.0.1', '0.0.0.0/0')).toBe(true);
    expect(cs('cidrMatch', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:0:0/96')).toBe(true);
  });

  it('throws for invalid addresses and blocks, but only reaches blocks up to the first match', () => {
    throwsScript(() => cs('cidrMatch', '10.0.0.256', '10.0.0.0/8'), "'10.0.0.256' is not an IP string literal.");
    throwsScript(() => cs('cidrMatch', '010.0.0.1', '10.0.0.0/8'), "'010.0.0.1' is not an IP string literal.");
    throwsScript(
      () => cs('cidrMatch', '10.0.0.1', '10.0.0.0/33'),
      'Illegal prefix length [33] in [10.0.0.0/33]. Must be 0-32 for IPv4 ranges, 0-128 for IPv6 ranges',
    );
    throwsScript(() => cs('cidrMatch', '10.0.0.1', '::ffff:0:0/96'), 'CIDR notation is not allowed with IPv6-mapped IPv4 address [::ffff:0:0 as');
    throwsScript(() => cs('cidrMatch', '1::2::3', '::/0'), "'1::2::3' is not an IP string literal.");
    throwsScript(() => cs('cidrMatch', ':1:2:3:4:5:6:7', '::/0'), "is not an IP string literal.");
    throwsScript(() => cs('cidrMatch', '1.2.3.4:5', '::/0'), "is not an IP string literal.");
    throwsScript(() => cs('cidrMatch', '10.0.0.1', '10.0.0.0/'), 'Expected [ip/prefix] but was [10.0.0.0/]');
    throwsScript(() => cs('cidrMatch', '10.0.0.1', '10.0.0.0/x'), 'For input string: "x"');
    throwsScript(() => cs('cidrMatch', '10.0.0.1', null), 'A string/char is required; received [null]');
    expect(cs('cidrMatch', '10.0.0.1', '10.0.0.0/8', 'garbage')).toBe(true);
  });

  it('requires an ip-typed address and constant string blocks (CIDRMatch.resolveType)', () => {
    const check = EQL_FUNCTIONS.cidrMatch.check;
    expect(check([lit('10.0.0.1', '"10.0.0.1"'), lit('10.0.0.0/8', '"10.0.0.0/8"')], 'cidrMatch("10.0.0.1", "10.0.0.0/8")')).toBe(
      'first argument of [cidrMatch("10.0.0.1", "10.0.0.0/8")] must be [ip], found value ["10.0.0.1"] type [keyword]',
    );
    expect(check([field('source.ip', 'ip'), field('destination.ip', 'ip')], 'cidrMatch(source.ip, destination.ip)')).toBe(
      'second argument of [cidrMatch(source.ip, destination.ip)] must be a constant, received [destination.ip]',
    );
    expect(check([field('source.ip', 'ip'), lit(8)], 'cidrMatch(source.ip, 8)')).toBe(
      'second argument of [cidrMatch(source.ip, 8)] must be [string], found value [8] type [integer]',
    );
    const six = [field('source.ip', 'ip'), ...Array.from({ length: 4 }, () => lit('10.0.0.0/8', '"10.0.0.0/8"')), lit(1)];
    expect(check(six, 'c')).toBe('argument of [c] must be [string], found value [1] type [integer]');
    expect(check([field('source.ip', 'ip')], 'cidrMatch(source.ip)')).toBe('error building [cidrmatch]: expects at least two arguments');
  });
});

describe('concat (ConcatFunctionProcessor)', () => {
  it('computes the doc examples', () => {
    expect(cs('concat', 'process is ', 'regsvr32.exe')).toBe('process is regsvr32.exe');
    expect(cs('concat', 'regsvr32.exe', ' ', 42)).toBe('regsvr32.exe 42');
    expect(call('concat', ['regsvr32.exe', ' ', 42.5], false, [false, false, false])).toBe('regsvr32.exe 42.5');
    expect(cs('concat', 'regsvr32.exe', ' ', true)).toBe('regsvr32.exe true');
    expect(cs('concat', 'regsvr32.exe')).toBe('regsvr32.exe');
    expect(cs('concat', null, 'regsvr32.exe')).toBeNull();
    expect(cs('concat', 'regsvr32.exe', null)).toBeNull();
    expect(cs('concat', null)).toBeNull();
  });

  it('prints doubles as Java does and accepts no arguments (an empty StringBuilder)', () => {
    expect(call('concat', ['n=', 42], false, [false, false])).toBe('n=42.0');
    expect(call('concat', ['n=', 1e10], false, [false, false])).toBe('n=1.0E10');
    expect(cs('concat')).toBe('');
    expect(EQL_FUNCTIONS.concat.check([], 'concat()')).toBeNull();
  });
});

describe('endsWith / startsWith (EndsWithFunctionProcessor, QL StartsWithFunctionProcessor)', () => {
  it('computes the endsWith doc examples', () => {
    expect(cs('endsWith', 'regsvr32.exe', '.exe')).toBe(true);
    expect(cs('endsWith', 'regsvr32.exe', '.EXE')).toBe(false);
    expect(cs('endsWith', 'regsvr32.exe', '.dll')).toBe(false);
    expect(cs('endsWith', '', '')).toBe(true);
    expect(ci('endsWith', 'regsvr32.exe', '.EXE')).toBe(true);
    expect(cs('endsWith', 'ntdll.dll', 'regsvr32.exe')).toBe(false);
    expect(cs('endsWith', 'regsvr32.exe', null)).toBeNull();
    expect(cs('endsWith', '', null)).toBeNull();
    expect(cs('endsWith', null, '.exe')).toBeNull();
    expect(cs('endsWith', null, null)).toBeNull();
  });

  it('computes the startsWith doc examples', () => {
    expect(cs('startsWith', 'regsvr32.exe', 'regsvr32')).toBe(true);
    expect(cs('startsWith', 'regsvr32.exe', 'Regsvr32')).toBe(false);
    expect(cs('startsWith', 'regsvr32.exe', 'explorer')).toBe(false);
    expect(cs('startsWith', '', '')).toBe(true);
    expect(ci('startsWith', 'regsvr32.exe', 'Regsvr32')).toBe(true);
    expect(cs('startsWith', 'regsvr32.exe', null)).toBeNull();
    expect(cs('startsWith', '', null)).toBeNull();
    expect(cs('startsWith', null, 'regsvr32')).toBeNull();
  });

  it('folds case with toLowerCase(Locale.ROOT) on both sides', () => {
    expect(ci('startsWith', 'ÉCOLE', 'éc')).toBe(true);
    // Full lowercase mapping: İ becomes "i̇" (two chars), so "i" alone is a prefix of it.
    expect(ci('startsWith', 'İstanbul', 'i')).toBe(true);
  });

  it('throws on a non-string at run time and rejects it statically (isStringAndExact)', () => {
    throwsScript(() => cs('startsWith', 5, 'a'), 'A string/char is required; received [5]');
    expect(EQL_FUNCTIONS.startsWith.check([field('process.name', 'string'), lit(5)], 'startsWith(process.name, 5)')).toBe(
      'second argument of [startsWith(process.name, 5)] must be [string], found value [5] type [integer]',
    );
    expect(EQL_FUNCTIONS.endsWith.check([field('process.pid', 'integer', 'long'), lit('a', '"a"')], 'endsWith(process.pid, "a")')).toBe(
      'first argument of [endsWith(process.pid, "a")] must be [string], found value [process.pid] type [long]',
    );
    expect(EQL_FUNCTIONS.startsWith.check([field('x', 'unknown'), lit(null, 'null')], 'startsWith(x, null)')).toBeNull();
    expect(EQL_FUNCTIONS.endsWith.check([lit('a', '"a"')], 'endsWith("a")')).toBe('error building [endswith]: expects exactly two arguments');
  });
});

describe('indexOf (IndexOfFunctionProcessor)', () => {
  const domain = 'subdomain.example.com';
  it('computes the doc examples', () => {
    expect(cs('indexOf', domain, 'd')).toBe(3);
    expect(cs('indexOf', domain, 'D')).toBeNull();
    expect(cs('indexOf', domain, '.')).toBe(9);
    expect(cs('indexOf', domain, '.', 9)).toBe(9);
    expect(cs('indexOf', domain, '.', 10)).toBe(17);
    expect(cs('indexOf', domain, '.', -6)).toBe(9);
    expect(ci('indexOf', domain, 'D')).toBe(3);
    expect(cs('indexOf', '', '')).toBe(0);
    expect(cs('indexOf', domain, '')).toBe(0);
    expect(cs('indexOf', domain, '', 9)).toBe(9);
    expect(cs('indexOf', domain, '', 10)).toBe(10);
    expect(cs('indexOf', domain, '', -6)).toBe(0);
    expect(cs('indexOf', domain, 'z')).toBeNull();
    expect(cs('indexOf', domain, 'z', 9)).toBeNull();
    expect(cs('indexOf', domain, '.', 30)).toBeNull();
    expect(cs('indexOf', null, '.', 9)).toBeNull();
    expect(cs('indexOf', domain, null, 9)).toBeNull();
  });

  it('treats a null start as 0, as the processor code does (the doc claims null)', () => {
    expect(cs('indexOf', domain, '.', null)).toBe(9);
  });

  it('finds "" at the length past the end (Java String.indexOf) and takes the low 32 bits of a long start', () => {
    expect(cs('indexOf', 'abc', '', 30)).toBe(3);
    expect(cs('indexOf', 'abc', 'c', 2 ** 32 + 2)).toBe(2);
  });

  it('is an integer and checks its start is one (IndexOf.resolveType)', () => {
    expect(EQL_FUNCTIONS.indexOf.integerResult(['a', 'a'], [false, false])).toBe(true);
    expect(EQL_FUNCTIONS.indexOf.check([field('url.domain', 'string'), lit('.', '"."'), lit(1.5)], 'indexOf(url.domain, ".", 1.5)')).toBe(
      'third argument of [indexOf(url.domain, ".", 1.5)] must be [integer], found value [1.5] type [double]',
    );
  });
});

describe('length (LengthFunctionProcessor)', () => {
  it('computes the doc examples', () => {
    expect(cs('length', 'explorer.exe')).toBe(12);
    expect(cs('length', 'start explorer.exe')).toBe(18);
    expect(cs('length', '')).toBe(0);
    expect(cs('length', null)).toBeNull();
  });

  it('counts UTF-16 code units (Java String.length)', () => {
    expect(cs('length', '😀')).toBe(2);
    expect(cs('length', 'é')).toBe(1);
  });

  it('checks its argument with no ordinal (Length.resolveType uses ParamOrdinal.DEFAULT)', () => {
    expect(EQL_FUNCTIONS.length.check([lit(5)], 'length(5)')).toBe('argument of [length(5)] must be [string], found value [5] type [integer]');
    expect(EQL_FUNCTIONS.length.check([lit(2 ** 40)], 'length(1099511627776)')).toBe(
      'argument of [length(1099511627776)] must be [string], found value [1099511627776] type [long]',
    );
    expect(EQL_FUNCTIONS.length.check([], 'length()')).toBe('error building [length]: expects exactly one argument');
    throwsScript(() => cs('length', 5), 'A string/char is required; received [5]');
  });
});

describe('number (ToNumberFunctionProcessor)', () => {
  it('computes the doc examples', () => {
    expect(cs('number', '1337')).toBe(1337);
    expect(cs('number', '42.5')).toBe(42.5);
    expect(cs('number', 'deadbeef', 16)).toBe(3735928559);
    expect(cs('number', '0xdeadbeef')).toBe(3735928559);
    expect(cs('number', '0xdeadbeef', 16)).toBe(3735928559);
    expect(cs('number', '+1337')).toBe(1337);
    expect(cs('number', '-1337')).toBe(-1337);
    expect(cs('number', '  1337  ')).toBe(1337);
    expect(cs('number', null)).toBeNull();
    expect(cs('number', null, 16)).toBeNull();
    expect(cs('number', '0xdeadbeef', null)).toBe(3735928559);
    expect(cs('number', '1337', null)).toBe(1337);
  });

  it('is a Long when Long parsing succeeds and a Double when Double.valueOf had to take over', () => {
    const integer = (value: string): boolean => EQL_FUNCTIONS.number.integerResult([value], [false]);
    expect(integer('1337')).toBe(true);
    expect(integer('  1337  ')).toBe(false); // Long.valueOf rejects whitespace; Double.valueOf trims
    expect(integer('42.5')).toBe(false);
    expect(integer('99999999999999999999')).toBe(false); // past Long.MAX_VALUE
    expect(cs('number', '99999999999999999999')).toBe(1e20);
  });

  it('takes what Double.valueOf takes in base 10', () => {
    expect(cs('number', '1e3')).toBe(1000);
    expect(cs('number', '.5')).toBe(0.5);
    expect(cs('number', '2.5f')).toBe(2.5);
    expect(cs('number', 'NaN')).toBeNaN();
    expect(cs('number', '-Infinity')).toBe(-Infinity);
    expect(cs('number', '0x1p3', 10)).toBe(8);
    expect(cs('number', '\t7\n')).toBe(7);
  });

  it('throws for what it cannot parse', () => {
    throwsScript(() => cs('number', ''), 'Unable to convert [] to number of base [10]');
    throwsScript(() => cs('number', '0x10', 10), 'Unable to convert [0x10] to number of base [10]');
    throwsScript(() => cs('number', '-0x10'), 'Unable to convert [-0x10] to number of base [10]');
    throwsScript(() => cs('number', '0xzz'), 'Unable to convert [zz] to number of base [16]');
    throwsScript(() => cs('number', ' ff', 16), 'Unable to convert [ ff] to number of base [16]');
    throwsScript(() => cs('number', '12', 1), 'Unable to convert [12] to number of base [1]');
    throwsScript(() => call('number', ['12', 2.5], false, [false, false]), 'An integer base is required; received [2.5]');
    throwsScript(() => cs('number', 12), 'A string/char is required; received [12]');
  });

  it('parses other bases with Long.parseLong', () => {
    expect(cs('number', '101', 2)).toBe(5);
    expect(cs('number', '-zz', 36)).toBe(-1295);
    expect(cs('number', '0x10', 16)).toBe(16);
  });

  it('checks a string and an integer base (ToNumber.resolveType)', () => {
    expect(EQL_FUNCTIONS.number.check([lit('1', '"1"'), lit('16', '"16"')], 'number("1", "16")')).toBe(
      'second argument of [number("1", "16")] must be [integer], found value ["16"] type [keyword]',
    );
    expect(EQL_FUNCTIONS.number.check([lit('1', '"1"'), lit(2), lit(3)], 'number("1", 2, 3)')).toBe('error building [number]: expects one or two arguments');
  });
});

describe('string (ToStringFunctionProcessor: Java toString)', () => {
  it('computes the doc examples', () => {
    expect(cs('string', 42)).toBe('42');
    expect(call('string', [42.5], false, [false])).toBe('42.5');
    expect(cs('string', 'regsvr32.exe')).toBe('regsvr32.exe');
    expect(cs('string', true)).toBe('true');
    expect(cs('string', null)).toBeNull();
  });

  it('prints a Double with Double.toString', () => {
    const str = (d: number): ScriptValue => call('string', [d], false, [false]);
    expect(str(42)).toBe('42.0');
    expect(str(1e10)).toBe('1.0E10');
    expect(str(1e7)).toBe('1.0E7');
    expect(str(9999999)).toBe('9999999.0');
    expect(str(0.001)).toBe('0.001');
    expect(str(0.0001)).toBe('1.0E-4');
    expect(str(123456789.5)).toBe('1.234567895E8');
    expect(str(-0)).toBe('-0.0');
    expect(str(NaN)).toBe('NaN');
    expect(str(-Infinity)).toBe('-Infinity');
    expect(str(0.1 + 0.2)).toBe('0.30000000000000004');
    expect(javaDoubleToString(Number.MIN_VALUE)).toBe('4.9E-324');
    expect(javaDoubleToString(2 * Number.MIN_VALUE)).toBe('9.9E-324');
    expect(javaDoubleToString(1e23)).toBe('1.0E23');
  });

  it('prints a Long exactly, also past 1e21', () => {
    expect(cs('string', -5)).toBe('-5');
    expect(cs('string', 2 ** 62)).toBe('4611686018427387904');
  });

  it('accepts any type (ToString.resolveType only checks exactness)', () => {
    expect(EQL_FUNCTIONS.string.check([lit(1)], 'string(1)')).toBeNull();
    expect(EQL_FUNCTIONS.string.check([lit(1), lit(2)], 'string(1, 2)')).toBe('error building [string]: expects exactly one argument');
  });
});

describe('stringContains (StringContainsFunctionProcessor, eql/util/StringUtils.stringContains)', () => {
  const commandLine = 'start regsvr32.exe';
  it('computes the doc examples', () => {
    expect(cs('stringContains', commandLine, 'regsvr32')).toBe(true);
    expect(cs('stringContains', commandLine, 'Regsvr32')).toBe(false);
    expect(cs('stringContains', commandLine, 'start ')).toBe(true);
    expect(cs('stringContains', commandLine, 'explorer')).toBe(false);
    expect(cs('stringContains', commandLine, 'regsvr32.exe')).toBe(true);
    expect(cs('stringContains', '', '')).toBe(false);
    expect(cs('stringContains', commandLine, '')).toBe(false);
    expect(cs('stringContains', null, 'regsvr32')).toBeNull();
  });

  it('matches case-insensitively with `~` (the doc example printing false contradicts the code)', () => {
    expect(ci('stringContains', commandLine, 'Regsvr32')).toBe(true);
  });

  it('throws for a null substring (throwIfNotString; the doc says null)', () => {
    throwsScript(() => cs('stringContains', commandLine, null), 'A string/char is required; received [null]');
  });
});

describe('substring (SubstringFunctionProcessor, StringUtils.substringSlice)', () => {
  const s = 'start regsvr32.exe';
  it('computes the doc examples', () => {
    expect(cs('substring', s, 6)).toBe('regsvr32.exe');
    expect(cs('substring', s, 0, 5)).toBe('start');
    expect(cs('substring', s, 6, 14)).toBe('regsvr32');
    expect(cs('substring', s, -4)).toBe('.exe');
    expect(cs('substring', s, -4, -1)).toBe('.ex');
  });

  it('slices like Python at the edges', () => {
    expect(cs('substring', 'abc', -10)).toBe('abc');
    expect(cs('substring', 'abc', 1, 100)).toBe('bc');
    expect(cs('substring', 'abc', 5)).toBe('');
    expect(cs('substring', 'abc', 2, 1)).toBe('');
    expect(cs('substring', 'abc', 0, -10)).toBe('');
    expect(cs('substring', '', 1)).toBe('');
  });

  it('keeps the source for a null start, and a null end means the rest', () => {
    expect(cs('substring', 'abc', null)).toBe('abc');
    expect(cs('substring', 'abc', 1, null)).toBe('bc');
    expect(cs('substring', null, 1)).toBeNull();
  });

  it('checks integer positions (Substring.resolveType)', () => {
    expect(EQL_FUNCTIONS.substring.check([field('process.name', 'string'), lit(1), lit('2', '"2"')], 'substring(process.name, 1, "2")')).toBe(
      'third argument of [substring(process.name, 1, "2")] must be [integer], found value ["2"] type [keyword]',
    );
    expect(EQL_FUNCTIONS.substring.check([field('d', 'date')], 'substring(d)')).toBe('error building [substring]: expects two or three arguments');
    expect(EQL_FUNCTIONS.substring.check([field('d', 'date'), lit(1)], 'substring(d, 1)')).toBe(
      'first argument of [substring(d, 1)] must be [string], found value [d] type [datetime]',
    );
  });
});

describe('compareValues (Comparisons via BinaryComparisonProcessor)', () => {
  it('compares numbers of any Java type by value', () => {
    expect(compareValues('==', 1, 1.0)).toBe(true);
    expect(compareValues('<', 1, 1.5)).toBe(true);
    expect(compareValues('>=', 2, 2)).toBe(true);
    expect(compareValues('!=', 2, 3)).toBe(true);
  });

  it('uses Double.compare: NaN equals NaN and is the largest; -0.0 is below 0.0', () => {
    expect(compareValues('==', NaN, NaN)).toBe(true);
    expect(compareValues('>', NaN, Infinity)).toBe(true);
    expect(compareValues('==', -0, 0)).toBe(false);
    expect(compareValues('<', -0, 0)).toBe(true);
  });

  it('compares strings by UTF-16 code units and booleans with false < true', () => {
    expect(compareValues('<', 'B', 'a')).toBe(true);
    expect(compareValues('==', 'a', 'A')).toBe(false);
    expect(compareValues('<', '\uffff', '😀')).toBe(false);
    expect(compareValues('<', false, true)).toBe(true);
  });

  it('is null for a null side and for mixed types (the ClassCastException is swallowed)', () => {
    expect(compareValues('==', null, 1)).toBeNull();
    expect(compareValues('!=', 'a', null)).toBeNull();
    expect(compareValues('==', '1', 1)).toBeNull();
    expect(compareValues('!=', '1', 1)).toBeNull();
    expect(compareValues('<', true, 1)).toBeNull();
  });
});

describe('insensitiveEquals (StringComparisons.insensitiveEquals)', () => {
  it('uses compareToIgnoreCase on strings', () => {
    expect(insensitiveEquals('CMD.EXE', 'cmd.exe')).toBe(true);
    expect(insensitiveEquals('cmd', 'cmd.exe')).toBe(false);
    // Upper then lower per character: İ lowercases to i, ß has no single-character uppercase.
    expect(insensitiveEquals('İ', 'i')).toBe(true);
    expect(insensitiveEquals('ß', 'SS')).toBe(false);
    expect(insensitiveEquals('ΣΑΣ', 'σας')).toBe(true);
  });

  it('is null when a side is null, and throws for other types', () => {
    expect(insensitiveEquals(null, 'a')).toBeNull();
    expect(insensitiveEquals(null, 5)).toBeNull();
    throwsScript(() => insensitiveEquals('a', 5), 'Insensitive comparison can be applied only on strings');
  });
});

describe('inList (InProcessor.apply; `in~` is an OR of InsensitiveEquals in ExpressionBuilder)', () => {
  it('is true on a match even with nulls in the list', () => {
    expect(inList(1, [null, 1], false)).toBe(true);
    expect(inList('a', ['b', 'a'], false)).toBe(true);
  });

  it('is null with no match and a null anywhere, else false', () => {
    expect(inList(1, [2, null], false)).toBeNull();
    expect(inList(null, [1, 2], false)).toBeNull();
    expect(inList(1, [2, 3], false)).toBe(false);
    expect(inList('1', [1], false)).toBeNull();
  });

  it('folds case for `in~`', () => {
    expect(inList('CMD.exe', ['x', 'cmd.EXE'], true)).toBe(true);
    expect(inList('cmd', ['x', null], true)).toBeNull();
    expect(inList('cmd', ['x'], true)).toBe(false);
    throwsScript(() => inList('cmd', ['cmd', 5], true), 'Insensitive comparison can be applied only on strings');
  });
});

describe('not (NotProcessor)', () => {
  it('negates and keeps null', () => {
    expect(not(true)).toBe(false);
    expect(not(false)).toBe(true);
    expect(not(null)).toBeNull();
  });
});
