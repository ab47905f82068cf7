import { existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RuntimeFailure, ValidationError } from '../../src/errors.js';
import { ConfigSchema } from '../../src/config.js';
import { openOutputs } from '../../src/outputs/index.js';
import { makeAlert } from './helpers/alerts.js';
import { testContext } from './helpers/context.js';

function lines(path: string): Array<{ event: { id: string } }> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

describe('file output', () => {
  it('appends NDJSON, mode 0600 even on an existing file, and keeps what was there', async () => {
    const context = testContext();
    const path = join(context.stateDir, 'logs', 'alerts.ndjson');
    const first = await openOutputs([{ url: `file://${path}` }], context);
    await first.send(makeAlert(0));
    await first.close();
    writeFileSync(path, readFileSync(path), { mode: 0o644 });
    (await import('node:fs')).chmodSync(path, 0o644);
    const second = await openOutputs([{ url: `file://${path}` }], context);
    const alert = makeAlert(1);
    alert.process.args = ['evil\n{"event":{"id":"forged"}}'];
    await second.send(alert);
    await second.flush(5_000);
    expect(Object.values(second.stats())[0]).toMatchObject({ kind: 'file', sent: 1, acknowledged: 1, dropped: 0 });
    await second.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const written = lines(path);
    expect(written).toHaveLength(2);
    expect(written[1]).toEqual(JSON.parse(JSON.stringify(alert)));
    context.cleanup();
  });

  it('rotates by size keeping N files: every alert is in exactly one of them, oldest files removed', async () => {
    const context = testContext();
    const path = join(context.stateDir, 'alerts.ndjson');
    // alerts 10..99 all encode to the same length, so each file holds exactly 10
    const alerts = Array.from({ length: 90 }, (_, i) => makeAlert(10 + i));
    const alertBytes = JSON.stringify(alerts[0]).length + 1;
    const outputs = await openOutputs([{ url: `file://${path}`, rotateBytes: alertBytes * 10, rotateKeep: 3 }], context);
    for (const alert of alerts) {
      await outputs.send(alert);
      await outputs.flush(5_000); // one write per alert, so every file fills to exactly 10
    }
    await outputs.close();
    expect(existsSync(`${path}.4`)).toBe(false);
    const files = [`${path}.3`, `${path}.2`, `${path}.1`, path];
    const kept = files.flatMap((file) => lines(file).map((doc) => doc.event.id));
    expect(kept).toEqual(alerts.slice(-40).map((alert) => alert.event.id));
    for (const file of files) {
      expect(statSync(file).size).toBeLessThanOrEqual(alertBytes * 10);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    context.cleanup();
  });
});

describe('file output failures', () => {
  it('refuses to follow a symlink planted at the alert file: one line, exit code 1 (RuntimeFailure)', async () => {
    const context = testContext();
    const path = join(context.stateDir, 'alerts.ndjson');
    symlinkSync('/etc/passwd', path);
    const attempt = openOutputs([{ url: `file://${path}` }], context);
    await expect(attempt).rejects.toBeInstanceOf(RuntimeFailure);
    await expect(attempt).rejects.toThrow(/^output "file:\/\/.*alerts.ndjson": ELOOP/);
    context.cleanup();
  });
});

describe('output settings', () => {
  it('accepts a bare --output URL with every default', () => {
    const config = ConfigSchema.parse({ outputs: [{ url: 'syslog+tcp://127.0.0.1:514' }, { url: 'stdout' }] });
    expect(config.outputs).toEqual([{ url: 'syslog+tcp://127.0.0.1:514' }, { url: 'stdout' }]);
  });

  it('refuses unknown settings in the config file', () => {
    expect(() => ConfigSchema.parse({ outputs: [{ url: 'stdout', batchsize: 3 }] })).toThrow(/batchsize/);
  });

  const refusals: Array<[string, Record<string, unknown>, RegExp]> = [
    ['ftp://example.org/', {}, /unknown kind "ftp"/],
    ['file://relative/alerts.ndjson', {}, /file:\/\/\/absolute/],
    ['stdout', { gzip: true }, /"gzip" does not apply to stdout/],
    ['syslog+udp://127.0.0.1:514', { caFile: '/x' }, /"caFile" does not apply to syslog\+udp outputs \(they take batchSize/],
    ['https://127.0.0.1:9/', { caFile: '/nonexistent/ca.pem' }, /caFile "\/nonexistent\/ca.pem": no such file or directory \(ENOENT\)/],
    ['https://127.0.0.1:9/', { certFile: '/x' }, /certFile and keyFile go together/],
    ['elasticsearch://127.0.0.1', { apiKey: 'k', username: 'u' }, /either an API key or a username/],
    ['syslog://relative', {}, /syslog:\/\/\/path/],
    ['http://user:hunter2@/x', {}, /not a valid URL|host is required/],
  ];
  for (const [url, settings, message] of refusals) {
    it(`refuses ${url} ${JSON.stringify(settings)} with one clear line`, async () => {
      const context = testContext();
      const attempt = openOutputs([{ url, ...settings }], context);
      await expect(attempt).rejects.toBeInstanceOf(ValidationError);
      await expect(attempt).rejects.toThrow(message);
      await attempt.catch((err: Error) => {
        expect(err.message).not.toContain('\n');
        expect(err.message).not.toContain('hunter2');
      });
      context.cleanup();
    });
  }
});
