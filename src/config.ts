import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_MAX_PARTIAL_SEQUENCES } from './engine/index.js';
import { ValidationError } from './errors.js';
import { KiB, MiB, readRegularFileSync, UnreadableFile } from './io/files.js';
import { escapeControl } from './log.js';
import { envVarNamesSchema } from './sensor/env-vars.js';
import { DEFAULT_HASH_WAIT_MS, DEFAULT_MAX_HASH_FILE_BYTES, HASH_ALGORITHMS } from './sensor/hashes.js';

/**
 * Every option of execsentry, with its default and its one-line description, in one place. The config
 * file (JSON), the environment (EXECSENTRY_*) and the command line all feed this schema; nothing else
 * defines an option. README's option table is written from these descriptions.
 */

/** A config file is a page of JSON; anything near this is not one (`--config /dev/zero` must not fill memory). */
export const MAX_CONFIG_FILE_BYTES = 1 * MiB;
/** An API key, a password: a line. */
export const MAX_SECRET_FILE_BYTES = 64 * KiB;
const TiB = 1024 * 1024 * MiB;

// Output settings: one flat object per output; which settings apply depends on the URL's kind (openOutputs
// refuses a setting the kind does not use). Every field but `url` is optional, so `--output URL` alone works.
// Secrets: loadConfig reads every `<name>File` setting whose `<name>` is a setting too (apiKeyFile → apiKey,
// passwordFile → password; `credential:NAME` = $CREDENTIALS_DIRECTORY/NAME) and removes it, so outputs only
// ever see `apiKey` / `password`; other *File paths (caFile, keyFile…) get `credential:NAME` turned into a path.
export const OutputSchema = z
  .object({
    url: z.string().min(1).describe('where alerts go: stdout, file:///path, http(s)://…, elasticsearch://…, syslog+tcp://…'),
    headers: z.record(z.string(), z.string()).optional().describe('http: extra request headers (e.g. Authorization)'),
    caFile: z.string().min(1).optional().describe('https, elasticsearchs, syslog+tls: PEM file of the CA(s) to trust instead of the system store'),
    certFile: z.string().min(1).optional().describe('https, elasticsearchs, syslog+tls: client certificate (PEM) for mutual TLS'),
    keyFile: z.string().min(1).optional().describe('https, elasticsearchs, syslog+tls: private key (PEM) of certFile'),
    insecure: z.boolean().optional().describe('TLS outputs: skip certificate verification — for tests only, never in production'),
    gzip: z.boolean().optional().describe('http, elasticsearch: gzip request bodies (default false)'),
    batchSize: z.number().int().min(1).max(10_000).optional().describe('network outputs: alerts per request (default 500)'),
    timeoutSeconds: z.number().min(1).max(600).optional().describe('network outputs: seconds before a request or connection counts as failed (default 30)'),
    index: z.string().min(1).optional().describe('elasticsearch: data stream (or index) written with create actions (default logs-execsentry.alerts-default)'),
    apiKey: z.string().min(1).optional().describe('elasticsearch: API key (the base64 "id:key" form Kibana shows)'),
    apiKeyFile: z.string().min(1).optional().describe('elasticsearch: file holding the API key (preferred over apiKey)'),
    username: z.string().min(1).optional().describe('elasticsearch: basic-auth user'),
    password: z.string().optional().describe('elasticsearch: basic-auth password'),
    passwordFile: z.string().min(1).optional().describe('elasticsearch: file holding the basic-auth password (preferred over password)'),
    facility: z
      .enum(['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'])
      .optional()
      .describe('syslog: facility (default authpriv: alerts hold command lines)'),
    rotateBytes: z.number().int().min(1024).max(TiB).optional().describe('file: rotate when the file would exceed this many bytes (default 100 MiB)'),
    rotateKeep: z.number().int().min(0).max(1000).optional().describe('file: rotated files kept (default 5)'),
    spoolMaxBytes: z.number().int().min(64 * 1024).max(TiB).optional().describe('network outputs: disk spool bound; the oldest alerts are dropped (counted) beyond it (default 256 MiB)'),
  })
  .strict();

