import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real OpenSSH server on 127.0.0.1 for real logins: a generated host key, key authentication only (no PAM,
 * no password), one client key authorised for every user. Used by the session tests and by
 * `npm run bench:parity`; plain Node (no test framework), so the benchmark can import it.
 */

export const SSHD = '/usr/sbin/sshd';
export const SSH = '/usr/bin/ssh';

export interface Sshd {
  readonly port: number;
  /**
   * ssh's arguments for a login as `user` on a pseudo-terminal (`-tt`, as an interactive client gets): the
   * user's login shell, or `command` run by it; `setEnv` is sent with SetEnv (the server accepts the names
   * it was started with in `acceptEnv`).
   */
  loginArguments(user: string, options?: { command?: string; setEnv?: Record<string, string> }): string[];
  stop(): Promise<void>;
}

/** Why no sshd can be started here (openssh-server or -client not installed), or undefined. */
export function sshdUnavailable(): string | undefined {
  for (const [program, pkg] of [
    [SSHD, 'openssh-server'],
    [SSH, 'openssh-client'],
  ] as const) {
    try {
      accessSync(program, constants.X_OK);
    } catch {
      return `${program} not found or not executable: install ${pkg} (scripts/system-deps.sh does)`;
    }
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1, as the kernel picks one (another process could take it before sshd binds). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** Starts sshd in the foreground (-D) and resolves once it accepts connections; must be run as root. */
export async function startSshd(options: { acceptEnv?: string[] } = {}): Promise<Sshd> {
  const unavailable = sshdUnavailable();
  if (unavailable !== undefined) throw new Error(`sshd: ${unavailable}`);
  // World-traversable: sshd reads the authorized keys as the user logging in.
  const dir = mkdtempSync(join(tmpdir(), 'execsentry-sshd-'));
  chmodSync(dir, 0o755);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege separation directory
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o644 });
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      // Without PAM sshd refuses an account whose password is locked ('!'): a key-only user needs '*'.
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      ...(options.acceptEnv?.length ? [`AcceptEnv ${options.acceptEnv.join(' ')}`] : []),
      '',
    ].join('\n'),
  );
  const sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  sshd.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const stop = async (): Promise<void> => {
    sshd.kill();
    await exited(sshd);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (sshd.exitCode !== null || sshd.signalCode !== null) throw new Error(`sshd exited at start-up: ${log.trim()}`);
      const up = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket.end() !== undefined)).on('error', () => resolve(false));
      });
      if (up) break;
      if (Date.now() > deadline) throw new Error(`sshd did not listen on 127.0.0.1:${port} within 10 s: ${log.trim()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    loginArguments: (user, { command, setEnv = {} } = {}) => [
      '-tt',
      '-i',
      join(dir, 'client_key'),
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
      ...Object.entries(setEnv).flatMap(([name, value]) => ['-o', `SetEnv=${name}=${value}`]),
      '-p',
      String(port),
      `${user}@127.0.0.1`,
      ...(command === undefined ? [] : [command]),
    ],
    stop,
  };
}
