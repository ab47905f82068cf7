import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/outputs/spool-record.js';
import { Spool, type SpoolRecord } from '../../src/outputs/spool.js';
import { testContext, type LogRecord } from './helpers/context.js';

const WARN = 40;
const ERROR = 50;
/** Every record these tests write (`id-<digit>`, `{"n":<digit>}`) is this long. */
const RECORD_BYTES = encodeRecord('id-0', '{"n":0}').length;

type Context = ReturnType<typeof testContext>;

function openSpool(dir: string, context: Context, segmentBytes?: number): Promise<Spool> {
  return Spool.open({ dir, maxBytes: 1024 * 1024, logger: context.logger, ...(segmentBytes === undefined ? {} : { segmentBytes }) });
}

async function readAll(spool: Spool, expected: number): Promise<SpoolRecord[]> {
  const records: SpoolRecord[] = [];
  while (records.length < expected) records.push(...(await spool.read(expected - records.length)));
  return records;
}

function segments(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.seg')).sort();
}

/** A closed spool in <stateDir>/spool holding id-0 … id-(n-1), `perSegment` records a segment. */
async function spooled(n: number, perSegment = n): Promise<{ context: Context; dir: string; state: string }> {
  const context = testContext();
  const dir = join(context.stateDir, 'spool');
  const spool = await openSpool(dir, context, perSegment * RECORD_BYTES);
  for (let i = 0; i < n; i++) await spool.append(`id-${i}`, `{"n":${i}}`);
  await spool.close();
  context.logs.length = 0;
  return { context, dir, state: join(dir, 'state.json') };
}

/** Reopens the spool, takes out what it says is pending, and closes it again. */
async function deliverAll(dir: string, context: Context, segmentBytes?: number): Promise<string[]> {
  const spool = await openSpool(dir, context, segmentBytes);
  const records = await readAll(spool, spool.stats().records);
  if (records.length > 0) spool.ack(records.at(-1)!.end, records.length);
  await spool.close();
  return records.map((record) => record.key);
}

function atLeast(context: Context, level: number): LogRecord[] {
  return context.logs.filter((log) => log.level >= level);
}

function flipByte(file: string, offset: number): void {
  const bytes = readFileSync(file);
  bytes[offset] = bytes[offset]! ^ 0x5a;
  writeFileSync(file, bytes);
}