export const ConfigSchema = z
  .object({
    rules: z
      .array(z.string().min(1))
      .default([])
      .describe('rule files or directories (TOML, NDJSON export, JSON); empty = the built-in rules'),
    skipUnsupported: z
      .boolean()
      .default(false)
      .describe('skip rules of unsupported type or language with a warning instead of refusing to start'),
    stateDir: z
      .string()
      .min(1)
      .default(process.env.STATE_DIRECTORY?.split(':')[0] ?? '/var/lib/execsentry')
      .describe('new-terms history, delivery spool and lock file'),
    allowInsecureStateDir: z
      .boolean()
      .default(false)
      .describe('use a state directory that group or others can write to, or that another user owns (with a warning); refused otherwise, as files could be planted in it'),
    runtimeDir: z
      .string()
      .min(1)
      .default(process.env.RUNTIME_DIRECTORY?.split(':')[0] ?? '/run/execsentry')
      .describe('the status socket'),
    outputs: z.array(OutputSchema).default([{ url: 'stdout' }]).describe('where alerts are delivered; each gets every alert'),
    format: z.enum(['json', 'pretty']).optional().describe('stdout alert format; default: pretty on a terminal, else NDJSON'),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('log level (stderr)'),
    logFormat: z.enum(['json', 'pretty']).optional().describe('log format; default: pretty on a terminal, else pino JSON'),
    statsIntervalSeconds: z.number().int().min(0).max(86_400).default(60).describe('seconds between stats lines on stderr; 0 = none'),
    metrics: z
      .object({
        enabled: z.boolean().default(false).describe('serve Prometheus text metrics over HTTP (GET /metrics)'),
        address: z
          .string()
          .refine(isLoopbackAddress, 'must be a loopback address (127.0.0.0/8, ::1 or localhost): the counters are not for the network')
          .default('127.0.0.1')
          .describe('listen address of the metrics endpoint; loopback only'),
        port: z.number().int().min(1).max(65_535).default(9469).describe('TCP port of the metrics endpoint'),
      })
      .strict()
      .default({ enabled: false, address: '127.0.0.1', port: 9469 }),
    sensor: z
      .object({
        socketBufferBytes: z
          .number()
          .int()
          .min(64 * 1024)
          // the kernel caps SO_RCVBUFFORCE at INT_MAX / 2 (net/core/sock.c)
          .max(1024 * MiB)
          .default(4 * MiB)
          .describe('netlink receive buffer (SO_RCVBUFFORCE) in bytes'),
        maxArgsBytes: z
          .number()
          .int()
          .min(256)
          // a command line cannot be longer: argv and the environment together are capped at 3/4 of
          // _STK_LIM, 6 MiB (fs/exec.c, bprm_stack_limits)
          .max(6 * MiB)
          .default(64 * 1024)
          .describe('argv bytes kept per event; longer command lines are cut and marked execsentry.args_truncated'),
        maxProcessTableEntries: z
          .number()
          .int()
          .min(1024)
          // PID_MAX_LIMIT on 64-bit kernels: there cannot be more processes
          .max(4_194_304)
          .default(65_536)
          .describe('processes remembered for parent enrichment'),
        envVars: envVarNamesSchema
          .default([])
          .describe('environment variables captured into process.env_vars as NAME=value (at most 5 names of at most 63 bytes; values over 1023 bytes are left out), as Elastic Defend\'s linux.advanced.capture_env_vars; empty = /proc/PID/environ is never read'),
        hashes: z
          .array(z.enum(HASH_ALGORITHMS))
          .default([])
          .describe('process.hash.* of the exec\'d file: any of md5, sha1, sha256; cached by device, inode, size, mtime and ctime; empty = no hashing'),
        maxHashFileBytes: z
          .number()
          .int()
          .min(1)
          .max(4 * 1024 * MiB)
          .default(DEFAULT_MAX_HASH_FILE_BYTES)
          .describe('files larger than this get no hash (execsentry.hash_missing: too_large)'),
        hashWaitMs: z
          .number()
          .int()
          .min(0)
          .max(10_000)
          .default(DEFAULT_HASH_WAIT_MS)
          .describe('the longest an event waits for its file\'s first hash; it then goes without (execsentry.hash_missing: timeout) and the hash is cached for the next exec'),
        events: z
          .array(z.enum(['exec', 'fork', 'end']))
          .refine((events) => events.includes('exec'), 'must list "exec": exec events are always produced ("fork" and "end" are the optional ones)')
          .refine((events) => new Set(events).size === events.length, 'lists an event twice')
          .default(['exec'])
          .describe('process events produced and streamed by `events`, every rule evaluated on them as on Elastic Defend data; fork and end a rule names are produced for it anyway'),
      })
      .strict()
      .default({
        socketBufferBytes: 4 * MiB,
        maxArgsBytes: 64 * 1024,
        maxProcessTableEntries: 65_536,
        envVars: [],
        hashes: [],
        maxHashFileBytes: DEFAULT_MAX_HASH_FILE_BYTES,
        hashWaitMs: DEFAULT_HASH_WAIT_MS,
        events: ['exec'],
      }),
    store: z
      .object({
        maxTuplesPerRule: z
          .number()
          .int()
          .min(1)
          .max(100_000_000)
          .default(1_000_000)
          .describe('new-terms tuples kept per rule; the least recently seen are evicted beyond it'),
      })
      .strict()
      .default({ maxTuplesPerRule: 1_000_000 }),
    engine: z
      .object({
        maxPartialSequencesPerRule: z
          .number()
          .int()
          .min(1)
          .max(10_000_000)
          .default(DEFAULT_MAX_PARTIAL_SEQUENCES)
          .describe('partial EQL sequences kept per sequence rule (in memory); the oldest is dropped beyond it and counted'),
      })
      .strict()
      .default({ maxPartialSequencesPerRule: DEFAULT_MAX_PARTIAL_SEQUENCES }),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type OutputConfig = z.infer<typeof OutputSchema>;

/** The configuration with every default applied, for commands run without a config file. */
export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}

// ─── Loading: defaults < systemd directories < config file < EXECSENTRY_* environment < command line ───

/** Where the final configuration of `execsentry run` and of the service comes from. */
export interface LoadConfigOptions {
  /** --config FILE; when absent, $EXECSENTRY_CONFIG; when that is absent too, no file (defaults only). */
  configFile?: string;
  /** Values from the command line (same shape as the file, partial); they win over everything. */
  overrides?: Record<string, unknown>;
  /** The environment to read EXECSENTRY_*, STATE_DIRECTORY, RUNTIME_DIRECTORY, CREDENTIALS_DIRECTORY from. */
  env?: NodeJS.ProcessEnv;
  /**
   * false: leave *File settings and credential:NAME as written (for `status` and `install --config`, which
   * must not need the agent's secrets or systemd credentials). Default true.
   */
  resolveSecrets?: boolean;
}

export interface LoadedConfig {
  config: Config;
  /** The file that was read, if any. */
  configFile: string | undefined;
  /** Its text exactly as read and validated (what `install --config` installs: no second read to race). */
  configText: string | undefined;
  /** Problems that do not stop the agent (a secret readable by others, an unknown EXECSENTRY_ variable); log them. */
  warnings: string[];
  /**
   * A key and its value as a message names them, after the layer that set it, for a problem found after
   * loading (a rules path that does not exist): `config /etc/execsentry/config.json: rules[1] = "/x"`.
   */
  describeSetting: (path: readonly PropertyKey[]) => string;
}

/** The variable naming the config file when --config is not given. */
export const CONFIG_FILE_ENV = 'EXECSENTRY_CONFIG';

/** One EXECSENTRY_* variable: which option it sets and how its text becomes a value. */
export interface EnvironmentOverride {
  variable: string;
  path: readonly string[];
  kind: 'string' | 'number' | 'boolean' | 'list' | 'outputs';
}

/**
 * Every EXECSENTRY_* variable, derived from the schema so it cannot drift: an option's path in
 * SCREAMING_SNAKE_CASE behind the prefix (stateDir → EXECSENTRY_STATE_DIR, sensor.maxArgsBytes →
 * EXECSENTRY_SENSOR_MAX_ARGS_BYTES). Lists are comma-separated; EXECSENTRY_OUTPUTS is a comma-separated
 * list of output URLs (settings beyond the URL need the config file).
 */
export function environmentOverrides(): EnvironmentOverride[] {
  const found: EnvironmentOverride[] = [];
  const visit = (shape: Record<string, z.ZodType>, path: string[]): void => {
    for (const [key, field] of Object.entries(shape)) {
      const inner = unwrapSchema(field);
      const here = [...path, key];
      const variable = 'EXECSENTRY_' + here.map(screamingSnake).join('_');
      const type = inner._zod.def.type;
      if (type === 'object') visit((inner as z.ZodObject).shape as Record<string, z.ZodType>, here);
      else if (type === 'array') {
        const element = unwrapSchema((inner as z.ZodArray<z.ZodType>).element);
        found.push({ variable, path: here, kind: element._zod.def.type === 'object' ? 'outputs' : 'list' });
      } else if (type === 'number') found.push({ variable, path: here, kind: 'number' });
      else if (type === 'boolean') found.push({ variable, path: here, kind: 'boolean' });
      else found.push({ variable, path: here, kind: 'string' });
    }
  };
  visit(ConfigSchema.shape as unknown as Record<string, z.ZodType>, []);
  return found;
}

/** The schema under .default()/.optional()/.nullable() wrappers. */
export function unwrapSchema(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    const def = current._zod.def as { type: string; innerType?: z.ZodType };
    if ((def.type === 'default' || def.type === 'optional' || def.type === 'nullable' || def.type === 'prefault') && def.innerType) {
      current = def.innerType;
    } else return current;
  }
}

function screamingSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/**
 * The one way `execsentry run` and the service get their configuration: the schema's defaults, the
 * directories systemd hands over ($STATE_DIRECTORY, $RUNTIME_DIRECTORY), the JSON config file, the
 * EXECSENTRY_* environment and the command line, each layer over the one before (objects merge key by key,
 * lists and values replace). Secret files and systemd credentials are read here, so the rest of the agent
 * only ever sees the secret itself. Any bad value is a ValidationError (exit 2) naming where it came from,
 * the key, the value and the reason, in one line.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const warnings: string[] = [];
  const configFile = options.configFile ?? nonEmpty(env[CONFIG_FILE_ENV]);

  const systemdLayer: Record<string, unknown> = {};
  const stateDirectory = nonEmpty(env.STATE_DIRECTORY?.split(':')[0]);
  const runtimeDirectory = nonEmpty(env.RUNTIME_DIRECTORY?.split(':')[0]);
  if (stateDirectory !== undefined) systemdLayer['stateDir'] = stateDirectory;
  if (runtimeDirectory !== undefined) systemdLayer['runtimeDir'] = runtimeDirectory;

  let fileLayer: Record<string, unknown> = {};
  let configText: string | undefined;
  if (configFile !== undefined) {
    const read = readConfigFile(configFile);
    fileLayer = read.value;
    configText = read.text;
    // The file on its own must be valid: a broken file is reported as the file's fault even when the
    // environment happens to override the broken key today.
    const alone = ConfigSchema.safeParse(deepMerge(systemdLayer, fileLayer));
    if (!alone.success) throw configError(alone.error, { source: 'file', file: configFile, input: fileLayer });
    const held = literalSecretsIn(fileLayer);
    if (held.length > 0) {
      const mode = read.mode & 0o777;
      if ((mode & 0o077) !== 0) {
        warnings.push(
          `config ${configFile} holds a secret (${held.join(', ')}) and is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it, or move the secret to a file or systemd credential (apiKeyFile, passwordFile, "credential:NAME")`,
        );
      }
    }
  }

  const envLayer = environmentLayer(env, warnings);
  const overrides = options.overrides ?? {};
  refuseReservedKeys(overrides, [], 'command line');
  const merged = deepMerge(deepMerge(deepMerge(systemdLayer, fileLayer), envLayer.values), overrides);
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    throw configError(parsed.error, { source: 'merged', file: configFile, input: merged, envLayer, overrides });
  }
  const config = parsed.data;
  if (options.resolveSecrets !== false) resolveSecrets(config, env, configFile, warnings);
  const source: ErrorSource = { source: 'merged', file: configFile, input: merged, envLayer, overrides };
  return { config, configFile, configText, warnings, describeSetting: (path) => describeSetting(path, source) };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function readConfigFile(file: string): { value: Record<string, unknown>; text: string; mode: number } {
  let text: string;
  let mode: number;
  try {
    const read = readRegularFileSync(file, MAX_CONFIG_FILE_BYTES);
    text = read.bytes.toString('utf8');
    mode = read.mode;
  } catch (err) {
    throw new ValidationError(`config ${file}: cannot read it: ${err instanceof UnreadableFile ? err.reason : String(err)}`);
  }
  const raw = text;
  let value: unknown;
  try {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    value = JSON.parse(text);
  } catch (err) {
    const offset = jsonErrorOffset(text);
    if (offset === undefined) throw new ValidationError(`config ${file}: not valid JSON: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    const { line, column } = lineColumn(text, offset);
    const found = offset >= text.length ? 'the file ends too early' : `unexpected ${quote(text[offset])}`;
    throw new ValidationError(`config ${file}: not valid JSON at line ${line}, column ${column}: ${found}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError(`config ${file}: the top level must be a JSON object ({ "option": value, … }), not ${describeJsonType(value)}`);
  }
  refuseReservedKeys(value, [], `config ${file}`);
  return { value: value as Record<string, unknown>, text: raw, mode };
}

/**
 * Keys that would reach an object's prototype when merged (`"__proto__": {…}` in JSON is an own key, but
 * assigning it sets the prototype) are no option of ours: refused wherever they appear, before any merge.
 */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Options nest four levels at most (outputs[0].headers.Name); deeper is no config of ours. */
