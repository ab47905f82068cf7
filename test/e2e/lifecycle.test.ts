import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Alert, ProcessEvent } from '../../src/ecs/types.js';
import { expectEcsConformant } from '../engine/ecs.js';
import { eqlToml } from '../helpers/eql-rule.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { removeDir, sharedTempDir, startAgent, type RunningAgent } from './harness.js';

/**
 * Fork and end events through `execsentry run`: produced because a loaded rule names them, evaluated by the
 * rules that name them (and only those), joined with execs by an EQL sequence; and not produced at all with
 * the built-in rule alone.
 */

const tag = `${process.pid}`;
const MARKERS = { fork: `lcfork-${tag}`, sequence: `lcseq-${tag}` };
const RULES = {
  fork: { id: `lc-fork-${tag}`, name: 'E2E fork of the marker shell' },
  witness: { id: `lc-witness-${tag}`, name: 'E2E any event of the marker shell' },
  sequence: { id: `lc-sequence-${tag}`, name: 'E2E exec then end with 3' },
};

const ofRule = (ruleId: string) => (alert: Alert) => alert.rule.id === ruleId;

function run(argv: string[]): Promise<{ pid: number; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ pid: child.pid!, code }));
  });
}

const finalSensorStats = (agent: RunningAgent) => (agent.logs.find((log) => log['msg'] === 'final stats') as { sensor?: Record<string, number> } | undefined)?.sensor;

