import { Command, Option } from 'commander';
import { Agent } from '../agent.js';
import { ConfigSchema, loadConfig, type Config, type LoadConfigOptions, type LoadedConfig } from '../config.js';
import { createLogger } from '../log.js';
import { attachService } from '../service/index.js';
import { requireCapabilities } from '../service/privileges.js';

/** `execsentry run`: the agent in the foreground (ARCHITECTURE.md section 2). */

export interface RunCommandOptions {
  config?: string;
  rules?: string[];
  output?: string[];
  stateDir?: string;
  allowInsecureStateDir?: boolean;
  format?: 'json' | 'pretty';
  skipUnsupported?: boolean;
  logLevel?: Config['logLevel'];
  logFormat?: Config['logFormat'];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * The command line's values over the config file and the environment: what the command line names wins.
 * `events` reads its settings the same way, without the outputs' secrets (resolveSecrets: false).
 */
export function configFromCommandLine(options: RunCommandOptions, load: Pick<LoadConfigOptions, 'resolveSecrets'> = {}): LoadedConfig {
  const overrides: Record<string, unknown> = {};
  if (options.rules !== undefined) overrides['rules'] = options.rules;
  if (options.output !== undefined) overrides['outputs'] = options.output.map((url) => ({ url }));
  if (options.stateDir !== undefined) overrides['stateDir'] = options.stateDir;
  if (options.allowInsecureStateDir === true) overrides['allowInsecureStateDir'] = true;
  if (options.format !== undefined) overrides['format'] = options.format;
  if (options.skipUnsupported === true) overrides['skipUnsupported'] = true;
  if (options.logLevel !== undefined) overrides['logLevel'] = options.logLevel;
  if (options.logFormat !== undefined) overrides['logFormat'] = options.logFormat;
  // The same loading as the service: defaults < config file < EXECSENTRY_* < these options.
  return loadConfig({ ...load, configFile: options.config, overrides });
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the agent in the foreground: every exec → rules → alerts (built-in rules and stdout by default)')
    .option('--config <file>', 'configuration file (JSON)')
    .option('--rules <path>', 'rule file or directory (TOML, Kibana NDJSON export, JSON); repeatable', collect)
    .option('--output <url>', 'where alerts go (stdout, file:///…, http(s)://…, …); repeatable', collect)
    .option('--state-dir <dir>', 'new-terms history, delivery spool and lock file')
    .option('--allow-insecure-state-dir', ConfigSchema.shape.allowInsecureStateDir.description)
    .addOption(new Option('--format <format>', 'stdout alert format (default: pretty on a terminal, else NDJSON)').choices(['json', 'pretty']))
    .option('--skip-unsupported', 'skip rules of unsupported type or language with a warning instead of refusing to start')
    .addOption(new Option('--log-level <level>', 'log level').choices(ConfigSchema.shape.logLevel.unwrap().options))
    .addOption(new Option('--log-format <format>', 'log format (default: pretty on a terminal, else JSON)').choices(['json', 'pretty']))
    .action(async (options: RunCommandOptions) => {
      const { config, warnings, describeSetting } = configFromCommandLine(options);
      const logger = createLogger(config.logLevel, config.logFormat);
      for (const warning of warnings) logger.warn(warning);
      requireCapabilities();
      const agent = new Agent(config, logger, (index) => describeSetting(['rules', index]));
      attachService(agent, config, logger);
      await agent.runUntilSignalled();
      // Everything is stopped and flushed; a handle something forgot to close must not keep us running.
      setTimeout(() => {
        logger.warn('the process did not exit on its own after stopping; exiting');
        process.exit(process.exitCode ?? 0);
      }, 1_000).unref();
    });
}
