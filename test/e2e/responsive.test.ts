import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeAsRoot } from '../helpers/privilege.js';
import { kibanaRule } from '../rules/fixtures.js';
import { removeDir, startAgent } from './harness.js';

/**
 * An attacker on the host controls command lines: up to sensor.maxArgsBytes (64 KiB) of words per exec.
 * A rule reading an analyzed text field must not let them stall the agent (it used to: five such execs
 * held the event loop for 6.4 s, long enough for the kernel to drop records).
 */
describeAsRoot('the live agent under hostile command lines', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'execsentry-responsive-'));
  });
  afterAll(() => removeDir(dir));

  it('evaluates a text-field rule on 64 KiB command lines without stalling its event loop or losing records', { timeout: 90_000 }, async () => {
    const rules = join(dir, 'text-rule.ndjson');
    writeFileSync(
      rules,
      JSON.stringify(
        kibanaRule({ type: 'query', rule_id: 'text-field-rule', query: 'process.command_line.text:"no such phrase anywhere"', new_terms_fields: undefined, history_window_start: undefined }),
      ) + '\n',
    );
    const agent = await startAgent(['--rules', rules, '--state-dir', join(dir, 'state')], { EXECSENTRY_STATS_INTERVAL_SECONDS: '0' });
    // 13,000 words of six bytes with their NULs: over the 64 KiB the sensor keeps, so each event carries a maximal command line
    const words = Array.from({ length: 13_000 }, (_, i) => `w${(i % 997).toString(36).padStart(4, '0')}`);
    const execs = 200;
    const loop = spawnSync('bash', ['-c', `for i in $(seq ${execs}); do /bin/true "$@"; done`, 'storm', ...words], { timeout: 60_000 });
    expect(loop.status).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stopped = await agent.stop();
    expect(stopped.code).toBe(0);
    const final = agent.logs.find((log) => log['msg'] === 'final stats') as Record<string, any> | undefined;
    expect(final).toBeDefined();
    expect(final!['events']).toBeGreaterThanOrEqual(execs);
    expect(final!['lost']).toBe(0);
    // README, "Staying responsive": evaluation holds the loop at most EVALUATION_SLICE_MS (50 ms) at a
    // time; the margin is for the machine, not the agent (the unbounded version measured 6,368 ms).
    expect(final!['eventLoopDelayMs'].max).toBeLessThan(250);
  });
});
