import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };
export type LogFormat = 'json' | 'pretty';

/**
 * Control characters (and DEL, C1) could rewrite an analyst's terminal; line and paragraph separators and
 * the bidirectional overrides and isolates could make a line read as something else (an argument shown
 * reversed). Shown as escapes instead.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default: {
        const code = c.charCodeAt(0);
        return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
      }
    }
  });
}

/**
 * A value as one token of a human-readable line: quoted (with \\ and \" escaped) when it is empty or "-"
 * (which would read as absent) or holds spaces, quotes, backslashes, "=" or control characters, so that
 * `key=value` lines split unambiguously; then every control character shown as an escape.
 */
export function lineToken(value: string): string {
  const quoted = value === '' || value === '-' || /[\s"\\=\u0000-\u001f\u007f-\u009f]/.test(value) ? `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"` : value;
  return escapeControl(quoted);
}

/** Colour on a terminal unless NO_COLOR is set to anything but the empty string (https://no-color.org) or TERM is dumb. */
export function colourWanted(env: NodeJS.ProcessEnv, isTerminal: boolean): boolean {
  return isTerminal && (env['NO_COLOR'] ?? '') === '' && env['TERM'] !== 'dumb';
}

// SGR codes for the level name: fixed sequences of ours, never anything a log record carries.
const LEVEL_COLOUR: Record<string, string> = { fatal: '\u001b[1;31m', error: '\u001b[31m', warn: '\u001b[33m', info: '\u001b[32m', debug: '\u001b[2m', trace: '\u001b[2m' };

/** `key=value` pairs of a record's fields, nested objects as dotted keys (outputs.stdout.sent=4). */
function fieldPairs(value: unknown, prefix: string, pairs: string[]): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [key, inner] of Object.entries(value)) fieldPairs(inner, prefix === '' ? key : `${prefix}.${key}`, pairs);
    return;
  }
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  pairs.push(`${lineToken(prefix)}=${lineToken(text)}`);
}

/** One record as `time LEVEL message key=value …`, every part escaped. */
export function prettyLine(record: Record<string, unknown>, colour = false): string {
  const { level, time, msg, pid: _pid, hostname: _hostname, ...fields } = record;
  const name = pino.levels.labels[Number(level)] ?? String(level);
  const when = new Date(Number(time)).toISOString();
  const label = name.toUpperCase().padEnd(5);
  const pairs: string[] = [];
  for (const [key, value] of Object.entries(fields)) fieldPairs(value, key, pairs);
  return `${when} ${colour && LEVEL_COLOUR[name] !== undefined ? `${LEVEL_COLOUR[name]}${label}\u001b[0m` : label} ${escapeControl(String(msg ?? ''))}${pairs.length > 0 ? ` ${pairs.join(' ')}` : ''}\n`;
}

/**
 * Logs go to stderr (stdout carries data only): pino JSON, or one readable line per record when stderr is
 * a terminal or `pretty` is asked for (its level coloured on a terminal that has not asked for no colour).
 */
export function createLogger(level: LevelWithSilent = 'info', format?: LogFormat): Logger {
  const terminal = process.stderr.isTTY === true;
  const pretty = format === 'pretty' || (format === undefined && terminal);
  if (!pretty) return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
  const colour = colourWanted(process.env, terminal);
  const stream = {
    write(chunk: string) {
      process.stderr.write(prettyLine(JSON.parse(chunk) as Record<string, unknown>, colour));
    },
  };
  return pino({ level }, stream);
}
