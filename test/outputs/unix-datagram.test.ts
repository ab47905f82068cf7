import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../src/native.js';
import { waitFor } from './helpers/ports.js';

// Node.js cannot open a unix datagram socket, so the receiving end is a small Python program (python3 is
// a build dependency). It binds `path` and, unless told to stall, prints every datagram as a hex line.
const RECEIVER = `
import socket, sys, binascii, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
path = sys.argv[1]
s.bind('\\0' + path[1:] if path.startswith('@') else path)
print('READY', flush=True)
if sys.argv[2] == 'stall':
    time.sleep(60)
while True:
    print(binascii.hexlify(s.recv(1 << 20)).decode(), flush=True)
`;

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function receiver(path: string, mode: 'read' | 'stall'): Promise<{ messages: string[] }> {
  const child = spawn('python3', ['-c', RECEIVER, path, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const state = { messages: [] as string[], ready: false };
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line === 'READY') state.ready = true;
      else state.messages.push(Buffer.from(line, 'hex').toString('utf8'));
    }
  });
  await waitFor('the receiver to bind', () => state.ready);
  return state;
}

describe('native unix datagram sender (sdNotify and the syslog output share it)', () => {
  it('sdNotify keeps its signature and reaches a path socket and an abstract one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'execsentry-dgram-'));
    dirs.push(dir);
    const onPath = await receiver(join(dir, 'notify.sock'), 'read');
    expect(native().sdNotify(join(dir, 'notify.sock'), 'READY=1\nSTATUS=watching')).toBe(true);
    const abstractName = `@execsentry-test-${process.pid}-${Date.now()}`;
    const abstract = await receiver(abstractName, 'read');
    expect(native().sdNotify(abstractName, 'WATCHDOG=1')).toBe(true);
    await waitFor('both datagrams', () => onPath.messages.length === 1 && abstract.messages.length === 1);
    expect(onPath.messages).toEqual(['READY=1\nSTATUS=watching']);
    expect(abstract.messages).toEqual(['WATCHDOG=1']);
  });

  it('sendUnixDatagrams keeps message boundaries and order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'execsentry-dgram-'));
    dirs.push(dir);
    const path = join(dir, 'log.sock');
    const state = await receiver(path, 'read');
    const messages = Array.from({ length: 50 }, (_, i) => Buffer.from(`<83>1 - - execsentry 1 rule - message ${i}\nwith newline`));
    // the kernel's datagram queue is short: send the rest as the receiver drains it
    for (let sent = 0; sent < messages.length; await new Promise((resolve) => setTimeout(resolve, 2)))
      sent += native().sendUnixDatagrams(path, messages.slice(sent));
    await waitFor('50 datagrams', () => state.messages.length === 50);
    expect(state.messages).toEqual(messages.map((m) => m.toString()));
  });

  it('never blocks: a receiver that stops reading makes it return how many fit, not wait', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'execsentry-dgram-'));
    dirs.push(dir);
    const path = join(dir, 'stalled.sock');
    await receiver(path, 'stall');
    const messages = Array.from({ length: 5000 }, () => Buffer.alloc(4096, 0x41));
    const sent = native().sendUnixDatagrams(path, messages);
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(messages.length);
  });

  it('reports a missing socket with a code the syslog output can act on', () => {
    expect(existsSync('/nonexistent/execsentry.sock')).toBe(false);
    expect(() => native().sendUnixDatagrams('/nonexistent/execsentry.sock', [Buffer.from('x')])).toThrow(
      expect.objectContaining({ code: 'ENOENT', sent: 0 }),
    );
    expect(() => native().sendUnixDatagrams('relative.sock', [Buffer.from('x')])).toThrow(/absolute path/);
  });
});
