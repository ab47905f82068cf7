import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeAsRoot } from '../helpers/privilege.js';

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

/** Every test file that runs part of the project as another user (setpriv, runuser). */
const AS_OTHER_USERS = ['test/service/least-privilege.test.ts', 'test/service/install.test.ts', 'test/store/corruption.test.ts', 'test/sensor/live.test.ts'];
/** And those that find their fixtures by path, which a URL's pathname would spell percent-encoded. */
const BY_PATH = ['test/outputs/stdout.test.ts', 'test/outputs/crash.test.ts'];

/**
 * A user's clone may sit where only its owner can enter (a clone under /root, a 0700 mkdtemp), under a path
 * with spaces and non-ASCII characters. The tests that run code as another user must pass there too: run
 * them from such a copy of this checkout, where they cannot reach the checkout's own files.
 */
describeAsRoot('a checkout only its owner can enter, at a path with spaces', () => {
  let home: string;
  let clone: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'execsentry-private-home-'));
    clone = join(home, 'my checkouts', 'exec sentry ✓');
    for (const path of ['package.json', 'README.md', 'tsconfig.json', 'vitest.config.ts', 'src', 'dist', 'build/Release/execsentry.node', 'rules', 'systemd', 'share', 'test']) {
      mkdirSync(dirname(join(clone, path)), { recursive: true });
      cpSync(join(CHECKOUT, path), join(clone, path), { recursive: true });
    }
    symlinkSync(join(CHECKOUT, 'node_modules'), join(clone, 'node_modules'));
    // shared/ lies beside a checkout (the ECS field list the conformance tests read)
    symlinkSync(join(CHECKOUT, '..', 'shared'), join(dirname(clone), 'shared'));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('runs every test that acts as another user, all passing, none skipped', { timeout: 180_000 }, () => {
    const run = spawnSync(process.execPath, [join(CHECKOUT, 'node_modules/vitest/vitest.mjs'), 'run', ...AS_OTHER_USERS, ...BY_PATH], {
      cwd: clone,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      timeout: 170_000,
    });
    const summary = /Tests\s+(.*)/.exec(run.stdout)?.[1] ?? '';
    expect(summary, run.stdout.slice(-3000) + run.stderr.slice(-2000)).toMatch(/^\d+ passed/);
    expect(summary).not.toMatch(/failed|skipped/);
    expect(run.status).toBe(0);
  });
});
