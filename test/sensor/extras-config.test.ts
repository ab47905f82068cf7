import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ValidationError } from '../../src/errors.js';
import { ecsMac, networkAddresses } from '../../src/sensor/host.js';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'execsentry-extras-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusal(sensor: Record<string, unknown>): string {
  try {
    loadConfig({ overrides: { sensor }, env: {} });
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(sensor)}`);
}

describe('sensor.envVars and sensor.hashes', () => {
  it('takes up to five names of up to 63 bytes', () => {
    const names = ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'PATH', `N${'A'.repeat(62)}`];
    expect(loadConfig({ overrides: { sensor: { envVars: names } }, env: {} }).config.sensor.envVars).toEqual(names);
    expect(loadConfig({ env: {} }).config.sensor.envVars).toEqual([]);
  });

  it('refuses a sixth name, a 64-byte name, "=", a control character, an empty or repeated name, naming the key', () => {
    expect(refusal({ envVars: ['A', 'B', 'C', 'D', 'E', 'F'] })).toBe('command line: sensor.envVars = ["A","B","C","D","E","F"]: must hold at most 5 item(s)');
    expect(refusal({ envVars: ['OK', `N${'A'.repeat(63)}`] })).toMatch(/^command line: sensor\.envVars\[1\] = "NA+": an environment variable name is at most 63 bytes/);
    // bytes, not characters: 32 two-byte characters are 64 bytes
    expect(refusal({ envVars: ['é'.repeat(32)] })).toMatch(/^command line: sensor\.envVars\[0\] = .*at most 63 bytes/);
    expect(refusal({ envVars: ['A=B'] })).toMatch(/^command line: sensor\.envVars\[0\] = "A=B": .*no "="/);
    expect(refusal({ envVars: ['A\nB'] })).toBe('command line: sensor.envVars[0] = "A\\nB": an environment variable name holds no "=" and no control character');
    expect(refusal({ envVars: [''] })).toBe('command line: sensor.envVars[0] = "": must not be empty');
    expect(refusal({ envVars: ['PATH', 'PATH'] })).toBe('command line: sensor.envVars = ["PATH","PATH"]: names each variable once');
  });

  it('reads them from EXECSENTRY_SENSOR_ENV_VARS and EXECSENTRY_SENSOR_HASHES', () => {
    const { config } = loadConfig({ env: { EXECSENTRY_SENSOR_ENV_VARS: 'LD_PRELOAD,LD_LIBRARY_PATH', EXECSENTRY_SENSOR_HASHES: 'sha256,md5' } });
    expect(config.sensor).toMatchObject({ envVars: ['LD_PRELOAD', 'LD_LIBRARY_PATH'], hashes: ['sha256', 'md5'], maxHashFileBytes: 64 * 1024 * 1024, hashWaitMs: 50 });
  });

  it('refuses an unknown hash algorithm and a bad bound', () => {
    expect(refusal({ hashes: ['crc32'] })).toBe('command line: sensor.hashes[0] = "crc32": expected one of "md5", "sha1", "sha256"');
    expect(refusal({ maxHashFileBytes: 0 })).toBe('command line: sensor.maxHashFileBytes = 0: must be at least 1');
    expect(refusal({ hashWaitMs: 10_001 })).toBe('command line: sensor.hashWaitMs = 10001: must be at most 10000');
  });

  it('`execsentry events --config` refuses six names with exit 2 and one line naming the file and key', () => {
    const file = join(dir, 'six.json');
    writeFileSync(file, JSON.stringify({ sensor: { envVars: ['A', 'B', 'C', 'D', 'E', 'F'] } }));
    const run = spawnSync(process.execPath, [cli, 'events', '--config', file], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr.trimEnd().split('\n')).toEqual([`execsentry: config ${file}: sensor.envVars = ["A","B","C","D","E","F"]: must hold at most 5 item(s)`]);
  });
});

describe('host.ip and host.mac', () => {
  it('formats a MAC address as ECS asks: upper-case, hyphen-separated', () => {
    expect(ecsMac('02:fc:0a:b0:00:1f')).toBe('02-FC-0A-B0-00-1F');
  });

  it('lists every address (the non-loopback first, loopback included) and each hardware address once, without all-zero ones', () => {
    const mac = '02:fc:00:00:00:01';
    const found = networkAddresses({
      lo: [
        { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
        { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
      ],
      eth0: [
        { address: '192.0.2.2', netmask: '255.255.255.0', family: 'IPv4', mac, internal: false, cidr: '192.0.2.2/24' },
        { address: 'fe80::fc:ff:fe00:1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac, internal: false, cidr: 'fe80::fc:ff:fe00:1/64', scopeid: 2 },
      ],
      wg0: [{ address: '10.9.0.1', netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '10.9.0.1/24' }],
    });
    expect(found).toEqual({ ip: ['192.0.2.2', 'fe80::fc:ff:fe00:1', '10.9.0.1', '127.0.0.1', '::1'], mac: ['02-FC-00-00-00-01'] });
  });

  it("reads this host's interfaces", () => {
    const { ip, mac } = networkAddresses();
    expect(ip).toContain('127.0.0.1');
    for (const address of ip ?? []) expect(isIP(address), address).not.toBe(0);
    for (const address of mac ?? []) expect(address).toMatch(/^[0-9A-F]{2}(-[0-9A-F]{2}){5,7}$/);
  });
});
