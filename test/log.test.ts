import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { escapeControl, prettyLine } from '../src/log.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

describe('escapeControl (every message that quotes input)', () => {
  it('escapes C0, DEL and C1 controls, keeping \\n \\r \\t readable', () => {
    expect(escapeControl('a\u001b[31mb\u0000c\u007f\u009b\n\r\t')).toBe('a\\x1b[31mb\\x00c\\x7f\\x9b\\n\\r\\t');
  });

  it('escapes line separators and the bidirectional controls that make text read as something else', () => {
    expect(escapeControl('rm -rf \u202e/ tsoh\u202c \u2028x\u2029 \u2066a\u2069 \u200e\u200f')).toBe('rm -rf \\u202e/ tsoh\\u202c \\u2028x\\u2029 \\u2066a\\u2069 \\u200e\\u200f');
  });

  it('leaves other text alone, non-ASCII included', () => {
    expect(escapeControl('/usr/bin/bash é 東京 👍🏽 \uFFFD')).toBe('/usr/bin/bash é 東京 👍🏽 \uFFFD');
  });
});

describe('pretty log lines (a person reading stderr)', () => {
  const time = Date.parse('2026-12-01T10:00:00.000Z');

  it('are "time LEVEL message key=value …", nested fields as dotted keys, never JSON', () => {
    const line = prettyLine({
      level: 30,
      time,
      pid: 7,
      hostname: 'h',
      msg: 'final stats',
      events: 52,
      lost: 0,
      outputs: { stdout: { kind: 'stdout', sent: 4 }, 'http://c:8080/': { lastError: 'HTTP 400: 1 alert(s) refused' } },
      setAside: [],
      slow: null,
    });
    expect(line).toBe(
      '2026-12-01T10:00:00.000Z INFO  final stats events=52 lost=0 outputs.stdout.kind=stdout outputs.stdout.sent=4 outputs.http://c:8080/.lastError="HTTP 400: 1 alert(s) refused" setAside=[] slow=null\n',
    );
  });

  it('quote what would split the line or read as another field, and escape what would rewrite the terminal', () => {
    const line = prettyLine({ level: 40, time, msg: 'rule\u001b[2J skipped\nFAKE 2026 ERROR x', file: '/tmp/a b"c', 'odd key': 'x=y', empty: '' });
    expect(line).toBe('2026-12-01T10:00:00.000Z WARN  rule\\x1b[2J skipped\\nFAKE 2026 ERROR x file="/tmp/a b\\"c" "odd key"="x=y" empty=""\n');
    expect(line.slice(0, -1)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('colour the level only when asked', () => {
    expect(prettyLine({ level: 50, time, msg: 'm' }, true)).toBe('2026-12-01T10:00:00.000Z \u001b[31mERROR\u001b[0m m\n');
    expect(prettyLine({ level: 50, time, msg: 'm' })).toBe('2026-12-01T10:00:00.000Z ERROR m\n');
  });

  it('come out of a real command with --log-format pretty (and the replay passes a planted link over)', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'execsentry-log-'));
    try {
      mkdirSync(join(stateDir, 'dead-letter'), { mode: 0o700 });
      symlinkSync('/etc/passwd', join(stateDir, 'dead-letter', 'http-0123456789abcdef.ndjson'));
      const run = spawnSync(process.execPath, [CLI, 'outputs', 'replay-dead-letter', '--state-dir', stateDir, '--log-format', 'pretty'], { encoding: 'utf8' });
      expect(run.status).toBe(0);
      const link = join(stateDir, 'dead-letter', 'http-0123456789abcdef.ndjson');
      expect(run.stderr).toContain(
        ` WARN  ${link} is not a regular file (a symbolic link), not a dead-letter file an output wrote; left alone file=${link} kind="not a regular file (a symbolic link)"\n`,
      );
      expect(run.stderr).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z WARN  /);
      expect(run.stderr).not.toMatch(/^\{/m);
      expect(readlinkSync(link)).toBe('/etc/passwd');
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
