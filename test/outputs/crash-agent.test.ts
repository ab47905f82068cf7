import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeAsRoot } from '../helpers/privilege.js';
import { privateShell, removeDir, sharedTempDir, startAgent, type RunningAgent } from '../e2e/harness.js';
import { idsInNdjson, startHttpCollector } from './helpers/http-collector.js';
import { freeTcpPort, waitFor } from './helpers/ports.js';
import { spooledKeys } from './helpers/spool-reader.js';

const MARKER_RUNS = 20;

describeAsRoot('crash with the real agent: `execsentry run` SIGKILLed while its collector is down', () => {
  let dir: string;
  const agents: RunningAgent[] = [];

  beforeAll(() => {
    dir = sharedTempDir('execsentry-crash-');
  });
  afterAll(async () => {
    for (const agent of agents) await agent.stop('SIGKILL');
    removeDir(dir);
  });

  it('delivers every alert the killed agent had spooled once the collector and the agent are back', { timeout: 90_000 }, async () => {
    // a program at a path nobody else runs, and a query rule for exactly it
    const marker = privateShell(dir, '/bin/sh', 'crash-marker');
    const rulesFile = join(dir, 'crash-rule.toml');
    writeFileSync(
      rulesFile,
      `[metadata]
maturity = "production"

[rule]
author = ["execsentry tests"]
description = "The crash test's marker program ran."
language = "kuery"
license = "Apache-2.0"
name = "Crash test marker"
risk_score = 47
rule_id = "crash-test-marker"
severity = "medium"
type = "query"
version = 1
query = 'event.action:exec and process.executable:"${marker}"'
`,
    );
    const port = await freeTcpPort();
    const stateDir = join(dir, 'state');
    const args = ['--rules', rulesFile, '--output', `http://127.0.0.1:${port}/ingest`, '--state-dir', stateDir];

    const first = await startAgent(args);
    agents.push(first);
    for (let i = 0; i < MARKER_RUNS; i++) expect(spawnSync(marker, ['-c', 'sleep 0.2', `run-${i}`]).status).toBe(0);
    await waitFor(`${MARKER_RUNS} alerts in the spool`, () => spooledKeys(stateDir).length >= MARKER_RUNS, 30_000);
    const spooled = spooledKeys(stateDir);
    expect((await first.stop('SIGKILL')).code).toBeNull();

    const collector = await startHttpCollector(() => ({ status: 200 }), { port });
    const second = await startAgent(args);
    agents.push(second);
    const received = () => collector.requests.flatMap((request) => idsInNdjson(request.body));
    await waitFor('every spooled alert at the collector', () => spooled.every((id) => received().includes(id)), 30_000);
    const documents = collector.requests.flatMap((request) => request.body.trim().split('\n').map((line) => JSON.parse(line)));
    const markerRuns = documents.filter((doc) => doc.rule?.id === 'crash-test-marker').map((doc) => doc.process.args[3]);
    expect(new Set(markerRuns)).toEqual(new Set(Array.from({ length: MARKER_RUNS }, (_, i) => `run-${i}`)));
    expect((await second.stop()).code).toBe(0);
    await collector.close();
  });
});