describe('spool recovery: a damaged or out-of-range state.json', () => {
  it('an acknowledged position beyond the existing segments is reported, and every spooled alert is delivered again', async () => {
    const { context, dir, state } = await spooled(3);
    writeFileSync(state, JSON.stringify({ ack: { segment: 7, offset: 0 }, unreportedDrops: 0 }));
    const spool = await openSpool(dir, context);
    expect(spool.stats().records).toBe(3);
    expect((await readAll(spool, 3)).map((r) => r.key)).toEqual(['id-0', 'id-1', 'id-2']);
    const warnings = atLeast(context, WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: WARN, file: state });
    expect(warnings[0]!.msg).toMatch(/segment 7 .*beyond/);
    await spool.close();
    context.cleanup();
  });

  it('an acknowledged position in a missing segment between others is reported, and both neighbours are delivered again', async () => {
    const { context, dir, state } = await spooled(6, 2);
    const names = segments(dir);
    expect(names).toHaveLength(3);
    const middle = Number(names[1]!.slice(0, 16));
    unlinkSync(join(dir, names[1]!));
    writeFileSync(state, JSON.stringify({ ack: { segment: middle, offset: RECORD_BYTES }, unreportedDrops: 0 }));
    expect(await deliverAll(dir, context, 2 * RECORD_BYTES)).toEqual(['id-0', 'id-1', 'id-4', 'id-5']);
    const warnings = atLeast(context, WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ file: state });
    expect(warnings[0]!.msg).toMatch(new RegExp(`segment ${middle} .*does not exist`));
    context.cleanup();
  });

  it.each([
    ['not JSON', '{"ack":{"segm', /not valid JSON/],
    ['empty', '', /not valid JSON/],
    ['not an object', 'null', /not an object/],
    ['a string segment', JSON.stringify({ ack: { segment: '1', offset: 0 }, unreportedDrops: 0 }), /ack\.segment/],
    ['no ack at all', JSON.stringify({ unreportedDrops: 0 }), /ack is missing/],
    ['a negative offset', JSON.stringify({ ack: { segment: 1, offset: -5 }, unreportedDrops: 0 }), /ack\.offset .*-5/],
    ['a fractional offset', JSON.stringify({ ack: { segment: 1, offset: 1.5 }, unreportedDrops: 0 }), /ack\.offset .*1\.5/],
    ['a negative drop count', JSON.stringify({ ack: { segment: 1, offset: 0 }, unreportedDrops: -1 }), /unreportedDrops/],
    ['a drop time that is not a string', JSON.stringify({ ack: { segment: 1, offset: 0 }, unreportedDrops: 1, firstDropAt: 5 }), /firstDropAt/],
    ['an offset inside a record', JSON.stringify({ ack: { segment: 1, offset: RECORD_BYTES + 3 }, unreportedDrops: 0 }), /record boundary/],
    ['an offset past the end of its segment', JSON.stringify({ ack: { segment: 1, offset: 100 * RECORD_BYTES }, unreportedDrops: 0 }), /beyond the end/],
  ])('%s: reported in one warning naming the file, and the whole spool is delivered again', async (_, content, problem) => {
    const { context, dir, state } = await spooled(3);
    expect(segments(dir)).toEqual(['0000000000000001.seg']);
    writeFileSync(state, content);
    expect(await deliverAll(dir, context)).toEqual(['id-0', 'id-1', 'id-2']);
    const warnings = atLeast(context, WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: WARN, file: state });
    expect(warnings[0]!.msg).toMatch(problem);
    // the bad file was replaced: the next start is quiet and has nothing left to send
    context.logs.length = 0;
    expect(await deliverAll(dir, context)).toEqual([]);
    expect(atLeast(context, WARN)).toEqual([]);
    context.cleanup();
  });

  it('a segment delivered before a crash (before the acknowledged position) is deleted with a log line saying so', async () => {
    const { context, dir } = await spooled(6, 2);
    const names = segments(dir);
    const oldest = readFileSync(join(dir, names[0]!));
    const spool = await openSpool(dir, context, 2 * RECORD_BYTES);
    const records = await readAll(spool, 3);
    spool.ack(records[2]!.end, 3);
    await spool.close();
    writeFileSync(join(dir, names[0]!), oldest); // as if a crash had come before the delete reached the disk
    context.logs.length = 0;
    expect(await deliverAll(dir, context, 2 * RECORD_BYTES)).toEqual(['id-3', 'id-4', 'id-5']);
    expect(context.logs.find((log) => log.file === join(dir, names[0]!))).toMatchObject({ level: 30, msg: expect.stringMatching(/delivered/) });
    expect(atLeast(context, WARN)).toEqual([]);
    context.cleanup();
  });

  it('a zero-length segment is removed with a log line, nothing else is said', async () => {
    const { context, dir } = await spooled(2);
    const empty = join(dir, '0000000000000009.seg');
    writeFileSync(empty, '');
    expect(await deliverAll(dir, context)).toEqual(['id-0', 'id-1']);
    expect(existsSync(empty)).toBe(false);
    expect(context.logs.some((log) => log.file === empty && /empty/.test(log.msg))).toBe(true);
    expect(atLeast(context, WARN)).toEqual([]);
    context.cleanup();
  });
});

