import { spawnSync } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Alert } from '../../src/ecs/types.js';
import { expectEcsConformant } from '../engine/ecs.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { privateShell, regularUser, removeDir, runInPty, runWithoutTerminal, sharedTempDir, startAgent, type RunningAgent } from './harness.js';

const RULE_ID = '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb';
const RULE_NAME = 'Unusual Interactive Shell Launched from System User';

const byExecutable =
  (executable: string) =>
  (alert: Alert): boolean =>
    alert.process.executable === executable;

const byArg =
  (marker: string) =>
  (alert: Alert): boolean =>
    alert.process.args?.includes(marker) === true;

describeAsRoot('execsentry run, end to end: real shells as real users in real terminals', () => {
  let dir: string;
  let agents: RunningAgent[] = [];
  let testNumber = 0;

  beforeAll(() => {
    dir = sharedTempDir('execsentry-e2e-');
  });

  afterAll(async () => {
    for (const agent of agents) await agent.stop('SIGKILL');
    removeDir(dir);
  });

  /** Each test its own state directory: a fresh history nobody else writes to. */
  async function agentWithFreshState(
    stateDir = join(dir, `state-${++testNumber}`),
    args: string[] = [],
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ agent: RunningAgent; stateDir: string }> {
    const agent = await startAgent(['--state-dir', stateDir, ...args], env);
    agents.push(agent);
    return { agent, stateDir };
  }

  /**
   * A positive control: an interactive shell as daemon from a never-seen executable, and its alert. Alerts
   * leave the agent in event order, so once it is in, every earlier exec has been judged.
   */
  async function control(agent: RunningAgent, name: string): Promise<void> {
    const shell = privateShell(dir, '/bin/bash', name);
    expect((await runInPty(`runuser -u daemon -- ${shell} -i`, 'exit\n')).status).toBe(0);
    await agent.waitForAlert(byExecutable(shell));
  }

  async function stop(agent: RunningAgent): Promise<void> {
    const { code, ms } = await agent.stop();
    agents = agents.filter((running) => running !== agent);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5_000);
  }

  it('interactive bash as daemon: exactly one alert; the same again: none; after an agent restart: none', { timeout: 90_000 }, async () => {
    const { agent, stateDir } = await agentWithFreshState();
    const shell = privateShell(dir, '/bin/bash', 'bash-first');
    const run = await runInPty(`runuser -u daemon -- ${shell} -i`, 'exit\n');
    expect(run.status).toBe(0);

    const alert = await agent.waitForAlert(byExecutable(shell));
    expect(alert).toMatchObject({
      message: RULE_NAME,
      event: { kind: 'alert', module: 'execsentry', dataset: 'execsentry.alerts', category: ['process'], type: ['start'], action: 'exec', severity: 21, risk_score: 21 },
      rule: { id: RULE_ID, name: RULE_NAME, version: '1' },
      process: { executable: shell, name: 'bash-first', interactive: true, args: [shell, '-i'], user: { id: '1', name: 'daemon' } },
      user: { id: '1', name: 'daemon' },
      host: { os: { type: 'linux' } },
      threat: { tactic: { id: ['TA0005'] }, technique: { id: ['T1564'], subtechnique: { id: ['T1564.002'] } } },
      execsentry: { rule: { type: 'new_terms' }, new_terms: { 'process.executable': shell } },
    });
    expect(alert.process.parent?.executable).toEqual(expect.any(String));
    expect(alert.process.tty?.char_device.major).toEqual(expect.any(Number));
    // Every field of a real alert is ECS with its type, or execsentry.*.
    expectEcsConformant(alert);

    expect((await runInPty(`runuser -u daemon -- ${shell} -i`, 'exit\n')).status).toBe(0);
    await control(agent, 'bash-control-1');
    expect(agent.alerts.filter(byExecutable(shell))).toHaveLength(1);
    await stop(agent);

    const restarted = (await agentWithFreshState(stateDir)).agent;
    expect((await runInPty(`runuser -u daemon -- ${shell} -i`, 'exit\n')).status).toBe(0);
    await control(restarted, 'bash-control-2');
    expect(restarted.alerts.filter(byExecutable(shell))).toEqual([]);
    await stop(restarted);
  });

  it('/usr/bin/dash interactive as daemon: one alert; the same shell without a terminal: none', { timeout: 60_000 }, async () => {
    const { agent } = await agentWithFreshState();
    const withoutTerminal = `no-terminal-${process.pid}`;
    const withTerminal = `terminal-${process.pid}`;
    expect((await runWithoutTerminal(['runuser', '-u', 'daemon', '--', '/usr/bin/dash', '-i', '-s', withoutTerminal], 'exit\n')).status).toBe(0);
    expect((await runInPty(`runuser -u daemon -- /usr/bin/dash -i -s ${withTerminal}`, 'exit\n')).status).toBe(0);

    const alert = await agent.waitForAlert(byArg(withTerminal));
    expect(alert).toMatchObject({
      rule: { id: RULE_ID },
      process: { executable: '/usr/bin/dash', interactive: true, user: { name: 'daemon' } },
      execsentry: { new_terms: { 'process.executable': '/usr/bin/dash' } },
    });
    await control(agent, 'bash-control-3');
    expect(agent.alerts.filter(byArg(withTerminal))).toHaveLength(1);
    expect(agent.alerts.filter(byArg(withoutTerminal))).toEqual([]);
    await stop(agent);
  });

  it('interactive shells as root or as a regular user: none', { timeout: 60_000 }, async () => {
    const user = regularUser();
    try {
      const { agent } = await agentWithFreshState();
      const asRoot = privateShell(dir, '/bin/bash', 'bash-root');
      const asUser = privateShell(dir, '/bin/bash', 'bash-user');
      expect((await runInPty(`${asRoot} -i`, 'exit\n')).status).toBe(0);
      expect((await runInPty(`runuser -u ${user.name} -- ${asUser} -i`, 'exit\n')).status).toBe(0);
      await control(agent, 'bash-control-4');
      expect(agent.alerts.filter(byExecutable(asRoot))).toEqual([]);
      expect(agent.alerts.filter(byExecutable(asUser))).toEqual([]);
      await stop(agent);
    } finally {
      user.remove();
    }
  });

  it('excluded programs (sed, grep) interactive as daemon: none', { timeout: 60_000 }, async () => {
    const { agent } = await agentWithFreshState();
    const sed = privateShell(sharedTempDir('execsentry-e2e-sed-'), '/usr/bin/sed', 'sed');
    const grep = privateShell(sharedTempDir('execsentry-e2e-grep-'), '/usr/bin/grep', 'grep');
    try {
      expect((await runInPty(`runuser -u daemon -- ${sed} q`, 'line\n')).status).toBe(0);
      expect((await runInPty(`runuser -u daemon -- ${grep} -m1 .`, 'line\n')).status).toBe(0);
      // The same sed under another name does alert: the silence above is the rule's exclusion by name.
      const renamed = privateShell(dir, '/usr/bin/sed', 'sed-renamed');
      expect((await runInPty(`runuser -u daemon -- ${renamed} q`, 'line\n')).status).toBe(0);
      await agent.waitForAlert(byExecutable(renamed));
      expect(agent.alerts.filter(byExecutable(sed))).toEqual([]);
      expect(agent.alerts.filter(byExecutable(grep))).toEqual([]);
      await stop(agent);
    } finally {
      removeDir(join(sed, '..'));
      removeDir(join(grep, '..'));
    }
  });

  it('SIGHUP reloads the rules; an invalid new set is rejected and the old one keeps running', { timeout: 60_000 }, async () => {
    const rulesDir = sharedTempDir('execsentry-e2e-rules-');
    const ruleFile = join(rulesDir, 'marker.ndjson');
    const markerRule = (marker: string): string =>
      JSON.stringify({
        rule_id: `marker-${marker}`,
        name: `Marker ${marker}`,
        description: 'an exec with a marker argument',
        type: 'query',
        query: `event.action:exec and process.args:"${marker}"`,
        severity: 'medium',
        risk_score: 47,
      });
    /** Replaces the rule file the way an editor or a deployment should: whole, by rename. */
    const writeRules = (text: string): void => {
      writeFileSync(`${ruleFile}.tmp`, text);
      renameSync(`${ruleFile}.tmp`, ruleFile);
    };
    const first = `first-${process.pid}-${Date.now()}`;
    const second = `second-${process.pid}-${Date.now()}`;
    try {
      writeRules(markerRule(first));
      const { agent } = await agentWithFreshState(undefined, ['--rules', rulesDir]);
      const marked = (marker: string) => (alert: Alert) => alert.process.args?.includes(marker) === true && alert.rule.id === `marker-${marker}`;
      // A process that lives a moment (see INPUT_DELAY_MS in the harness) with the marker in its argv.
      const echo = (marker: string): void => void spawnSync('/bin/sh', ['-c', 'sleep 0.3', marker]);
      echo(first);
      await agent.waitForAlert(marked(first));

      writeRules('{"rule_id": "broken", ');
      agent.child.kill('SIGHUP');
      await waitForLog(agent, (msg) => msg.startsWith('rule reload rejected, the previous rules keep running: '));
      echo(first);
      await waitForCount(agent, marked(first), 2);

      writeRules(markerRule(second));
      agent.child.kill('SIGHUP');
      await waitForLog(agent, (msg) => msg === 'rules reloaded');
      echo(first);
      echo(second);
      await agent.waitForAlert(marked(second));
      expect(agent.alerts.filter(marked(first))).toHaveLength(2);
      await stop(agent);
    } finally {
      removeDir(rulesDir);
    }
  });

  it('a periodic stats line; SIGINT: stops within 5 s with exit 0 and a final stats line', { timeout: 30_000 }, async () => {
    const { agent } = await agentWithFreshState(undefined, [], { EXECSENTRY_STATS_INTERVAL_SECONDS: '1' });
    await control(agent, 'bash-control-6');
    await waitForLog(agent, (msg) => msg === 'stats');
    expect(agent.logs.find((log) => log['msg'] === 'stats')).toMatchObject({
      events: expect.any(Number),
      lost: expect.any(Number),
      alerts: expect.any(Number),
      suppressed: expect.any(Number),
      storeTuples: expect.any(Number),
      storeBytes: expect.any(Number),
    });
    const { code, ms } = await agent.stop('SIGINT');
    agents = agents.filter((running) => running !== agent);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5_000);
    const final = agent.logs.find((log) => log['msg'] === 'final stats');
    expect(final).toMatchObject({
      events: expect.any(Number),
      lost: expect.any(Number),
      alerts: expect.any(Number),
      suppressed: 0,
      storeTuples: 1,
      storeBytes: expect.any(Number),
    });
    expect(final!['alerts']).toBeGreaterThanOrEqual(1);
    expect(final!['events']).toBeGreaterThanOrEqual(1);
  });
});

async function waitForLog(agent: RunningAgent, match: (msg: string) => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!agent.logs.some((log) => typeof log['msg'] === 'string' && match(log['msg']))) {
    if (Date.now() > deadline) throw new Error(`no matching log line within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitForCount(agent: RunningAgent, match: (alert: Alert) => boolean, count: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (agent.alerts.filter(match).length < count) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} matching alerts within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
