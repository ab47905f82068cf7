import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { ConfigSchema, defaultConfig } from '../config.js';
import { replayEvents } from '../engine/replay.js';
import { EXIT_USAGE } from '../errors.js';
import { fieldRead } from '../kql/index.js';
import { createLogger, escapeControl } from '../log.js';
import { checkRules, formatProblem, loadRuleSet, type LoadedRule, type RuleProblem } from '../rules/index.js';
import { openHistoryStore } from '../store/index.js';
import { openDocuments } from './documents.js';

/** `execsentry rules validate | list | test`: check, list and replay rule files without running the agent. */

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Every field a rule reads: its query's, then its new-terms fields (a multi-field as its parent, as the query lists it). */
function fieldsRead(rule: LoadedRule): string[] {
  return [...new Set([...rule.compiled.fields, ...(rule.newTerms?.fields ?? []).map(fieldRead)])];
}

/** What `rules list` shows of a rule that runs here. */
function ruleSummary(rule: LoadedRule): Record<string, unknown> {
  return {
    id: rule.ruleId,
    name: rule.name,
    type: rule.type,
    version: rule.version,
    enabled: rule.enabled,
    runs: true,
    fields: fieldsRead(rule),
    ...(rule.newTerms === undefined ? {} : { new_terms_fields: rule.newTerms.fields, history_window_start: rule.newTerms.historyWindowStart.text }),
    file: rule.source.line === undefined ? rule.source.file : `${rule.source.file}:${rule.source.line}`,
  };
}

/** What `rules list` shows of a rule that cannot run here, and why. */
function unsupportedSummary(problem: RuleProblem): Record<string, unknown> {
  return {
    id: problem.ruleId,
    name: problem.rule,
    type: problem.ruleType,
    runs: false,
    why: problem.why,
    file: problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`,
  };
}

function writeTable(rules: readonly LoadedRule[], unsupported: readonly RuleProblem[]): void {
  const rows = [
    ...rules.map((rule) => [rule.ruleId, rule.name, rule.type, String(rule.version), rule.enabled ? 'yes' : 'no', 'yes', fieldsRead(rule).join(', ')]),
    ...unsupported.map((problem) => [problem.ruleId ?? '-', problem.rule ?? '-', problem.ruleType ?? '-', '-', '-', 'no', problem.why]),
  ];
  const header = ['ID', 'NAME', 'TYPE', 'VERSION', 'ENABLED', 'RUNS', 'FIELDS READ (OR WHY NOT)'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) {
    process.stdout.write(escapeControl(row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')) + '\n');
  }
}

export function registerRulesCommand(program: Command): void {
  const rules = program.command('rules').description('check, list and replay detection rules');

  rules
    .command('validate')
    .description('check rule files or directories; prints every problem, one per line (exit 0 valid, 2 invalid)')
    .argument('<path...>', 'rule files or directories (TOML, Kibana NDJSON export, JSON)')
    .option('--skip-unsupported', 'report unsupported rules as warnings instead of problems')
    .action(async (paths: string[], options: { skipUnsupported?: boolean }) => {
      const check = await checkRules(paths, { skipUnsupported: options.skipUnsupported === true });
      for (const warning of check.warnings) process.stderr.write(`execsentry: warning: ${escapeControl(warning)}\n`);
      for (const skipped of check.skipped) process.stderr.write(`execsentry: warning: skipped: ${escapeControl(formatProblem(skipped))}\n`);
      for (const problem of check.problems) process.stderr.write(`execsentry: ${escapeControl(formatProblem(problem))}\n`);
      if (check.problems.length > 0) {
        process.exitCode = EXIT_USAGE;
        return;
      }
      const enabled = check.rules.filter((rule) => rule.enabled).length;
      const skipped = check.skipped.length === 0 ? '' : `, ${check.skipped.length} unsupported skipped`;
      process.stderr.write(`execsentry: ${check.rules.length} rule(s) valid (${enabled} enabled${skipped})\n`);
    });

  rules
    .command('list')
    .description('list rules: id, name, type, version, whether it runs here, fields read or why not (the built-in rules when no path is given)')
    .argument('[path...]', 'rule files or directories')
    .addOption(new Option('--format <format>', 'table or NDJSON (default: table on a terminal, else NDJSON)').choices(['table', 'json']))
    .action(async (paths: string[], options: { format?: 'table' | 'json' }) => {
      // every rule is listed, those that cannot run here too (with why); broken files still fail
      const ruleSet = await loadRuleSet(paths, { skipUnsupported: true });
      const format = options.format ?? (process.stdout.isTTY === true ? 'table' : 'json');
      if (format === 'table') writeTable(ruleSet.rules, ruleSet.skipped);
      else {
        for (const rule of ruleSet.rules) process.stdout.write(JSON.stringify(ruleSummary(rule)) + '\n');
        for (const skipped of ruleSet.skipped) process.stdout.write(JSON.stringify(unsupportedSummary(skipped)) + '\n');
      }
    });

  rules
    .command('test')
    .description("replay NDJSON events through rules in file order, each event's @timestamp as \"now\"; alerts as NDJSON on stdout")
    .option('--rules <path>', 'rule file or directory; repeatable (default: the built-in rules)', collect)
    .requiredOption('--events <file>', 'NDJSON ECS process events ("-" for stdin)')
    .option('--state-dir <dir>', 'new-terms history to use and keep (default: a fresh temporary one)')
    .option('--allow-insecure-state-dir', ConfigSchema.shape.allowInsecureStateDir.description)
    .option('--skip-unsupported', 'skip unsupported rules with a warning instead of failing')
    .option('--explain', 'on stderr, for each event and rule: matched, or the first top-level condition that failed')
    .action(async (options: { rules?: string[]; events: string; stateDir?: string; allowInsecureStateDir?: boolean; skipUnsupported?: boolean; explain?: boolean }) => {
      const logger = createLogger(defaultConfig().logLevel);
      const ruleSet = await loadRuleSet(options.rules ?? [], { skipUnsupported: options.skipUnsupported === true });
      for (const skipped of ruleSet.skipped) logger.warn(`skipped unsupported rule: ${formatProblem(skipped)}`);
      for (const warning of ruleSet.warnings) logger.warn(warning);
      const events = await openDocuments(options.events);
      const temporary = options.stateDir === undefined ? await mkdtemp(join(tmpdir(), 'execsentry-rules-test-')) : undefined;
      try {
        const store = await openHistoryStore({
          stateDir: options.stateDir ?? temporary!,
          allowInsecureStateDir: options.allowInsecureStateDir === true,
          maxTuplesPerRule: defaultConfig().store.maxTuplesPerRule,
          // The replay's clock is each event's @timestamp: a date after the machine's is no anomaly here.
          maxFutureMs: Number.POSITIVE_INFINITY,
          logger,
        });
        try {
          const stats = await replayEvents({
            rules: ruleSet.rules,
            store,
            logger,
            eventsName: options.events === '-' ? 'stdin' : escapeControl(options.events),
            events,
            emit: (alert) => process.stdout.write(JSON.stringify(alert) + '\n'),
            explain: options.explain === true ? (line) => process.stderr.write(`execsentry: ${escapeControl(line)}\n`) : undefined,
          });
          // on stderr: stdout is the alerts alone
          process.stderr.write(
            `execsentry: ${stats.events} event(s), ${stats.matches} match(es), ${stats.alerts} alert(s), ${stats.knownTerms} known term(s), ${stats.suppressed} held back by max_signals\n`,
          );
        } finally {
          await store.close();
        }
      } finally {
        if (temporary !== undefined) await rm(temporary, { recursive: true, force: true });
      }
    });
}
