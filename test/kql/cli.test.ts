import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RULE_QUERY, matchingEvent, nonMatchingEvent } from '../../bench/kql-fixtures.js';

/** Spawns the built CLI (`npx tsc -p tsconfig.json` first). */
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const kql = (args: string[], input?: string | Buffer) => spawnSync(process.execPath, [cli, 'kql', ...args], { input: typeof input === 'string' ? Buffer.from(input) : input });
const text = (buffer: Buffer) => buffer.toString('utf8');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'execsentry-kql-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = [
  JSON.stringify({ process: { name: 'bash', pid: 1 } }),
  JSON.stringify({ 'process.name': 'sh', 'process.pid': 2 }),
  JSON.stringify({ process: { name: ['zsh', 'bash'], pid: 3 } }),
  JSON.stringify({ process: { name: 'python3' } }),
];

describe('execsentry kql', () => {
  it('prints the matching lines of a file unchanged and in order', () => {
    const file = join(dir, 'events.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const run = kql(['process.name:bash', file]);
    expect(run.status).toBe(0);
    expect(text(run.stdout)).toBe(`${lines[0]}\n${lines[2]}\n`);
    expect(text(run.stderr)).toBe('');
  });

  it('reads stdin when no file is given, or "-"', () => {
    const input = lines.join('\n');
    expect(text(kql(['process.pid >= 2'], input).stdout)).toBe(`${lines[1]}\n${lines[2]}\n`);
    expect(text(kql(['process.pid >= 2', '-'], input).stdout)).toBe(`${lines[1]}\n${lines[2]}\n`);
  });

  it('keeps matching lines byte for byte, invalid UTF-8, escapes and CRLF included', () => {
    const weird = Buffer.concat([Buffer.from('{"process":{"name":"bash","args":["\\u001b[31m","'), Buffer.from([0xff, 0xfe]), Buffer.from('"]}}\r\n')]);
    const other = Buffer.from('{"process":{"name":"ls"}}\n');
    const run = kql(['process.name:bash'], Buffer.concat([other, weird]));
    expect(run.status).toBe(0);
    expect(Buffer.compare(run.stdout, weird)).toBe(0);
  });

  it('--count prints only the number of matches', () => {
    const run = kql(['process.name:*sh', '--count'], lines.join('\n'));
    expect(run.status).toBe(0);
    expect(text(run.stdout)).toBe('3\n');
  });

  it('reports lines that are not JSON objects with their line number, goes on, and exits 1', () => {
    const input = [lines[0], 'not json', '', '[1,2]', lines[2], '{"truncated":'].join('\n');
    const run = kql(['process.name:bash'], input);
    expect(run.status).toBe(1);
    expect(text(run.stdout)).toBe(`${lines[0]}\n${lines[2]}\n`);
    const stderr = text(run.stderr);
    expect(stderr).toContain('line 2: not valid JSON');
    expect(stderr).toContain('line 4: not a JSON object');
    expect(stderr).toContain('line 6: not valid JSON');
    expect(stderr).not.toContain('line 3');
    expect(stderr).not.toContain('    at ');
  });

  it('--check exits 0 for a valid query and prints nothing', () => {
    const run = kql([DEFAULT_RULE_QUERY, '--check']);
    expect(run.status).toBe(0);
    expect(text(run.stdout)).toBe('');
  });

  it('--check exits 2 with one line naming line, column, found and expected', () => {
    const run = kql(['process.name:bash and\n  (user.name:root', '--check']);
    expect(run.status).toBe(2);
    expect(text(run.stderr)).toBe('execsentry: KQL syntax error at line 2, column 18: expected ")" but found end of input\n');
  });

  it('refuses a bad query before reading any input (exit 2)', () => {
    const run = kql(['a:(b'], lines.join('\n'));
    expect(run.status).toBe(2);
    expect(text(run.stdout)).toBe('');
    expect(text(run.stderr)).toMatch(/^execsentry: KQL syntax error at line 1, column 5/);
  });

  it('names a file it cannot read (exit 2)', () => {
    const run = kql(['a:b', join(dir, 'missing.ndjson')]);
    expect(run.status).toBe(2);
    expect(text(run.stderr)).toBe(`execsentry: cannot read ${join(dir, 'missing.ndjson')}: no such file or directory (ENOENT)\n`);
  });

  it('runs the built-in rule over realistic events', () => {
    const input = [nonMatchingEvent(), matchingEvent(), nonMatchingEvent()].map((doc) => JSON.stringify(doc)).join('\n');
    const run = kql([DEFAULT_RULE_QUERY], input);
    expect(run.status).toBe(0);
    expect(text(run.stdout)).toBe(`${JSON.stringify(matchingEvent())}\n`);
  });

  it('stops quietly with exit 0 when the reader of its output goes away (| head)', () => {
    const file = join(dir, 'many.ndjson');
    writeFileSync(file, `${Array.from({ length: 200_000 }, (_, i) => JSON.stringify({ process: { name: 'bash', pid: i } })).join('\n')}\n`);
    const run = spawnSync('bash', ['-c', `"${process.execPath}" "${cli}" kql process.name:bash "${file}" | head -n 1; exit "\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    expect(run.stdout).toBe(`${JSON.stringify({ process: { name: 'bash', pid: 0 } })}\n`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('handles a large input with a last line lacking its newline', () => {
    const many = Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ n: i, process: { pid: i } }));
    const run = kql(['process.pid >= 19998', '--count'], many.join('\n'));
    expect(text(run.stdout)).toBe('2\n');
  });
});