describeAsRoot('execsentry run, end to end: fork and end events', () => {
  let dir: string;
  let agent: RunningAgent;

  beforeAll(async () => {
    dir = sharedTempDir('execsentry-e2e-lifecycle-');
    const rulesDir = join(dir, 'rules');
    mkdirSync(rulesDir, { mode: 0o755 });
    writeFileSync(join(rulesDir, 'fork.toml'), eqlToml(RULES.fork, `process where event.action == "fork" and process.args == "${MARKERS.fork}"`));
    // names no action: sees execs only, though fork and end events are produced for the other rules
    writeFileSync(join(rulesDir, 'witness.toml'), eqlToml(RULES.witness, `process where process.args == "${MARKERS.fork}"`));
    writeFileSync(
      join(rulesDir, 'sequence.toml'),
      eqlToml(
        RULES.sequence,
        [
          'sequence by process.entity_id with maxspan=30s',
          `  [process where event.type == "start" and process.args == "${MARKERS.sequence}"]`,
          '  [process where event.type == "end" and process.exit_code == 3]',
        ].join('\n'),
      ),
    );
    agent = await startAgent(['--rules', rulesDir, '--state-dir', join(dir, 'state')]);
  });

  afterAll(async () => {
    const stopped = await agent?.stop();
    if (dir !== undefined) removeDir(dir);
    expect(stopped?.code).toBe(0);
  });

  it('a rule on event.action "fork" gets the fork events, an EQL sequence joins an exec with its end, a rule naming neither sees the exec only', { timeout: 30_000 }, async () => {
    // `exit 0` last: dash would otherwise exec the last command in place of itself
    const shell = await run(['/bin/sh', '-c', '( sleep 0.2 ); exit 0', 'sh', MARKERS.fork]);
    expect(shell.code).toBe(0);
    const fork = await agent.waitForAlert((alert) => ofRule(RULES.fork.id)(alert) && alert.process.parent?.pid === shell.pid);
    expect(fork.event).toMatchObject({ kind: 'alert', category: ['process'], type: ['start'], action: 'fork' });
    expect(fork.process.pid).not.toBe(shell.pid);
    expect(fork.process.args).toEqual(['/bin/sh', '-c', '( sleep 0.2 ); exit 0', 'sh', MARKERS.fork]);
    expectEcsConformant(fork);

    const ended = await run(['/bin/sh', '-c', 'sleep 0.05; exit 3', 'sh', MARKERS.sequence]);
    expect(ended.code).toBe(3);
    const sequence = await agent.waitForAlert((alert) => ofRule(RULES.sequence.id)(alert) && alert.process.pid === ended.pid);
    const [exec, end] = (sequence.execsentry.sequence?.events ?? []) as ProcessEvent[];
    expect(exec?.event).toMatchObject({ action: 'exec', type: ['start'] });
    expect(end?.event).toMatchObject({ action: 'end', type: ['end'] });
    expect(exec?.process.pid).toBe(ended.pid);
    expect(end?.process).toMatchObject({ pid: ended.pid, entity_id: exec?.process.entity_id, exit_code: 3, args: exec?.process.args });
    expect(sequence.execsentry.sequence?.join_keys).toEqual([exec?.process.entity_id]);
    // the alert is its last event's: the end
    expect(sequence.event.action).toBe('end');
    expect(sequence.process.exit_code).toBe(3);
    expect(sequence.process.end).toEqual(expect.any(String));
    expectEcsConformant(sequence);

    // alerts leave in event order: the shell's fork and end were judged before the sequence's events
    const witnessed = agent.alerts.filter(ofRule(RULES.witness.id));
    expect(witnessed.map((alert) => [alert.event.action, alert.process.pid])).toEqual([['exec', shell.pid]]);
  });

  it('counts the fork and end events it produced', async () => {
    await agent.stop();
    expect(finalSensorStats(agent)).toMatchObject({ forkEvents: expect.any(Number), endEvents: expect.any(Number) });
    expect(finalSensorStats(agent)!['forkEvents']).toBeGreaterThan(0);
    expect(finalSensorStats(agent)!['endEvents']).toBeGreaterThan(0);
  });

  it('a rule reload (SIGHUP) that adds a rule naming fork events starts producing them', { timeout: 30_000 }, async () => {
    const rulesDir = join(dir, 'reload-rules');
    mkdirSync(rulesDir, { mode: 0o755 });
    const marker = `lcreload-${tag}`;
    writeFileSync(join(rulesDir, 'witness.toml'), eqlToml({ id: `lc-reload-witness-${tag}`, name: 'E2E reload witness' }, `process where process.args == "${marker}"`));
    const reloading = await startAgent(['--rules', rulesDir, '--state-dir', join(dir, 'state-reload')]);
    try {
      expect(reloading.logs.find((log) => String(log['msg']).startsWith('sensor started'))).toMatchObject({ events: ['exec'] });
      const rule = { id: `lc-reload-fork-${tag}`, name: 'E2E fork after reload' };
      writeFileSync(join(rulesDir, 'fork.toml'), eqlToml(rule, `process where event.action == "fork" and process.args == "${marker}"`));
      reloading.child.kill('SIGHUP');
      const deadline = Date.now() + 10_000;
      while (!reloading.logs.some((log) => log['msg'] === 'rules reloaded')) {
        if (Date.now() > deadline) throw new Error('no "rules reloaded" within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(reloading.logs.find((log) => log['msg'] === 'rules reloaded')).toMatchObject({ sensorEvents: ['exec', 'fork'] });
      const shell = await run(['/bin/sh', '-c', '( sleep 0.1 ); exit 0', 'sh', marker]);
      const fork = await reloading.waitForAlert((alert) => alert.rule.id === rule.id && alert.process.parent?.pid === shell.pid);
      expect(fork.event.action).toBe('fork');
    } finally {
      expect((await reloading.stop()).code).toBe(0);
    }
  });

  it('with the built-in rule alone it produces none', { timeout: 30_000 }, async () => {
    const builtIn = await startAgent(['--state-dir', join(dir, 'state-builtin')]);
    try {
      for (let i = 0; i < 3; i++) expect((await run(['/bin/sh', '-c', '( sleep 0.05 ); exit 3'])).code).toBe(3);
    } finally {
      expect((await builtIn.stop()).code).toBe(0);
    }
    const stats = finalSensorStats(builtIn);
    expect(stats?.['events']).toBeGreaterThan(0);
    expect(stats).toMatchObject({ forkEvents: 0, endEvents: 0 });
    expect(stats?.['forks']).toBeGreaterThan(0);
  });
});
