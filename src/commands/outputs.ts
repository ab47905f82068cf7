import { Command, Option } from 'commander';
import { ConfigSchema } from '../config.js';
import { EXIT_RUNTIME, ValidationError } from '../errors.js';
import { createLogger, escapeControl } from '../log.js';
import { replayDeadLetters } from '../outputs/replay.js';
import { lockStateDirectory } from '../store/index.js';
import { configFromCommandLine } from './run.js';

interface ReplayCommandOptions {
  config?: string;
  output?: string[];
  stateDir?: string;
  allowInsecureStateDir?: boolean;
  wait: number;
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  logFormat?: 'json' | 'pretty';
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parseWait(text: string): number {
  const seconds = Number(text);
  if (!/^\d+$/.test(text.trim()) || seconds > 86_400) throw new ValidationError(`--wait ${JSON.stringify(escapeControl(text))}: expected whole seconds from 0 to 86400`);
  return seconds;
}

/** `execsentry outputs …`: what the delivery of alerts left behind. */
export function registerOutputsCommand(program: Command): void {
  const outputs = program.command('outputs').description('manage alert delivery: re-send what collectors refused (agent stopped)');
  outputs
    .command('replay-dead-letter')
    .description('re-send the dead-lettered alerts of each configured network output through that output (agent stopped)')
    .option('--config <file>', 'the configuration the agent runs with (its outputs and state directory)')
    .option('--output <url>', 'replay only for these outputs (instead of the configured ones); repeatable', collect)
    .option('--state-dir <dir>', 'the state directory holding dead-letter/ and the spools')
    .option('--allow-insecure-state-dir', ConfigSchema.shape.allowInsecureStateDir.description)
    .option('--wait <seconds>', 'how long to wait for the collectors to take the alerts; what is left stays spooled for the agent', parseWait, 60)
    .addOption(new Option('--log-level <level>', 'log level').choices(ConfigSchema.shape.logLevel.unwrap().options))
    .addOption(new Option('--log-format <format>', 'log format (default: pretty on a terminal, else JSON)').choices(['json', 'pretty']))
    .addHelpText(
      'after',
      `
Prints one JSON object per output (output, files, requeued, acknowledged, refusedAgain, pending,
keptUnreadable, deadLetterFile); exit 0 when every replayed alert was acknowledged, 1 otherwise.`,
    )
    .action(async (options: ReplayCommandOptions) => {
      const { config, warnings } = configFromCommandLine(options);
      const logger = createLogger(config.logLevel, config.logFormat);
      for (const warning of warnings) logger.warn(warning);
      const lock = await lockStateDirectory({ stateDir: config.stateDir, allowInsecureStateDir: config.allowInsecureStateDir, logger });
      let incomplete = false;
      try {
        const result = await replayDeadLetters(config.outputs, { stateDir: config.stateDir, logger }, { waitMs: options.wait * 1000 });
        for (const report of result.reports) {
          process.stdout.write(`${JSON.stringify(report)}\n`);
          if (report.refusedAgain > 0 || report.pending > 0 || report.keptUnreadable.length > 0) incomplete = true;
          process.stderr.write(
            escapeControl(
              `execsentry: ${report.output}: ${report.requeued} alert(s) re-sent, ${report.acknowledged} acknowledged, ${report.refusedAgain} refused again (in ${report.deadLetterFile}), ${report.pending} still spooled for the agent`,
            ) + '\n',
          );
        }
        for (const { file, output } of result.unconfigured) {
          incomplete = true;
          process.stderr.write(
            escapeControl(`execsentry: ${file}: its output${output === undefined ? '' : ` (${output})`} is not configured; left as it is (give it with --output URL)`) + '\n',
          );
        }
        if (result.reports.length === 0 && result.unconfigured.length === 0) process.stderr.write(`execsentry: no dead-lettered alerts in ${escapeControl(config.stateDir)}/dead-letter\n`);
      } finally {
        lock.release();
      }
      if (incomplete) process.exitCode = EXIT_RUNTIME;
    });
}
