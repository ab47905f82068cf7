import { describe, expect, it } from 'vitest';
import { decodeRecords, parseSnapshots, RECORD_STRIDE, RecordKind, type ProcSnapshot } from '../src/native.js';

/** The addon's packed batch (native/connector.cc PackRecord) for `rows` of [kind, pid, timeNs, first, second, attachment]. */
function packed(rows: number[][]): Float64Array {
  for (const row of rows) expect(row).toHaveLength(RECORD_STRIDE);
  return Float64Array.from(rows.flat());
}

describe('decodeRecords', () => {
  it('gives each kind its fields and each exec its snapshot, in order', () => {
    const first: ProcSnapshot = { pid: 10, partial: false, comm: 'a' };
    const second: ProcSnapshot = { pid: 12, partial: true, exited: true };
    const records = decodeRecords(
      packed([
        [RecordKind.subscribed, 0, 0, 0, 0, -1],
        [RecordKind.fork, 10, 1_000, 9, 4_242, -1],
        [RecordKind.exec, 10, 2_000, 0, 0, 0],
        [RecordKind.uidChange, 10, 2_500, 1, 0, -1],
        [RecordKind.gidChange, 10, 2_600, 2, 3, 1],
        [RecordKind.sessionChange, 10, 2_700, 0, 0, -1],
        [RecordKind.exec, 12, 3_000, 0, 0, 2],
        [RecordKind.exit, 12, 4_000, 256, 0, -1],
        [RecordKind.overrun, 0, 0, 0, 0, -1],
        [RecordKind.readError, 105, 0, 0, 0, -1],
      ]),
      JSON.stringify([first, [4, 24], second]),
    );
    expect(records).toEqual([
      { kind: RecordKind.subscribed, code: 0 },
      { kind: RecordKind.fork, timeNs: 1_000, pid: 10, parentPid: 9, startTicks: 4_242 },
      { kind: RecordKind.exec, timeNs: 2_000, pid: 10, snapshot: first },
      { kind: RecordKind.uidChange, pid: 10, effectiveId: 1, realId: 0 },
      { kind: RecordKind.gidChange, pid: 10, effectiveId: 2, realId: 3, groups: [4, 24] },
      { kind: RecordKind.sessionChange, pid: 10 },
      { kind: RecordKind.exec, timeNs: 3_000, pid: 12, snapshot: second },
      { kind: RecordKind.exit, timeNs: 4_000, pid: 12, exitStatus: 256 },
      { kind: RecordKind.overrun },
      { kind: RecordKind.readError, code: 105 },
    ]);
  });

  it('keeps an exec that came without a snapshot, as one of a program unknown', () => {
    expect(decodeRecords(packed([[RecordKind.exec, 7, 5, 0, 0, -1]]), '[]')).toEqual([{ kind: RecordKind.exec, timeNs: 5, pid: 7, snapshot: { pid: 7, partial: true } }]);
  });
});

describe('parseSnapshots', () => {
  it('turns the base64 of raw paths and arguments into their bytes', () => {
    const json = JSON.stringify([
      { pid: 1, partial: false, executableBytes: Buffer.from([0x2f, 0xff, 0x61]).toString('base64'), cwdBytes: Buffer.from([0xfe]).toString('base64'), argsBytes: ['', Buffer.from([0x80, 0x0a]).toString('base64')] },
      { pid: 2, partial: true },
    ]);
    const [lossy, plain] = parseSnapshots(json);
    expect(lossy?.executableBytes).toEqual(Buffer.from([0x2f, 0xff, 0x61]));
    expect(lossy?.cwdBytes).toEqual(Buffer.from([0xfe]));
    expect(lossy?.argsBytes).toEqual([Buffer.alloc(0), Buffer.from([0x80, 0x0a])]);
    expect(plain).toEqual({ pid: 2, partial: true });
  });
});
