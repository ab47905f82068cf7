import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { colourWanted } from '../../src/log.js';
import { formatPretty } from '../../src/outputs/pretty.js';
import { makeAlert } from './helpers/alerts.js';

const fixture = fileURLToPath(new URL('./fixtures/emit-stdout.mjs', import.meta.url));
const workDir = mkdtempSync(join(tmpdir(), 'execsentry-stdout-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const HOSTILE = ['\u001b[2J\u001b[H', 'line\nbreak', 'tab\there', 'quote"back\\slash', '\u202eexe.txt', '\u0085nel', '\u0007bell', '\ud800lone'];

function hostileAlert(index: number) {
  const alert = makeAlert(index);
  alert.process.executable = `/tmp/${HOSTILE[index % HOSTILE.length]}`;
  alert.process.parent = { pid: 1, executable: HOSTILE[(index + 1) % HOSTILE.length] };
  alert.process.user = { id: '1000', name: HOSTILE[(index + 2) % HOSTILE.length] };
  alert.rule.name = `rule ${HOSTILE[(index + 3) % HOSTILE.length]}`;
  return alert;
}

function runChild(format: string, alerts: unknown[], repeat: number, onStdout?: (child: ReturnType<typeof spawn>) => void) {
  const file = join(workDir, `alerts-${format}-${alerts.length}-${repeat}.ndjson`);
  writeFileSync(file, alerts.map((a) => JSON.stringify(a)).join('\n') + '\n');
  const child = spawn(process.execPath, [fixture, format, file, String(repeat)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  onStdout?.(child);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
}

describe('stdout output, NDJSON', () => {
  it('writes every alert as exactly one JSON line that parses back to the same object, hostile text included', async () => {
    const alerts = Array.from({ length: 40 }, (_, i) => hostileAlert(i));
    const result = await runChild('json', alerts, 1);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(alerts.length);
    expect(lines.map((line) => JSON.parse(line))).toEqual(alerts.map((a) => JSON.parse(JSON.stringify(a))));
    expect(result.stderr).toContain('"acknowledged":40');
  });

  it('stops cleanly when the reader closes the pipe (EPIPE, as `| head -1`): one log line, exit 0, no stack', async () => {
    const alerts = Array.from({ length: 50 }, (_, i) => makeAlert(i));
    const result = await runChild('json', alerts, 2000, (child) => {
      let seen = '';
      child.stdout!.on('data', (chunk: string) => {
        seen += chunk;
        if (seen.includes('\n')) child.stdout!.destroy();
      });
    });
    expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 0 });
    expect(result.stderr).toContain('stdout was closed by its reader');
    expect(result.stderr).toContain('STDOUT-CLOSED');
    expect(result.stderr).not.toMatch(/Error: write EPIPE|at .*\.js:\d+/);
    const stats = JSON.parse(result.stderr.split('STDOUT-CLOSED ')[1]!.split('\n')[0]!) as { sent: number; acknowledged: number; dropped: number };
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.acknowledged + stats.dropped).toBeLessThanOrEqual(stats.sent);
  });
});

describe('stdout output, pretty', () => {
  it('prints time, severity, rule, host, user, executable, pid, parent, tty and command line on one line', () => {
    const line = formatPretty(makeAlert(7));
    expect(line).toBe(
      '2026-11-28T05:00:00.007Z high     "Interactive shell spawned by a web server" host=testhost user=www-data(33) exe=/usr/bin/bash pid=4007 parent=/usr/sbin/apache2 tty=pts/3 cmd="bash -i marker-7"\n',
    );
  });

  it('cuts a long command line on the terminal, saying how much is left out', () => {
    const alert = makeAlert(1);
    alert.process.command_line = `${'a'.repeat(1023)}\u{1F600}${'b'.repeat(5000)}`;
    const line = formatPretty(alert);
    // the emoji's surrogate pair straddles the cut: it goes whole, never half
    expect(line).toMatch(new RegExp(` cmd=a{1023}…\\(\\+5002 chars\\)\\n$`));
  });

  it('colours the severity only when asked, and never anything the host supplied', () => {
    const alert = hostileAlert(0);
    alert.event.severity = 99;
    const plain = formatPretty(alert);
    const coloured = formatPretty(alert, { colour: true });
    expect(plain).not.toContain('\u001b');
    expect(coloured).toBe(plain.replace('critical', '\u001b[1;31mcritical\u001b[0m'));
    expect(formatPretty(makeAlert(1), { colour: true })).toContain(' \u001b[31mhigh    \u001b[0m ');
  });

  it('wants colour on a terminal only, and not when NO_COLOR is set (to anything but "") or TERM is dumb', () => {
    expect(colourWanted({}, true)).toBe(true);
    expect(colourWanted({ NO_COLOR: '' }, true)).toBe(true);
    expect(colourWanted({}, false)).toBe(false);
    expect(colourWanted({ NO_COLOR: '1' }, true)).toBe(false);
    expect(colourWanted({ NO_COLOR: '0' }, true)).toBe(false);
    expect(colourWanted({ TERM: 'dumb' }, true)).toBe(false);
  });

  it('on a real terminal (a pty) the stdout output colours the severity; with NO_COLOR it does not', async () => {
    const file = join(workDir, 'pty-alerts.ndjson');
    writeFileSync(file, `${JSON.stringify(makeAlert(1))}\n`);
    const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;
    const command = [process.execPath, fixture, 'pretty', file, '1'].map(quote).join(' ');
    const { NO_COLOR: _unset, ...environment } = process.env;
    const inPty = (extra: NodeJS.ProcessEnv) => spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...environment, TERM: 'xterm', ...extra } });
    const coloured = inPty({});
    expect(coloured.status).toBe(0);
    expect(coloured.stdout).toContain(' \u001b[31mhigh    \u001b[0m "Interactive shell spawned by a web server" host=testhost');
    const plain = inPty({ NO_COLOR: '1' });
    expect(plain.status).toBe(0);
    expect(plain.stdout).toContain(' high     "Interactive shell spawned by a web server" host=testhost');
    expect(plain.stdout).not.toContain('\u001b[31m');
  });

  it('shows absent fields as "-" and names consoles and serial lines', () => {
    const alert = makeAlert(1);
    delete alert.process.parent;
    delete alert.process.user;
    delete alert.user;
    alert.process.tty = { char_device: { major: 4, minor: 2 } };
    delete alert.process.command_line;
    expect(formatPretty(alert)).toMatch(/ user=- exe=\/usr\/bin\/bash pid=4001 parent=- tty=tty2 cmd=-\n$/);
    alert.process.tty = { char_device: { major: 4, minor: 65 } };
    expect(formatPretty(alert)).toMatch(/ tty=ttyS1 cmd=-\n$/);
    delete alert.process.tty;
    expect(formatPretty(alert)).toMatch(/ tty=- cmd=-\n$/);
  });

  it('escapes control characters and bidi overrides so the terminal cannot be rewritten', () => {
    const alert = hostileAlert(0);
    alert.process.executable = '/tmp/\u001b[2Jx\u202e';
    const line = formatPretty(alert);
    expect(line).toContain('exe="/tmp/\\x1b[2Jx\\u202e"');
  });

  it('any host-supplied text yields exactly one line without control or bidi characters (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (exe, user, rule, host, command) => {
        const alert = makeAlert(3);
        alert.process.executable = exe;
        alert.process.user = { name: user, id: '0' };
        alert.rule.name = rule;
        alert.host.hostname = host;
        alert.process.command_line = command;
        const line = formatPretty(alert);
        expect(line.endsWith('\n')).toBe(true);
        const body = line.slice(0, -1);
        expect(body).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/);
        // a quoted token unescapes back to the original text's escaped form: no field can swallow the next
        expect(body).toMatch(/ host=(?:[^\s"]+|"(?:[^"\\]|\\.)*") user=/);
        expect(body).toMatch(/ pid=4003 parent=\/usr\/sbin\/apache2 tty=pts\/3 cmd=(?:[^\s"]+|"(?:[^"\\]|\\.)*")$/);
      }),
    );
  });
});
