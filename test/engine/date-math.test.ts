import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DateMathError, parseDateMath, parseInterval } from '../../src/engine/date-math.js';

const at = (iso: string): number => Date.parse(iso);

describe('date math (history_window_start, from)', () => {
  it('subtracts fixed units', () => {
    const now = at('2024-03-15T12:34:56.789Z');
    expect(parseDateMath('now').resolve(now)).toBe(now);
    expect(parseDateMath('now-14d').resolve(now)).toBe(at('2024-03-01T12:34:56.789Z'));
    expect(parseDateMath('now-2w').resolve(now)).toBe(at('2024-03-01T12:34:56.789Z'));
    expect(parseDateMath('now-9m').resolve(now)).toBe(at('2024-03-15T12:25:56.789Z'));
    expect(parseDateMath('now-3h').resolve(now)).toBe(at('2024-03-15T09:34:56.789Z'));
    expect(parseDateMath('now-3H').resolve(now)).toBe(at('2024-03-15T09:34:56.789Z'));
    expect(parseDateMath('now-30s').resolve(now)).toBe(at('2024-03-15T12:34:26.789Z'));
    expect(parseDateMath('now+1d').resolve(now)).toBe(at('2024-03-16T12:34:56.789Z'));
  });

  it('treats M as months and m as minutes, y and M by the calendar', () => {
    expect(parseDateMath('now-1M').resolve(at('2024-03-15T10:00:00Z'))).toBe(at('2024-02-15T10:00:00Z'));
    expect(parseDateMath('now-1y').resolve(at('2024-03-15T00:00:00Z'))).toBe(at('2023-03-15T00:00:00Z'));
    expect(parseDateMath('now-13M').resolve(at('2024-01-15T00:00:00Z'))).toBe(at('2022-12-15T00:00:00Z'));
    expect(parseDateMath('now-1m').resolve(at('2024-01-15T00:00:00Z'))).toBe(at('2024-01-14T23:59:00Z'));
    expect(parseDateMath('now-1M').resolve(at('2024-03-31T10:00:00Z'))).toBe(at('2024-02-29T10:00:00Z'));
  });

  it('chains operations and rounds down', () => {
    const now = at('2024-03-15T12:34:56.789Z');
    expect(parseDateMath('now-1d/d').resolve(now)).toBe(at('2024-03-14T00:00:00Z'));
    expect(parseDateMath('now/M').resolve(now)).toBe(at('2024-03-01T00:00:00Z'));
    expect(parseDateMath('now/y').resolve(now)).toBe(at('2024-01-01T00:00:00Z'));
    expect(parseDateMath('now/w').resolve(now)).toBe(at('2024-03-11T00:00:00Z')); // a Monday
    expect(parseDateMath('now-1d-12h').resolve(now)).toBe(at('2024-03-14T00:34:56.789Z'));
  });

  it('bounds how far back an expression can reach', () => {
    expect(parseDateMath('now-14d').maxLookbackMs).toBe(14 * 86_400_000);
    expect(parseDateMath('now-1M').maxLookbackMs).toBe(31 * 86_400_000);
    expect(parseDateMath('now-1y').maxLookbackMs).toBe(366 * 86_400_000);
    expect(parseDateMath('now').maxLookbackMs).toBe(0);
  });

  it('the bound holds for every instant (property)', () => {
    const expressions = ['now-1y', 'now-2M', 'now-14d', 'now-1M/d', 'now-3w/w', 'now-90m'].map(parseDateMath);
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2090, 0, 1) }), fc.nat(expressions.length - 1), (now, index) => {
        const expression = expressions[index]!;
        const start = expression.resolve(now);
        return start <= now && now - start <= expression.maxLookbackMs;
      }),
    );
  });

  it('refuses what is not date math, saying where', () => {
    expect(() => parseDateMath('14d')).toThrow(new DateMathError('"14d" is not date math: it must start with "now" (for example "now-14d")'));
    expect(() => parseDateMath('now-14')).toThrow(
      new DateMathError('"now-14": unexpected "-14" at character 4; expected +N or -N followed by a unit (y M w d h H m s), or /unit'),
    );
    expect(() => parseDateMath('now-14days')).toThrow(/unexpected "ays" at character 8/);
    expect(() => parseDateMath('now-1q')).toThrow(DateMathError);
  });
});

describe('rule intervals', () => {
  it('reads s m h d', () => {
    expect(parseInterval('5m')).toBe(300_000);
    expect(parseInterval('30s')).toBe(30_000);
    expect(parseInterval('1h')).toBe(3_600_000);
    expect(parseInterval('2d')).toBe(172_800_000);
  });

  it('refuses anything else', () => {
    for (const bad of ['0m', '5', 'm', '5M', '5 m', 'now-5m', '-5m']) expect(() => parseInterval(bad), bad).toThrow(DateMathError);
  });
});
