import type { Alert, EcsCharDevice } from '../ecs/types.js';
import { escapeControl } from '../log.js';

// Bidirectional overrides and isolates reorder what a terminal shows (an executable named "\u202etxt.exe"
// reads as something else); escapeControl covers C0/C1 only, so these are escaped here too.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

/**
 * A value as one token: quoted (with \\ and \" escaped) when it holds spaces, quotes, backslashes or
 * control characters, so the line splits unambiguously; then every control character shown as an escape.
 */
function token(value: string | undefined): string {
  if (value === undefined || value === '') return '-';
  const quoted = /[\s"\\\u0000-\u001f\u007f-\u009f]/.test(value) || value === '-' ? `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"` : value;
  return escapeControl(quoted).replace(BIDI_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
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

/**
 * One line per alert for a person at a terminal:
 * `time severity rule-name user=… exe=… pid=… parent=… tty=…`. Every host-supplied value is escaped
 * so an alert cannot move the cursor, change colours or reorder the line.
 */
export function formatPretty(alert: Alert): string {
  const process = alert.process;
  const user = process.user ?? alert.user;
  return (
    `${token(alert['@timestamp'])} ${severityLabel(alert.event.severity).padEnd(8)} ${token(alert.rule.name)}` +
    ` user=${token(userLabel(user))}` +
    ` exe=${token(process.executable ?? process.name)}` +
    ` pid=${process.pid}` +
    ` parent=${token(process.parent?.executable ?? process.parent?.name)}` +
    ` tty=${ttyName(process.tty?.char_device)}` +
    '\n'
  );
}
