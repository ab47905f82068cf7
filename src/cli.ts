#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { EXIT_RUNTIME, EXIT_USAGE, UserFacingError } from './errors.js';
import { escapeControl } from './log.js';
import { AGENT_VERSION } from './version.js';
import { registerStoreCommand } from './commands/store.js';
import { registerKqlCommand } from './commands/kql.js';
import { registerEqlCommand } from './commands/eql.js';
import { registerEventsCommand } from './commands/events.js';
import { registerRulesCommand } from './commands/rules.js';
import { registerRunCommand } from './commands/run.js';
import { registerInstallCommand } from './commands/install.js';
import { registerUninstallCommand } from './commands/uninstall.js';
import { registerStatusCommand } from './commands/status.js';
import { registerOutputsCommand } from './commands/outputs.js';
import { addExamples } from './commands/examples.js';

/**
 * The only entry point. Each command lives in src/commands/<name>.ts and registers itself here; this file
 * owns only the program, its global behaviour and how errors become one line and an exit code.
 */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('execsentry')
    .description('Watch every exec on this Linux host and evaluate Elastic detection rules on it, live.')
    .version(AGENT_VERSION)
    .showHelpAfterError()
    .exitOverride();
  // Commands register themselves below, one line each (src/commands/<name>.ts).
  registerStoreCommand(program);
  registerKqlCommand(program);
  registerEqlCommand(program);
  registerEventsCommand(program);
  registerRulesCommand(program);
  registerRunCommand(program);
  registerInstallCommand(program);
  registerUninstallCommand(program);
  registerStatusCommand(program);
  registerOutputsCommand(program);
  addExamples(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are "errors" to commander; they already printed what they had to
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return 0;
      return EXIT_USAGE;
    }
    if (err instanceof UserFacingError) {
      // Messages quote paths, keys and values from the user and the host: one line, no terminal escapes.
      process.stderr.write(`execsentry: ${escapeControl(err.message)}\n`);
      return err.exitCode;
    }
    process.stderr.write(`execsentry: unexpected failure: ${escapeControl(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
    return EXIT_RUNTIME;
  }
}

// Run only when executed (node dist/cli.js, or the npm bin symlink), not when a test imports buildProgram.
const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  process.exitCode = await main(process.argv);
}
