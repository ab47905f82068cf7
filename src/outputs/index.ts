import { MAX_SECRET_FILE_BYTES, type OutputConfig } from '../config.js';
import type { Alert } from '../ecs/types.js';
import { RuntimeFailure, UserFacingError, ValidationError } from '../errors.js';
import { readRegularFile, UnreadableFile } from '../io/files.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeadLetterFile } from './dead-letter.js';
import { NetworkOutput, type Transport } from './delivery.js';
import { DEFAULT_DATA_STREAM, ElasticsearchTransport } from './elasticsearch.js';
import { FILE_DEFAULTS, FileOutput } from './file.js';
import { HttpTransport } from './http.js';
import { HttpPoster, loadTls, redactUrl } from './http-client.js';
import { Spool } from './spool.js';
import { StdoutOutput } from './stdout.js';
import { FACILITY, SyslogStreamTransport, SyslogUdpTransport, SyslogUnixTransport } from './syslog.js';
import { EncodedAlert, errorText, type Output, type OutputContext, type OutputStats } from './types.js';

export type { OutputContext, OutputStats } from './types.js';
export { formatPretty } from './pretty.js';
export { DEFAULT_DATA_STREAM } from './elasticsearch.js';
export { HEALTH_RULE } from './delivery.js';

export interface Outputs {
  /**
   * Hands the alert to every output. Never blocks and never throws for delivery problems; resolves once
   * every network output's spool holds it (fsynced).
   */
  send(alert: Alert): Promise<void>;
  /** Waits until every output delivered what it holds, or `timeoutMs` passed. */
  flush(timeoutMs: number): Promise<void>;
  /** Stops delivery; what network outputs did not deliver stays in their spool for the next start. */
  close(): Promise<void>;
  /** Counters per output, keyed by the output's name (its URL without credentials). */
  stats(): Record<string, OutputStats>;
  /** Where alerts go, for a log line: each output's name. */
  destinations(): string[];
}

