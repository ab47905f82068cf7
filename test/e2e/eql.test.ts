import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Alert, ProcessEvent } from '../../src/ecs/types.js';
import { expectEcsConformant } from '../engine/ecs.js';
import { eqlToml } from '../helpers/eql-rule.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { privateShell, removeDir, sharedTempDir, startAgent, type RunningAgent } from './harness.js';

/**
 * EQL rules live: `execsentry run` with detection-rules TOML EQL rules, real execs of private copies of
 * /bin/sleep (their names are the rules' terms, so nothing else on the host can match) from private copies
 * of /bin/sh (the parents the sequences join on). A negative is judged only once a later exec's alert is in:
 * alerts leave the agent in event order, so by then every earlier exec has been evaluated.
 */

const tag = `${process.pid}`;
const NAMES = {
  shell: `eqlsh-${tag}`,
  marker: `eqlmark-${tag}`,
  first: `eqlfirst-${tag}`,
  second: `eqlsecond-${tag}`,
  spanFirst: `eqlspan1-${tag}`,
  spanSecond: `eqlspan2-${tag}`,
  untilFirst: `eqlu1-${tag}`,
  untilSecond: `eqlu2-${tag}`,
  untilStop: `eqlustop-${tag}`,
};

const RULES = {
  event: { id: `eql-e2e-event-${tag}`, name: 'E2E EQL marker exec' },
  witness: { id: `eql-e2e-witness-${tag}`, name: 'E2E EQL witness' },
  sequence: { id: `eql-e2e-sequence-${tag}`, name: 'E2E EQL first then second' },
  span: { id: `eql-e2e-span-${tag}`, name: 'E2E EQL within 2 s' },
  until: { id: `eql-e2e-until-${tag}`, name: 'E2E EQL until stop' },
};

const sequenceOf = (alert: Alert): ProcessEvent[] => (alert.execsentry.sequence?.events ?? []) as ProcessEvent[];

const ofRule =
  (ruleId: string) =>
  (alert: Alert): boolean =>
    alert.rule.id === ruleId;

