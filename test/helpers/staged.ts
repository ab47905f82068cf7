import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The built package, copied where any user can reach it, for tests that run it as another user (setpriv,
 * runuser). A checkout may live where only its owner can enter — a clone under /root, a 0700 mkdtemp — and
 * such a test must test the code, not where it was cloned. The copy holds what running needs (package.json,
 * dist/, the addon, rules/, systemd/, share/, the production dependencies and the test fixtures that run as another
 * user), is made once per test process, and is removed when the process exits.
 */

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

let staged: string | undefined;

export function stagedPackage(): string {
  if (staged !== undefined) return staged;
  const root = mkdtempSync(join(tmpdir(), 'execsentry-staged-'));
  chmodSync(root, 0o755);
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  for (const path of ['package.json', 'dist', 'build/Release/execsentry.node', 'rules', 'systemd', 'share', 'test/store/fixtures']) {
    mkdirSync(dirname(join(root, path)), { recursive: true, mode: 0o755 });
    cpSync(join(CHECKOUT, path), join(root, path), { recursive: true, dereference: true });
  }
  for (const path of productionPackages()) cpSync(path, join(root, relative(CHECKOUT, path)), { recursive: true, dereference: true });
  // mkdtemp's directories are 0700 below the root too, when cpSync made them: open the way down
  execFileSync('chmod', ['-R', 'a+rX', root]);
  staged = root;
  return root;
}

/**
 * The directories of the production dependencies, transitively, found as Node resolves them (the nearest
 * node_modules up from the package that depends on them).
 */
function productionPackages(): string[] {
  const found = new Set<string>();
  const visit = (packageDir: string): void => {
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { dependencies?: object; optionalDependencies?: object };
    for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      const dir = resolvePackage(packageDir, name);
      if (dir === undefined || found.has(dir)) continue;
      found.add(dir);
      visit(dir);
    }
  };
  visit(CHECKOUT);
  return [...found];
}

function resolvePackage(from: string, name: string): string | undefined {
  for (let dir = from; relative(CHECKOUT, dir).startsWith('..') === false; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === dirname(dir)) break;
  }
  // an optional dependency that is not installed (another platform's)
  return undefined;
}

/** A path inside the staged copy: `stagedPath('dist/cli.js')`. */
export function stagedPath(path: string): string {
  return join(stagedPackage(), path);
}
