import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli.js';
import { commandPath, EXAMPLES } from '../src/commands/examples.js';
import { generatedDocs } from '../src/docs/generate.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const packageRoot = fileURLToPath(new URL('../', import.meta.url));

function leaves(command: Command): Command[] {
  return command.commands.flatMap((sub) => (sub.commands.length > 0 ? leaves(sub) : [sub]));
}

describe('execsentry command line', () => {
  it('prints help and exits 0', () => {
    const run = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: execsentry');
  });

  it('rejects an unknown option with exit code 2', () => {
    const run = spawnSync(process.execPath, [cli, '--no-such-option'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("unknown option '--no-such-option'");
  });

  it('every command\'s --help ends with an example of it', () => {
    const commands = leaves(buildProgram()).map(commandPath);
    expect(commands.length).toBeGreaterThan(10);
    for (const command of commands) {
      const run = spawnSync(process.execPath, [cli, ...command.split(' '), '--help'], { encoding: 'utf8' });
      expect({ command, status: run.status }).toEqual({ command, status: 0 });
      const examples = run.stdout.split(/\nExamples?:\n/)[1];
      expect({ command, examples: examples !== undefined }).toEqual({ command, examples: true });
      // each example runs this very command
      for (const line of examples!.trim().split('\n').filter((text) => text.includes('execsentry ')))
        expect({ command, line }).toEqual({ command, line: expect.stringMatching(new RegExp(`execsentry ${command}\\b|systemctl|execsentry events \\|`)) });
    }
    // no example is written for a command that does not exist
    for (const path of Object.keys(EXAMPLES)) expect(commands).toContain(path);
  });
});

describe('the man page and the bash completion', () => {
  it('are what `npm run docs:man` writes now (run it after changing a command or an option)', () => {
    for (const { path, content } of generatedDocs()) expect({ path, content: readFileSync(join(packageRoot, path), 'utf8') }).toEqual({ path, content });
  });

  it('the man page renders without warnings and holds every command, option and config setting', () => {
    const [man] = generatedDocs();
    const render = spawnSync('man', ['--warnings', '-l', '-'], { input: man!.content, encoding: 'utf8', env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '' } });
    expect(render.status).toBe(0);
    expect(render.stderr).toBe('');
    const text = render.stdout.replace(/.\u0008/g, '');
    for (const command of leaves(buildProgram())) {
      expect(text).toContain(`execsentry ${commandPath(command)} `);
      for (const option of command.options) expect(text).toContain(option.long!);
    }
    expect(text).toMatch(/stateDir \(EXECSENTRY_STATE_DIR, default "\/var\/lib\/execsentry"\)/);
    expect(text).toContain('spoolMaxBytes');
    expect(text).toContain('sudo runuser -u execsentry -- execsentry outputs replay-dead-letter --config /etc/execsentry/config.json');
  });

  it('bash completes commands, subcommands, options, choices and file names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'execsentry-completion-'));
    try {
      writeFileSync(join(dir, 'my rules.toml'), '');
      writeFileSync(join(dir, 'events.ndjson'), '');
      const [, completion] = generatedDocs();
      const complete = (...words: string[]): string[] => {
        const script = `${completion!.content}\nCOMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _execsentry; printf '%s\\n' "\${COMPREPLY[@]}"`;
        const run = spawnSync('bash', ['-c', script, 'bash', ...words], { encoding: 'utf8', cwd: dir });
        expect(run.stderr).toBe('');
        return run.stdout.split('\n').filter((line) => line !== '');
      };
      expect(complete('execsentry', 'ru')).toEqual(['rules', 'run']);
      expect(complete('execsentry', 'rules', 't')).toEqual(['test']);
      expect(complete('execsentry', 'outputs', '')).toEqual(['replay-dead-letter']);
      expect(complete('execsentry', 'run', '--st')).toEqual(['--state-dir']);
      expect(complete('execsentry', 'run', '--rules', 'x', '--format', '')).toEqual(['json', 'pretty']);
      expect(complete('execsentry', 'rules', 'test', '--rules', 'my')).toEqual(['my rules.toml']);
      expect(complete('execsentry', 'rules', 'test', '--events', 'ev')).toEqual(['events.ndjson']);
      // what is typed is compared, never run
      expect(complete('execsentry', '$(touch pwned)', '`touch pwned`', '')).toEqual(expect.arrayContaining(['run', 'status']));
      expect(spawnSync('ls', [dir], { encoding: 'utf8' }).stdout).not.toContain('pwned');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