describeAsRoot('execsentry run, end to end: EQL rules on real execs', () => {
  let dir: string;
  let agent: RunningAgent;
  const bin: Record<keyof typeof NAMES, string> = {} as Record<keyof typeof NAMES, string>;
  let markers = 0;

  beforeAll(async () => {
    dir = sharedTempDir('execsentry-e2e-eql-');
    for (const [key, name] of Object.entries(NAMES)) {
      bin[key as keyof typeof NAMES] = privateShell(dir, key === 'shell' || key === 'marker' ? '/bin/sh' : '/bin/sleep', name);
    }
    const rulesDir = join(dir, 'rules');
    mkdirSync(rulesDir, { mode: 0o755 });
    writeFileSync(
      join(rulesDir, 'event.toml'),
      eqlToml(RULES.event, `process where event.type == "start" and process.name == "${NAMES.marker}" and process.args : "--marker-*"`),
    );
    // every exec of a private sleep copy, to show the sequences' silences are judgements of seen execs
    const sleeps = [NAMES.first, NAMES.second, NAMES.spanFirst, NAMES.spanSecond, NAMES.untilFirst, NAMES.untilSecond, NAMES.untilStop];
    writeFileSync(join(rulesDir, 'witness.toml'), eqlToml(RULES.witness, `process where process.name in (${sleeps.map((name) => `"${name}"`).join(', ')})`));
    writeFileSync(
      join(rulesDir, 'sequence.toml'),
      eqlToml(
        RULES.sequence,
        [
          'sequence by host.id, process.parent.entity_id with maxspan=30s',
          `  [process where process.name == "${NAMES.first}"]`,
          `  [process where process.name == "${NAMES.second}"]`,
        ].join('\n'),
      ),
    );
    writeFileSync(
      join(rulesDir, 'span.toml'),
      eqlToml(
        RULES.span,
        [
          'sequence by process.parent.entity_id with maxspan=2s',
          `  [process where process.name == "${NAMES.spanFirst}"]`,
          `  [process where process.name == "${NAMES.spanSecond}"]`,
        ].join('\n'),
      ),
    );
    writeFileSync(
      join(rulesDir, 'until.toml'),
      eqlToml(
        RULES.until,
        [
          'sequence by process.parent.entity_id with maxspan=30s',
          `  [process where process.name == "${NAMES.untilFirst}"]`,
          `  [process where process.name == "${NAMES.untilSecond}"]`,
          `until [process where process.name == "${NAMES.untilStop}"]`,
        ].join('\n'),
      ),
    );
    agent = await startAgent(['--rules', rulesDir, '--state-dir', join(dir, 'state')]);
  });

  afterAll(async () => {
    const stopped = await agent?.stop();
    if (dir !== undefined) removeDir(dir);
    // the agent must have judged every event without a rule failing
    expect(stopped?.code).toBe(0);
    expect(agent?.logs.find((log) => log['msg'] === 'final stats')).toMatchObject({ evaluationErrors: 0, sequencesDropped: 0 });
  });

  /** Runs `script` in the private shell (a real parent); resolves with the shell's pid once it exited 0. */
  function shell(script: string): Promise<number> {
    return new Promise((resolve, reject) => {
      // `exit 0` last: dash would otherwise exec the last command in place of itself (no fork, another parent)
      const child = spawn(bin.shell, ['-c', `${script}; exit 0`], { stdio: ['ignore', 'inherit', 'inherit'] });
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.once('error', reject);
      child.once('exit', (code) => {
        clearTimeout(killer);
        if (code === 0) resolve(child.pid!);
        else reject(new Error(`shell script ${JSON.stringify(script)} exited with ${code}`));
      });
    });
  }

  /** A sleep that lives long enough for the sensor to read its /proc (name, args, parent). */
  const run = (path: string): string => `${path} 0.3`;

  /**
   * A later exec matched by the single-event rule, and its alert: once it is in, every exec before it has
   * been judged by every rule (alerts leave in event order).
   */
  async function barrier(): Promise<Alert> {
    const marker = `--marker-${tag}-${++markers}`;
    const pid = await new Promise<number>((resolve, reject) => {
      const child = spawn(bin.marker, ['-c', 'sleep 0.3; exit 0', marker], { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(child.pid!) : reject(new Error(`marker exited with ${code}`))));
    });
    const alert = await agent.waitForAlert((alert) => alert.rule.id === RULES.event.id && alert.process.args?.includes(marker) === true);
    expect(alert.process.pid).toBe(pid);
    return alert;
  }

  const witnessed = (pid: number): Promise<Alert> => agent.waitForAlert((alert) => alert.rule.id === RULES.witness.id && alert.process.pid === pid);

  /** The witness alerts of the execs whose parent is `shellPid`, in exec order (the execs' own pids). */
  async function childrenOf(shellPid: number, count: number): Promise<Alert[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = agent.alerts.filter((alert) => alert.rule.id === RULES.witness.id && alert.process.parent?.pid === shellPid);
      if (found.length >= count) return found;
      if (Date.now() > deadline) throw new Error(`fewer than ${count} witnessed execs of shell ${shellPid} within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('a single-event EQL rule alerts on a real exec, with the ECS alert fields and the exec as process.*', { timeout: 30_000 }, async () => {
    const alert = await barrier();
    const marker = `--marker-${tag}-${markers}`;
    expect(alert).toMatchObject({
      message: RULES.event.name,
      event: { kind: 'alert', module: 'execsentry', dataset: 'execsentry.alerts', category: ['process'], type: ['start'], action: 'exec', severity: 73, risk_score: 73 },
      rule: { id: RULES.event.id, uuid: RULES.event.id, name: RULES.event.name, description: `Test rule ${RULES.event.name}.`, version: '2', license: 'Apache-2.0', author: ['execsentry tests'], category: 'Execution' },
      tags: ['Test: EQL', 'OS: Linux'],
      threat: { framework: ['MITRE ATT&CK'], tactic: { id: ['TA0002'] }, technique: { id: ['T1059'] } },
      process: {
        executable: bin.marker,
        name: NAMES.marker,
        args: [bin.marker, '-c', 'sleep 0.3; exit 0', marker],
        args_count: 4,
        parent: { pid: process.pid, executable: process.execPath },
        user: { id: '0' },
      },
      host: { os: { type: 'linux' } },
      execsentry: { rule: { type: 'eql' } },
    });
    expect(alert.event.id).toEqual(expect.any(String));
    expect(alert.process.entity_id).toEqual(expect.any(String));
    expect(alert.execsentry.sequence).toBeUndefined();
    expectEcsConformant(alert);
    // exactly one alert for that exec
    expect(agent.alerts.filter((other) => other.process.args?.includes(marker) === true)).toHaveLength(1);
  });

  it('a sequence by parent: one shell execs first then second; one alert, on the second exec, carrying both events', { timeout: 30_000 }, async () => {
    const parent = await shell(`${run(bin.first)}; ${run(bin.second)}`);
    const [first, second] = await childrenOf(parent, 2);
    expect([first!.process.name, second!.process.name]).toEqual([NAMES.first, NAMES.second]);

    const alert = await agent.waitForAlert((alert) => alert.rule.id === RULES.sequence.id && alert.process.parent?.pid === parent);
    expect(alert).toMatchObject({
      message: RULES.sequence.name,
      event: { kind: 'alert', dataset: 'execsentry.alerts', severity: 73, risk_score: 73 },
      rule: { id: RULES.sequence.id, name: RULES.sequence.name },
      process: { pid: second!.process.pid, name: NAMES.second, executable: bin.second, parent: { pid: parent, name: NAMES.shell } },
      execsentry: { rule: { type: 'eql' } },
    });
    const events = sequenceOf(alert);
    expect(events.map((event) => [event.process.name, event.process.pid, event.process.parent?.pid])).toEqual([
      [NAMES.first, first!.process.pid, parent],
      [NAMES.second, second!.process.pid, parent],
    ]);
    const parentEntity = alert.process.parent?.entity_id;
    expect(parentEntity).toEqual(expect.any(String));
    expect(events.map((event) => event.process.parent?.entity_id)).toEqual([parentEntity, parentEntity]);
    // the stages' events are the sensor's events (not alerts), in time order
    expect(events.map((event) => event.event.kind)).toEqual(['event', 'event']);
    expect(events[0]!.process.entity_id).toBe(first!.process.entity_id);
    expect(events[1]!.process.entity_id).toBe(alert.process.entity_id);
    expect(Date.parse(events[0]!['@timestamp'])).toBeLessThanOrEqual(Date.parse(events[1]!['@timestamp']));
    expect(alert['@timestamp']).toBe(events[1]!['@timestamp']);
    expect(alert.execsentry.sequence?.join_keys).toEqual([alert.host.id, parentEntity]);
    expectEcsConformant(alert);

    await barrier();
    expect(agent.alerts.filter((other) => other.rule.id === RULES.sequence.id && other.process.parent?.pid === parent)).toHaveLength(1);
  });

  it('no sequence: first and second from different parents, or second before first in one parent', { timeout: 30_000 }, async () => {
    const before = agent.alerts.filter(ofRule(RULES.sequence.id)).length;
    const firstParent = await shell(run(bin.first));
    const secondParent = await shell(run(bin.second));
    const reversed = await shell(`${run(bin.second)}; ${run(bin.first)}`);
    // every exec was seen with its name and its parent (else the silence below would prove nothing) ...
    const [lone1] = await childrenOf(firstParent, 1);
    const [lone2] = await childrenOf(secondParent, 1);
    const reversedChildren = await childrenOf(reversed, 2);
    expect(lone1!.process.name).toBe(NAMES.first);
    expect(lone2!.process.name).toBe(NAMES.second);
    expect(reversedChildren.map((alert) => alert.process.name)).toEqual([NAMES.second, NAMES.first]);
    for (const alert of [lone1!, lone2!, ...reversedChildren]) expect(alert.process.parent?.entity_id).toEqual(expect.any(String));
    expect(lone1!.process.parent?.entity_id).not.toBe(lone2!.process.parent?.entity_id);
    // ... and judged: a later exec's alert is in
    await barrier();
    expect(agent.alerts.filter(ofRule(RULES.sequence.id))).toHaveLength(before);

    // the same binaries in the right order from one parent still make one (the negatives were not a fluke)
    const control = await shell(`${run(bin.first)}; ${run(bin.second)}`);
    await agent.waitForAlert((alert) => alert.rule.id === RULES.sequence.id && alert.process.parent?.pid === control);
    expect(agent.alerts.filter(ofRule(RULES.sequence.id))).toHaveLength(before + 1);
  });

  it('maxspan: a second exec 2.5 s after the first misses a 2 s window; 0.3 s after, it completes', { timeout: 30_000 }, async () => {
    const late = await shell(`${run(bin.spanFirst)}; sleep 2.5; ${run(bin.spanSecond)}`);
    const inTime = await shell(`${run(bin.spanFirst)}; ${run(bin.spanSecond)}`);
    const alert = await agent.waitForAlert((alert) => alert.rule.id === RULES.span.id && alert.process.parent?.pid === inTime);
    const events = sequenceOf(alert);
    expect(events.map((event) => event.process.name)).toEqual([NAMES.spanFirst, NAMES.spanSecond]);
    expect(Date.parse(events[1]!['@timestamp']) - Date.parse(events[0]!['@timestamp'])).toBeLessThanOrEqual(2_000);
    expect(alert.execsentry.sequence?.join_keys).toEqual([alert.process.parent?.entity_id]);
    // the late pair was seen, 2.5 s and more apart ...
    const [lateFirst, lateSecond] = await childrenOf(late, 2);
    expect([lateFirst!.process.name, lateSecond!.process.name]).toEqual([NAMES.spanFirst, NAMES.spanSecond]);
    expect(Date.parse(lateSecond!['@timestamp']) - Date.parse(lateFirst!['@timestamp'])).toBeGreaterThan(2_000);
    // ... and judged (the in-time shell ran after it, and its alert is in): no alert
    expect(agent.alerts.filter((other) => other.rule.id === RULES.span.id)).toEqual([alert]);
  });

  it('until: a stop exec between first and second (same parent) ends the sequence; one from another parent does not', { timeout: 30_000 }, async () => {
    const stopped = await shell(`${run(bin.untilFirst)}; ${run(bin.untilStop)}; ${run(bin.untilSecond)}`);
    // the stop exec's parent is a nested shell: another key, so this parent's sequence goes on
    const elsewhere = await shell(`${run(bin.untilFirst)}; ${bin.shell} -c '${run(bin.untilStop)}; exit 0'; ${run(bin.untilSecond)}`);
    const alert = await agent.waitForAlert((alert) => alert.rule.id === RULES.until.id && alert.process.parent?.pid === elsewhere);
    expect(sequenceOf(alert).map((event) => [event.process.name, event.process.parent?.pid])).toEqual([
      [NAMES.untilFirst, elsewhere],
      [NAMES.untilSecond, elsewhere],
    ]);
    const stoppedChildren = await childrenOf(stopped, 3);
    expect(stoppedChildren.map((other) => other.process.name)).toEqual([NAMES.untilFirst, NAMES.untilStop, NAMES.untilSecond]);
    // the later shell's alert is in, so the stopped shell's execs were judged: no alert for them
    expect(agent.alerts.filter((other) => other.rule.id === RULES.until.id)).toEqual([alert]);
  });
});