const MAX_CONFIG_DEPTH = 32;

function refuseReservedKeys(root: unknown, rootPath: PropertyKey[], where: string): void {
  // Iterative, each entry linked to its parent: the path is spelled out only for the message.
  interface Entry {
    value: unknown;
    key: PropertyKey | undefined;
    parent: Entry | undefined;
    depth: number;
  }
  const pathOf = (entry: Entry): PropertyKey[] => {
    const keys: PropertyKey[] = [];
    for (let at: Entry | undefined = entry; at?.key !== undefined; at = at.parent) keys.unshift(at.key);
    return [...rootPath, ...keys];
  };
  const pending: Entry[] = [{ value: root, key: undefined, parent: undefined, depth: 0 }];
  for (let entry = pending.pop(); entry !== undefined; entry = pending.pop()) {
    const { value, depth } = entry;
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_CONFIG_DEPTH) throw new ValidationError(`${where}: ${formatKeyPath(pathOf(entry))}: nested deeper than ${MAX_CONFIG_DEPTH} levels`);
    if (Array.isArray(value)) {
      value.forEach((element, index) => pending.push({ value: element, key: index, parent: entry, depth: depth + 1 }));
      continue;
    }
    for (const key of Object.keys(value)) {
      const child: Entry = { value: (value as Record<string, unknown>)[key], key, parent: entry, depth: depth + 1 };
      if (RESERVED_KEYS.has(key)) throw new ValidationError(`${where}: ${formatKeyPath(pathOf(child))}: a reserved name, not an option`);
      pending.push(child);
    }
  }
}

