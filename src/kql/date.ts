/**
 * Dates as Elasticsearch's date type reads them with its default format (strict_date_optional_time ||
 * epoch_millis), in UTC, plus date math (`now-1d/d`, `2024-01-01||+1M`) as range and term queries accept it.
 *
 * `roundUp` fills missing time-of-day components with their maximum (23:59:59.999), as Elasticsearch does
 * for the bounds it rounds up: `2024-01-01` as a term is that whole day, `<= 2024-01-01` includes the day and
 * `> 2024-01-01` starts after it. A missing month or day is always 01 (so `2024` as a term is 2024-01-01).
 */
const ISO =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;
const EPOCH_MILLIS = /^-?\d+(?:\.\d+)?$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** An absolute date (no math) in epoch milliseconds, or null when it is not a date. */
export function parseDate(text: string, roundUp: boolean): number | null {
  const m = ISO.exec(text);
  if (m === null) {
    if (!EPOCH_MILLIS.test(text)) return null;
    const ms = Math.trunc(Number(text));
    return Number.isFinite(ms) ? ms : null;
  }
  const year = Number(m[1]);
  // Elasticsearch fills a missing month and day with 01 even when rounding up; only the time of day rounds
  const month = m[2] === undefined ? 1 : Number(m[2]);
  if (month < 1 || month > 12) return null;
  const maxDay = daysInMonth(year, month);
  const day = m[3] === undefined ? 1 : Number(m[3]);
  if (day < 1 || day > maxDay) return null;
  const hour = m[4] === undefined ? (roundUp ? 23 : 0) : Number(m[4]);
  const minute = m[5] === undefined ? (roundUp ? 59 : 0) : Number(m[5]);
  const second = m[6] === undefined ? (roundUp ? 59 : 0) : Number(m[6]);
  if (hour > 23 || minute > 59 || second > 59) return null;
  const millis = m[7] === undefined ? (roundUp ? 999 : 0) : Number(m[7].padEnd(3, '0').slice(0, 3));
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone !== undefined && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const hours = Number(digits.slice(0, 2));
    const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (hours > 18 || minutes > 59) return null;
    offsetMinutes = sign * (hours * 60 + minutes);
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, millis);
  return utc.getTime() - offsetMinutes * 60_000;
}

/** The range of a JavaScript Date (ECMA-262 §21.4.1.1): beyond it a time cannot be compared or printed. */
const MAX_DATE_MS = 8.64e15;

/**
 * A document's date value (`@timestamp`) as a date field with the default format indexes it: a string per
 * parseDate, or a number of epoch milliseconds; null when it is neither or out of a Date's range.
 */
export function dateValueMs(value: unknown): number | null {
  const ms = typeof value === 'string' ? parseDate(value, false) : typeof value === 'number' && Number.isFinite(value) ? Math.trunc(value) : null;
  return ms === null || Math.abs(ms) > MAX_DATE_MS ? null : ms;
}

const MATH_STEP = /^([+-])(\d+)([yMwdhHms])|^\/([yMwdhHms])/;

/**
 * A date or date-math expression in epoch milliseconds, or null when it is neither. Units: y M w d h H m s
 * (H = h); rounding `/unit` goes to the unit's start, or to its last millisecond when `roundUp`.
 */
export function parseDateMath(text: string, roundUp: boolean, nowMs: number): number | null {
  let anchor: number | null;
  let math: string;
  if (text.startsWith('now')) {
    anchor = nowMs;
    math = text.slice(3);
  } else {
    const bars = text.indexOf('||');
    if (bars < 0) return parseDate(text, roundUp);
    anchor = parseDate(text.slice(0, bars), false);
    math = text.slice(bars + 2);
  }
  if (anchor === null) return null;
  const date = new Date(anchor);
  while (math !== '') {
    const step = MATH_STEP.exec(math);
    if (step === null) return null;
    math = math.slice(step[0].length);
    if (step[4] !== undefined) {
      roundDate(date, step[4], roundUp);
      continue;
    }
    const amount = (step[1] === '-' ? -1 : 1) * Number(step[2]);
    switch (step[3]) {
      case 'y':
        addCalendarMonths(date, 12 * amount);
        break;
      case 'M':
        addCalendarMonths(date, amount);
        break;
      case 'w':
        date.setTime(date.getTime() + amount * 7 * 86_400_000);
        break;
      case 'd':
        date.setTime(date.getTime() + amount * 86_400_000);
        break;
      case 'h':
      case 'H':
        date.setTime(date.getTime() + amount * 3_600_000);
        break;
      case 'm':
        date.setTime(date.getTime() + amount * 60_000);
        break;
      case 's':
        date.setTime(date.getTime() + amount * 1000);
        break;
    }
  }
  const ms = date.getTime();
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Elasticsearch adds months and years as java.time does: a day the target month lacks becomes its last day
 * (2024-03-31 -1M is 2024-02-29, not March 2nd as Date's overflow would make it).
 */
function addCalendarMonths(date: Date, months: number): void {
  const day = date.getUTCDate();
  date.setUTCDate(1);
  date.setUTCMonth(date.getUTCMonth() + months);
  date.setUTCDate(Math.min(day, daysInMonth(date.getUTCFullYear(), date.getUTCMonth() + 1)));
}

function roundDate(date: Date, unit: string, roundUp: boolean): void {
  const start = new Date(date.getTime());
  switch (unit) {
    case 'y':
      start.setUTCMonth(0, 1);
      start.setUTCHours(0, 0, 0, 0);
      break;
    case 'M':
      start.setUTCDate(1);
      start.setUTCHours(0, 0, 0, 0);
      break;
    case 'w': {
      // ISO weeks start on Monday
      const sinceMonday = (start.getUTCDay() + 6) % 7;
      start.setUTCDate(start.getUTCDate() - sinceMonday);
      start.setUTCHours(0, 0, 0, 0);
      break;
    }
    case 'd':
      start.setUTCHours(0, 0, 0, 0);
      break;
    case 'h':
    case 'H':
      start.setUTCMinutes(0, 0, 0);
      break;
    case 'm':
      start.setUTCSeconds(0, 0);
      break;
    case 's':
      start.setUTCMilliseconds(0);
      break;
  }
  if (!roundUp) {
    date.setTime(start.getTime());
    return;
  }
  const next = new Date(start.getTime());
  switch (unit) {
    case 'y':
      next.setUTCFullYear(next.getUTCFullYear() + 1);
      break;
    case 'M':
      next.setUTCMonth(next.getUTCMonth() + 1);
      break;
    case 'w':
      next.setTime(next.getTime() + 7 * 86_400_000);
      break;
    case 'd':
      next.setTime(next.getTime() + 86_400_000);
      break;
    case 'h':
    case 'H':
      next.setTime(next.getTime() + 3_600_000);
      break;
    case 'm':
      next.setTime(next.getTime() + 60_000);
      break;
    case 's':
      next.setTime(next.getTime() + 1000);
      break;
  }
  date.setTime(next.getTime() - 1);
}

/** Whether a date expression depends on the current time (and must be evaluated at match time). */
export function usesNow(text: string): boolean {
  return text.startsWith('now');
}
