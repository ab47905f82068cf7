import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };
export type LogFormat = 'json' | 'pretty';

/**
 * Control characters (and DEL, C1) could rewrite an analyst's terminal; line and paragraph separators and
 * the bidirectional overrides and isolates could make a line read as something else (an argument shown
 * reversed). Shown as escapes instead.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default: {
        const code = c.charCodeAt(0);
        return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
      }
    }
  });
}

function prettyLine(obj: Record<string, unknown>): string {
  const { level, time, msg, pid: _pid, hostname: _hostname, ...rest } = obj;
  const name = pino.levels.labels[Number(level)] ?? String(level);
  const when = new Date(Number(time)).toISOString();
  const extra = Object.keys(rest).length > 0 ? ' ' + JSON.stringify(rest) : '';
  return `${when} ${name.toUpperCase().padEnd(5)} ${escapeControl(String(msg ?? ''))}${escapeControl(extra)}\n`;
}

/**
 * Logs go to stderr (stdout carries data only): pino JSON, or one readable line per record when stderr is
 * a terminal or `pretty` is asked for.
 */
export function createLogger(level: LevelWithSilent = 'info', format?: LogFormat): Logger {
  const pretty = format === 'pretty' || (format === undefined && process.stderr.isTTY === true);
  if (!pretty) return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
  const stream = {
    write(chunk: string) {
      process.stderr.write(prettyLine(JSON.parse(chunk) as Record<string, unknown>));
    },
  };
  return pino({ level }, stream);
}
