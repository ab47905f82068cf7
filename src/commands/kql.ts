import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { EXIT_RUNTIME, RuntimeFailure, ValidationError } from '../errors.js';
import { escapeControl } from '../log.js';
import { compileKql, KqlSyntaxError, parseKql, type CompiledQuery } from '../kql/index.js';

/**
 * `execsentry kql QUERY [FILE] [--count] [--check]`: grep NDJSON documents with a KQL query. Matching lines
 * are written to stdout byte for byte as read (invalid UTF-8 included), in order. A line that is not a JSON
 * object is reported on stderr with its line number and skipped; the run goes on and exits 1 at the end.
 */
export function registerKqlCommand(program: Command): void {
  program
    .command('kql')
    .description('print the NDJSON documents (from FILE or stdin) that match a KQL query')
    .argument('<query>', 'the KQL query (Kibana query language, as in Elastic rules with language "kuery")')
    .argument('[file]', 'NDJSON file to read; stdin when absent or "-"')
    .option('--count', 'print only the number of matching documents')
    .option('--check', 'only parse the query: exit 0 when valid, 2 with the error when not')
    .action(async (query: string, file: string | undefined, options: { count?: boolean; check?: boolean }) => {
      let compiled: CompiledQuery;
      try {
        if (options.check === true) {
          parseKql(query);
          return;
        }
        compiled = compileKql(query);
      } catch (err) {
        if (err instanceof KqlSyntaxError) throw new ValidationError(err.message);
        throw err;
      }
      const input = file === undefined || file === '-' ? process.stdin : await openFile(file);
      const result = await grep(input, compiled, options.count === true);
      if (options.count === true) await write(`${result.matched}\n`);
      if (result.badLines > 0) {
        process.stderr.write(`execsentry: ${result.badLines} line(s) were not JSON objects and were skipped\n`);
        process.exitCode = EXIT_RUNTIME;
      }
    });
}

async function openFile(file: string): Promise<Readable> {
  const stream = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (err: NodeJS.ErrnoException) =>
      reject(new ValidationError(`cannot read ${escapeControl(file)}: ${err.code ?? err.message}`)),
    );
  });
  return stream;
}

const NEWLINE = 0x0a;
const FLUSH_BYTES = 64 * 1024;

/** Splits the byte stream on newlines itself so matching lines go out exactly as they came in. */
async function grep(input: Readable, query: CompiledQuery, countOnly: boolean): Promise<{ matched: number; badLines: number }> {
  let matched = 0;
  let badLines = 0;
  let lineNumber = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let carry: Buffer | null = null;

  const handleLine = async (line: Buffer, withNewline: Buffer | null): Promise<void> => {
    lineNumber++;
    const text = line.toString('utf8');
    if (text.trim() === '') return;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      badLines++;
      process.stderr.write(`execsentry: line ${lineNumber}: not valid JSON (${escapeControl((err as Error).message)}), skipped\n`);
      return;
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      badLines++;
      process.stderr.write(`execsentry: line ${lineNumber}: not a JSON object, skipped\n`);
      return;
    }
    if (!query.matches(doc)) return;
    matched++;
    if (countOnly) return;
    pending.push(withNewline ?? Buffer.concat([line, Buffer.from('\n')]));
    pendingBytes += line.length + 1;
    if (pendingBytes >= FLUSH_BYTES) await flush();
  };

  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const chunk = Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    await write(chunk);
  };

  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (stdoutClosed) break;
      let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (carry !== null) {
        data = Buffer.concat([carry, data]);
        carry = null;
      }
      let start = 0;
      for (let nl = data.indexOf(NEWLINE, start); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
        // the line with its newline (\r\n lines keep their \r: output is the input, byte for byte)
        await handleLine(trimCarriageReturn(data.subarray(start, nl)), data.subarray(start, nl + 1));
        start = nl + 1;
      }
      if (start < data.length) carry = Buffer.from(data.subarray(start));
    }
    if (stdoutClosed) return { matched, badLines };
    if (carry !== null) await handleLine(trimCarriageReturn(carry), null);
    await flush();
  } catch (err) {
    if (err instanceof RuntimeFailure || err instanceof ValidationError) throw err;
    throw new RuntimeFailure(`reading the documents failed: ${(err as Error).message}`);
  }
  return { matched, badLines };
}

function trimCarriageReturn(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
}

/** Set once stdout's reader went away (`| head`): the rest of the output is dropped quietly. */
let stdoutClosed = false;
let stdoutWatched = false;

/** Writes to stdout honouring backpressure; a closed pipe ends the output quietly. */
function write(data: Buffer | string): Promise<void> {
  if (!stdoutWatched) {
    stdoutWatched = true;
    // a permanent listener: Node reports EPIPE as an 'error' event after the write callback
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      stdoutClosed = true;
    });
  }
  if (stdoutClosed) return Promise.resolve();
  return new Promise((resolve) => {
    process.stdout.write(data, (err) => {
      if (err !== null && err !== undefined) stdoutClosed = true;
      resolve();
    });
  });
}
