import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { privateShell, removeDir, runInPty, sharedTempDir } from '../e2e/harness.js';
import { describeAsRoot } from '../helpers/privilege.js';
import { stagedPath } from '../helpers/staged.js';

/** The package as another user can reach it, wherever the checkout lives. */
const CLI = stagedPath('dist/cli.js');
/** The unprivileged user the agent runs as here (the unit's `execsentry` user plays the same role). */
const AGENT_UID = 65534;
/** Exactly what systemd/execsentry.service grants. */
const UNIT_CAPABILITIES = ['net_admin', 'sys_ptrace', 'dac_read_search'];

/** setpriv as the unprivileged user with `caps` inheritable + ambient and nothing else in the bounding set. */
function asUnprivileged(caps: readonly string[]): string[] {
  const list = caps.map((cap) => `+${cap}`).join(',');
  return [
    'setpriv',
    `--reuid=${AGENT_UID}`,
    `--regid=${AGENT_UID}`,
    '--clear-groups',
    ...(caps.length > 0 ? [`--inh-caps=${list}`, `--ambient-caps=${list}`] : ['--inh-caps=-all']),
    `--bounding-set=-all${caps.length > 0 ? `,${list}` : ''}`,
  ];
}

interface Captured {
  status: number | null;
  stdout: Record<string, unknown>[];
  stderr: string;
}

/**
 * Runs an execsentry command under `wrapper`, runs `act` once it is running, waits for a stdout document
 * that `found` accepts (or `timeoutMs`), then stops it with SIGTERM.
 */
async function capture(wrapper: string[], args: string[], act: () => Promise<void> | void, found: (doc: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Captured> {
  const [command, ...rest] = [...wrapper, process.execPath, CLI, ...args];
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Record<string, unknown>[] = [];
  let stderr = '';
  let onChange = (): void => undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout.push(JSON.parse(line) as Record<string, unknown>);
    onChange();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    onChange();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exited = false;
  void exit.then(() => {
    exited = true;
    onChange();
  });
  const until = (done: () => boolean, ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      onChange = () => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        }
      };
      onChange();
    });
  await until(() => exited || /execsentry running|streaming exec events/.test(stderr), 15_000);
  if (!exited) {
    await act();
    await until(() => stdout.some(found), timeoutMs);
    child.kill('SIGTERM');
  }
  return { status: await exit, stdout, stderr };
}

function field(doc: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value === null || typeof value !== 'object' ? undefined : (value as Record<string, unknown>)[key]), doc);
}

