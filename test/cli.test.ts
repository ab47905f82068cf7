import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

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
});
