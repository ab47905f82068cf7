import { z } from 'zod';

/**
 * Every option of execsentry, with its default and its one-line description, in one place. The config
 * file (JSON), the environment (EXECSENTRY_*) and the command line all feed this schema; nothing else
 * defines an option. README's option table is written from these descriptions.
 */

const MiB = 1024 * 1024;

export const OutputSchema = z
  .object({
    url: z.string().min(1).describe('where alerts go: stdout, file:///path, http(s)://…, elasticsearch://…, syslog+tcp://…'),
  })
  .passthrough();

export const ConfigSchema = z
  .object({
    rules: z
      .array(z.string().min(1))
      .default([])
      .describe('rule files or directories (TOML, NDJSON export, JSON); empty = the built-in rule'),
    skipUnsupported: z
      .boolean()
      .default(false)
      .describe('skip rules of unsupported type or language with a warning instead of refusing to start'),
    stateDir: z
      .string()
      .min(1)
      .default(process.env.STATE_DIRECTORY?.split(':')[0] ?? '/var/lib/execsentry')
      .describe('new-terms history, delivery spool and lock file'),
    runtimeDir: z
      .string()
      .min(1)
      .default(process.env.RUNTIME_DIRECTORY?.split(':')[0] ?? '/run/execsentry')
      .describe('the status socket'),
    outputs: z.array(OutputSchema).default([{ url: 'stdout' }]).describe('where alerts are delivered; each gets every alert'),
    format: z.enum(['json', 'pretty']).optional().describe('stdout alert format; default: pretty on a terminal, else NDJSON'),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('log level (stderr)'),
    logFormat: z.enum(['json', 'pretty']).optional().describe('log format; default: pretty on a terminal, else pino JSON'),
    statsIntervalSeconds: z.number().int().min(0).default(60).describe('seconds between stats lines on stderr; 0 = none'),
    sensor: z
      .object({
        socketBufferBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .default(4 * MiB)
          .describe('netlink receive buffer (SO_RCVBUFFORCE) in bytes'),
        maxArgsBytes: z
          .number()
          .int()
          .min(256)
          .default(64 * 1024)
          .describe('argv bytes kept per event; longer command lines are cut and marked execsentry.args_truncated'),
        maxProcessTableEntries: z
          .number()
          .int()
          .min(1024)
          .default(65_536)
          .describe('processes remembered for parent enrichment'),
      })
      .strict()
      .default({ socketBufferBytes: 4 * MiB, maxArgsBytes: 64 * 1024, maxProcessTableEntries: 65_536 }),
    store: z
      .object({
        maxTuplesPerRule: z
          .number()
          .int()
          .min(1)
          .default(1_000_000)
          .describe('new-terms tuples kept per rule; the least recently seen are evicted beyond it'),
      })
      .strict()
      .default({ maxTuplesPerRule: 1_000_000 }),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type OutputConfig = z.infer<typeof OutputSchema>;

/** The configuration with every default applied, for commands run without a config file. */
export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}