describeAsRoot('least privilege: the agent as an unprivileged user with only the unit\'s capabilities', () => {
  let dir: string;
  beforeAll(() => {
    dir = sharedTempDir('execsentry-least-privilege-');
    for (const sub of ['state', 'run']) {
      mkdirSync(join(dir, sub), { mode: 0o700 });
      chownSync(join(dir, sub), AGENT_UID, AGENT_UID);
    }
  });
  afterAll(() => removeDir(dir));

  const runArgs = (): string[] => ['run', '--format', 'json', '--log-format', 'json', '--state-dir', join(dir, 'state')];

  it("captures another user's interactive shell with executable, args, interactive and parent", async () => {
    const shell = privateShell(dir, '/bin/bash', `bash-lp-${process.pid}`);
    const isOurs = (doc: Record<string, unknown>): boolean => field(doc, 'process.executable') === shell;
    const result = await capture(
      asUnprivileged(UNIT_CAPABILITIES),
      runArgs(),
      async () => expect((await runInPty(`runuser -u daemon -- ${shell} -i`, 'exit\n')).status).toBe(0),
      isOurs,
    );
    const alert = result.stdout.find(isOurs);
    expect(alert, `no alert for ${shell}; agent stderr:\n${result.stderr}`).toBeDefined();
    expect(field(alert!, 'event.kind')).toBe('alert');
    expect(field(alert!, 'user.name')).toBe('daemon');
    expect(field(alert!, 'process.args')).toEqual([shell, '-i']);
    expect(field(alert!, 'process.interactive')).toBe(true);
    expect(field(alert!, 'process.working_directory')).toEqual(expect.any(String));
    expect(field(alert!, 'process.parent.pid')).toEqual(expect.any(Number));
    expect(field(alert!, 'process.parent.executable')).toEqual(expect.stringMatching(/^\//));
    expect(field(alert!, 'process.parent.args')).toEqual(expect.arrayContaining(['daemon']));
    expect(result.status).toBe(0);
    // It really ran as the unprivileged user: the lock file it took in the state directory is that user's.
    expect(statSync(join(dir, 'state', 'execsentry.lock')).uid).toBe(AGENT_UID);
  });

  it('without the capabilities, run refuses to start with the clear message', async () => {
    const result = await capture(asUnprivileged([]), runArgs(), () => undefined, () => false);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      "execsentry: missing capabilities CAP_NET_ADMIN, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH (CAP_NET_ADMIN: subscribe to the process connector (PROC_CN_MCAST_LISTEN) and size its buffer past net.core.rmem_max; CAP_SYS_PTRACE: read other users' /proc/PID/exe, cwd and fd links (process.executable, working_directory); CAP_DAC_READ_SEARCH: enter other users' /proc/PID/fd (process.interactive)); run as root, or as the execsentry service whose unit grants AmbientCapabilities=CAP_NET_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH\n",
    );
  });

  it('with any one of them missing, run refuses and names it', async () => {
    for (const dropped of UNIT_CAPABILITIES) {
      const result = await capture(asUnprivileged(UNIT_CAPABILITIES.filter((cap) => cap !== dropped)), runArgs(), () => undefined, () => false);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`^execsentry: missing capabilities CAP_${dropped.toUpperCase()} \\(`));
    }
  });

  // Why each capability is there, shown on the sensor alone (`events` does not refuse): drop one and see
  // which fields of another user's interactive shell disappear.
  const shellEvent = async (caps: readonly string[], name: string): Promise<Record<string, unknown> | undefined> => {
    const shell = privateShell(dir, '/bin/bash', `${name}-${process.pid}`);
    const isOurs = (doc: Record<string, unknown>): boolean => Array.isArray(field(doc, 'process.args')) && (field(doc, 'process.args') as unknown[])[0] === shell;
    const result = await capture(
      asUnprivileged(caps),
      ['events', '--log-format', 'json', '--filter', `user.name: daemon and process.args: "${shell}"`],
      async () => expect((await runInPty(`runuser -u daemon -- ${shell} -i`, 'exit\n')).status).toBe(0),
      isOurs,
    );
    return result.stdout.find(isOurs);
  };

  it('all three: the event is complete', async () => {
    const event = await shellEvent(UNIT_CAPABILITIES, 'bash-all');
    expect(event).toBeDefined();
    expect(field(event!, 'process.executable')).toEqual(expect.stringContaining('bash-all'));
    expect(field(event!, 'process.interactive')).toBe(true);
  });

  it('without CAP_SYS_PTRACE another user\'s executable and working directory are unreadable (absent, never guessed)', async () => {
    const event = await shellEvent(['net_admin', 'dac_read_search'], 'bash-noptrace');
    expect(event).toBeDefined();
    expect(field(event!, 'process.executable')).toBeUndefined();
    expect(field(event!, 'process.working_directory')).toBeUndefined();
  });

  it('without CAP_DAC_READ_SEARCH another user\'s fds are unreadable, so process.interactive is absent', async () => {
    const event = await shellEvent(['net_admin', 'sys_ptrace'], 'bash-nodac');
    expect(event).toBeDefined();
    expect(field(event!, 'process.executable')).toEqual(expect.stringContaining('bash-nodac'));
    expect(field(event!, 'process.interactive')).toBeUndefined();
  });

  it('without CAP_NET_ADMIN the sensor cannot subscribe to the process connector and says so', async () => {
    const result = await capture(asUnprivileged(['sys_ptrace', 'dac_read_search']), ['events', '--log-format', 'json'], () => undefined, () => false);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^execsentry: the process connector needs CAP_NET_ADMIN/m);
  });
});