/** Output names carry no credentials, but a URL's query string may (`?token=…`): its values are masked. */
function maskQuery(name: string): string {
  const question = name.indexOf('?');
  if (question < 0) return name;
  const query = name.slice(question + 1).replace(/=[^&#]*/g, '=***');
  return `${name.slice(0, question)}?${query}`;
}

/** The scheme part that selects the output kind: "stdout", "file", "http", "syslog+tcp", … */
function schemeOf(url: string): string {
  if (url === 'stdout' || url === '-') return 'stdout';
  const colon = url.indexOf(':');
  return colon > 0 ? url.slice(0, colon).toLowerCase() : url.toLowerCase();
}

type SettingName = Exclude<keyof OutputConfig, 'url'>;
const NETWORK_SETTINGS: SettingName[] = ['batchSize', 'timeoutSeconds', 'spoolMaxBytes'];
const TLS_SETTINGS: SettingName[] = ['caFile', 'certFile', 'keyFile', 'insecure'];
const HTTP_SETTINGS: SettingName[] = [...NETWORK_SETTINGS, ...TLS_SETTINGS, 'headers', 'gzip'];
const ALLOWED_SETTINGS: Record<string, SettingName[]> = {
  stdout: [],
  file: ['rotateBytes', 'rotateKeep'],
  http: HTTP_SETTINGS,
  elasticsearch: [...HTTP_SETTINGS, 'index', 'apiKey', 'apiKeyFile', 'username', 'password', 'passwordFile'],
  'syslog+tcp': [...NETWORK_SETTINGS, 'facility'],
  'syslog+tls': [...NETWORK_SETTINGS, ...TLS_SETTINGS, 'facility'],
  'syslog+udp': [...NETWORK_SETTINGS, 'facility'],
  'syslog+unix': [...NETWORK_SETTINGS, 'facility'],
};

const SCHEME_KIND: Record<string, string> = {
  stdout: 'stdout',
  file: 'file',
  http: 'http',
  https: 'http',
  elasticsearch: 'elasticsearch',
  elasticsearchs: 'elasticsearch',
  'es+http': 'elasticsearch',
  'es+https': 'elasticsearch',
  'syslog+tcp': 'syslog+tcp',
  'syslog+tls': 'syslog+tls',
  'syslog+udp': 'syslog+udp',
  syslog: 'syslog+unix',
  'syslog+unix': 'syslog+unix',
};

const NETWORK_DEFAULTS = { batchSize: 500, timeoutSeconds: 30, spoolMaxBytes: 256 * 1024 * 1024 } as const;

function invalid(config: OutputConfig, problem: string): ValidationError {
  return new ValidationError(`output ${JSON.stringify(redactForMessage(config.url))}: ${problem}`);
}

function redactForMessage(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}

function parseUrl(config: OutputConfig): URL {
  try {
    return new URL(config.url);
  } catch {
    throw invalid(config, 'not a valid URL');
  }
}

function hostAndPort(config: OutputConfig, url: URL, defaultPort: number): { host: string; port: number } {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw invalid(config, 'a host is required');
  // WHATWG URL parsing keeps ":0"; connecting to port 0 reaches nothing (Node would even pick the default)
  if (url.port === '0') throw invalid(config, 'port 0 is not a port to connect to (1-65535)');
  return { host, port: url.port === '' ? defaultPort : Number(url.port) };
}

async function readSecret(config: OutputConfig, key: 'apiKeyFile' | 'passwordFile', path: string): Promise<string> {
  try {
    return (await readRegularFile(path, MAX_SECRET_FILE_BYTES)).toString('utf8').trim();
  } catch (err) {
    throw invalid(config, `${key} ${JSON.stringify(path)}: ${err instanceof UnreadableFile ? err.reason : (err as Error).message}`);
  }
}

/**
 * The http(s) URL of an elasticsearch:// output, without credentials. Port 9200 when none is given; a given
 * port stays, even the scheme's default (`elasticsearch://h:80` is port 80, though http's URL hides it).
 */
export function elasticsearchUrl(given: URL, secure: boolean): URL {
  const url = new URL(given.href.replace(/^[^:]+:/, secure ? 'https:' : 'http:'));
  url.username = '';
  url.password = '';
  if (given.port === '') url.port = '9200';
  return url;
}

/** A stable directory name per output (the spool must be found again after a restart). */
function outputId(kind: string, name: string): string {
  return `${kind.replace(/[^a-z0-9]+/g, '-')}-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

async function elasticsearchHeaders(config: OutputConfig, url: URL): Promise<Record<string, string>> {
  const headers: Record<string, string> = { ...config.headers };
  const apiKey = config.apiKeyFile !== undefined ? await readSecret(config, 'apiKeyFile', config.apiKeyFile) : config.apiKey;
  const username = config.username ?? (url.username === '' ? undefined : decodeURIComponent(url.username));
  const password =
    config.passwordFile !== undefined ? await readSecret(config, 'passwordFile', config.passwordFile) : (config.password ?? decodeURIComponent(url.password));
  if (apiKey !== undefined && username !== undefined) throw invalid(config, 'give either an API key or a username, not both');
  if (apiKey !== undefined) headers.authorization = `ApiKey ${apiKey}`;
  else if (username !== undefined) headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  return headers;
}

/**
 * `name` identifies the output's spool and dead-letter file (so it must stay what earlier versions used);
 * what logs, counters and metrics show is `name` with its query values masked.
 */
async function openNetwork(config: OutputConfig, kind: string, name: string, transport: Transport, context: OutputContext): Promise<Output> {
  const id = outputId(kind, name);
  const shown = maskQuery(name);
  const spool = await Spool.open({
    dir: join(context.stateDir, 'spool', id),
    maxBytes: config.spoolMaxBytes ?? NETWORK_DEFAULTS.spoolMaxBytes,
    logger: context.logger,
  });
  const output = new NetworkOutput({
    name: shown,
    transport,
    spool,
    deadLetter: DeadLetterFile.forOutput(context.stateDir, id, shown, context.logger),
    batchSize: config.batchSize ?? NETWORK_DEFAULTS.batchSize,
    logger: context.logger,
  });
  output.start();
  return output;
}

async function openOne(config: OutputConfig, context: OutputContext): Promise<Output> {
  const scheme = schemeOf(config.url);
  const kind = SCHEME_KIND[scheme];
  if (kind === undefined)
    throw invalid(
      config,
      `unknown kind "${scheme}" (expected stdout, file://, http://, https://, elasticsearch://, elasticsearchs://, es+https://, syslog+tcp://, syslog+udp://, syslog+tls://, syslog:///path)`,
    );
  const allowed = ALLOWED_SETTINGS[kind]!;
  for (const key of Object.keys(config) as Array<keyof OutputConfig>) {
    if (key !== 'url' && config[key] !== undefined && !allowed.includes(key))
      throw invalid(config, `setting "${key}" does not apply to ${kind} outputs${allowed.length > 0 ? ` (they take ${allowed.join(', ')})` : ''}`);
  }
  if (config.insecure === true)
    context.logger.warn({ output: redactForMessage(config.url) }, 'TLS certificate verification is OFF for this output (insecure: true) — for tests only');
  const timeoutMs = (config.timeoutSeconds ?? NETWORK_DEFAULTS.timeoutSeconds) * 1000;
  switch (kind) {
    case 'stdout':
      return new StdoutOutput(context);
    case 'file': {
      const url = parseUrl(config);
      // "file:alerts.ndjson" parses as /alerts.ndjson: a relative path would silently land at the root
      const absolute = /^file:\/\//i.test(config.url);
      if (!absolute || url.host !== '' || url.pathname === '/' || url.pathname.endsWith('/')) throw invalid(config, 'expected file:///absolute/path/to/file');
      return FileOutput.open(fileURLToPath(url), {
        rotateBytes: config.rotateBytes ?? FILE_DEFAULTS.rotateBytes,
        rotateKeep: config.rotateKeep ?? FILE_DEFAULTS.rotateKeep,
      }, context);
    }
    case 'http': {
      const url = parseUrl(config);
      hostAndPort(config, url, 80);
      const name = redactUrl(url);
      const poster = new HttpPoster({ url, headers: { ...config.headers }, tls: await loadTls(config, name), timeoutMs, gzip: config.gzip === true });
      return openNetwork(config, kind, name, new HttpTransport(poster), context);
    }
    case 'elasticsearch': {
      const given = parseUrl(config);
      const secure = scheme === 'elasticsearchs' || scheme === 'es+https';
      hostAndPort(config, given, 9200);
      const url = elasticsearchUrl(given, secure);
      const name = `${scheme}://${url.host}${url.pathname === '/' ? '' : url.pathname}`;
      const headers = await elasticsearchHeaders(config, given);
      const poster = new HttpPoster({ url, headers, tls: await loadTls(config, name), timeoutMs, gzip: config.gzip === true });
      const transport = new ElasticsearchTransport(poster, url.pathname, config.index ?? DEFAULT_DATA_STREAM);
      return openNetwork(config, kind, name, transport, context);
    }
    case 'syslog+tcp':
    case 'syslog+tls':
    case 'syslog+udp': {
      const url = parseUrl(config);
      const { host, port } = hostAndPort(config, url, kind === 'syslog+tls' ? 6514 : 514);
      const facility = FACILITY[config.facility ?? 'authpriv'];
      const name = `${kind}://${url.host}`;
      const transport =
        kind === 'syslog+udp'
          ? new SyslogUdpTransport(host, port, facility)
          : new SyslogStreamTransport({ host, port, timeoutMs, ...(kind === 'syslog+tls' ? { tls: await loadTls(config, name) } : {}) }, facility);
      return openNetwork(config, kind, name, transport, context);
    }
    default: {
      const url = parseUrl(config);
      const path = decodeURIComponent(url.pathname);
      if (url.host !== '' || !path.startsWith('/') || path.length < 2) throw invalid(config, 'expected syslog:///path/of/socket (e.g. syslog:///dev/log)');
      return openNetwork(config, kind, `syslog://${path}`, new SyslogUnixTransport(path, FACILITY[config.facility ?? 'authpriv'], timeoutMs), context);
    }
  }
}

class OutputSet implements Outputs {
  constructor(private readonly outputs: readonly Output[]) {}

  async send(alert: Alert): Promise<void> {
    const encoded = new EncodedAlert(alert);
    if (this.outputs.length === 1) return this.outputs[0]!.send(encoded);
    await Promise.all(this.outputs.map((output) => output.send(encoded)));
  }

  async flush(timeoutMs: number): Promise<void> {
    await Promise.all(this.outputs.map((output) => output.flush(timeoutMs)));
  }

  async close(): Promise<void> {
    await Promise.all(this.outputs.map((output) => output.close()));
  }

  destinations(): string[] {
    return this.outputs.map((output) => output.name);
  }

  stats(): Record<string, OutputStats> {
    const result: Record<string, OutputStats> = {};
    for (const output of this.outputs) {
      let key = output.name;
      for (let n = 2; key in result; n++) key = `${output.name}#${n}`;
      result[key] = output.stats();
    }
    return result;
  }
}

/** Whether the output's destination can refuse alerts, so that it keeps a dead-letter file (the network kinds). */
export function keepsDeadLetters(config: OutputConfig): boolean {
  const kind = SCHEME_KIND[schemeOf(config.url)];
  return kind !== undefined && kind !== 'stdout' && kind !== 'file';
}

/** Opens one output, validating its settings (a ValidationError naming it) and starting its delivery. */
export async function openOutput(config: OutputConfig, context: OutputContext): Promise<Output> {
  try {
    return await openOne(config, context);
  } catch (err) {
    if (err instanceof UserFacingError) throw err;
    // the file system refused (permissions, a symlink where the file should be, a full disk)
    throw new RuntimeFailure(`output ${JSON.stringify(redactForMessage(config.url))}: ${errorText(err)}`);
  }
}

/**
 * Opens every configured output (validating its settings: a bad one is a ValidationError naming the
 * output). The caller picks the stdout format; an empty list means stdout.
 */
export async function openOutputs(configs: OutputConfig[], context: OutputContext): Promise<Outputs> {
  const effective = configs.length > 0 ? configs : [{ url: 'stdout' }];
  const opened: Output[] = [];
  try {
    for (const config of effective) opened.push(await openOutput(config, context));
  } catch (err) {
    await Promise.allSettled(opened.map((output) => output.close()));
    throw err;
  }
  return new OutputSet(opened);
}