interface EnvironmentLayer {
  values: Record<string, unknown>;
  /** option path (dotted) → variable, to name the variable when its value is refused */
  variables: Map<string, string>;
}

function environmentLayer(env: NodeJS.ProcessEnv, warnings: string[]): EnvironmentLayer {
  const values: Record<string, unknown> = {};
  const variables = new Map<string, string>();
  const known = new Set<string>([CONFIG_FILE_ENV]);
  for (const override of environmentOverrides()) {
    known.add(override.variable);
    const text = env[override.variable];
    if (text === undefined) continue;
    const value = parseEnvironmentValue(override, text);
    let target = values;
    for (const segment of override.path.slice(0, -1)) {
      target = (target[segment] ??= {}) as Record<string, unknown>;
    }
    target[override.path[override.path.length - 1]!] = value;
    variables.set(override.path.join('.'), override.variable);
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('EXECSENTRY_') && !known.has(name)) {
      warnings.push(`environment variable ${name} is not an execsentry option and is ignored (known: ${[...known].sort().join(', ')})`);
    }
  }
  return { values, variables };
}

function parseEnvironmentValue(override: EnvironmentOverride, text: string): unknown {
  const refuse = (reason: string): never => {
    throw new ValidationError(`environment ${override.variable}=${quote(text)}: ${reason}`);
  };
  switch (override.kind) {
    case 'string':
      return text;
    case 'number': {
      const value = text.trim() === '' ? Number.NaN : Number(text);
      return Number.isFinite(value) ? value : refuse('expected a number');
    }
    case 'boolean': {
      const lower = text.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
      if (['0', 'false', 'no', 'off'].includes(lower)) return false;
      return refuse('expected true or false (also 1/0, yes/no, on/off)');
    }
    case 'list':
      return splitList(text);
    case 'outputs':
      return splitList(text).map((url) => ({ url }));
  }
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** Objects merge key by key; anything else (values, lists) in `over` replaces what `base` has. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const previous = result[key];
    result[key] = isPlainObject(previous) && isPlainObject(value) ? deepMerge(previous, value) : value;
  }
  return result;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// ─── Secrets ───