describe('spool recovery: damaged records', () => {
  it('one flipped byte in the first record costs only that record: the two after it are delivered, the damage is logged with segment and offset', async () => {
    const { context, dir } = await spooled(3);
    const file = join(dir, segments(dir)[0]!);
    flipByte(file, 12);
    const spool = await openSpool(dir, context);
    expect(spool.stats().records).toBe(2);
    const records = await readAll(spool, 2);
    expect(records.map((r) => r.key)).toEqual(['id-1', 'id-2']);
    const errors = atLeast(context, ERROR);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ file, offset: 0, bytes: RECORD_BYTES, reason: 'checksum mismatch' });
    spool.ack(records[1]!.end, 2);
    await spool.close();
    // acknowledged past the damage: nothing is sent twice
    expect(await deliverAll(dir, context)).toEqual([]);
    context.cleanup();
  });

  it('a length field claiming a wrong but plausible size: the reader resynchronises on the next record', async () => {
    const { context, dir } = await spooled(4);
    const file = join(dir, segments(dir)[0]!);
    const bytes = readFileSync(file);
    bytes.writeUInt32LE(7, RECORD_BYTES);
    writeFileSync(file, bytes);
    expect(await deliverAll(dir, context)).toEqual(['id-0', 'id-2', 'id-3']);
    expect(atLeast(context, ERROR)).toMatchObject([{ file, offset: RECORD_BYTES, bytes: RECORD_BYTES, reason: 'checksum mismatch' }]);
    context.cleanup();
  });

  it('an unreadable last record of an older segment is damage (not a torn tail), and the later segments are delivered', async () => {
    const { context, dir } = await spooled(6, 2);
    const names = segments(dir);
    const file = join(dir, names[0]!);
    truncateSync(file, 2 * RECORD_BYTES - 3);
    expect(await deliverAll(dir, context, 2 * RECORD_BYTES)).toEqual(['id-0', 'id-2', 'id-3', 'id-4', 'id-5']);
    expect(atLeast(context, ERROR)).toMatchObject([{ file, offset: RECORD_BYTES }]);
    context.cleanup();
  });

  it('a tail of zeros (blocks allocated, never written) on the newest segment is a torn tail: dropped, logged, and appends go on', async () => {
    const { context, dir } = await spooled(2);
    const file = join(dir, segments(dir)[0]!);
    appendFileSync(file, Buffer.alloc(4096));
    const spool = await openSpool(dir, context);
    expect(readFileSync(file).length).toBe(2 * RECORD_BYTES);
    await spool.append('id-2', '{"n":2}');
    const records = await readAll(spool, 3);
    expect(records.map((r) => r.key)).toEqual(['id-0', 'id-1', 'id-2']);
    expect(atLeast(context, WARN)).toMatchObject([{ level: WARN, file, offset: 2 * RECORD_BYTES, bytes: 4096 }]);
    spool.ack(records[2]!.end, 3);
    await spool.close();
    context.logs.length = 0;
    expect(await deliverAll(dir, context)).toEqual([]);
    expect(atLeast(context, WARN)).toEqual([]);
    context.cleanup();
  });

  it('an acknowledged position right before a damaged record is trusted: only the records after the damage are sent', async () => {
    const { context, dir } = await spooled(4);
    const first = await openSpool(dir, context);
    const [record] = await readAll(first, 1);
    first.ack(record!.end, 1);
    await first.close();
    const file = join(dir, segments(dir)[0]!);
    flipByte(file, RECORD_BYTES + 12);
    context.logs.length = 0;
    expect(await deliverAll(dir, context)).toEqual(['id-2', 'id-3']);
    expect(atLeast(context, WARN)).toMatchObject([{ level: ERROR, file, offset: RECORD_BYTES }]);
    context.cleanup();
  });

  it('bytes damaged after the spool was opened are skipped at read time, counted as dropped, and delivery goes on', async () => {
    const context = testContext();
    const dir = join(context.stateDir, 'spool');
    const spool = await openSpool(dir, context);
    for (let i = 0; i < 4; i++) await spool.append(`id-${i}`, `{"n":${i}}`);
    const file = join(dir, segments(dir).at(-1)!);
    flipByte(file, RECORD_BYTES + 12);
    expect((await readAll(spool, 3)).map((r) => r.key)).toEqual(['id-0', 'id-2', 'id-3']);
    expect(spool.stats()).toMatchObject({ records: 3, dropped: 1 });
    expect(spool.unreported().count).toBe(1);
    expect(atLeast(context, ERROR)).toMatchObject([{ file, offset: RECORD_BYTES, lost: 1 }]);
    await spool.append('id-4', '{"n":4}');
    expect((await spool.read(10)).map((r) => r.key)).toEqual(['id-4']);
    await spool.close();
    context.cleanup();
  });

  it('whatever single run of bytes is damaged, every record outside it is delivered, in order, and nothing else (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 24 }),
        fc.nat(),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom('flip', 'zero'),
        fc.nat(),
        async (sizes, where, length, how, acked) => {
          const context = testContext();
          const dir = join(context.stateDir, 'spool');
          const spool = await openSpool(dir, context, 256);
          const written: Array<{ key: string; segment: string; start: number; end: number }> = [];
          for (const [i, size] of sizes.entries()) {
            await spool.append(`k${i}`, JSON.stringify({ i, pad: 'x'.repeat(size) }));
            const segment = segments(dir).at(-1)!;
            const end = lstatSync(join(dir, segment)).size;
            written.push({ key: `k${i}`, segment, start: end - encodeRecord(`k${i}`, JSON.stringify({ i, pad: 'x'.repeat(size) })).length, end });
          }
          const ackCount = acked % (sizes.length + 1);
          if (ackCount > 0) {
            const records = await readAll(spool, ackCount);
            spool.ack(records.at(-1)!.end, ackCount);
          }
          await spool.close();
          const names = segments(dir).filter((name) => lstatSync(join(dir, name)).size > 0);
          const target = names[where % names.length]!;
          const file = join(dir, target);
          const bytes = readFileSync(file);
          const start = Math.floor(where / names.length) % bytes.length;
          const end = Math.min(bytes.length, start + length);
          for (let at = start; at < end; at++) bytes[at] = how === 'zero' ? 0 : bytes[at]! ^ 0xa5;
          writeFileSync(file, bytes);
          const delivered = await deliverAll(dir, context, 256);
          context.cleanup();
          const intact = written.slice(ackCount).filter((r) => r.segment !== target || r.end <= start || r.start >= end);
          const pending = new Set(written.slice(ackCount).map((r) => r.key));
          // nothing outside the damage is lost, nothing already acknowledged or made up comes back
          for (const record of intact) expect(delivered).toContain(record.key);
          for (const key of delivered) expect(pending.has(key)).toBe(true);
          expect(delivered).toEqual(written.map((r) => r.key).filter((key) => delivered.includes(key)));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('spool files and symbolic links: never followed', () => {
  it('a state.json that is a symbolic link is not read through, is reported, and the spool is delivered again', async () => {
    const { context, dir, state } = await spooled(2);
    const elsewhere = join(context.stateDir, 'elsewhere.json');
    const planted = JSON.stringify({ ack: { segment: 1, offset: 2 * RECORD_BYTES }, unreportedDrops: 0 });
    writeFileSync(elsewhere, planted);
    unlinkSync(state);
    symlinkSync(elsewhere, state);
    expect(await deliverAll(dir, context)).toEqual(['id-0', 'id-1']);
    const warnings = atLeast(context, WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ file: state, msg: expect.stringMatching(/symbolic link/) });
    expect(readFileSync(elsewhere, 'utf8')).toBe(planted);
    expect(lstatSync(state).isSymbolicLink()).toBe(false);
    context.cleanup();
  });

  it('a symbolic link planted as state.json.tmp is never written through: it is removed with a log line and the state is saved', async () => {
    const { context, dir, state } = await spooled(2);
    const target = join(context.stateDir, 'target');
    writeFileSync(target, 'untouched');
    symlinkSync(target, `${state}.tmp`);
    expect(await deliverAll(dir, context)).toEqual(['id-0', 'id-1']);
    expect(readFileSync(target, 'utf8')).toBe('untouched');
    expect(context.logs.some((log) => log.file === `${state}.tmp` && log.level === WARN)).toBe(true);
    expect(lstatSync(state).isFile()).toBe(true);
    expect(existsSync(`${state}.tmp`)).toBe(false);
    context.logs.length = 0;
    expect(await deliverAll(dir, context)).toEqual([]);
    context.cleanup();
  });

  it('a symbolic link named like a segment is set aside with a log line, its target neither read nor truncated', async () => {
    const { context, dir } = await spooled(2);
    const target = join(context.stateDir, 'precious');
    writeFileSync(target, 'not a spool segment\n');
    const link = join(dir, '0000000000000005.seg');
    symlinkSync(target, link);
    expect(await deliverAll(dir, context)).toEqual(['id-0', 'id-1']);
    expect(readFileSync(target, 'utf8')).toBe('not a spool segment\n');
    expect(existsSync(link)).toBe(false);
    const report = context.logs.find((log) => log.file === link)!;
    expect(report).toMatchObject({ level: ERROR, msg: expect.stringMatching(/symbolic link/) });
    expect(lstatSync(report.setAside as string).isSymbolicLink()).toBe(true);
    context.cleanup();
  });

  it('a hard link named like a segment (another file under a second name) is set aside, its content untouched', async () => {
    const { context, dir } = await spooled(2);
    const target = join(context.stateDir, 'precious');
    writeFileSync(target, 'not a spool segment\n');
    const link = join(dir, '0000000000000005.seg');
    linkSync(target, link);
    expect(await deliverAll(dir, context)).toEqual(['id-0', 'id-1']);
    expect(readFileSync(target, 'utf8')).toBe('not a spool segment\n');
    expect(existsSync(link)).toBe(false);
    expect(context.logs.find((log) => log.file === link)).toMatchObject({ level: ERROR, msg: expect.stringMatching(/a hard link/) });
    context.cleanup();
  });

  it.each([
    ['a directory', (path: string) => mkdirSync(path)],
    ['a FIFO', (path: string) => execFileSync('mkfifo', [path])],
  ])('%s named like a segment is set aside with a log line, never opened', async (_, make) => {
    const { context, dir } = await spooled(2);
    const odd = join(dir, '0000000000000005.seg');
    make(odd);
    expect(await deliverAll(dir, context)).toEqual(['id-0', 'id-1']);
    expect(existsSync(odd)).toBe(false);
    expect(context.logs.find((log) => log.file === odd)).toMatchObject({ level: ERROR, setAside: expect.stringContaining('0000000000000005.seg.') });
    context.cleanup();
  });

  it('a symbolic link planted where the next segment will be created makes that append fail with a clear error; nothing is written through it', async () => {
    const context = testContext();
    const dir = join(context.stateDir, 'spool');
    const spool = await openSpool(dir, context, 2 * RECORD_BYTES);
    await spool.append('id-0', '{"n":0}');
    await spool.append('id-1', '{"n":1}');
    const current = segments(dir).at(-1)!;
    const next = join(dir, `${String(Number(current.slice(0, 16)) + 1).padStart(16, '0')}.seg`);
    const target = join(context.stateDir, 'target');
    writeFileSync(target, 'untouched');
    symlinkSync(target, next);
    await expect(spool.append('id-2', '{"n":2}')).rejects.toThrow(new RegExp(`${next}.*already exists`));
    expect(readFileSync(target, 'utf8')).toBe('untouched');
    expect((await readAll(spool, 2)).map((r) => r.key)).toEqual(['id-0', 'id-1']);
    await spool.close();
    context.cleanup();
  });

  it('a spool directory that is a symbolic link is refused with a clear error, nothing is created through it', async () => {
    const context = testContext();
    const elsewhere = join(context.stateDir, 'elsewhere');
    mkdirSync(elsewhere);
    const dir = join(context.stateDir, 'spool');
    symlinkSync(elsewhere, dir);
    await expect(openSpool(dir, context)).rejects.toThrow(new RegExp(`${dir} is a symbolic link`));
    expect(readdirSync(elsewhere)).toEqual([]);
    // the same one level up, as the agent lays it out (<stateDir>/spool/<output>)
    await expect(openSpool(join(dir, 'http-0123456789abcdef'), context)).rejects.toThrow(new RegExp(`${dir} is a symbolic link`));
    expect(readdirSync(elsewhere)).toEqual([]);
    rmSync(dir);
    context.cleanup();
  });
});
