import type { Command } from 'commander';
import { EXIT_RUNTIME, RuntimeFailure, ValidationError } from '../errors.js';
import { describeErrno } from '../io/files.js';
import { compileEql, EqlCompileError, EqlSyntaxError, type CompiledEql, type EqlPipe } from '../eql/index.js';
import { EqlScriptError } from '../eql/script.js';
import { getField } from '../kql/field-path.js';
import { dateValueMs } from '../kql/date.js';
import { escapeControl } from '../log.js';
import { openDocuments, readDocuments, type DocumentLine } from './documents.js';
import { stdoutClosed, writeStdout } from './stdout.js';

interface EqlOptions {
  check?: boolean;
  timestampField: string;
  eventCategoryField: string;
  tiebreakerField?: string;
  size?: number;
}

/**
 * Partial sequences one run may hold. The whole input is in memory anyway; this bounds the matcher on input
 * whose every event starts a sequence that never completes.
 */
const CLI_MAX_PARTIALS = 1_000_000;

/**
 * `execsentry eql QUERY [FILE]`: EQL over NDJSON documents, as Elasticsearch's EQL search would answer over
 * an index of them. Documents are taken in timestamp order (then tiebreaker, then file order), like the
 * search's sort, so the whole input is read before anything is printed. Event queries print the matching
 * lines unchanged; sequence queries one `{"join_keys", "events"}` object per sequence.
 */
export function registerEqlCommand(program: Command): void {
  program
    .command('eql')
    .description('evaluate an EQL query (event or sequence) over NDJSON documents from FILE or stdin')
    .argument('<query>', 'the EQL query, as Elastic rules with language "eql" write it')
    .argument('[file]', 'NDJSON file to read; stdin when absent or "-"')
    .option('--check', 'only check the query (parse and plan it, read no input): exit 0 when valid, 2 with the error when not')
    .option('--timestamp-field <field>', 'the field that orders events (as Elasticsearch\'s timestamp_field)', '@timestamp')
    .option('--event-category-field <field>', 'the field matched against the query\'s event category', 'event.category')
    .option('--tiebreaker-field <field>', 'orders events with equal timestamps (as Elasticsearch\'s tiebreaker_field)')
    .option('--size <n>', 'at most this many events (event queries) or sequences; default: all', parseSize)
    .addHelpText(
      'after',
      `
Examples:
  execsentry events | execsentry eql 'process where process.name == "bash" and process.parent.name : "python*"'
  execsentry eql 'sequence by process.parent.entity_id with maxspan=30s [process where process.name == "curl"] [process where process.name == "bash"]' events.ndjson`,
    )
    .action(async (query: string, file: string | undefined, options: EqlOptions) => {
      let compiled: CompiledEql;
      try {
        // --check plans the query too: a query the run would refuse must not pass the check
        compiled = compileEql(query, { eventCategoryField: options.eventCategoryField });
        if (options.check === true) return;
      } catch (err) {
        if (err instanceof EqlSyntaxError || err instanceof EqlCompileError) throw new ValidationError(err.message);
        throw err;
      }
      const input = await openDocuments(file ?? '-');
      let badLines = 0;
      const skip = (lineNumber: number, why: string): void => {
        badLines++;
        process.stderr.write(`execsentry: line ${lineNumber}: ${why}, skipped\n`);
      };
      const events: OrderedDocument[] = [];
      try {
        for await (const line of readDocuments(input, skip)) {
          const timeMs = dateValueMs(firstValue(line.doc, options.timestampField));
          if (timeMs === null) {
            skip(line.number, `${escapeControl(options.timestampField)} is missing or not a date`);
            continue;
          }
          const tiebreaker = options.tiebreakerField === undefined ? undefined : firstValue(line.doc, options.tiebreakerField);
          events.push({ line, timeMs, tiebreaker: typeof tiebreaker === 'number' || typeof tiebreaker === 'string' ? tiebreaker : undefined });
        }
      } catch (err) {
        if (err instanceof RuntimeFailure || err instanceof ValidationError) throw err;
        throw new RuntimeFailure(`reading the documents failed: ${describeErrno(err)}`);
      }
      events.sort(searchOrder);
      const limit = options.size ?? Number.POSITIVE_INFINITY;
      if (compiled.kind === 'event') {
        const matched = events.filter((event) => scripted(event, () => compiled.matches(event.line.doc)));
        for (const event of applyPipes(matched, compiled.pipes, limit)) {
          if (stdoutClosed()) break;
          await writeStdout(Buffer.concat([event.line.bytes, NEWLINE]));
        }
      } else {
        const matcher = compiled.createMatcher<object>({ maxPartials: CLI_MAX_PARTIALS });
        const sequences = events.flatMap((event) => scripted(event, () => matcher.push(event.line.doc, event.timeMs)));
        sequences.push(...matcher.finish());
        for (const sequence of applyPipes(sequences, compiled.pipes, limit)) {
          if (stdoutClosed()) break;
          // Elasticsearch's response shape; an event of a missing-event stage is `{"missing": true}` as its hits are
          const printed = { join_keys: sequence.joinKeys, events: sequence.events.map((event) => event ?? { missing: true }) };
          await writeStdout(`${JSON.stringify(printed)}\n`);
        }
        if (matcher.stats.dropped > 0) {
          process.stderr.write(`execsentry: ${matcher.stats.dropped} partial sequence(s) were dropped beyond ${CLI_MAX_PARTIALS} held at once\n`);
        }
      }
      if (badLines > 0) {
        process.stderr.write(`execsentry: ${badLines} line(s) were skipped (not JSON objects, too long, or without a usable ${escapeControl(options.timestampField)})\n`);
        process.exitCode = EXIT_RUNTIME;
      }
    });
}

