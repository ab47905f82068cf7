import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { EXIT_RUNTIME, RuntimeFailure, ValidationError } from '../errors.js';
import { describeErrno } from '../io/files.js';
import { compileKql, KqlSyntaxError, parseKql, type CompiledQuery } from '../kql/index.js';
import { openDocuments, readDocuments } from './documents.js';
import { stdoutClosed, writeStdout as write } from './stdout.js';

const NEWLINE = Buffer.from('\n');
const FLUSH_BYTES = 64 * 1024;

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
      const input = await openDocuments(file ?? '-');
      const result = await grep(input, compiled, options.count === true);
      if (options.count === true) await write(`${result.matched}\n`);
      if (result.badLines > 0) {
        process.stderr.write(`execsentry: ${result.badLines} line(s) were not JSON objects (or were too long) and were skipped\n`);
        process.exitCode = EXIT_RUNTIME;
      }
    });
}

/** Splits the byte stream into lines itself so matching lines go out exactly as they came in. */
async function grep(input: Readable, query: CompiledQuery, countOnly: boolean): Promise<{ matched: number; badLines: number }> {
  let matched = 0;
  let badLines = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;

  const skip = (lineNumber: number, why: string): void => {
    badLines++;
    process.stderr.write(`execsentry: line ${lineNumber}: ${why}, skipped\n`);
  };

  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const chunk = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    await write(chunk);
  };

  try {
    for await (const { bytes, doc } of readDocuments(input, skip)) {
      if (stdoutClosed()) break;
      if (!query.matches(doc)) continue;
      matched++;
      if (countOnly) continue;
      pending.push(bytes, NEWLINE);
      pendingBytes += bytes.length + 1;
      if (pendingBytes >= FLUSH_BYTES) await flush();
    }
    if (stdoutClosed()) return { matched, badLines };
    await flush();
  } catch (err) {
    if (err instanceof RuntimeFailure || err instanceof ValidationError) throw err;
    throw new RuntimeFailure(`reading the documents failed: ${describeErrno(err)}`);
  }
  return { matched, badLines };
}