/** The systemd credential reference accepted by every *File setting: `credential:NAME`. */
const CREDENTIAL_PREFIX = 'credential:';

/**
 * Output settings whose secret may come from a file: `<name>File` where `<name>` is a setting too
 * (apiKeyFile → apiKey, passwordFile → password). Derived from OutputSchema so a new pair works at once.
 */
export function secretFileSettings(): Array<{ file: string; secret: string }> {
  const shape = OutputSchema.shape as Record<string, z.ZodType>;
  return Object.keys(shape)
    .filter((key) => key.endsWith('File') && key.slice(0, -'File'.length) in shape)
    .map((file) => ({ file, secret: file.slice(0, -'File'.length) }));
}

/** Where a config file holds a secret in clear: a secret setting, an Authorization header, a URL password. */
function literalSecretsIn(file: Record<string, unknown>): string[] {
  const outputs = file['outputs'];
  if (!Array.isArray(outputs)) return [];
  const held: string[] = [];
  const secrets = secretFileSettings().map((pair) => pair.secret);
  outputs.forEach((output: unknown, index) => {
    if (!isPlainObject(output)) return;
    for (const secret of secrets) {
      if (typeof output[secret] === 'string' && output[secret] !== '') held.push(`outputs[${index}].${secret}`);
    }
    const headers = output['headers'];
    if (isPlainObject(headers)) {
      for (const name of Object.keys(headers)) {
        if (/^(authorization|proxy-authorization|x-api-key|api-key|cookie)$/i.test(name)) held.push(`outputs[${index}].headers.${name}`);
      }
    }
    if (typeof output['url'] === 'string' && urlHasPassword(output['url'])) held.push(`outputs[${index}].url (password)`);
  });
  return held;
}

function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/**
 * Reads every secret file (or systemd credential) into its setting and turns `credential:NAME` in any
 * other *File setting (caFile, certFile, keyFile) into the credential's path, so outputs see plain values.
 */
function resolveSecrets(config: Config, env: NodeJS.ProcessEnv, configFile: string | undefined, warnings: string[]): void {
  const pairs = secretFileSettings();
  const where = configFile === undefined ? 'config' : `config ${configFile}`;
  config.outputs.forEach((output, index) => {
    const settings = output as Record<string, unknown>;
    for (const [key, value] of Object.entries(settings)) {
      if (!key.endsWith('File') || typeof value !== 'string') continue;
      const keyPath = `outputs[${index}].${key}`;
      const path = value.startsWith(CREDENTIAL_PREFIX) ? credentialPath(value, env, `${where}: ${keyPath} = ${quote(value)}`) : value;
      const pair = pairs.find((candidate) => candidate.file === key);
      if (pair === undefined) {
        settings[key] = path;
        continue;
      }
      if (settings[pair.secret] !== undefined) {
        throw new ValidationError(`${where}: ${keyPath} = ${quote(value)}: give either ${pair.secret} or ${key}, not both`);
      }
      settings[pair.secret] = readSecretFile(path, `${where}: ${keyPath} = ${quote(value)}`, warnings, env);
      delete settings[key];
    }
  });
}

