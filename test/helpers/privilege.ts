import { describe } from 'vitest';

export const isRoot = process.getuid?.() === 0;

/**
 * A describe block that needs root (netlink process connector, other users' /proc, runuser). When not
 * root it is skipped with the reason in its title and one line on stderr, so the skip is never silent.
 */
export function describeAsRoot(name: string, body: () => void): void {
  if (isRoot) {
    describe(name, body);
    return;
  }
  process.stderr.write(`SKIPPED (needs root): ${name}\n`);
  describe.skip(`${name} [skipped: needs root]`, body);
}
