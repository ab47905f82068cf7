import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { lineText, readLines, type Line } from '../../src/io/lines.js';

async function collect(chunks: (Buffer | string)[], maxLineBytes?: number): Promise<Line[]> {
  const lines: Line[] = [];
  for await (const line of readLines(Readable.from(chunks), maxLineBytes)) {
    lines.push(line);
  }
  return lines;
}

const texts = (lines: Line[]): (string | null)[] => lines.map((line) => (line.tooLong === true ? null : line.bytes.toString('latin1')));

describe('readLines', () => {
  it('splits on newlines across chunk boundaries, keeps \\r and numbers every line', async () => {
    const lines = await collect(['a\r', '\nbb', 'b\n\nc', 'c']);
    expect(texts(lines)).toEqual(['a\r', 'bbb', '', 'cc']);
    expect(lines.map((line) => line.number)).toEqual([1, 2, 3, 4]);
    expect(lineText(Buffer.from('{"a":1}\r'))).toBe('{"a":1}');
  });

  it('keeps bytes exactly, invalid UTF-8 included', async () => {
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x0a]);
    const [line] = await collect([bytes]);
    expect(line!.tooLong !== true && line!.bytes.equals(bytes.subarray(0, 3))).toBe(true);
  });

  it('reports a line over the limit, without keeping it, and goes on with the next', async () => {
    const lines = await collect(['x'.repeat(10), 'y'.repeat(10), 'more', '\nok\n', 'z'.repeat(25)], 16);
    expect(texts(lines)).toEqual([null, 'ok', null]);
    expect(lines.map((line) => line.number)).toEqual([1, 2, 3]);
    expect(await collect(['x'.repeat(16), '\n'], 16).then(texts)).toEqual(['x'.repeat(16)]);
    expect(await collect(['x'.repeat(17) + '\nok'], 16).then(texts)).toEqual([null, 'ok']);
  });

  it('reports the overflow before the line ends: an endless line is refused, not waited for', async () => {
    const endless = (async function* () {
      for (;;) yield Buffer.alloc(1024);
    })();
    for await (const line of readLines(endless, 4096)) {
      expect(line).toEqual({ number: 1, tooLong: true });
      break;
    }
  });

  it('is linear in a long line spread over many chunks (a join per line, not per chunk)', async () => {
    const timeLine = async (chunks: number): Promise<number> => {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const input = Readable.from((function* () {
        for (let i = 0; i < chunks; i++) yield chunk;
        yield Buffer.from('\n');
      })());
      const started = performance.now();
      for await (const line of readLines(input, 1024 * 1024 * 1024)) expect(line.tooLong !== true && line.bytes.length).toBe(chunks * chunk.length);
      return performance.now() - started;
    };
    await timeLine(500); // warm-up
    const small = await timeLine(25);
    const large = await timeLine(500);
    // linear: about 20; joining per chunk (the old kql reader) made it about 400
    expect(large / small).toBeLessThan(100);
  });
});
