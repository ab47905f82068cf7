import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRecord, parseRecord } from '../../src/outputs/spool-record.js';
import { Spool } from '../../src/outputs/spool.js';
import { testContext } from './helpers/context.js';

async function openSpool(dir: string, logger: ReturnType<typeof testContext>['logger'], maxBytes = 1024 * 1024, segmentBytes?: number) {
  return Spool.open({ dir, maxBytes, logger, ...(segmentBytes === undefined ? {} : { segmentBytes }) });
}

/** Reads everything currently unread (the spool must hold at least one record). */
async function readAll(spool: Spool, expected: number) {
  const records = [];
  while (records.length < expected) records.push(...(await spool.read(expected - records.length)));
  return records;
}

function segments(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.seg')).sort();
}

describe('disk spool', () => {
  it('hands records out in order with their keys, and forgets them only when acknowledged', async () => {
    const context = testContext();
    const dir = join(context.stateDir, 'spool');
    const spool = await openSpool(dir, context.logger);
    await Promise.all(Array.from({ length: 10 }, (_, i) => spool.append(`id-${i}`, `{"n":${i}}`)));
    expect(spool.stats().records).toBe(10);
    const records = await readAll(spool, 10);
    expect(records.map((r) => r.key)).toEqual(Array.from({ length: 10 }, (_, i) => `id-${i}`));
    expect(records.map((r) => JSON.parse(r.payload.toString()).n)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    spool.ack(records[3]!.end, 4);
    expect(spool.stats().records).toBe(6);
    await spool.close();

    // restart: the six unacknowledged come back first, in order, then new ones
    const reopened = await openSpool(dir, context.logger);
    expect(reopened.stats().records).toBe(6);
    await reopened.append('id-10', '{"n":10}');
    const again = await readAll(reopened, 7);
    expect(again.map((r) => r.key)).toEqual(['id-4', 'id-5', 'id-6', 'id-7', 'id-8', 'id-9', 'id-10']);
    reopened.ack(again[6]!.end, 7);
    expect(reopened.stats()).toMatchObject({ records: 0, bytes: 0 });
    await reopened.close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const name of segments(dir)) expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    context.cleanup();
  });

  it('drops a torn tail (a crash in the middle of an append) and keeps every complete record', async () => {
    const context = testContext();
    const dir = join(context.stateDir, 'spool');
    const spool = await openSpool(dir, context.logger);
    for (let i = 0; i < 3; i++) await spool.append(`id-${i}`, `{"n":${i}}`);
    await spool.close();
    const last = join(dir, segments(dir).at(-1)!);
    appendFileSync(last, encodeRecord('id-torn', '{"n":"torn"}').subarray(0, 9));
    const reopened = await openSpool(dir, context.logger);
    expect((await readAll(reopened, 3)).map((r) => r.key)).toEqual(['id-0', 'id-1', 'id-2']);
    expect(context.logs.some((log) => /torn tail/.test(log.msg))).toBe(true);
    await reopened.close();
    context.cleanup();
  });

  it('a damaged length field in the middle is damage, not a torn tail: the valid records after it are delivered', async () => {
    const context = testContext();
    const dir = join(context.stateDir, 'spool');
    const spool = await openSpool(dir, context.logger);
    for (let i = 0; i < 4; i++) await spool.append(`id-${i}`, `{"n":${i}}`);
    await spool.close();
    const name = segments(dir).find((candidate) => statSync(join(dir, candidate)).size > 0)!;
    const bytes = readFileSync(join(dir, name));
    const recordLength = encodeRecord('id-0', '{"n":0}').length;
    bytes.writeUInt32LE(0x7fffffff, recordLength); // the second record claims 2 GiB
    writeFileSync(join(dir, name), bytes);
    const reopened = await openSpool(dir, context.logger);
    expect((await readAll(reopened, 3)).map((r) => r.key)).toEqual(['id-0', 'id-2', 'id-3']);
    expect(context.logs.filter((log) => log.level >= 50)).toMatchObject([
      { file: join(dir, name), offset: recordLength, bytes: recordLength, reason: 'record length runs past the end of the file' },
    ]);
    await reopened.close();
    context.cleanup();
  });

  it('treats a bad checksum on the last record (unwritten blocks after a crash) as a torn tail', async () => {
    const context = testContext();
    const dir = join(context.stateDir, 'spool');
    const spool = await openSpool(dir, context.logger);
    for (let i = 0; i < 3; i++) await spool.append(`id-${i}`, `{"n":${i}}`);
    await spool.close();
    const path = join(dir, segments(dir).find((name) => statSync(join(dir, name)).size > 0)!);
    const bytes = readFileSync(path);
    bytes.fill(0, bytes.length - 5); // the last record's tail never reached the disk
    writeFileSync(path, bytes);
    const reopened = await openSpool(dir, context.logger);
    expect(reopened.stats().records).toBe(2);
    expect((await readAll(reopened, 2)).map((r) => r.key)).toEqual(['id-0', 'id-1']);
    expect(context.logs.some((log) => /torn tail/.test(log.msg))).toBe(true);
    expect(context.logs.filter((log) => log.level >= 50)).toEqual([]);
    await reopened.close();
    context.cleanup();
  });

  it('skips damage in the middle (reported with its offset) and delivers the records before and after it', async () => {
    const context = testContext();
    const dir = join(context.stateDir, 'spool');
    const spool = await openSpool(dir, context.logger);
    for (let i = 0; i < 4; i++) await spool.append(`id-${i}`, `{"n":${i}}`);
    await spool.close();
    const name = segments(dir).find((candidate) => statSync(join(dir, candidate)).size > 0)!;
    const path = join(dir, name);
    const bytes = readFileSync(path);
    const recordLength = encodeRecord('id-0', '{"n":0}').length;
    bytes[2 * recordLength + 12] = bytes[2 * recordLength + 12]! ^ 0xff; // flip a byte inside the third record
    writeFileSync(path, bytes);
    const reopened = await openSpool(dir, context.logger);
    expect((await readAll(reopened, 3)).map((r) => r.key)).toEqual(['id-0', 'id-1', 'id-3']);
    const report = context.logs.find((log) => log.level === 50)!;
    expect(report).toMatchObject({ file: path, offset: 2 * recordLength, bytes: recordLength, reason: 'checksum mismatch' });
    expect(report.msg).toContain(`${path} is damaged at offset ${2 * recordLength}`);
    await reopened.close();
    context.cleanup();
  });

  it('when full drops the oldest undelivered records, counts them, and remembers the count across restarts', async () => {
    const context = testContext();
    const dir = join(context.stateDir, 'spool');
    const payload = JSON.stringify({ pad: 'x'.repeat(1000) });
    const spool = await openSpool(dir, context.logger, 64 * 1024, 16 * 1024);
    for (let i = 0; i < 200; i++) await spool.append(`id-${i}`, payload);
    const { dropped, records, bytes } = spool.stats();
    expect(dropped).toBeGreaterThan(0);
    expect(records + dropped).toBe(200);
    expect(bytes).toBeLessThanOrEqual(64 * 1024);
    const kept = await readAll(spool, records);
    // the newest survive, contiguous up to the last one appended
    expect(kept.map((r) => r.key)).toEqual(Array.from({ length: records }, (_, i) => `id-${200 - records + i}`));
    expect(spool.unreported().count).toBe(dropped);
    await spool.close();
    const reopened = await openSpool(dir, context.logger, 64 * 1024, 16 * 1024);
    expect(reopened.unreported().count).toBe(dropped);
    reopened.markReported(dropped);
    expect(reopened.unreported().count).toBe(0);
    await reopened.close();
    expect(context.logs.some((log) => /spool full/.test(log.msg) && typeof log.dropped === 'number')).toBe(true);
    context.cleanup();
  });

  it('decodes every record exactly as encoded, and any single flipped bit is caught (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), fc.string({ unit: 'grapheme', maxLength: 300 }), fc.nat(), (key, payload, flip) => {
        const record = encodeRecord(key, payload);
        const parsed = parseRecord(record, 0);
        expect(parsed).toMatchObject({ kind: 'record', key, next: record.length });
        expect(parsed.kind === 'record' && parsed.payload.toString('utf8')).toBe(payload);
        const damaged = Buffer.from(record);
        const bit = flip % (damaged.length * 8);
        damaged[bit >> 3] = damaged[bit >> 3]! ^ (1 << (bit & 7));
        expect(parseRecord(damaged, 0).kind).not.toBe('record');
      }),
    );
  });

  it('never loses or reorders records across any mix of appends, partial acks and restarts (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ appends: fc.integer({ min: 0, max: 30 }), ackFraction: fc.double({ min: 0, max: 1, noNaN: true }), restart: fc.boolean() }), {
          minLength: 1,
          maxLength: 8,
        }),
        async (steps) => {
          const context = testContext();
          const dir = join(context.stateDir, 'spool');
          let spool = await openSpool(dir, context.logger, 1024 * 1024, 4096);
          let next = 0;
          const delivered: number[] = [];
          for (const step of steps) {
            await Promise.all(Array.from({ length: step.appends }, () => spool.append(`k${next}`, `{"n":${next++}}`)));
            const unread = spool.stats().records;
            if (unread > 0) {
              const take = Math.floor(unread * step.ackFraction);
              if (take > 0) {
                const records = await readAll(spool, take);
                delivered.push(...records.map((r) => JSON.parse(r.payload.toString()).n as number));
                spool.ack(records.at(-1)!.end, records.length);
              }
            }
            if (step.restart) {
              await spool.close();
              spool = await openSpool(dir, context.logger, 1024 * 1024, 4096);
            }
          }
          const rest = spool.stats().records;
          if (rest > 0) delivered.push(...(await readAll(spool, rest)).map((r) => JSON.parse(r.payload.toString()).n as number));
          await spool.close();
          context.cleanup();
          expect(delivered).toEqual(Array.from({ length: next }, (_, i) => i));
        },
      ),
      { numRuns: 40 },
    );
  });
});
