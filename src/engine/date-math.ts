import { parseDateMath as resolveKqlDateMath } from '../kql/index.js';

/**
 * Date math as detection rules use it (`history_window_start = "now-14d"`, `from = "now-9m"`) and rule
 * intervals (`interval = "5m"`). The arithmetic is the KQL module's (one implementation of Elasticsearch
 * date math, UTC); this module checks a rule's expression up front with a precise message, restricts it to
 * "now"-relative forms (a sliding window has no fixed anchor), and bounds how far back it can reach so the
 * history knows what it may expire.
 */

export type DateMathUnit = 'y' | 'M' | 'w' | 'd' | 'h' | 'H' | 'm' | 's';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The longest each unit can be (calendar months and years vary), for bounding a window. */
const LONGEST_MS: Readonly<Record<DateMathUnit, number>> = {
  y: 366 * DAY,
  M: 31 * DAY,
  w: 7 * DAY,
  d: DAY,
  h: HOUR,
  H: HOUR,
  m: MINUTE,
  s: SECOND,
};

const OPERATION = /([+-])(\d+)([yMwdhHms])|\/([yMwdhHms])/y;

export class DateMathError extends Error {}

export interface DateMath {
  readonly text: string;
  /** The instant the expression names when "now" is `nowMs`. */
  resolve(nowMs: number): number;
  /** The largest `now - resolve(now)` over all instants: how long history must be kept for it. */
  readonly maxLookbackMs: number;
}

/** Parses `now`, `now-14d`, `now-1d/d`, `now-1M-2h`; throws DateMathError saying what is wrong. */
export function parseDateMath(text: string): DateMath {
  if (!text.startsWith('now')) throw new DateMathError(`"${text}" is not date math: it must start with "now" (for example "now-14d")`);
  let maxLookbackMs = 0;
  let position = 3;
  while (position < text.length) {
    OPERATION.lastIndex = position;
    const found = OPERATION.exec(text);
    if (found === null) {
      throw new DateMathError(
        `"${text}": unexpected "${text.slice(position)}" at character ${position + 1}; expected +N or -N followed by a unit (y M w d h H m s), or /unit`,
      );
    }
    if (found[4] !== undefined) maxLookbackMs += LONGEST_MS[found[4] as DateMathUnit];
    else if (found[1] === '-') maxLookbackMs += Number(found[2]) * LONGEST_MS[found[3] as DateMathUnit];
    position = OPERATION.lastIndex;
  }
  if (!Number.isSafeInteger(maxLookbackMs)) throw new DateMathError(`"${text}" reaches too far back`);
  return {
    text,
    maxLookbackMs,
    resolve(nowMs: number): number {
      const at = resolveKqlDateMath(text, false, nowMs);
      // Checked above, so the KQL reader accepts it; a far-out-of-range result reads as "everything".
      return at ?? Number.NEGATIVE_INFINITY;
    },
  };
}

const INTERVAL = /^(\d+)([smhd])$/;
/** max_signals is counted per interval; a schedule beyond a year is a typo, and far beyond it loses precision. */
const MAX_INTERVAL_MS = 365 * 86_400_000;

/** A rule interval (`5m`, `1h`): Kibana's schedule units s, m, h, d. Throws DateMathError. */
export function parseInterval(text: string): number {
  const found = INTERVAL.exec(text);
  if (found === null) throw new DateMathError(`"${text}" is not an interval: expected a positive number and a unit s, m, h or d (for example "5m")`);
  const ms = Number(found[1]) * LONGEST_MS[found[2] as 's' | 'm' | 'h' | 'd'];
  if (ms <= 0) throw new DateMathError(`"${text}" is not a usable interval: it must be longer than 0`);
  if (!(ms <= MAX_INTERVAL_MS)) throw new DateMathError(`"${text}" is not a usable interval: it must be at most 365d`);
  return ms;
}
