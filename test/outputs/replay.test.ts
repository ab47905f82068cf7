import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { OutputConfig } from '../../src/config.js';
import { openOutputs } from '../../src/outputs/index.js';
import { replayDeadLetters } from '../../src/outputs/replay.js';
import { makeAlert } from './helpers/alerts.js';
import { testContext } from './helpers/context.js';
import { idsInNdjson, startHttpCollector, type HttpCollector } from './helpers/http-collector.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

type Context = ReturnType<typeof testContext>;

/** Runs a command without blocking this process, whose event loop serves the collectors the command talks to. */
function run(command: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

/** Sends the alerts through a real output to the collector, which refuses some of them (400) into the dead-letter file. */
async function deadLetter(context: Context, config: OutputConfig, collector: HttpCollector, alerts: ReturnType<typeof makeAlert>[]): Promise<void> {
  const outputs = await openOutputs([config], context);
  for (const alert of alerts) await outputs.send(alert);
  await outputs.flush(10_000);
  await outputs.close();
  expect(Object.values(outputs.stats())[0]!.deadLettered).toBeGreaterThan(0);
  expect(collector.requests.length).toBeGreaterThan(0);
}

/** A collector's answer: 400 for a body holding an alert whose marker argument matches, 200 otherwise. */
function refusing(markers: RegExp) {
  return (request: { body: string }) => (markers.test(request.body) ? { status: 400, body: 'mapping error' } : { status: 200 });
}

function deadLetterFiles(context: Context): string[] {
  return readdirSync(join(context.stateDir, 'dead-letter')).sort();
}

function deadLetterIds(context: Context, name: string): string[] {
  return readFileSync(join(context.stateDir, 'dead-letter', name), 'utf8')
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { alert: { event: { id: string } } }).alert.event.id);
}

