import type { Alert, EcsCharDevice } from '../ecs/types.js';
import { lineToken } from '../log.js';

/** A host-supplied value as one escaped token; an absent one as "-". */
function token(value: string | undefined): string {
  return value === undefined || value === '' ? '-' : lineToken(value);
}

// Linux device numbers (Documentation/admin-guide/devices.txt): 136–143 are the Unix98 pty slaves,
// 4 is the virtual consoles (minor < 64) and serial ports (64–255).
function ttyName(device: EcsCharDevice | undefined): string {
  if (device === undefined) return '-';
  const { major, minor } = device;
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 4 && minor < 64) return `tty${minor}`;
  if (major === 4) return `ttyS${minor - 64}`;
  return `${major}:${minor}`;
}

function userLabel(user: { id?: string; name?: string } | undefined): string | undefined {
  if (user?.name !== undefined && user.id !== undefined) return `${user.name}(${user.id})`;
  return user?.name ?? user?.id;
}

const SEVERITY_LABEL: ReadonlyArray<[number, string]> = [
  [99, 'critical'],
  [73, 'high'],
  [47, 'medium'],
  [0, 'low'],
];

function severityLabel(severity: number): string {
  return SEVERITY_LABEL.find(([floor]) => severity >= floor)?.[1] ?? 'low';
}

// SGR codes: bold red, red, yellow, cyan. Only these fixed sequences are ever written; host text never is.
const SEVERITY_COLOUR: Record<string, string> = { critical: '\u001b[1;31m', high: '\u001b[31m', medium: '\u001b[33m', low: '\u001b[36m' };
const RESET = '\u001b[0m';

/** A command line longer than this is cut on the terminal line (the NDJSON outputs carry it whole). */
const MAX_SHOWN_COMMAND_LINE = 1024;

function commandLine(value: string | undefined): string {
  if (value === undefined || value.length <= MAX_SHOWN_COMMAND_LINE) return token(value);
  let cut = value.slice(0, MAX_SHOWN_COMMAND_LINE);
  // never leave half of a surrogate pair at the cut
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${token(cut)}…(+${value.length - cut.length} chars)`;
}

export interface PrettyOptions {
  /** Colour the severity (a terminal that has not asked for no colour). */
  colour?: boolean;
}

/**
 * One line per alert for a person at a terminal:
 * `time severity rule-name host=… user=… exe=… pid=… parent=… tty=… cmd=…`. Every host-supplied value is
 * escaped so an alert cannot move the cursor, change colours or reorder the line.
 */
export function formatPretty(alert: Alert, options: PrettyOptions = {}): string {
  const process = alert.process;
  const user = process.user ?? alert.user;
  const severity = severityLabel(alert.event.severity).padEnd(8);
  const shownSeverity = options.colour === true ? `${SEVERITY_COLOUR[severity.trimEnd()]}${severity}${RESET}` : severity;
  return (
    `${token(alert['@timestamp'])} ${shownSeverity} ${token(alert.rule.name)}` +
    ` host=${token(alert.host.hostname)}` +
    ` user=${token(userLabel(user))}` +
    ` exe=${token(process.executable ?? process.name)}` +
    ` pid=${process.pid}` +
    ` parent=${token(process.parent?.executable ?? process.parent?.name)}` +
    ` tty=${ttyName(process.tty?.char_device)}` +
    ` cmd=${commandLine(process.command_line)}` +
    '\n'
  );
}
