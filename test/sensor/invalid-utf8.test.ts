import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { createLogger } from '../../src/log.js';
import { loadRuleSet } from '../../src/rules/index.js';
import { Sensor } from '../../src/sensor/index.js';
import { replay } from '../engine/helpers.js';
import { eventFinder } from './helpers.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { kibanaRule, ruleTree } from '../rules/fixtures.js';

/**
 * Programs and directories whose names are not UTF-8, run for real and seen through the process
 * connector: what the event shows is repaired (U+FFFD), the bytes stay under execsentry.raw, and a
 * new_terms rule tells the programs apart.
 */

const events: ProcessEvent[] = [];
let sensor: Sensor;
const scratch = mkdtempSync(join(tmpdir(), 'execsentry-utf8-'));
const unique = () => `${process.pid}${Math.floor(Math.random() * 1e9)}`;
/** `scratch/<name><byte>` as the bytes it is (Node can only spell such a name as a Buffer). */
const pathWithByte = (name: string, byte: number) => Buffer.concat([Buffer.from(join(scratch, name)), Buffer.from([byte])]);

const eventWhere = eventFinder(events);

function exited(child: ChildProcess): Promise<unknown> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
}

/** bash spells the byte: Node's spawn takes the program as a string, which cannot hold it. */
function bash(script: string, ...args: string[]): ChildProcess {
  return spawn('/bin/bash', ['-c', script, 'bash', ...args], { stdio: 'ignore' });
}

describeAsRoot('program names that are not UTF-8, on the live kernel', () => {
  beforeAll(async () => {
    for (const byte of [0xff, 0xfe]) {
      copyFileSync('/usr/bin/sleep', pathWithByte('x', byte));
      chmodSync(pathWithByte('x', byte), 0o755);
    }
    copyFileSync('/usr/bin/dash', pathWithByte('sh', 0xff));
    chmodSync(pathWithByte('sh', 0xff), 0o755);
    mkdirSync(pathWithByte('d', 0xfe));
    sensor = new Sensor({ socketBufferBytes: 4 * 1024 * 1024, maxArgsBytes: 64 * 1024, maxProcessTableEntries: 65_536, logger: createLogger('silent') });
    await sensor.start((batch) => events.push(...batch));
  });

  afterAll(async () => {
    await sensor?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('shows two programs differing in one invalid byte alike, keeps their bytes apart, and a new_terms rule alerts on each', async () => {
    const runs = await Promise.all(
      [0xff, 0xfe].map(async (byte) => {
        const marker = unique();
        const child = bash(`exec "$1/x"$'\\${byte.toString(8)}' "$2"`, scratch, marker);
        const event = await eventWhere((e) => e.process.pid === child.pid && e.process.args?.[1] === marker, `x\\x${byte.toString(16)}`);
        child.kill();
        await exited(child);
        return event;
      }),
    );
    const [ff, fe] = runs as [ProcessEvent, ProcessEvent];
    for (const event of runs) {
      expect(event.process.executable).toBe(`${scratch}/x\uFFFD`);
      expect(event.process.name).toBe('x\uFFFD');
      expect(event.execsentry?.paths_lossy).toBe(true);
      expect(event.execsentry?.args_lossy).toBe(true);
      expect(event.execsentry?.partial).toBeUndefined();
    }
    expect(ff.execsentry?.raw).toEqual({
      'process.executable': `${scratch}/x\\xff`,
      'process.name': 'x\\xff',
      'process.args': [`${scratch}/x\\xff`, ff.process.args?.[1]],
      'process.command_line': `${scratch}/x\\xff ${ff.process.args?.[1]}`,
    });
    expect(fe.execsentry?.raw?.['process.executable']).toBe(`${scratch}/x\\xfe`);
    expect(fe.execsentry?.raw?.['process.name']).toBe('x\\xfe');

    // The events as `execsentry events` writes them, replayed as `rules test` reads them.
    const rule = kibanaRule({ rule_id: 'utf8-live', name: 'New program', query: 'event.action:exec', new_terms_fields: ['process.executable'] });
    const { rules } = await loadRuleSet([ruleTree({ 'r.ndjson': JSON.stringify(rule) })], { skipUnsupported: false });
    const alerts = await replay(rules, [ff, fe]);
    expect(alerts.map((alert) => alert.execsentry.new_terms)).toEqual([{ 'process.executable': `${scratch}/x\\xff` }, { 'process.executable': `${scratch}/x\\xfe` }]);
  });

  it('gives a child its parent\'s bytes from the process table, and its own directory\'s', async () => {
    const marker = unique();
    const script = '/usr/bin/sleep "$0"; :'; // not the last command: the shell forks for it
    const child = bash(`cd "$1/d"$'\\376' && exec "$1/sh"$'\\377' -c '${script}' "$2"`, scratch, marker);
    const sleep = await eventWhere((e) => e.process.args?.[1] === marker && e.process.name === 'sleep', 'sleep under sh\\xff');
    process.kill(sleep.process.pid);
    await exited(child);
    expect(sleep.process.parent?.pid).toBe(child.pid);
    expect(sleep.process.parent?.executable).toBe(`${scratch}/sh\uFFFD`);
    expect(sleep.process.working_directory).toBe(`${scratch}/d\uFFFD`);
    expect(sleep.execsentry?.raw).toEqual({
      'process.working_directory': `${scratch}/d\\xfe`,
      'process.parent.executable': `${scratch}/sh\\xff`,
      'process.parent.name': 'sh\\xff',
      'process.parent.args': [`${scratch}/sh\\xff`, '-c', script, marker],
      'process.parent.command_line': `${scratch}/sh\\xff -c ${script} ${marker}`,
      'process.parent.working_directory': `${scratch}/d\\xfe`,
    });
  });
});
