import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `execsentry eql` as a user runs it: the built CLI (`npm run build` first), spawned with a file or stdin.
 *
 * Sources for the expectations (Elasticsearch's own docs and code, cited where each one is used):
 * - "EQL search API" (elastic.co/guide/en/elasticsearch/reference/current/eql-search-api.html): the request's
 *   timestamp_field (default @timestamp), event_category_field (default event.category), tiebreaker_field
 *   (none by default; "sorts events with the same timestamp, in ascending order") and size ("for basic
 *   queries, the maximum number of matching events to return; for sequence queries, the maximum number of
 *   matching sequences"); the response's hits.events (matching events, ascending by timestamp) and
 *   hits.sequences, each `{"join_keys": [...], "events": [...]}` with a missing event as `"missing": true`.
 * - "EQL syntax reference" (…/eql-syntax.html): sequences, `by`, `until`, `with maxspan`, missing events `![…]`.
 * - "EQL pipe reference" (…/eql-pipe-ref.html): `head N` returns up to N events or sequences starting with
 *   the earliest, `tail N` starting with the most recent.
 * - elastic/elasticsearch x-pack/plugin/eql: execution/sequence/Sequence.java (compareTo orders sequences by
 *   ordinal(), the ordinal of their last matched event) and parser/LogicalPlanBuilder.java visitStatement
 *   (the implicit sort on timestamp then tiebreaker; `size` becomes a limit of the same kind as, and just
 *   below, the first head/tail pipe, or a head when there is none).
 */
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const eql = (args: string[], input?: string | Buffer) =>
  spawnSync(process.execPath, [cli, 'eql', ...args], { input: typeof input === 'string' ? Buffer.from(input) : input, maxBuffer: 64 * 1024 * 1024 });
const text = (buffer: Buffer) => buffer.toString('utf8');
/** Printed sequences, one JSON object a line. */
const sequencesOf = (buffer: Buffer) =>
  text(buffer)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { join_keys: unknown[]; events: object[] });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'execsentry-eql-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, content: string | Buffer): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

/** A process event; `extra` fields go at the top level. */
const proc = (timestamp: unknown, name: string, extra: Record<string, unknown> = {}) => ({
  '@timestamp': timestamp,
  event: { category: 'process' },
  process: { name },
  ...extra,
});
const ndjson = (docs: readonly unknown[]) => docs.map((doc) => JSON.stringify(doc)).join('\n') + '\n';

describe('execsentry eql: event queries', () => {
  it('prints matching lines byte for byte, in timestamp order even when the file is not', () => {
    // hits.events come sorted by timestamp ascending (EQL search API; LogicalPlanBuilder's implicit OrderBy),
    // whatever order the documents were indexed in. Lines keep their own spacing: they are printed as read.
    const lines = [
      '{ "@timestamp": 3000, "event": {"category": "process"}, "process": {"name": "bash", "n": 3} }',
      '{"@timestamp":1000,"event":{"category":"process"},"process":{"name":"bash","n":1}}',
      '{"@timestamp":1500,"event":{"category":"file"},"process":{"name":"bash"}}',
      '{"@timestamp":2000,  "event":{"category":"process"},"process":{"name":"bash","n":2}}',
      '{"@timestamp":500,"event":{"category":"process"},"process":{"name":"ls"}}',
    ];
    const run = eql(['process where process.name == "bash"', file('unordered.ndjson', `${lines.join('\n')}\n`)]);
    expect(text(run.stderr)).toBe('');
    expect(run.status).toBe(0);
    expect(text(run.stdout)).toBe(`${lines[1]}\n${lines[3]}\n${lines[0]}\n`);
  });

  it('keeps file order for equal timestamps without a tiebreaker, and orders them by --tiebreaker-field', () => {
    // Without tiebreaker_field the search's only further key is the implicit one (_shard_doc: index order,
    // here file order); with it, equal timestamps sort by it ascending (EQL search API, tiebreaker_field).
    const docs = [proc(10, 'a', { seq: 3 }), proc(10, 'b', { seq: 1 }), proc(5, 'c', { seq: 9 }), proc(10, 'd', { seq: 2 })];
    const path = file('ties.ndjson', ndjson(docs));
    const names = (buffer: Buffer) => text(buffer).trim().split('\n').map((line) => (JSON.parse(line) as { process: { name: string } }).process.name);
    expect(names(eql(['process where true', path]).stdout)).toEqual(['c', 'a', 'b', 'd']);
    expect(names(eql(['process where true', path, '--tiebreaker-field', 'seq']).stdout)).toEqual(['c', 'b', 'd', 'a']);
    // string tiebreakers sort lexicographically ("ascending, lexicographic order" in the rules API's tiebreaker_field)
    const strings = [proc(1, 'x', { id: 'b' }), proc(1, 'y', { id: 'a' }), proc(1, 'z', { id: 'c' })];
    expect(names(eql(['process where true', file('tie-strings.ndjson', ndjson(strings)), '--tiebreaker-field', 'id']).stdout)).toEqual(['y', 'x', 'z']);
  });

  it('reads epoch milliseconds (number and numeric string) and ISO dates with offsets as the same instants', () => {
    // A date field with the default format strict_date_optional_time||epoch_millis: "1704069000000" is epoch
    // millis like the number, and an offset moves an ISO time to its UTC instant.
    const docs = [
      proc('2024-01-01T03:00:00+02:00', 'A'), // 01:00Z
      proc(1704067200000, 'B'), // 00:00Z
      proc('2023-12-31T19:00:00-05:30', 'E'), // 00:30Z
      proc('1704069000000', 'C'), // 00:30Z, after E in the file
      proc('2024-01-01T00:15:00Z', 'D'), // 00:15Z
    ];
    const run = eql(['process where true', file('dates.ndjson', ndjson(docs))]);
    expect(run.status).toBe(0);
    const names = text(run.stdout).trim().split('\n').map((line) => (JSON.parse(line) as { process: { name: string } }).process.name);
    expect(names).toEqual(['B', 'D', 'E', 'C', 'A']);
  });

  it('takes the timestamp and category from --timestamp-field and --event-category-field', () => {
    // EQL search API: timestamp_field and event_category_field name the fields; the category in `x where` is
    // matched against event_category_field (EQL syntax reference, "Event categories").
    const lines = [
      JSON.stringify({ ts: 2, kind: 'network', '@timestamp': 1, event: { category: 'process' } }),
      JSON.stringify({ ts: 1, kind: 'network', event: { category: 'network' } }),
      JSON.stringify({ ts: 3, kind: 'process', '@timestamp': 0, event: { category: 'network' } }),
    ];
    const run = eql(['network where true', file('fields.ndjson', `${lines.join('\n')}\n`), '--timestamp-field', 'ts', '--event-category-field', 'kind']);
    expect(run.status).toBe(0);
    expect(text(run.stdout)).toBe(`${lines[1]}\n${lines[0]}\n`);
    // with the defaults the second line has no @timestamp: skipped, and only the third is a network event
    const defaults = eql(['network where true', file('fields.ndjson', `${lines.join('\n')}\n`)]);
    expect(text(defaults.stdout)).toBe(`${lines[2]}\n`);
    expect(defaults.status).toBe(1);
    expect(text(defaults.stderr)).toContain('line 2: @timestamp is missing or not a date, skipped');
  });

  it('| head N takes the earliest matches, | tail N the latest (still ascending), and --size caps them', () => {
    const docs = Array.from({ length: 8 }, (_, i) => proc(100 - i * 10, `p${7 - i}`));
    const path = file('pipes.ndjson', ndjson(docs));
    const names = (args: string[]) => {
      const run = eql(args);
      expect(run.status).toBe(0);
      return text(run.stdout).trim().split('\n').filter((line) => line !== '').map((line) => (JSON.parse(line) as { process: { name: string } }).process.name);
    };
    // EQL pipe reference: head = earliest, tail = most recent; hits stay in ascending order
    expect(names(['process where true | head 3', path])).toEqual(['p0', 'p1', 'p2']);
    expect(names(['process where true | tail 3', path])).toEqual(['p5', 'p6', 'p7']);
    expect(names(['process where true | head 0', path])).toEqual([]);
    // size without pipes: a head over the results (LogicalPlanBuilder, no head/tail → Head(size))
    expect(names(['process where true', path, '--size', '2'])).toEqual(['p0', 'p1']);
    // size with a pipe: a limit of the pipe's kind just below it, so with tail it keeps the most recent
    expect(names(['process where true | tail 5', path, '--size', '2'])).toEqual(['p6', 'p7']);
    expect(names(['process where true | head 5', path, '--size', '2'])).toEqual(['p0', 'p1']);
    expect(names(['process where true | tail 2', path, '--size', '5'])).toEqual(['p6', 'p7']);
    // ...below the FIRST pipe: `| head 5 | tail 2` with size 2 is Tail(2, Head(5, Head(2, events))) = p0 p1
    expect(names(['process where true | head 5 | tail 2', path, '--size', '2'])).toEqual(['p0', 'p1']);
    expect(names(['process where true | head 5 | tail 2', path])).toEqual(['p3', 'p4']);
    // and `| tail 5 | head 2` with size 3 is Head(2, Tail(5, Tail(3, events))) = p5 p6
    expect(names(['process where true | tail 5 | head 2', path, '--size', '3'])).toEqual(['p5', 'p6']);
  });

  it('refuses a --size that is not a positive integer (exit 2)', () => {
    for (const size of ['0', '-1', 'ten', '1.5']) {
      const run = eql(['process where true', '--size', size], '');
      expect(run.status).toBe(2);
      expect(text(run.stderr)).toBe(`execsentry: --size: expected a positive integer, found ${JSON.stringify(size)}\n`);
    }
  });

  it('reads stdin when no file is given, or "-"', () => {
    const input = ndjson([proc(2, 'sh'), proc(1, 'bash'), proc(3, 'bash')]);
    const expected = `${JSON.stringify(proc(1, 'bash'))}\n${JSON.stringify(proc(3, 'bash'))}\n`;
    expect(text(eql(['process where process.name == "bash"'], input).stdout)).toBe(expected);
    const dash = eql(['process where process.name == "bash"', '-'], input);
    expect(dash.status).toBe(0);
    expect(text(dash.stdout)).toBe(expected);
  });

  it('passes a matching line with invalid UTF-8 bytes, escapes and CRLF through unchanged', () => {
    const weird = Buffer.concat([
      Buffer.from('{"@timestamp":5,"event":{"category":"process"},"process":{"name":"bash","args":["\\u001b[31m","'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('"]}}\r'),
    ]);
    const earlier = Buffer.from(`${JSON.stringify(proc(1, 'bash'))}\n`);
    const other = Buffer.from(`${JSON.stringify(proc(9, 'ls'))}\n`);
    const run = eql(['process where process.name == "bash"'], Buffer.concat([other, weird, Buffer.from('\n'), earlier]));
    expect(run.status).toBe(0);
    // sorted (1 before 5), each matching line's bytes as read
    expect(Buffer.compare(run.stdout, Buffer.concat([earlier, weird, Buffer.from('\n')]))).toBe(0);
  });

  it('reports bad lines with their numbers, prints the good ones, and exits 1 at the end', () => {
    const input = [
      JSON.stringify(proc(2, 'bash')),
      'not json',
      '',
      '[1,2]',
      JSON.stringify({ event: { category: 'process' }, process: { name: 'bash' } }),
      JSON.stringify(proc('yesterday', 'bash')),
      'x'.repeat(16 * 1024 * 1024 + 10),
      JSON.stringify(proc(1, 'bash')),
      '{"truncated":',
    ].join('\n');
    const run = eql(['process where process.name == "bash"'], input);
    expect(run.status).toBe(1);
    expect(text(run.stdout)).toBe(`${JSON.stringify(proc(1, 'bash'))}\n${JSON.stringify(proc(2, 'bash'))}\n`);
    const stderr = text(run.stderr);
    expect(stderr).toContain('line 2: not valid JSON');
    expect(stderr).toContain('line 4: not a JSON object');
    expect(stderr).toContain('line 5: @timestamp is missing or not a date, skipped');
    expect(stderr).toContain('line 6: @timestamp is missing or not a date, skipped');
    expect(stderr).toMatch(/line 7: longer than [^\n]*, skipped/);
    expect(stderr).toContain('line 9: not valid JSON');
    expect(stderr).not.toContain('line 3');
    expect(stderr).not.toContain('line 8');
    expect(stderr).toContain('6 line(s) were skipped');
    expect(stderr).not.toContain('    at ');
  });

  it('escapes control characters in its error messages', () => {
    // a raw ESC in a bad line (quoted by JSON.parse's message) and in a field name the user gave
    const run = eql(['process where true', '--timestamp-field', 'ts\u001b[2J'], `\u001b[31mnot json\n${JSON.stringify(proc(1, 'a'))}\n`);
    expect(run.status).toBe(1);
    const stderr = text(run.stderr);
    expect(stderr).not.toContain('\u001b');
    expect(stderr).toContain('line 1: not valid JSON');
    expect(stderr).toContain('\\x1b[31m');
    expect(stderr).toContain('line 2: ts\\x1b[2J is missing or not a date, skipped');
    // a file name with a newline and an escape stays one line
    const missing = eql(['process where true', join(dir, 'no\nsuch\u001bfile')]);
    expect(missing.status).toBe(2);
    expect(text(missing.stderr)).toBe(`execsentry: cannot read ${join(dir, 'no\\nsuch\\x1bfile')}: no such file or directory (ENOENT)\n`);
  });

  it('names a file it cannot read (exit 2, one line)', () => {
    const run = eql(['process where true', join(dir, 'missing.ndjson')]);
    expect(run.status).toBe(2);
    expect(text(run.stdout)).toBe('');
    expect(text(run.stderr)).toBe(`execsentry: cannot read ${join(dir, 'missing.ndjson')}: no such file or directory (ENOENT)\n`);
  });

  it('stops quietly with exit 0 when the reader of its output goes away (| head)', () => {
    const path = file('many.ndjson', ndjson(Array.from({ length: 200_000 }, (_, i) => proc(200_000 - i, 'bash', { n: i }))));
    const run = spawnSync('bash', ['-c', `"${process.execPath}" "${cli}" eql 'process where true' "${path}" | head -n 1; exit "\${PIPESTATUS[0]}"`], {
      encoding: 'utf8',
    });
    // the earliest event is the file's last line
    expect(run.stdout).toBe(`${JSON.stringify(proc(1, 'bash', { n: 199_999 }))}\n`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});

describe('execsentry eql: sequences', () => {
  const seqDocs = [
    proc(1000, 'curl', { user: { name: 'u1' } }),
    proc(2000, 'curl', { user: { name: 'u2' } }),
    proc(3000, 'bash', { user: { name: 'u2' } }),
    proc(4000, 'bash', { user: { name: 'u1' } }),
    proc(5000, 'bash', { user: { name: 'u3' } }),
  ];

  it('prints one {"join_keys", "events"} object per sequence, ordered by each sequence\'s last event', () => {
    // EQL search API response: hits.sequences[] = {join_keys, events}; Sequence.compareTo compares ordinal(),
    // the last matched event's ordinal, so u2 (ends at 3000) comes before u1 (ends at 4000) although u1
    // started first. The file is shuffled: documents are matched in timestamp order.
    const shuffled = [seqDocs[3], seqDocs[0], seqDocs[4], seqDocs[2], seqDocs[1]];
    const run = eql(['sequence by user.name [process where process.name == "curl"] [process where process.name == "bash"]', file('seq.ndjson', ndjson(shuffled))]);
    expect(text(run.stderr)).toBe('');
    expect(run.status).toBe(0);
    expect(sequencesOf(run.stdout)).toEqual([
      { join_keys: ['u2'], events: [seqDocs[1], seqDocs[2]] },
      { join_keys: ['u1'], events: [seqDocs[0], seqDocs[3]] },
    ]);
  });

  it('without by, join_keys is empty; an event may end one sequence and start the next, never both stages of one', () => {
    const run = eql(['sequence [process where true] [process where true]'], ndjson([proc(1, 'a'), proc(2, 'b'), proc(3, 'c')]));
    expect(run.status).toBe(0);
    // ES runs each stage's query as its own search and SequenceMatcher.match(stage, hits) joins a hit only to
    // a partial strictly before it: b is stage 2 of [a, b] and stage 1 of [b, c]; no [b, b]
    expect(sequencesOf(run.stdout)).toEqual([
      { join_keys: [], events: [proc(1, 'a'), proc(2, 'b')] },
      { join_keys: [], events: [proc(2, 'b'), proc(3, 'c')] },
    ]);
  });

  it('until ends the partial sequences of its key', () => {
    // EQL syntax reference, "until": a matching event ends the sequences in progress (here for its own key)
    const docs = [
      proc(1, 'curl', { user: { name: 'u1' } }),
      proc(2, 'kill', { user: { name: 'u1' } }),
      proc(3, 'bash', { user: { name: 'u1' } }),
      proc(4, 'curl', { user: { name: 'u2' } }),
      proc(5, 'kill', { user: { name: 'u1' } }),
      proc(6, 'bash', { user: { name: 'u2' } }),
    ];
    const query = 'sequence by user.name [process where process.name == "curl"] [process where process.name == "bash"] until [process where process.name == "kill"]';
    const run = eql([query], ndjson(docs));
    expect(run.status).toBe(0);
    expect(sequencesOf(run.stdout)).toEqual([{ join_keys: ['u2'], events: [docs[3], docs[5]] }]);
  });

  it('with maxspan keeps only sequences whose events fit in the span', () => {
    // EQL syntax reference, "with maxspan": the events of a match must occur within the span
    const docs = [proc('2024-01-01T00:00:00Z', 'curl'), proc('2024-01-01T00:00:02Z', 'bash'), proc('2024-01-01T00:01:00Z', 'curl'), proc('2024-01-01T00:01:00.500Z', 'bash')];
    const run = eql(['sequence with maxspan=1s [process where process.name == "curl"] [process where process.name == "bash"]'], ndjson(docs));
    expect(run.status).toBe(0);
    expect(sequencesOf(run.stdout)).toEqual([{ join_keys: [], events: [docs[2], docs[3]] }]);
    // without maxspan the first pair matches too
    expect(sequencesOf(eql(['sequence [process where process.name == "curl"] [process where process.name == "bash"]'], ndjson(docs)).stdout)).toHaveLength(2);
  });

  it('prints a missing-event stage as {"missing": true}', () => {
    // EQL syntax reference, "Missing events" (![…]): the response has the stage's event flagged "missing": true
    const docs = [proc(1000, 'curl'), proc(1500, 'bash'), proc(5000, 'curl'), proc(5200, 'rm'), proc(5500, 'bash')];
    const run = eql(['sequence with maxspan=10s [process where process.name == "curl"] ![process where process.name == "rm"] [process where process.name == "bash"]'], ndjson(docs));
    expect(run.status).toBe(0);
    expect(sequencesOf(run.stdout)).toEqual([{ join_keys: [], events: [docs[0], { missing: true }, docs[1]] }]);
  });

  it('| head and | tail pick sequences in that order, and --size caps them', () => {
    const docs = Array.from({ length: 4 }, (_, i) => [proc(i * 10 + 1, 'curl', { user: { name: `u${i}` } }), proc(i * 10 + 2, 'bash', { user: { name: `u${i}` } })]).flat();
    const query = 'sequence by user.name [process where process.name == "curl"] [process where process.name == "bash"]';
    const keys = (args: string[]) => {
      const run = eql(args, ndjson(docs));
      expect(run.status).toBe(0);
      return sequencesOf(run.stdout).map((sequence) => sequence.join_keys[0]);
    };
    // EQL pipe reference: head/tail return "events or sequences"; size counts sequences (EQL search API)
    expect(keys([query])).toEqual(['u0', 'u1', 'u2', 'u3']);
    expect(keys([`${query} | head 2`])).toEqual(['u0', 'u1']);
    expect(keys([`${query} | tail 2`])).toEqual(['u2', 'u3']);
    expect(keys([query, '--size', '3'])).toEqual(['u0', 'u1', 'u2']);
    expect(keys([`${query} | tail 3`, '--size', '1'])).toEqual(['u3']);
  });

  it('stops quietly with exit 0 when the reader of its sequences goes away', () => {
    const docs = Array.from({ length: 50_000 }, (_, i) => proc(i, i % 2 === 0 ? 'curl' : 'bash'));
    const path = file('many-seq.ndjson', ndjson(docs));
    const query = 'sequence [process where process.name == "curl"] [process where process.name == "bash"]';
    const run = spawnSync('bash', ['-c', `"${process.execPath}" "${cli}" eql '${query}' "${path}" | head -n 1; exit "\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    expect(JSON.parse(run.stdout)).toEqual({ join_keys: [], events: [docs[0], docs[1]] });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});

describe('execsentry eql: query errors', () => {
  it('--check exits 0 for a valid query without reading input, 2 with one line for an invalid one', () => {
    const ok = eql(['sequence by user.name [process where true] [file where true] | tail 3', '--check', join(dir, 'never-read.ndjson')]);
    expect(ok.status).toBe(0);
    expect(text(ok.stdout)).toBe('');
    expect(text(ok.stderr)).toBe('');
    const bad = eql(['process where (', '--check']);
    expect(bad.status).toBe(2);
    expect(text(bad.stderr)).toBe('execsentry: EQL syntax error at line 1, column 16: expected an expression but found end of input\n');
    // a query that parses but that the run would refuse fails the check too
    const unplannable = eql(['process where process.pid == process.parent.pid', '--check']);
    expect(unplannable.status).toBe(2);
    expect(text(unplannable.stderr)).toMatch(/^execsentry: EQL error at line 1, column \d+: comparisons against fields are not supported[^\n]*\n$/);
  });

  it('refuses a syntax or compile error before reading input (exit 2, one line)', () => {
    const input = ndjson([proc(1, 'bash')]);
    for (const [query, message] of [
      ['process where process.name ==', /^execsentry: EQL syntax error at line 1, column \d+: [^\n]+\n$/],
      ['sequence [process where true]', /^execsentry: EQL syntax error at line 1, column 1: a sequence needs at least 2 queries[^\n]*\n$/],
      ['process where length(1) == 1', /^execsentry: EQL error at line 1, column 15: argument of \[length\(1\)\] must be \[string\][^\n]*\n$/],
      // a constant folded at planning fails the query as ES's planner does
      ['process where 1 / 0 == 1', /^execsentry: EQL error at line 1, column 15: \/ by zero in \[1 \/ 0\]\n$/],
    ] as const) {
      const run = eql([query], input);
      expect(run.status).toBe(2);
      expect(text(run.stdout)).toBe('');
      expect(text(run.stderr)).toMatch(message);
    }
  });

  it('fails the run on a script error at run time: one line, exit 1, nothing printed, no stack trace', () => {
    // EqlScriptError is what ES throws while running the script (ArithmeticException "/ by zero"): the whole
    // search fails, so no hits are returned even for the events evaluated before it.
    const docs = [proc(1, 'a', { n: 5 }), proc(2, 'b', { n: 0 }), proc(3, 'c', { n: 1 })];
    const run = eql(['process where 10 / n > 1'], ndjson(docs));
    expect(run.status).toBe(1);
    expect(text(run.stdout)).toBe('');
    expect(text(run.stderr)).toBe('execsentry: EQL script error on line 2 of the input: / by zero\n');
    // the same inside a sequence stage; the line named is the file's line, not the position after sorting
    const seq = eql(['sequence [process where 10 / n > 1] [process where true]'], ndjson([docs[2], docs[0], docs[1]]));
    expect(seq.status).toBe(1);
    expect(text(seq.stdout)).toBe('');
    expect(text(seq.stderr)).toBe('execsentry: EQL script error on line 3 of the input: / by zero\n');
  });
});