describe('outputs replay-dead-letter, against a real collector on 127.0.0.1', () => {
  it('re-sends each refused alert once, under its own event.id; what is refused again is back in a fresh dead-letter file', async () => {
    const context = testContext();
    const rules = { refuse: /"marker-[12]"/ };
    const collector = await startHttpCollector((request) => refusing(rules.refuse)(request));
    const config: OutputConfig = { url: `http://127.0.0.1:${collector.port}/`, batchSize: 1 };
    const alerts = Array.from({ length: 4 }, (_, i) => makeAlert(i));
    await deadLetter(context, config, collector, alerts);
    const [file] = deadLetterFiles(context);
    expect(deadLetterIds(context, file!)).toEqual([alerts[1]!.event.id, alerts[2]!.event.id]);

    // the operator fixed one of the two problems
    rules.refuse = /"marker-2"/;
    collector.requests.length = 0;
    const result = await replayDeadLetters([config], context, { waitMs: 10_000 });
    expect(result.unconfigured).toEqual([]);
    expect(result.reports).toHaveLength(1);
    expect(result.reports[0]).toMatchObject({ output: `http://127.0.0.1:${collector.port}/`, requeued: 2, acknowledged: 1, refusedAgain: 1, pending: 0, keptUnreadable: [] });
    expect(result.reports[0]!.files).toEqual([expect.stringMatching(/\.ndjson\.replaying-\d+$/)]);
    expect(collector.requests.flatMap((request) => idsInNdjson(request.body))).toEqual([alerts[1]!.event.id, alerts[2]!.event.id]);
    // the re-sent alert is the one refused, byte for byte as JSON
    expect(JSON.parse(collector.requests[0]!.body)).toEqual(JSON.parse(JSON.stringify(alerts[1])));
    // the claimed file is gone; the alert refused again is in a new dead-letter file with the new refusal
    expect(deadLetterFiles(context)).toEqual([file]);
    expect(deadLetterIds(context, file!)).toEqual([alerts[2]!.event.id]);

    // replaying again is safe: the same alert, the same id
    rules.refuse = /^$/;
    collector.requests.length = 0;
    const again = await replayDeadLetters([config], context, { waitMs: 10_000 });
    expect(again.reports[0]).toMatchObject({ requeued: 1, acknowledged: 1, refusedAgain: 0, pending: 0 });
    expect(collector.requests.flatMap((request) => idsInNdjson(request.body))).toEqual([alerts[2]!.event.id]);
    expect(deadLetterFiles(context)).toEqual([]);
    await collector.close();
    context.cleanup();
  });

  it('reads rotated files and a claim an interrupted replay left, oldest first; keeps a file with a damaged line', async () => {
    const context = testContext();
    const collector = await startHttpCollector(refusing(/"marker-/));
    const config: OutputConfig = { url: `http://127.0.0.1:${collector.port}/`, batchSize: 1 };
    const alerts = Array.from({ length: 3 }, (_, i) => makeAlert(i));
    await deadLetter(context, config, collector, alerts);
    const [base] = deadLetterFiles(context);
    const dir = join(context.stateDir, 'dead-letter');
    const lines = readFileSync(join(dir, base!), 'utf8').trim().split('\n');
    // as if: marker-0 in a claim a killed replay left, marker-1 rotated, marker-2 current
    writeFileSync(join(dir, `${base}.replaying-1000`), `${lines[0]}\n`);
    writeFileSync(join(dir, `${base}.1`), `${lines[1]}\nnot a record\n`);
    writeFileSync(join(dir, base!), `${lines[2]}\n`);
    collector.requests.length = 0;
    const result = await replayDeadLetters([{ ...config }], context, { waitMs: 10_000 });
    const report = result.reports[0]!;
    expect(report).toMatchObject({ requeued: 3, refusedAgain: 3 });
    expect(collector.requests.flatMap((request) => idsInNdjson(request.body))).toEqual(alerts.map((alert) => alert.event.id));
    expect(report.keptUnreadable).toEqual([expect.stringMatching(/\.ndjson\.1\.unreadable-\d+$/)]);
    const kept = readFileSync(report.keptUnreadable[0]!, 'utf8');
    expect(kept).toContain('not a record');
    expect(context.logs.some((record) => record.level === 40 && /:2: not a dead-letter record/.test(record.msg))).toBe(true);
    expect(deadLetterFiles(context)).toEqual([base, expect.stringMatching(/\.unreadable-\d+$/)]);
    expect(deadLetterIds(context, base!)).toEqual(alerts.map((alert) => alert.event.id));
    await collector.close();
    context.cleanup();
  });

  it('an output that does not open (a bad setting) leaves every dead-letter file as it was', async () => {
    const context = testContext();
    const collector = await startHttpCollector(refusing(/"marker-/));
    const config: OutputConfig = { url: `http://127.0.0.1:${collector.port}/` };
    await deadLetter(context, config, collector, [makeAlert(0)]);
    const before = deadLetterFiles(context);
    await expect(replayDeadLetters([{ ...config, rotateBytes: 4096 }], context, { waitMs: 1000 })).rejects.toThrow(/setting "rotateBytes" does not apply to http outputs/);
    expect(deadLetterFiles(context)).toEqual(before);
    await collector.close();
    context.cleanup();
  });

  it('a spool too small for the dead letters: stops before the spool would drop any, and the file stays', async () => {
    const context = testContext();
    const collector = await startHttpCollector(refusing(/"marker-/));
    const spoolMaxBytes = 64 * 1024;
    const config: OutputConfig = { url: `http://127.0.0.1:${collector.port}/`, batchSize: 500, timeoutSeconds: 1 };
    const alerts = Array.from({ length: 60 }, (_, i) => makeAlert(i, { message: 'x'.repeat(2000) }));
    await deadLetter(context, config, collector, alerts);
    await collector.close();
    const [base] = deadLetterFiles(context);
    expect(deadLetterIds(context, base!)).toHaveLength(60);
    // the collector is gone now: nothing drains the spool
    await expect(replayDeadLetters([{ ...config, spoolMaxBytes }], context, { waitMs: 300 })).rejects.toThrow(/spool is full \(spoolMaxBytes\).*the file stays: run the replay again/);
    const left = deadLetterFiles(context);
    expect(left).toEqual([expect.stringMatching(/\.ndjson\.replaying-\d+$/)]);
    expect(deadLetterIds(context, left[0]!)).toHaveLength(60);
    expect(context.logs.filter((record) => /spool full: dropped/.test(record.msg))).toEqual([]);
    context.cleanup();
  });

  it('the command: one JSON report per output, exit 1 while something is refused again, and a file of an unconfigured output left alone', async () => {
    const context = testContext();
    const collector = await startHttpCollector(refusing(/"marker-1"/));
    const other = await startHttpCollector(refusing(/"marker-/));
    const config: OutputConfig = { url: `http://127.0.0.1:${collector.port}/`, batchSize: 1 };
    await deadLetter(context, config, collector, [makeAlert(0), makeAlert(1)]);
    await deadLetter(context, { url: `http://127.0.0.1:${other.port}/other` }, other, [makeAlert(5)]);
    const before = deadLetterFiles(context);
    const replay = await run(process.execPath, [CLI, 'outputs', 'replay-dead-letter', '--state-dir', context.stateDir, '--output', config.url, '--wait', '10', '--log-format', 'json']);
    expect({ status: replay.status, stderr: replay.stderr }).toMatchObject({ status: 1 });
    const reports = replay.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(reports).toEqual([expect.objectContaining({ output: config.url, requeued: 1, acknowledged: 0, refusedAgain: 1, pending: 0 })]);
    expect(replay.stderr).toContain(`execsentry: ${config.url}: 1 alert(s) re-sent, 0 acknowledged, 1 refused again`);
    expect(replay.stderr).toMatch(new RegExp(`execsentry: \\S+\\.ndjson: its output \\(http://127\\.0\\.0\\.1:${other.port}/other\\) is not configured; left as it is`));
    // the other output's file has its own name back, untouched
    expect(deadLetterFiles(context)).toEqual(before);
    // the agent's lock is respected: the command takes it, so it cannot run beside an agent
    const locked = await run('flock', ['--nonblock', join(context.stateDir, 'execsentry.lock'), process.execPath, CLI, 'outputs', 'replay-dead-letter', '--state-dir', context.stateDir, '--output', config.url]);
    expect(locked.status).toBe(1);
    expect(locked.stderr).toMatch(/is in use by another execsentry/);
    await collector.close();
    await other.close();
    context.cleanup();
  });
});
