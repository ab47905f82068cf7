import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { native, type ProcSnapshot } from '../../src/native.js';

/**
 * The addon's /proc parsers on recorded fixtures (test/sensor/fixtures/proc, made by record-fixtures.py
 * from real stat/status files, then shaped the way hostile or dying processes shape them). scanProcesses
 * reads a fixture directory exactly as it reads /proc.
 */
const fixtures = fileURLToPath(new URL('./fixtures/proc', import.meta.url));
const MAX_ARGS_BYTES = 256;
let byPid: Map<number, ProcSnapshot>;

beforeAll(async () => {
  const snapshots = await native().scanProcesses(fixtures, MAX_ARGS_BYTES);
  byPid = new Map(snapshots.map((snapshot) => [snapshot.pid, snapshot]));
});

function snapshot(pid: number): ProcSnapshot {
  const found = byPid.get(pid);
  if (found === undefined) throw new Error(`no snapshot of fixture ${pid}`);
  return found;
}

describe('/proc parsers on recorded fixtures', () => {
  it('reads a whole ordinary process', () => {
    const s = snapshot(100);
    expect(s).toMatchObject({
      pid: 100,
      partial: false,
      comm: 'sleep',
      executable: '/usr/bin/sleep',
      cwd: '/home/fixture dir',
      args: ['/usr/bin/sleep', '30'],
      uids: [0, 0, 0],
      gids: [0, 0, 0],
      ttyNr: 0,
      startTicks: expect.any(Number),
    });
    expect(s.ppid).toBeGreaterThan(0);
    expect(s.startTicks).toBeGreaterThan(0);
    // The standard streams are read with or without a controlling terminal: the fixture has no fd/1.
    const devNull = { type: 'character_device', device: [1, 3] };
    expect(s.stdio).toEqual([devNull, { type: 'closed' }, devNull]);
    expect(s.argsTruncated).toBeUndefined();
    expect(s.argsLossy).toBeUndefined();
  });

  it('parses stat after the last ")" when comm holds parentheses, spaces and a newline', () => {
    const odd = snapshot(101);
    const plain = snapshot(100);
    expect(odd.comm).toBe('a) (b c\nd)');
    expect(odd.ppid).toBe(plain.ppid);
    expect(odd.startTicks).toBe(plain.startTicks);
    expect(odd.sid).toBe(plain.sid);
    expect(snapshot(107).comm).toBe(' ');
  });

  it('reads the supplemental groups of the Groups: line, none as an empty list, an unreadable status as unknown', () => {
    expect(snapshot(100).groups).toEqual([0, 4, 24]);
    expect(snapshot(102).groups).toEqual([]);
    expect(snapshot(104).groups).toBeUndefined();
  });

  it('hands over a scan larger than one chunk of its JSON (4 MiB) whole, in order', async () => {
    const many = await native().scanProcesses(fixtures, MAX_ARGS_BYTES, Array.from({ length: 24_000 }, () => 100));
    expect(many).toHaveLength(24_000);
    expect(JSON.stringify(many).length).toBeGreaterThan(2 * 4 * 1024 * 1024);
    for (const each of many) expect(each).toEqual(snapshot(100));
  });

  it('keeps an empty argv as an empty list', () => {
    expect(snapshot(102).args).toEqual([]);
    expect(snapshot(102).partial).toBe(false);
  });

  it('replaces bytes that are not UTF-8 by U+FFFD, keeps the valid ones, and says so', () => {
    const s = snapshot(103);
    expect(s.args).toEqual(['café', '\uFFFD\uFFFD ok', '\uFFFD']);
    expect(s.argsLossy).toBe(true);
  });

  it('hands over the original bytes of argv when some argument was not UTF-8, and only then', () => {
    expect(snapshot(103).argsBytes).toEqual([Buffer.from('café'), Buffer.from([0xff, 0xfe, 0x20, 0x6f, 0x6b]), Buffer.from([0xe2, 0x82])]);
    expect(snapshot(100).argsBytes).toBeUndefined();
  });

  it('hands over the original bytes of each path that was not UTF-8, and only of that one', () => {
    const s = snapshot(109);
    expect(s.executable).toBe('/tmp/x\uFFFD');
    expect(s.executableBytes).toEqual(Buffer.from('/tmp/x\xff', 'latin1'));
    expect(s.cwd).toBe('/tmp/d\uFFFD\\');
    expect(s.cwdBytes).toEqual(Buffer.from('/tmp/d\xfe\\', 'latin1'));
    expect(s.pathsLossy).toBe(true);
    expect(s.args).toEqual(['/tmp/x\uFFFD', 'a\\b']);
    expect(s.argsBytes).toEqual([Buffer.from('/tmp/x\xff', 'latin1'), Buffer.from('a\\b')]);
    expect(s.argsLossy).toBe(true);
    for (const key of ['executableBytes', 'cwdBytes', 'argsBytes', 'pathsLossy'] as const) expect(snapshot(100)[key]).toBeUndefined();
    // A lossy cwd leaves a valid executable alone.
    expect(snapshot(107).executableBytes).toBeUndefined();
  });

  it('keeps an empty last argument', () => {
    expect(snapshot(107).args).toEqual(['/usr/bin/sleep', '']);
  });

  it('reads an executable path holding spaces and parentheses as it is', () => {
    expect(snapshot(107).executable).toBe('/tmp/odd) name (x');
  });

  it('cuts argv at the byte cap on a character boundary and marks it truncated', () => {
    const s = snapshot(106);
    expect(s.argsTruncated).toBe(true);
    expect(s.argsLossy).toBeUndefined();
    expect(s.args?.[0]).toBe('x'.repeat(300).slice(0, 256));
    expect(s.args).toHaveLength(1);
  });

  it('cuts inside a later argument without splitting a character', async () => {
    // 300 + 1 NUL bytes of the first argument, then two-byte characters: a cap of 304 falls mid-character.
    const [s] = await native().scanProcesses(fixtures, 304, [106]);
    expect(s?.args).toEqual(['x'.repeat(300), 'é']);
    expect(s?.argsTruncated).toBe(true);
    expect(s?.argsLossy).toBeUndefined();
  });

  it('marks a process whose files vanished as partial, with those fields absent', () => {
    const s = snapshot(104);
    expect(s.partial).toBe(true);
    expect(s.comm).toBe('sleep');
    for (const key of ['executable', 'cwd', 'args', 'uids', 'gids', 'capEff'] as const) expect(s[key]).toBeUndefined();
  });

  it('reads fd 0 and 2 of a process with a controlling terminal, a missing one as closed while it lives', () => {
    const s = snapshot(110);
    expect(s.ttyNr).toBe(34816);
    expect(s.stdio?.[0]).toEqual({ type: 'character_device', device: [1, 3] }); // /dev/null, known by its numbers alone
    expect(s.stdio?.[2]).toEqual({ type: 'closed' }); // the process was not leaving (exe still there after the fd reads)
    expect(s.partial).toBe(false);
    expect(s.exited).toBeUndefined();
  });

  it('calls a process with PF_EXITING set leaving even while its state reads R: no fd is "closed", the rest is unknown', () => {
    const s = snapshot(111);
    expect(s.exited).toBe(true);
    expect(s.partial).toBe(true);
    expect(s.comm).toBe('sleep');
    expect(s.stdio).toBeUndefined();
    expect(s.executable).toBeUndefined();
    expect(s.args).toBeUndefined(); // an empty cmdline of a leaving process is its memory gone, not argv = {}
    expect(s.cwd).toBe('/home/fixture dir');
    expect(s.uids).toEqual([0, 0, 0]); // ids outlive the memory
  });

  it('treats a zombie as partial and exited: no argv, no program', () => {
    const s = snapshot(105);
    expect(s.exited).toBe(true);
    expect(s.partial).toBe(true);
    expect(s.args).toBeUndefined();
    expect(s.executable).toBeUndefined();
    expect(s.uids).toEqual([0, 0, 0]);
  });

  it('recognises a kernel thread and does not call it partial for having no program', () => {
    const s = snapshot(2);
    expect(s.kernelThread).toBe(true);
    expect(s.partial).toBe(false);
    expect(s.executable).toBeUndefined();
    expect(s.args).toBeUndefined();
  });

  it('reads real, effective and saved ids and the capability masks of a setuid process', () => {
    const s = snapshot(108);
    expect(s.uids).toEqual([1, 0, 0]);
    expect(s.gids).toEqual([1, 1, 1]);
    expect(s.capEff).toBe('0000000000003001');
    expect(s.capPrm).toBe('0000020000000000');
  });

  it('gives nothing for a pid that is not there', async () => {
    expect(await native().scanProcesses(fixtures, 256, [999])).toEqual([]);
  });

  it('never mixes processes: every live pid of the real /proc reads back its own pid and start time', async () => {
    const snapshots = await native().scanProcesses('/proc', 4096);
    expect(snapshots.length).toBeGreaterThan(1);
    const self = snapshots.find((s) => s.pid === process.pid);
    expect(self?.executable).toBe(process.execPath);
    expect(self?.args?.[0]).toBe(process.argv0);
    expect(self?.uids?.[0]).toBe(process.getuid?.());
  });
});
