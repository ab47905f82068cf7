import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Alert } from '../../src/ecs/types.js';

/**
 * Real processes for end-to-end tests: `execsentry run` as a child process (the built CLI), and shells
 * started as real users in real pseudo-terminals (`script` + `runuser`). Every test owns what it matches:
 * other test files spawn processes at the same time, so alerts are picked by executable path or argv
 * marker, never by "the next alert".
 */

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** A private, world-readable temp directory (the shells run as other users and must reach it). */
export function sharedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A copy of a shell at a path no other process on the host uses: a term nobody else can make known. */
export function privateShell(dir: string, source: string, name: string): string {
  const path = join(dir, name);
  copyFileSync(source, path);
  chmodSync(path, 0o755);
  return path;
}

export interface RunningAgent {
  readonly child: ChildProcessWithoutNullStreams;
  readonly alerts: Alert[];
  readonly logs: Record<string, unknown>[];
  /** Resolves with the first alert (already received or coming) that satisfies `match`. */
  waitForAlert(match: (alert: Alert) => boolean, timeoutMs?: number): Promise<Alert>;
  /** SIGTERM; resolves with the exit code and how long the stop took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
}

/** Starts `execsentry run` with `args` and resolves once it logged that it is running. */
export async function startAgent(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningAgent> {
  const child = spawn(process.execPath, [CLI, 'run', '--format', 'json', '--log-format', 'json', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const alerts: Alert[] = [];
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const waiter of [...waiters]) waiter();
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    alerts.push(JSON.parse(line) as Alert);
    notify();
  });
  let stderrText = '';
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderrText += line + '\n';
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
    notify();
  });
  let exited: { code: number | null } | undefined;
  const exit = new Promise<{ code: number | null }>((resolve) =>
    child.once('exit', (code) => {
      exited = { code };
      notify();
      resolve({ code });
    }),
  );

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`agent did not report running within 15 s; stderr:\n${stderrText}`));
    }, 15_000);
    const check = (): void => {
      if (logs.some((log) => typeof log['msg'] === 'string' && log['msg'].startsWith('execsentry running'))) {
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      } else if (exited !== undefined) {
        clearTimeout(timer);
        waiters.delete(check);
        reject(new Error(`agent exited with ${exited.code} before running; stderr:\n${stderrText}`));
      }
    };
    waiters.add(check);
    check();
  });

  return {
    child,
    alerts,
    logs,
    waitForAlert(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          // Stop the agent so that its final stats line (what it saw and sent) is part of the failure.
          if (exited === undefined) child.kill('SIGTERM');
          void Promise.race([exit, new Promise((wait) => setTimeout(wait, 5_000))]).then(() => {
            const lastLogs = logs.slice(-5).map((log) => JSON.stringify(log)).join('\n');
            reject(new Error(`no matching alert within ${timeoutMs} ms (${alerts.length} alerts seen); last agent logs:\n${lastLogs}`));
          });
        }, timeoutMs);
        const check = (): void => {
          const found = alerts.find(match);
          if (found !== undefined) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      const started = Date.now();
      if (exited === undefined) child.kill(signal);
      const { code } = await exit;
      return { code, ms: Date.now() - started };
    },
  };
}

/**
 * How long a test process lives before it gets its input. The sensor reads /proc when the exec is reported;
 * a process that is gone by then yields a partial event (counted) without user or args. A human's shell
 * lives for seconds; the tests give theirs a fraction of one so that what they assert is the rule's verdict.
 */
const INPUT_DELAY_MS = 300;

function runWithDelayedInput(file: string, args: string[], input: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const typing = setTimeout(() => child.stdin.end(input), INPUT_DELAY_MS);
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(typing);
      clearTimeout(killer);
      resolve({ status, output });
    });
  });
}

/** Runs `command` through `sh -c` inside a new pseudo-terminal (script), typing `input` after a moment. */
export function runInPty(command: string, input: string): Promise<{ status: number | null; output: string }> {
  return runWithDelayedInput('script', ['-qec', command, '/dev/null'], input);
}

/** Runs `argv` without any terminal: stdin a pipe, no controlling terminal (setsid), input after a moment. */
export function runWithoutTerminal(argv: string[], input: string): Promise<{ status: number | null; output: string }> {
  return runWithDelayedInput('setsid', ['--wait', ...argv], input);
}

/** A regular (uid ≥ 1000) login user: an existing one, or one created for the tests and removed after. */
export function regularUser(): { name: string; remove(): void } {
  const existing = spawnSync('getent', ['passwd'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => line.split(':'))
    .find((fields) => Number(fields[2]) >= 1000 && Number(fields[2]) < 60000);
  if (existing !== undefined) return { name: existing[0]!, remove: () => undefined };
  const name = 'execsentry-e2e';
  const created = spawnSync('useradd', ['--no-create-home', '--shell', '/bin/bash', name], { encoding: 'utf8' });
  if (created.status !== 0) throw new Error(`useradd ${name} failed: ${created.stderr}`);
  return { name, remove: () => void spawnSync('userdel', [name]) };
}
