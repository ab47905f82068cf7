import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * A snapshot copies a standard stream's socket (pidfd_getfd) to read its ends. If the process drops its fd
 * while the copy is held, closing the copy is the socket's last close, and a socket with SO_LINGER {1, 5}
 * and unsent data to a peer that reads nothing makes that close sleep up to 5 s. Copies are closed off the
 * snapshotting thread (native/procfs.cc CopyCloser), so the snapshot must not wait for it.
 *
 * The window is the microseconds a copy is held, so the test widens it: the snapshot runs in a child Node
 * under strace, which delays the exit of each getpeername() (made on the copy) by 400 ms, and the observed
 * process is killed during that delay (killed, so that its own close, an exiting task's, never lingers).
 * The linger itself is proven, not assumed: the closer thread reports one slow close some 5 s later.
 */

const addon = fileURLToPath(new URL('../../build/Release/execsentry.node', import.meta.url));

// Connects a socket to the port, fills its send queue (the peer never reads, so its window closes), sets
// SO_LINGER {1, 5}, puts it on fd 0, says so on fd 3 and waits to be killed.
const LINGERER = `
import os, socket, struct, sys, signal, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
s.setblocking(False)
stalled = 0
while stalled < 4:  # until the peer's window is closed: nothing more goes for 200 ms
    try:
        s.send(b'x' * 65536)
        stalled = 0
    except BlockingIOError:
        stalled += 1
        time.sleep(0.05)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 5))
os.dup2(s.fileno(), 0)
s.close()
os.write(3, b'r')
signal.pause()
`;

// Snapshots the pid, kills it 150 ms in (inside the delayed getpeername) and prints how long the snapshot
// took; 300 ms later, with the closer stuck in the lingering close, snapshots a process with another TCP
// socket on fd 0; then waits up to 8 s for the closer thread to finish the lingering close.
const SNAPSHOTTER = `
const addon = require(process.argv[1]);
const pid = Number(process.argv[2]);
const started = performance.now();
const scan = addon.scanProcesses('/proc', 4096, [pid]);
setTimeout(() => process.kill(pid, 'SIGKILL'), 150);
// The addon answers chunks of JSON (src/native.ts parses them for the agent).
scan.then(async ([json]) => {
  const [snapshot] = JSON.parse(json);
  const snapshotMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 300));
  const [whileStuck] = JSON.parse((await addon.scanProcesses('/proc', 4096, [Number(process.argv[3])]))[0]);
  const skippedWhileStuck = addon.socketCopyStats().skipped;
  const deadline = Date.now() + 8000;
  while (addon.socketCopyStats().slowCloses === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  console.log(JSON.stringify({ snapshotMs, remotePort: snapshot?.stdio?.[0]?.remotePort, whileStuck: whileStuck?.stdio?.[0], skippedWhileStuck, lingeredMs: performance.now() - started, stats: addon.socketCopyStats() }));
});
`;

const children: ChildProcess[] = [];
const peers: Socket[] = [];

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const peer of peers) peer.destroy();
});

const canInject = spawnSync('strace', ['-qq', '-o', '/dev/null', '-e', 'trace=getpid', '-e', 'inject=getpid:delay_exit=1', 'true']).status === 0;
if (!canInject) process.stderr.write('SKIPPED (strace with --inject is missing; scripts/system-deps.sh installs it): closing socket copies\n');

describe.skipIf(!canInject)('closing socket copies', () => {
  it('a lingering socket whose process drops it while the snapshot holds a copy never holds the snapshot up', async () => {
    const server = createServer({ pauseOnConnect: true }, (peer) => peers.push(peer));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const lingerer = spawn('python3', ['-c', LINGERER, String(port)], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
      children.push(lingerer);
      await new Promise<void>((resolve, reject) => {
        lingerer.stdio[3]?.once('data', () => resolve());
        lingerer.once('exit', (code) => reject(new Error(`the lingering process exited (${code}) before it was ready`)));
      });
      const other = spawn('bash', ['-c', `exec sleep 30 <>/dev/tcp/127.0.0.1/${port}`], { stdio: 'ignore' });
      children.push(other);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const strace = ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=getpeername', '-e', 'inject=getpeername:delay_exit=400000'];
      const snapshotter = spawn('strace', [...strace, process.execPath, '-e', SNAPSHOTTER, addon, String(lingerer.pid), String(other.pid)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(snapshotter);
      let output = '';
      snapshotter.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await new Promise((resolve) => snapshotter.once('exit', resolve));
      const result = JSON.parse(output) as {
        snapshotMs: number;
        remotePort?: number;
        whileStuck?: Record<string, unknown>;
        skippedWhileStuck: number;
        lingeredMs: number;
        stats: { slowCloses: number };
      };
      process.stderr.write(`socket-linger: ${JSON.stringify(result)}\n`);
      // The copy was taken and read (the delayed getpeername answered), and the snapshot was back once the
      // 400 ms delay was over ...
      expect(result.remotePort).toBe(port);
      expect(result.snapshotMs).toBeLessThan(1000);
      // ... while its close lingered, on the closer thread.
      expect(result.stats.slowCloses).toBe(1);
      expect(result.lingeredMs).toBeGreaterThan(4000);
      // With the closer stuck, no copy was taken: the stream is a TCP socket without its ends, counted.
      expect(result.whileStuck).toEqual({ type: 'socket', protocol: 'TCP' });
      expect(result.skippedWhileStuck).toBe(1);
    } finally {
      server.close();
    }
  }, 30_000);
});
