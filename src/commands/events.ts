import { Option, type Command } from 'commander';
import { ConfigSchema, type Config } from '../config.js';
import { documentJson } from '../ecs/json.js';
import type { ProcessEvent } from '../ecs/types.js';
import { ValidationError } from '../errors.js';
import { compileKql, KqlSyntaxError, type CompiledQuery } from '../kql/index.js';
import { createLogger } from '../log.js';
import { Sensor } from '../sensor/index.js';
import { configFromCommandLine } from './run.js';

/** stdout bytes not yet taken by the reader beyond which events are dropped (and counted), not buffered. */
const MAX_STDOUT_BACKLOG_BYTES = 64 * 1024 * 1024;

interface EventsOptions {
  filter?: string;
  allActions?: boolean;
  config?: string;
  logLevel?: Config['logLevel'];
  logFormat?: Config['logFormat'];
}

/**
 * `execsentry events [--filter KQL] [--all-actions]`: every enriched exec event (and fork and end events when asked for) as NDJSON on stdout until SIGINT/SIGTERM
 * (or until stdout's reader goes away); logs and the final counters go to stderr.
 */
export function registerEventsCommand(program: Command): void {
  program
    .command('events')
    .description('stream every exec on this host as an ECS process event (NDJSON on stdout), no rules')
    .option('--filter <kql>', 'only events matching this KQL query')
    .option('--all-actions', 'fork and end events too, as Elastic Defend has them (default: the config\'s sensor.events, exec alone unless set)')
    .option('--config <file>', 'configuration file (JSON); its sensor and log settings apply')
    .addOption(new Option('--log-level <level>', 'log level').choices(ConfigSchema.shape.logLevel.unwrap().options))
    .addOption(new Option('--log-format <format>', 'log format (default: pretty on a terminal, else JSON)').choices(['json', 'pretty']))
    .action(async (options: EventsOptions) => {
      let filter: CompiledQuery | undefined;
      if (options.filter !== undefined) {
        try {
          filter = compileKql(options.filter);
        } catch (err) {
          if (err instanceof KqlSyntaxError) throw new ValidationError(`--filter: ${err.message}`);
          throw err;
        }
      }
      // Read as `run` reads it (file < EXECSENTRY_* < command line); outputs' secrets are not this command's.
      const { config, warnings } = configFromCommandLine(
        { config: options.config, logLevel: options.logLevel, logFormat: options.logFormat },
        { resolveSecrets: false },
      );
      const logger = createLogger(config.logLevel, config.logFormat);
      for (const warning of warnings) logger.warn(warning);
      const sensor = new Sensor({ ...config.sensor, ...(options.allActions === true ? { events: ['exec', 'fork', 'end'] as const } : {}), logger });
      let dropped = 0;
      let stopping: Promise<void> | undefined;
      let finished: () => void = () => undefined;
      const done = new Promise<void>((resolve) => {
        finished = resolve;
      });
      const stop = () => {
        stopping ??= sensor.stop().then(finished);
      };
      process.stdout.on('error', stop); // EPIPE: nobody reads any more
      const write = (events: ProcessEvent[]) => {
        let lines = '';
        let count = 0;
        for (const event of events) {
          if (filter !== undefined && !filter.matches(event)) continue;
          lines += `${documentJson(event)}\n`;
          count += 1;
        }
        if (count === 0) return;
        if (process.stdout.writableLength > MAX_STDOUT_BACKLOG_BYTES) {
          dropped += count;
          return;
        }
        process.stdout.write(lines);
      };
      await sensor.start(write);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      logger.info({ events: options.allActions === true ? ['exec', 'fork', 'end'] : config.sensor.events }, 'streaming exec events (NDJSON on stdout); SIGINT or SIGTERM stops');
      await done;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      logger.info({ ...sensor.stats(), stdoutDropped: dropped }, 'stopped');
      if (process.stdout.writableLength > 0 && !process.stdout.destroyed) {
        await new Promise<void>((resolve) => process.stdout.once('drain', resolve).once('error', resolve).once('close', resolve));
      }
    });
}
