import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema, environmentOverrides, formatKeyPath, jsonErrorOffset, loadConfig } from '../../src/config.js';
import { configFromCommandLine } from '../../src/commands/run.js';
import { ValidationError } from '../../src/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'execsentry-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function configFile(content: unknown, mode = 0o600): string {
  const path = join(dir, `config-${++counter}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  chmodSync(path, mode);
  return path;
}

function secretFile(content: string, mode = 0o600, name = `secret-${++counter}`): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

/** The ValidationError message loadConfig throws (the test fails if it does not throw one). */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).exitCode).toBe(2);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected a ValidationError');
}

describe('config file: every bad value names the file, the key, the value and the reason', () => {
  const cases: Array<[string, unknown, string]> = [
    ['an unknown log level', { logLevel: 'loud' }, 'logLevel = "loud": expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent"'],
    ['a string for a number', { statsIntervalSeconds: '60' }, 'statsIntervalSeconds = "60": expected a number'],
    ['a negative interval', { statsIntervalSeconds: -1 }, 'statsIntervalSeconds = -1: must be at least 0'],
    ['a fractional interval', { statsIntervalSeconds: 1.5 }, 'statsIntervalSeconds = 1.5: must be a whole number'],
    ['a too small socket buffer', { sensor: { socketBufferBytes: 1024 } }, 'sensor.socketBufferBytes = 1024: must be at least 65536'],
    ['a too small argv cap', { sensor: { maxArgsBytes: 10 } }, 'sensor.maxArgsBytes = 10: must be at least 256'],
    ['a too small process table', { sensor: { maxProcessTableEntries: 5 } }, 'sensor.maxProcessTableEntries = 5: must be at least 1024'],
    ['sensor events without exec', { sensor: { events: ['fork', 'end'] } }, 'sensor.events = ["fork","end"]: must list "exec": exec events are always produced'],
    ['an unknown sensor event', { sensor: { events: ['exec', 'signal'] } }, 'sensor.events[1] = "signal": expected one of "exec", "fork", "end"'],
    ['a sensor event twice', { sensor: { events: ['exec', 'end', 'end'] } }, 'sensor.events = ["exec","end","end"]: lists an event twice'],
    ['zero tuples per rule', { store: { maxTuplesPerRule: 0 } }, 'store.maxTuplesPerRule = 0: must be at least 1'],
    ['an empty state dir', { stateDir: '' }, 'stateDir = "": must not be empty'],
    ['rules not a list', { rules: 'rules/' }, 'rules = "rules/": expected a list'],
    ['an empty rule path', { rules: ['a', ''] }, 'rules[1] = "": must not be empty'],
    ['an output without url', { outputs: [{ url: 'stdout' }, { gzip: true }] }, 'outputs[1].url = (missing): expected a string'],
    ['an unknown output setting', { outputs: [{ url: 'stdout', colour: 'red' }] }, 'outputs[0].colour = "red": unknown option (known here: url,'],
    ['an unknown top-level option', { stateDirectory: '/x' }, 'stateDirectory = "/x": unknown option (known here: rules, skipUnsupported, stateDir'],
    ['an unknown sensor option', { sensor: { socketBuffer: 1 } }, 'sensor.socketBuffer = 1: unknown option (known here: socketBufferBytes, maxArgsBytes, maxProcessTableEntries'],
    ['a boolean as string', { skipUnsupported: 'yes' }, 'skipUnsupported = "yes": expected a boolean'],
    ['metrics on a public address', { metrics: { enabled: true, address: '0.0.0.0' } }, 'metrics.address = "0.0.0.0": must be a loopback address'],
    ['a metrics port out of range', { metrics: { port: 70000 } }, 'metrics.port = 70000: must be at most 65535'],
    ['a bad output format', { format: 'yaml' }, 'format = "yaml": expected one of "json", "pretty"'],
  ];
  for (const [what, content, expected] of cases) {
    it(what, () => {
      const file = configFile(content);
      expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toContain(`config ${file}: ${expected}`);
    });
  }

  it('a JSON syntax error names line and column', () => {
    const file = configFile('{\n  "logLevel": "info",\n  "rules": [,]\n}');
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toBe(`config ${file}: not valid JSON at line 3, column 13: unexpected ","`);
  });

  it('a file that ends too early says so', () => {
    const file = configFile('{"rules": ["a"');
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toBe(`config ${file}: not valid JSON at line 1, column 15: the file ends too early`);
  });

  it('a top level that is not an object is refused', () => {
    const file = configFile('["stdout"]');
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toContain('the top level must be a JSON object');
  });

  it('a missing file is refused with the reason', () => {
    const file = join(dir, 'nope.json');
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toBe(`config ${file}: cannot read it: no such file or directory (ENOENT)`);
  });

  it('control characters in a bad value cannot break the line', () => {
    const file = configFile({ logLevel: 'x\n\u001b[2Jy' });
    const message = refusal(() => loadConfig({ configFile: file, env: {} }));
    expect(message).not.toMatch(/[\u0000-\u001f]/);
  });

  it('a valid file gives its values over the defaults (objects merged key by key)', () => {
    const file = configFile({ logLevel: 'debug', sensor: { maxArgsBytes: 4096 }, rules: ['/etc/execsentry/rules'] });
    const { config, warnings } = loadConfig({ configFile: file, env: {} });
    expect(config.logLevel).toBe('debug');
    expect(config.sensor).toEqual({ ...ConfigSchema.parse({}).sensor, maxArgsBytes: 4096 });
    expect(config.rules).toEqual(['/etc/execsentry/rules']);
    expect(warnings).toEqual([]);
  });

  it('EXECSENTRY_CONFIG names the file when --config is absent', () => {
    const file = configFile({ logLevel: 'warn' });
    expect(loadConfig({ env: { EXECSENTRY_CONFIG: file } }).config.logLevel).toBe('warn');
  });
});

describe('property: any refused value gives one line naming the key', () => {
  it('for arbitrary strings as log level', () => {
    const levels = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);
    fc.assert(
      fc.property(
        fc.string().filter((text) => !levels.has(text)),
        (level) => {
          const message = refusal(() => loadConfig({ overrides: { logLevel: level }, env: {} }));
          expect(message.startsWith('command line: logLevel = ')).toBe(true);
          expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('jsonErrorOffset agrees with JSON.parse on what is valid', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (text) => {
        let valid = true;
        try {
          JSON.parse(text);
        } catch {
          valid = false;
        }
        expect(jsonErrorOffset(text) === undefined).toBe(valid);
      }),
      { numRuns: 500 },
    );
  });

  it('formatKeyPath writes list indexes in brackets', () => {
    expect(formatKeyPath(['outputs', 2, 'headers', 'Authorization'])).toBe('outputs[2].headers.Authorization');
    expect(formatKeyPath([])).toBe('(top level)');
  });
});

describe('EXECSENTRY_* environment overrides', () => {
  it('every option has exactly one variable named after its path', () => {
    const variables = environmentOverrides().map((override) => override.variable);
    expect(new Set(variables).size).toBe(variables.length);
    expect(variables).toEqual(
      expect.arrayContaining([
        'EXECSENTRY_STATE_DIR',
        'EXECSENTRY_RUNTIME_DIR',
        'EXECSENTRY_LOG_LEVEL',
        'EXECSENTRY_OUTPUTS',
        'EXECSENTRY_RULES',
        'EXECSENTRY_STATS_INTERVAL_SECONDS',
        'EXECSENTRY_SENSOR_SOCKET_BUFFER_BYTES',
        'EXECSENTRY_STORE_MAX_TUPLES_PER_RULE',
        'EXECSENTRY_METRICS_ENABLED',
      ]),
    );
  });

  it('set strings, numbers, booleans, lists and outputs', () => {
    const { config } = loadConfig({
      env: {
        EXECSENTRY_STATE_DIR: '/srv/es',
        EXECSENTRY_LOG_LEVEL: 'debug',
        EXECSENTRY_STATS_INTERVAL_SECONDS: '5',
        EXECSENTRY_SKIP_UNSUPPORTED: 'yes',
        EXECSENTRY_RULES: '/a.toml, /b.ndjson',
        EXECSENTRY_OUTPUTS: 'stdout,file:///var/log/execsentry/alerts.ndjson',
        EXECSENTRY_SENSOR_MAX_ARGS_BYTES: '4096',
        EXECSENTRY_SENSOR_EVENTS: 'exec,end',
        EXECSENTRY_METRICS_ENABLED: '1',
      },
    });
    expect(config.sensor.events).toEqual(['exec', 'end']);
    expect(config.stateDir).toBe('/srv/es');
    expect(config.logLevel).toBe('debug');
    expect(config.statsIntervalSeconds).toBe(5);
    expect(config.skipUnsupported).toBe(true);
    expect(config.rules).toEqual(['/a.toml', '/b.ndjson']);
    expect(config.outputs).toEqual([{ url: 'stdout' }, { url: 'file:///var/log/execsentry/alerts.ndjson' }]);
    expect(config.sensor.maxArgsBytes).toBe(4096);
    expect(config.metrics.enabled).toBe(true);
  });

  it('layers: defaults < $STATE_DIRECTORY < file < environment < command line', () => {
    const file = configFile({ stateDir: '/from/file', logLevel: 'warn', statsIntervalSeconds: 7 });
    const env = { STATE_DIRECTORY: '/from/systemd', RUNTIME_DIRECTORY: '/run/x', EXECSENTRY_LOG_LEVEL: 'error', EXECSENTRY_STATE_DIR: '/from/env' };
    expect(loadConfig({ env: { STATE_DIRECTORY: '/from/systemd:/other' } }).config.stateDir).toBe('/from/systemd');
    const { config } = loadConfig({ configFile: file, env, overrides: { stateDir: '/from/cli' } });
    expect(config.stateDir).toBe('/from/cli');
    expect(config.runtimeDir).toBe('/run/x');
    expect(config.logLevel).toBe('error');
    expect(config.statsIntervalSeconds).toBe(7);
    expect(loadConfig({ configFile: file, env }).config.stateDir).toBe('/from/env');
    expect(loadConfig({ configFile: file, env: {} }).config.stateDir).toBe('/from/file');
  });

  it('a bad value names the variable, the option, the value and the reason', () => {
    expect(refusal(() => loadConfig({ env: { EXECSENTRY_SENSOR_MAX_ARGS_BYTES: '12' } }))).toBe(
      'environment EXECSENTRY_SENSOR_MAX_ARGS_BYTES (sensor.maxArgsBytes) = 12: must be at least 256',
    );
    expect(refusal(() => loadConfig({ env: { EXECSENTRY_STATS_INTERVAL_SECONDS: 'soon' } }))).toBe('environment EXECSENTRY_STATS_INTERVAL_SECONDS="soon": expected a number');
    expect(refusal(() => loadConfig({ env: { EXECSENTRY_METRICS_ENABLED: 'maybe' } }))).toContain('environment EXECSENTRY_METRICS_ENABLED="maybe": expected true or false');
    expect(refusal(() => loadConfig({ env: { EXECSENTRY_LOG_LEVEL: 'loud' } }))).toContain('environment EXECSENTRY_LOG_LEVEL (logLevel) = "loud": expected one of');
  });

  it('a broken file is the file\'s fault even when the environment overrides that key', () => {
    const file = configFile({ logLevel: 'loud' });
    expect(refusal(() => loadConfig({ configFile: file, env: { EXECSENTRY_LOG_LEVEL: 'info' } }))).toContain(`config ${file}: logLevel = "loud"`);
  });

  it('an unknown EXECSENTRY_ variable is a warning, not silence', () => {
    const { warnings } = loadConfig({ env: { EXECSENTRY_LOGLEVEL: 'debug' } });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('environment variable EXECSENTRY_LOGLEVEL is not an execsentry option');
    expect(warnings[0]).toContain('EXECSENTRY_LOG_LEVEL');
  });
});

describe('allowInsecureStateDir', () => {
  it('is off unless the file, EXECSENTRY_ALLOW_INSECURE_STATE_DIR or run --allow-insecure-state-dir turns it on', () => {
    expect(loadConfig({ env: {} }).config.allowInsecureStateDir).toBe(false);
    expect(loadConfig({ configFile: configFile({ allowInsecureStateDir: true }), env: {} }).config.allowInsecureStateDir).toBe(true);
    expect(loadConfig({ env: { EXECSENTRY_ALLOW_INSECURE_STATE_DIR: 'yes' } }).config.allowInsecureStateDir).toBe(true);
    expect(configFromCommandLine({ allowInsecureStateDir: true }).config.allowInsecureStateDir).toBe(true);
    expect(configFromCommandLine({ stateDir: '/srv/es' }).config.allowInsecureStateDir).toBe(false);
  });

  it('takes only booleans', () => {
    const file = configFile({ allowInsecureStateDir: 'yes' });
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toBe(`config ${file}: allowInsecureStateDir = "yes": expected a boolean`);
    expect(refusal(() => loadConfig({ env: { EXECSENTRY_ALLOW_INSECURE_STATE_DIR: 'sure' } }))).toContain(
      'environment EXECSENTRY_ALLOW_INSECURE_STATE_DIR="sure": expected true or false',
    );
  });
});

describe('secrets from files and systemd credentials', () => {
  it('apiKeyFile and passwordFile are read into apiKey and password (one trailing newline dropped)', () => {
    const key = secretFile('aWQ6a2V5\n');
    const password = secretFile('pa ss\n\n');
    const file = configFile({ outputs: [{ url: 'elasticsearch://127.0.0.1:9200', apiKeyFile: key }, { url: 'elasticsearch://127.0.0.1:9201', username: 'u', passwordFile: password }] });
    const { config, warnings } = loadConfig({ configFile: file, env: {} });
    expect(config.outputs[0]).toEqual({ url: 'elasticsearch://127.0.0.1:9200', apiKey: 'aWQ6a2V5' });
    expect(config.outputs[1]).toEqual({ url: 'elasticsearch://127.0.0.1:9201', username: 'u', password: 'pa ss\n' });
    expect(warnings).toEqual([]);
  });

  it('credential:NAME reads $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=)', () => {
    const credentials = mkdtempSync(join(dir, 'credentials-'));
    writeFileSync(join(credentials, 'es-api-key'), 'from-systemd');
    chmodSync(join(credentials, 'es-api-key'), 0o400);
    writeFileSync(join(credentials, 'client.key'), 'PEM');
    const file = configFile({ outputs: [{ url: 'elasticsearchs://127.0.0.1:9200', apiKeyFile: 'credential:es-api-key', keyFile: 'credential:client.key', certFile: '/etc/ssl/c.pem' }] });
    const { config } = loadConfig({ configFile: file, env: { CREDENTIALS_DIRECTORY: credentials } });
    expect(config.outputs[0]).toEqual({
      url: 'elasticsearchs://127.0.0.1:9200',
      apiKey: 'from-systemd',
      keyFile: join(credentials, 'client.key'),
      certFile: '/etc/ssl/c.pem',
    });
  });

  it('credential:NAME without $CREDENTIALS_DIRECTORY says how systemd provides it', () => {
    const file = configFile({ outputs: [{ url: 'https://127.0.0.1', apiKeyFile: 'credential:es' }] });
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toBe(
      `config ${file}: outputs[0].apiKeyFile = "credential:es": $CREDENTIALS_DIRECTORY is not set; systemd sets it for a unit with LoadCredential=es:/path/to/secret`,
    );
  });

  it('resolveSecrets: false leaves references alone (status, install --config)', () => {
    const file = configFile({ outputs: [{ url: 'https://127.0.0.1', apiKeyFile: 'credential:es' }] });
    expect(loadConfig({ configFile: file, env: {}, resolveSecrets: false }).config.outputs[0]).toEqual({ url: 'https://127.0.0.1', apiKeyFile: 'credential:es' });
  });

  it('a credential name cannot leave the credentials directory', () => {
    const file = configFile({ outputs: [{ url: 'https://127.0.0.1', apiKeyFile: 'credential:../../etc/shadow' }] });
    expect(refusal(() => loadConfig({ configFile: file, env: { CREDENTIALS_DIRECTORY: dir } }))).toContain('a credential name is a plain file name');
  });

  it('a missing or empty secret file, or a secret given twice, is refused with the key', () => {
    const missing = join(dir, 'no-such-secret');
    let file = configFile({ outputs: [{ url: 'https://127.0.0.1', apiKeyFile: missing }] });
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toBe(
      `config ${file}: outputs[0].apiKeyFile = ${JSON.stringify(missing)}: cannot read the secret: no such file or directory (ENOENT)`,
    );
    const empty = secretFile('\n');
    file = configFile({ outputs: [{ url: 'https://127.0.0.1', passwordFile: empty }] });
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toContain('outputs[0].passwordFile');
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toContain('the secret file is empty');
    file = configFile({ outputs: [{ url: 'https://127.0.0.1', apiKey: 'a', apiKeyFile: secretFile('b') }] });
    expect(refusal(() => loadConfig({ configFile: file, env: {} }))).toContain('give either apiKey or apiKeyFile, not both');
  });

  it('warns when a config file holding a secret is readable by group or others', () => {
    const readable = configFile({ outputs: [{ url: 'https://127.0.0.1', apiKey: 'abc' }] }, 0o644);
    const { warnings } = loadConfig({ configFile: readable, env: {} });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`config ${readable} holds a secret (outputs[0].apiKey) and is readable by group or others (mode 0644)`);
    const privateFile = configFile({ outputs: [{ url: 'https://127.0.0.1', apiKey: 'abc' }] }, 0o600);
    expect(loadConfig({ configFile: privateFile, env: {} }).warnings).toEqual([]);
    const noSecret = configFile({ outputs: [{ url: 'https://127.0.0.1' }] }, 0o644);
    expect(loadConfig({ configFile: noSecret, env: {} }).warnings).toEqual([]);
  });

  it('counts an Authorization header and a password in a URL as secrets', () => {
    const file = configFile({ outputs: [{ url: 'https://u:p@127.0.0.1/', headers: { Authorization: 'Bearer x' } }] }, 0o640);
    const { warnings } = loadConfig({ configFile: file, env: {} });
    expect(warnings[0]).toContain('outputs[0].headers.Authorization, outputs[0].url (password)');
  });

  it('warns when a secret file is readable by others', () => {
    const key = secretFile('k', 0o644);
    const file = configFile({ outputs: [{ url: 'https://127.0.0.1', apiKeyFile: key }] });
    expect(loadConfig({ configFile: file, env: {} }).warnings).toEqual([`secret file ${key} is readable by group or others (mode 0644); chmod 600 it`]);
  });
});

describe('execsentry run --config (the built CLI)', () => {
  it('a bad config file stops it with exit 2 and one line, before anything starts', () => {
    const file = configFile({ statsIntervalSeconds: 'often' });
    const run = spawnSync(process.execPath, [fileURLToPath(new URL('../../dist/cli.js', import.meta.url)), 'run', '--config', file], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`execsentry: config ${file}: statsIntervalSeconds = "often": expected a number\n`);
    expect(run.stdout).toBe('');
  });
});
