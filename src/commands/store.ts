import type { Command } from 'commander';
import { ConfigSchema, defaultConfig } from '../config.js';
import { RuntimeFailure, ValidationError } from '../errors.js';
import { createLogger } from '../log.js';
import { openHistoryStore, type HistoryStore } from '../store/index.js';

/**
 * `execsentry store list|forget`: inspect and edit the new-terms history. Both take the state-directory
 * lock, so they work while the agent is stopped and refuse (naming its pid) while it runs. Output is
 * NDJSON on stdout; warnings about the file (damage found while reading) go to stderr.
 */
export function registerStoreCommand(program: Command): void {
  const store = program.command('store').description('inspect and edit the new-terms history (agent stopped)');
  const defaultStateDir = defaultConfig().stateDir;

  store
    .command('list')
    .description('print the remembered new-terms tuples as NDJSON (rule_id, new_terms_fields, terms, last_seen)')
    .option('--rule <id>', 'only this rule')
    .option('--state-dir <dir>', 'state directory', defaultStateDir)
    .option('--allow-insecure-state-dir', ConfigSchema.shape.allowInsecureStateDir.description)
    .action(async (options: { rule?: string } & StateDirOptions) => {
      const history = await openForCommand(options, true);
      try {
        await writeLines(listLines(history, options.rule));
      } finally {
        await history.close();
      }
    });

  store
    .command('forget')
    .description("forget a rule's whole history, or only some tuples of it (the next sighting alerts again)")
    .requiredOption('--rule <id>', 'the rule whose history to edit')
    .option(
      '--term <value...>',
      'a term to forget; for a history of N fields give N values per tuple, in the order of new_terms_fields',
    )
    .option('--state-dir <dir>', 'state directory', defaultStateDir)
    .option('--allow-insecure-state-dir', ConfigSchema.shape.allowInsecureStateDir.description)
    .action(async (options: { rule: string; term?: string[] } & StateDirOptions) => {
      const history = await openForCommand(options, false);
      try {
        const summaries = history.summaries().filter((s) => s.ruleId === options.rule);
        if (summaries.length === 0) throw new RuntimeFailure(`no new-terms history for rule ${options.rule} in ${options.stateDir}`);
        const tuples = options.term === undefined ? undefined : groupTerms(options.term, summaries.map((s) => s.fields.length));
        const { forgotten, notFound } = await history.forget(options.rule, tuples);
        process.stdout.write(JSON.stringify({ rule_id: options.rule, forgotten, not_found: notFound }) + '\n');
      } finally {
        await history.close();
      }
    });
}

interface StateDirOptions {
  stateDir: string;
  allowInsecureStateDir?: boolean;
}

async function openForCommand(options: StateDirOptions, readOnly: boolean): Promise<HistoryStore> {
  // Every tuple on disk is shown and kept: the command must not evict what the agent's cap allowed.
  return openHistoryStore({
    stateDir: options.stateDir,
    allowInsecureStateDir: options.allowInsecureStateDir === true,
    readOnly,
    maxTuplesPerRule: Number.POSITIVE_INFINITY,
    logger: createLogger('warn'),
  });
}

/** The --term values as tuples for each arity the rule's histories have. */
function groupTerms(terms: string[], arities: number[]): string[][] {
  const tuples: string[][] = [];
  for (const arity of new Set(arities)) {
    if (terms.length % arity !== 0) {
      if (arities.length === 1)
        throw new ValidationError(`the history of this rule has ${arity} fields: give --term ${arity} times per tuple (got ${terms.length})`);
      continue;
    }
    for (let i = 0; i < terms.length; i += arity) tuples.push(terms.slice(i, i + arity));
  }
  return tuples;
}

function* listLines(history: HistoryStore, ruleId: string | undefined): Iterable<string> {
  for (const tuple of history.tuples(ruleId))
    yield JSON.stringify({
      rule_id: tuple.ruleId,
      new_terms_fields: tuple.fields,
      terms: tuple.terms,
      last_seen: new Date(tuple.lastSeenMs).toISOString(),
    }) + '\n';
}

/** Writes in 64 KiB pieces, waiting for the pipe to drain, so a million tuples do not pile up in memory. */
async function writeLines(lines: Iterable<string>): Promise<void> {
  let piece = '';
  for (const line of lines) {
    piece += line;
    if (piece.length >= 65_536) {
      await writePiece(piece);
      piece = '';
    }
  }
  if (piece.length > 0) await writePiece(piece);
}

function writePiece(piece: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(piece, (err) => (err ? reject(err) : resolve()));
  });
}