function credentialPath(reference: string, env: NodeJS.ProcessEnv, context: string): string {
  const name = reference.slice(CREDENTIAL_PREFIX.length);
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new ValidationError(`${context}: a credential name is a plain file name (as in LoadCredential=NAME:…)`);
  }
  const directory = nonEmpty(env.CREDENTIALS_DIRECTORY);
  if (directory === undefined) {
    throw new ValidationError(`${context}: $CREDENTIALS_DIRECTORY is not set; systemd sets it for a unit with LoadCredential=${name}:/path/to/secret`);
  }
  return join(directory, name);
}

function readSecretFile(path: string, context: string, warnings: string[], env: NodeJS.ProcessEnv): string {
  let text: string;
  let fileMode: number;
  try {
    const read = readRegularFileSync(path, MAX_SECRET_FILE_BYTES);
    text = read.bytes.toString('utf8');
    fileMode = read.mode;
  } catch (err) {
    throw new ValidationError(`${context}: cannot read the secret: ${err instanceof UnreadableFile ? err.reason : String(err)}`);
  }
  // A secret written with `echo` ends in a newline that is not part of it.
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new ValidationError(`${context}: the secret file is empty`);
  const credentials = nonEmpty(env.CREDENTIALS_DIRECTORY);
  if (credentials === undefined || !path.startsWith(credentials + '/')) {
    const mode = fileMode & 0o777;
    if ((mode & 0o077) !== 0) {
      warnings.push(`secret file ${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it`);
    }
  }
  return secret;
}

// ─── Error messages: one line, where (file / variable / command line), key, value, reason ───

interface ErrorSource {
  source: 'file' | 'merged';
  file: string | undefined;
  input: Record<string, unknown>;
  envLayer?: EnvironmentLayer;
  overrides?: Record<string, unknown>;
}

function configError(error: z.ZodError, from: ErrorSource): ValidationError {
  const issue = error.issues[0]!;
  const issuePath = issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment));
  let path = issuePath;
  let reason = issueReason(issue);
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
    path = [...issuePath, issue.keys[0]!];
    const known = Object.keys(shapeAt(issuePath) ?? {});
    reason = `unknown option${known.length > 0 ? ` (known here: ${known.join(', ')})` : ''}`;
  }
  return new ValidationError(`${describeSetting(path, from)}: ${reason}`);
}

/** The key and its value, named after the layer that set it: `config FILE: key = value`, `environment VAR (key) = value`. */
function describeSetting(path: readonly PropertyKey[], from: ErrorSource): string {
  const keyPath = formatKeyPath(path);
  const value = valueAt(from.input, path);
  const shown = value === undefined ? '(missing)' : quote(value);
  if (from.source === 'merged') {
    if (from.overrides !== undefined && valueAt(from.overrides, path) !== undefined) return `command line: ${keyPath} = ${shown}`;
    const variable = findVariable(from.envLayer, path);
    if (variable !== undefined) return `environment ${variable} (${keyPath}) = ${shown}`;
  }
  const where = from.file === undefined ? 'config' : `config ${from.file}`;
  return `${where}: ${keyPath} = ${shown}`;
}

/** The variable that set this path or one of its parents (EXECSENTRY_OUTPUTS sets outputs[2].url). */
function findVariable(layer: EnvironmentLayer | undefined, path: readonly PropertyKey[]): string | undefined {
  if (layer === undefined) return undefined;
  for (let length = path.length; length > 0; length--) {
    const prefix = path.slice(0, length);
    if (prefix.some((segment) => typeof segment !== 'string')) continue;
    const variable = layer.variables.get(prefix.join('.'));
    if (variable !== undefined) return variable;
  }
  return undefined;
}

