import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeAlert } from './helpers/alerts.js';
import { testContext } from './helpers/context.js';
import { idsInNdjson, startHttpCollector } from './helpers/http-collector.js';
import { freeTcpPort } from './helpers/ports.js';

const agent = fileURLToPath(new URL('./fixtures/crash-agent.mjs', import.meta.url));

describe('crash: collector down, agent SIGKILLed, collector up, agent restarted', () => {
  it('delivers every alert whose send had resolved before the kill', async () => {
    const context = testContext();
    const port = await freeTcpPort();
    const url = `http://127.0.0.1:${port}/ingest`;
    const template = join(context.stateDir, 'alert.json');
    writeFileSync(template, JSON.stringify(makeAlert(1)));

    const producer = spawn(process.execPath, [agent, 'produce', context.stateDir, url, template], { stdio: ['ignore', 'pipe', 'inherit'] });
    const spooled: string[] = [];
    let partial = '';
    await new Promise<void>((resolve) => {
      producer.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) if (line.startsWith('SPOOLED ')) spooled.push(line.slice(8));
        if (spooled.length >= 500 && producer.exitCode === null && !producer.killed) {
          producer.kill('SIGKILL'); // mid-stream: appends in flight are torn or never happened
          resolve();
        }
      });
    });
    await new Promise((resolve) => producer.once('exit', resolve));
    expect(producer.signalCode).toBe('SIGKILL');

    const collector = await startHttpCollector(() => ({ status: 200 }), { port });
    const drain = spawn(process.execPath, [agent, 'drain', context.stateDir, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let drainOutput = '';
    drain.stdout.setEncoding('utf8').on('data', (chunk: string) => (drainOutput += chunk));
    const code = await new Promise((resolve) => drain.once('exit', resolve));
    expect(code).toBe(0);
    expect(drainOutput).toContain('DRAINED');

    const received = collector.requests.flatMap((request) => idsInNdjson(request.body));
    const receivedSet = new Set(received);
    const missing = spooled.filter((id) => !receivedSet.has(id));
    expect(missing).toEqual([]);
    // resent in order: ids ascend through the whole stream
    const numbers = received.map((id) => Number(id.slice('crash-'.length)));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    await collector.close();
    context.cleanup();
  });
});
