import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer as createNetServer, createConnection, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { native, type ProcSnapshot } from '../../src/native.js';
import { decodeTtyNr } from '../../src/sensor/enrich.js';
import { parseTtyDriverMajors, stdioFields } from '../../src/sensor/stdio.js';

/**
 * What each standard stream of a real process is, read by the addon's snapshot (the reader thread's
 * TakeSnapshot, through scanProcesses) and classified as the event carries it (execsentry.stdio).
 */

const scratch = mkdtempSync(join(tmpdir(), 'execsentry-stdio-'));
const children: ChildProcess[] = [];
const closers: (() => void)[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const close of closers.splice(0)) close();
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const marker = () => `${process.pid}.${Math.floor(Math.random() * 1e6)}`;

/** Starts `sleep <unique>` with `stdio` (directly, or through `bash -c` for redirections). */
function sleeper(stdio: StdioOptions, viaBash?: (sleep: string) => string): { child: ChildProcess; seconds: string } {
  const seconds = `30.${marker().replace('.', '')}`;
  const child = viaBash === undefined ? spawn('sleep', [seconds], { stdio }) : spawn('bash', ['-c', viaBash(`sleep ${seconds}`)], { stdio });
  children.push(child);
  return { child, seconds };
}

/** The snapshot of the process whose argv is `sleep <seconds>`, once it has exec'd. */
async function snapshotOf(seconds: string): Promise<ProcSnapshot> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = (await native().scanProcesses('/proc', 4096)).find((s) => s.args?.[0] === 'sleep' && s.args[1] === seconds);
    if (found !== undefined) {
      // In a pipeline the sleep is bash's grandchild: killing the child would leave it running.
      closers.push(() => {
        try {
          process.kill(found.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      });
      return found;
    }
    if (Date.now() > deadline) throw new Error(`no process "sleep ${seconds}"`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function streamsOf(seconds: string) {
  const snapshot = await snapshotOf(seconds);
  const tty = snapshot.ttyNr !== undefined && snapshot.ttyNr !== 0 ? decodeTtyNr(snapshot.ttyNr) : undefined;
  return { snapshot, stdio: stdioFields(snapshot, tty) };
}

async function tcpListener(): Promise<{ server: Server; port: number; accepted: Promise<Socket> }> {
  const server = createNetServer();
  let accept: (socket: Socket) => void = () => undefined;
  const accepted = new Promise<Socket>((resolve) => (accept = resolve));
  server.on('connection', (socket) => accept(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return { server, port: (server.address() as { port: number }).port, accepted };
}

describe('execsentry.stdio from real processes', () => {
  it('a pipe, /dev/null and a regular file', async () => {
    const file = join(scratch, 'out.log');
    const fd = openSync(file, 'w');
    closers.push(() => closeSync(fd));
    // A shell pipeline, since Node's 'pipe' is a socket pair (seen below as a unix socket).
    const { seconds } = sleeper(['ignore', 'ignore', fd], (sleep) => `: | exec ${sleep}`);
    const { stdio, snapshot } = await streamsOf(seconds);
    expect(snapshot.partial).toBe(false);
    expect(stdio).toEqual({
      stdin: { type: 'pipe' },
      stdout: { type: 'null_device', char_device: { major: 1, minor: 3 } },
      stderr: { type: 'file', path: file },
    });
  });

  it('a closed fd is "closed"; a named pipe is a pipe', async () => {
    const { seconds } = sleeper('ignore', (sleep) => `mkfifo ${scratch}/fifo-$$ && exec ${sleep} <&- 2<>${scratch}/fifo-$$`);
    const { stdio } = await streamsOf(seconds);
    expect(stdio?.stdin).toEqual({ type: 'closed' });
    expect(stdio?.stdout?.type).toBe('null_device');
    expect(stdio?.stderr).toEqual({ type: 'pipe' });
  });

  it('a terminal (a pseudo-terminal from script) on all three, which is also the controlling terminal', async () => {
    const seconds = `30.${marker().replace('.', '')}`;
    const child = spawn('script', ['-qec', `exec sleep ${seconds}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    const { stdio, snapshot } = await streamsOf(seconds);
    const tty = decodeTtyNr(snapshot.ttyNr ?? 0);
    expect(tty.major).toBeGreaterThan(0);
    for (const stream of [stdio?.stdin, stdio?.stdout, stdio?.stderr]) {
      expect(stream).toEqual({ type: 'terminal', path: expect.stringMatching(/^\/dev\/pts\/\d+$/), char_device: tty });
    }
  });

  it('another character device is a character device', async () => {
    const { seconds } = sleeper('ignore', (sleep) => `exec ${sleep} </dev/zero`);
    expect((await streamsOf(seconds)).stdio?.stdin).toEqual({ type: 'character_device', path: '/dev/zero', char_device: { major: 1, minor: 5 } });
  });

  it('a TCP connection to a 127.0.0.1 listener (bash /dev/tcp): family, transport, both ends', async () => {
    const { port, accepted } = await tcpListener();
    const { seconds } = sleeper('ignore', (sleep) => `exec ${sleep} <>/dev/tcp/127.0.0.1/${port} 1>&0`);
    const peer = await accepted;
    const { stdio } = await streamsOf(seconds);
    const socket = { protocol: 'TCP', family: 'inet', transport: 'tcp', local: { ip: '127.0.0.1', port: peer.remotePort }, remote: { ip: '127.0.0.1', port } };
    expect(stdio?.stdin).toEqual({ type: 'socket', socket });
    expect(stdio?.stdout).toEqual({ type: 'socket', socket });
    expect(stdio?.stderr?.type).toBe('null_device');
  });

  it('without pidfd_getfd (kernels before 5.6) a TCP stream is still a socket of family inet, without its ends', async () => {
    const { port, accepted } = await tcpListener();
    const { seconds } = sleeper('ignore', (sleep) => `exec ${sleep} <>/dev/tcp/127.0.0.1/${port}`);
    await accepted;
    const { snapshot } = await streamsOf(seconds);
    const [legacy] = await native().scanProcesses('/proc', 4096, [snapshot.pid], { withoutPidfdGetfd: true });
    expect(legacy?.stdio?.[0]).toEqual({ type: 'socket', protocol: 'TCP' });
    expect(stdioFields(legacy as ProcSnapshot, undefined)?.stdin).toEqual({ type: 'socket', socket: { protocol: 'TCP', family: 'inet', transport: 'tcp' } });
    // The same process, copies allowed: the ends are there (else the check above proves nothing).
    const [copied] = await native().scanProcesses('/proc', 4096, [snapshot.pid]);
    expect(copied?.stdio?.[0]?.remotePort).toBe(port);
  });

  it('IPv6: a TCPv6 connection to ::1, and one to an IPv4-mapped address shown as IPv4', async (context) => {
    const server = createNetServer();
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(0, '::', () => resolve(true)); // dual-stack: takes ::1 and ::ffff:127.0.0.1
    });
    if (!listening) {
      process.stderr.write('SKIPPED (no IPv6 on this host): IPv6 standard streams\n');
      context.skip();
    }
    closers.push(() => server.close());
    const port = (server.address() as { port: number }).port;
    const v6 = sleeper('ignore', (sleep) => `exec ${sleep} <>/dev/tcp/::1/${port}`);
    const mapped = sleeper('ignore', (sleep) => `exec ${sleep} <>/dev/tcp/::ffff:127.0.0.1/${port}`);
    expect((await streamsOf(v6.seconds)).stdio?.stdin?.socket).toEqual({
      protocol: 'TCPv6', family: 'inet6', transport: 'tcp', local: { ip: '::1', port: expect.any(Number) }, remote: { ip: '::1', port },
    });
    expect((await streamsOf(mapped.seconds)).stdio?.stdin?.socket).toEqual({
      protocol: 'TCPv6', family: 'inet6', transport: 'tcp', local: { ip: '127.0.0.1', port: expect.any(Number) }, remote: { ip: '127.0.0.1', port },
    });
  });

  it('a connected UDP socket (bash /dev/udp)', async () => {
    const receiver = createSocket('udp4');
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    closers.push(() => receiver.close());
    const port = receiver.address().port;
    const { seconds } = sleeper('ignore', (sleep) => `exec ${sleep} 1<>/dev/udp/127.0.0.1/${port}`);
    const stdout = (await streamsOf(seconds)).stdio?.stdout;
    expect(stdout).toEqual({
      type: 'socket',
      socket: { protocol: 'UDP', family: 'inet', transport: 'udp', local: { ip: '127.0.0.1', port: expect.any(Number) }, remote: { ip: '127.0.0.1', port } },
    });
  });

  it('a unix socket (also what Node\'s stdio "pipe" is): family unix, no addresses', async () => {
    const path = join(scratch, `unix-${marker()}.sock`);
    const server = createNetServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    closers.push(() => server.close());
    const client = createConnection(path);
    await new Promise<void>((resolve) => client.once('connect', resolve));
    closers.push(() => client.destroy());
    const { seconds } = sleeper(['ignore', client, 'ignore']);
    expect((await streamsOf(seconds)).stdio?.stdout).toEqual({ type: 'socket', socket: { protocol: 'UNIX-STREAM', family: 'unix' } });
    const piped = sleeper(['pipe', 'ignore', 'ignore']);
    expect((await streamsOf(piped.seconds)).stdio?.stdin).toEqual({ type: 'socket', socket: { protocol: 'UNIX-STREAM', family: 'unix' } });
  });
});

describe('terminal majors', () => {
  it('reads every tty driver major of /proc/tty/drivers', () => {
    const text = [
      '/dev/tty             /dev/tty        5       0 system:/dev/tty',
      'serial               /dev/ttyS       4      64 serial',
      'pty_slave            /dev/pts      136 0-1048575 pty:slave',
      'usbserial            /dev/ttyUSB   188 0-511 serial',
      '',
    ].join('\n');
    expect([...parseTtyDriverMajors(text)].sort((a, b) => a - b)).toEqual([4, 5, 136, 188]);
  });
});