function issueReason(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'int') return 'must be a whole number';
      return `expected ${issue.expected === 'array' ? 'a list' : issue.expected === 'object' ? 'an object' : `a ${issue.expected}`}`;
    case 'too_small':
      if (issue.origin === 'string') return Number(issue.minimum) <= 1 ? 'must not be empty' : `must be at least ${issue.minimum} characters`;
      if (issue.origin === 'array') return `must hold at least ${issue.minimum} item(s)`;
      return `must be ${issue.inclusive ? 'at least' : 'more than'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      if (issue.origin === 'array') return `must hold at most ${issue.maximum} item(s)`;
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'not_multiple_of':
      return issue.divisor === 1 ? 'must be a whole number' : `must be a multiple of ${issue.divisor}`;
    default:
      return issue.message;
  }
}

function shapeAt(path: readonly PropertyKey[]): Record<string, z.ZodType> | undefined {
  let schema: z.ZodType = ConfigSchema;
  for (const segment of path) {
    const inner = unwrapSchema(schema);
    const def = inner._zod.def as { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType };
    if (def.type === 'array' && typeof segment === 'number' && def.element) schema = def.element;
    else if (def.type === 'object' && typeof segment === 'string' && def.shape?.[segment]) schema = def.shape[segment];
    else return undefined;
  }
  const inner = unwrapSchema(schema);
  return inner._zod.def.type === 'object' ? ((inner as z.ZodObject).shape as Record<string, z.ZodType>) : undefined;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

/** outputs[1].url, sensor.maxArgsBytes */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((segment, index) => (typeof segment === 'number' ? `[${segment}]` : `${index === 0 ? '' : '.'}${String(segment)}`))
    .join('');
}

/** A value as JSON, cut to a readable length and with control characters escaped: it goes on one line. */
function quote(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  if (text.length > 80) text = `${text.slice(0, 77)}…`;
  return escapeControl(text);
}

function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return `a ${typeof value}`;
}

export function isLoopbackAddress(address: string): boolean {
  if (address === 'localhost' || address === '::1') return true;
  const parts = address.split('.');
  return parts.length === 4 && parts[0] === '127' && parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}

// ─── Where JSON.parse failed: Node 20's messages do not always say, so scan for the first bad offset ───

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line += 1;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const NUMBER = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const MAX_SCANNED_JSON_DEPTH = 1000;

/** The offset of the first character that makes `text` invalid JSON (RFC 8259), or undefined when valid. */
export function jsonErrorOffset(text: string): number | undefined {
  let at = 0;
  class Stop {
    constructor(readonly offset: number) {}
  }
  const fail = (): never => {
    throw new Stop(at);
  };
  const space = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const literal = (word: string): void => {
    for (const c of word) {
      if (text[at] !== c) fail();
      at++;
    }
  };
  const string = (): void => {
    at++; // opening quote
    for (;;) {
      if (at >= text.length) fail();
      const c = text.charCodeAt(at);
      if (c === 0x22) {
        at++;
        return;
      }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        at++;
        const escape = text[at];
        if (escape === 'u') {
          for (let i = 1; i <= 4; i++) {
            if (!/[0-9a-fA-F]/.test(text[at + i] ?? '')) {
              at += i;
              fail();
            }
          }
          at += 5;
        } else if (escape !== undefined && '"\\/bfnrt'.includes(escape)) at++;
        else fail();
      } else at++;
    }
  };
  const number = (): void => {
    NUMBER.lastIndex = at;
    const match = NUMBER.exec(text);
    if (match === null) fail();
    at += match![0].length;
  };
  const value = (depth: number): void => {
    space();
    const c = text[at];
    // JSON.parse has no depth limit, this scanner recurses: past this depth it stops there (no stack overflow)
    if ((c === '{' || c === '[') && depth >= MAX_SCANNED_JSON_DEPTH) fail();
    if (c === '{') {
      at++;
      space();
      if (text[at] === '}') {
        at++;
        return;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail();
        string();
        space();
        if (text[at] !== ':') fail();
        at++;
        value(depth + 1);
        space();
        if (text[at] === ',') at++;
        else if (text[at] === '}') {
          at++;
          return;
        } else fail();
      }
    } else if (c === '[') {
      at++;
      space();
      if (text[at] === ']') {
        at++;
        return;
      }
      for (;;) {
        value(depth + 1);
        space();
        if (text[at] === ',') at++;
        else if (text[at] === ']') {
          at++;
          return;
        } else fail();
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else number();
  };
  try {
    value(0);
    space();
    if (at < text.length) fail();
    return undefined;
  } catch (err) {
    if (err instanceof Stop) return err.offset;
    throw err;
  }
}