const NEWLINE = Buffer.from('\n');

interface OrderedDocument {
  readonly line: DocumentLine;
  readonly timeMs: number;
  readonly tiebreaker: number | string | undefined;
}

/**
 * Runs the query's evaluation on one document. A script error (integer `/ by zero`, an overflow, a bad
 * argument) fails Elasticsearch's whole search with that message, so it ends the run here too, before
 * anything is printed: one line naming the input line, exit 1, not an unexpected failure with a stack trace.
 */
function scripted<T>(event: OrderedDocument, evaluate: () => T): T {
  try {
    return evaluate();
  } catch (err) {
    if (err instanceof EqlScriptError) throw new RuntimeFailure(`EQL script error on line ${event.line.number} of the input: ${err.message}`);
    throw err;
  }
}

function firstValue(doc: object, field: string): unknown {
  return getField(doc, field)[0];
}

/**
 * Elasticsearch sorts by the timestamp, then the tiebreaker (documents without one after those with one),
 * then, as the search's implicit last key, index order — here file order (Array.prototype.sort is stable).
 */
function searchOrder(a: OrderedDocument, b: OrderedDocument): number {
  if (a.timeMs !== b.timeMs) return a.timeMs - b.timeMs;
  const x = a.tiebreaker;
  const y = b.tiebreaker;
  if (x === y) return 0;
  if (x === undefined) return 1;
  if (y === undefined) return -1;
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  return String(x) < String(y) ? -1 : 1;
}

/**
 * `| head N` keeps the first N results, `| tail N` the last N (in order). `--size` (the search's size) is
 * placed where Elasticsearch's LogicalPlanBuilder.visitStatement places it: as a limit of the same kind just
 * below the first head or tail pipe (so `| head 5 | tail 2` with size 2 is the first two, not the fourth and
 * fifth), or, with no such pipe, as a head over the results (result_position "head").
 */
function applyPipes<T>(results: readonly T[], pipes: readonly EqlPipe[], size: number): readonly T[] {
  const limit = (kept: readonly T[], type: EqlPipe['type'], count: number): readonly T[] =>
    kept.length <= count ? kept : type === 'head' ? kept.slice(0, count) : kept.slice(kept.length - count);
  let kept = limit(results, pipes[0]?.type ?? 'head', size);
  for (const pipe of pipes) kept = limit(kept, pipe.type, pipe.count);
  return kept;
}

function parseSize(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) throw new ValidationError(`--size: expected a positive integer, found ${JSON.stringify(text)}`);
  return Number(text);
}
