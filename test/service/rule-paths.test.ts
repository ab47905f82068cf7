import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { BUILTIN_RULES_PATH } from '../../src/rules/index.js';
import { rulePathsToLoad } from '../../src/service/rule-paths.js';
import { describeAsRoot } from '../helpers/privilege.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'execsentry-rule-paths-'));
  mkdirSync(join(dir, 'empty'));
  mkdirSync(join(dir, 'hidden-only'));
  writeFileSync(join(dir, 'hidden-only', '.keep'), '');
  cpSync(BUILTIN_RULES_PATH, join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'rule.toml'), '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const describe_ = (paths: string[]) => (index: number) => `config c.json: rules[${index}] = ${JSON.stringify(paths[index])}`;

async function refusal(paths: string[], options: { locate?: (path: string) => string; aboutToCreate?: string[] } = {}): Promise<string> {
  try {
    await rulePathsToLoad(paths, { describe: describe_(paths), ...options });
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error('not refused');
}

describe('rulePathsToLoad', () => {
  it('hands files and directories with entries to the loader, in order, and passes over empty directories', async () => {
    const paths = [join(dir, 'empty'), join(dir, 'rules'), join(dir, 'hidden-only'), join(dir, 'rule.toml')];
    expect(await rulePathsToLoad(paths, { describe: describe_(paths) })).toEqual({
      load: [join(dir, 'rules'), join(dir, 'rule.toml')],
      empty: [join(dir, 'empty'), join(dir, 'hidden-only')],
    });
    expect(await rulePathsToLoad([], { describe: describe_([]) })).toEqual({ load: [], empty: [] });
  });

  it('refuses a path that does not exist, naming where it was configured', async () => {
    const paths = [join(dir, 'rules'), join(dir, 'rulez')];
    expect(await refusal(paths)).toBe(`config c.json: rules[1] = ${JSON.stringify(join(dir, 'rulez'))}: no such file or directory (ENOENT)`);
  });

  it('refuses when nothing but empty directories is configured: there would be no rule to run', async () => {
    const paths = [join(dir, 'empty'), join(dir, 'hidden-only')];
    expect(await refusal(paths)).toBe(`config c.json: rules[0] = ${JSON.stringify(join(dir, 'empty'))}: an empty directory, and no other rules path holds anything: no rule to run`);
  });

  it('looks paths up where `locate` says, and takes a directory about to be created as empty', async () => {
    const locate = (path: string): string => join(dir, path);
    expect(await rulePathsToLoad(['/rules', '/rules.d'], { describe: describe_([]), locate, aboutToCreate: ['/rules.d'] })).toEqual({
      load: [join(dir, 'rules')],
      empty: ['/rules.d'],
    });
    expect(await refusal(['/rules', '/missing'], { locate })).toBe(`config c.json: rules[1] = "/missing": ${join(dir, 'missing')}: no such file or directory (ENOENT)`);
  });
});

// The capabilities are checked before the rules: only root gets as far.
describeAsRoot('execsentry run: a rules path that does not exist', () => {
  it('stops the agent with exit 2 and one line naming the config file and the entry', () => {
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ rules: [join(dir, 'empty'), '/etc/execsentry/rulez'], stateDir: join(dir, 'state'), runtimeDir: join(dir, 'run') }));
    const run = spawnSync(process.execPath, [fileURLToPath(new URL('../../dist/cli.js', import.meta.url)), 'run', '--config', config], { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr).toBe(`execsentry: config ${config}: rules[1] = "/etc/execsentry/rulez": no such file or directory (ENOENT)\n`);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
  });
});
