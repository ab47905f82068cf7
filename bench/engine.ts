/**
 * `npm run bench:engine`: the detection engine with the built-in rule, as the agent runs it (dist/).
 *
 * 1. Throughput: recorded exec events (bench/engine-events.ndjson: 1,000 events sampled in order from 4,691
 *    that `execsentry events` recorded on the development VM while six engineers' builds and tests ran,
 *    plus a workload of user and service commands, root and user terminals and a few system-user shells —
 *    mostly non-matching, as on a real host) evaluated in a loop on one core, with the new-terms history on
 *    disk in a temporary state directory.
 * 2. Latency: `execsentry run` as a child process (the built-in rule with max_signals raised so the cap does
 *    not interfere), then 200 interactive shells as the system user daemon, each in its own pseudo-terminal
 *    and each from a never-seen executable (copies of /bin/bash at 200 temporary paths), so each must alert.
 *    Latency = the alert line read on the agent's stdout minus the exec time the sensor stamped
 *    (@timestamp). Needs root (connector, runuser); skipped otherwise.
 *
 * Prints a markdown table. Numbers from a machine busy with other work are only indicative.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type { Alert, ProcessEvent } from '../src/ecs/types.js';
import type * as EngineModule from '../src/engine/index.js';
import type * as RulesModule from '../src/rules/index.js';
import type * as StoreModule from '../src/store/index.js';

const EVALUATIONS = Number(process.env.BENCH_ENGINE_EVENTS ?? 2_000_000);
const SHELLS = Number(process.env.BENCH_ENGINE_SHELLS ?? 200);
const THROUGHPUT_TARGET = 200_000;
const P99_TARGET_MS = 50;

// npm runs scripts from the package root, where dist/ is.
const importDist = async <T>(path: string): Promise<T> => (await import(pathToFileURL(resolve('dist', path)).href)) as T;
const { DetectionEngine } = await importDist<typeof EngineModule>('engine/index.js');
const { loadRuleSet } = await importDist<typeof RulesModule>('rules/index.js');
const { openHistoryStore } = await importDist<typeof StoreModule>('store/index.js');
const logger = pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true }));

interface Row {
  measurement: string;
  result: string;
  target: string;
}

async function throughput(): Promise<Row[]> {
  const events = readFileSync(resolve('bench/engine-events.ndjson'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ProcessEvent);
  const { rules } = await loadRuleSet([], { skipUnsupported: false });
  const stateDir = mkdtempSync(join(tmpdir(), 'execsentry-bench-engine-'));
  const store = await openHistoryStore({ stateDir, maxTuplesPerRule: 1_000_000, logger });
  let alerts = 0;
  const engine = new DetectionEngine(rules, { store, logger, emit: () => void (alerts += 1) });
  const builtin = rules[0]!.compiled;
  if (builtin.kind !== 'event') throw new Error('the built-in rule is expected to be an event query');
  const matching = events.filter((event) => builtin.matches(event)).length;
  try {
    const baseMs = Date.parse(events[0]!['@timestamp']);
    // Warm-up, then the measured loop; "now" advances 1 ms per event as it would live.
    for (let i = 0; i < 200_000; i++) engine.evaluate(events[i % events.length]!, baseMs + i);
    const started = performance.now();
    for (let i = 0; i < EVALUATIONS; i++) engine.evaluate(events[i % events.length]!, baseMs + 200_000 + i);
    const seconds = (performance.now() - started) / 1000;
    await engine.drain();
    const perSecond = Math.round(EVALUATIONS / seconds);
    return [
      {
        measurement: `engine + built-in rule, ${events.length} recorded events (${matching} matching) × ${EVALUATIONS / events.length | 0}, one core`,
        result: `${perSecond.toLocaleString('en-US')} events/s`,
        target: `≥ ${THROUGHPUT_TARGET.toLocaleString('en-US')} events/s ${perSecond >= THROUGHPUT_TARGET ? '✅' : '❌'}`,
      },
      { measurement: 'alerts during the throughput run', result: String(alerts), target: 'one per new executable' },
    ];
  } finally {
    await store.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

function interactiveShellAsDaemon(shell: string): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn('script', ['-qec', `runuser -u daemon -- ${shell} -i`, '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const typing = setTimeout(() => child.stdin.end('exit\n'), 300);
    child.once('error', fail);
    child.once('close', () => {
      clearTimeout(typing);
      done();
    });
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function latency(): Promise<Row[]> {
  if (process.getuid?.() !== 0) return [{ measurement: 'exec → alert latency in `run`', result: 'skipped (needs root)', target: `p99 < ${P99_TARGET_MS} ms` }];
  const dir = mkdtempSync(join(tmpdir(), 'execsentry-bench-shells-'));
  chmodSync(dir, 0o755);
  // The built-in rule with max_signals raised: 200 alerts in a minute are over its 100 per 5 minutes, and
  // the cap is not what is measured. Everything else (query, new terms, history on disk) is unchanged.
  const rulesDir = join(dir, 'rules');
  const { BUILTIN_RULES_PATH } = await importDist<typeof RulesModule>('rules/index.js');
  const builtinFile = join(BUILTIN_RULES_PATH, 'linux', readdirSync(join(BUILTIN_RULES_PATH, 'linux'))[0]!);
  const ruleText = readFileSync(builtinFile, 'utf8');
  if (!ruleText.includes('\nmax_signals = 100\n')) throw new Error(`${builtinFile}: max_signals = 100 not found`);
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'builtin-uncapped.toml'), ruleText.replace('\nmax_signals = 100\n', '\nmax_signals = 100000\n'));
  const agent = spawn(process.execPath, [resolve('dist/cli.js'), 'run', '--rules', rulesDir, '--state-dir', join(dir, 'state'), '--format', 'json', '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const arrivals = new Map<string, { alert: Alert; atMs: number }>();
  let wake: (() => void) | undefined;
  createInterface({ input: agent.stdout }).on('line', (line) => {
    const atMs = Date.now();
    const alert = JSON.parse(line) as Alert;
    if (alert.process.executable !== undefined) arrivals.set(alert.process.executable, { alert, atMs });
    wake?.();
  });
  const running = new Promise<void>((ready, fail) => {
    createInterface({ input: agent.stderr }).on('line', (line) => {
      const record = JSON.parse(line) as { level: number; msg: string };
      if (record.msg.startsWith('execsentry running')) ready();
      else if (record.level >= 40) process.stderr.write(line + '\n');
    });
    agent.once('exit', (code) => fail(new Error(`execsentry run exited with ${code} before running`)));
  });
  const waitFor = (executable: string, timeoutMs: number): Promise<{ alert: Alert; atMs: number } | undefined> =>
    new Promise((done) => {
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const check = (): void => {
        const found = arrivals.get(executable);
        if (found !== undefined) {
          clearTimeout(timer);
          done(found);
        }
      };
      wake = check;
      check();
    });
  try {
    await running;
    const latencies: number[] = [];
    let missed = 0;
    for (let i = 0; i < SHELLS; i++) {
      const shell = join(dir, `bash-${i}`);
      copyFileSync('/bin/bash', shell);
      chmodSync(shell, 0o755);
      // Asynchronously, so that this process reads the alert line the moment it comes; the shell gets its
      // "exit" only after a moment, as a person's would (a shell gone before its /proc snapshot is partial).
      const [arrival] = await Promise.all([waitFor(shell, 5000), interactiveShellAsDaemon(shell)]);
      if (arrival === undefined) missed += 1;
      else latencies.push(arrival.atMs - Date.parse(arrival.alert['@timestamp']));
    }
    latencies.sort((a, b) => a - b);
    const p99 = percentile(latencies, 99);
    return [
      { measurement: `exec → alert line in \`run\`, p50 (${latencies.length} interactive shells as daemon in ptys, new executables; built-in rule, max_signals raised)`, result: `${percentile(latencies, 50)} ms`, target: '' },
      { measurement: 'exec → alert line in `run`, p99', result: `${p99} ms`, target: `< ${P99_TARGET_MS} ms ${p99 < P99_TARGET_MS ? '✅' : '❌'}` },
      { measurement: 'exec → alert line in `run`, max', result: `${latencies[latencies.length - 1]} ms`, target: '' },
      { measurement: 'shells without an alert within 5 s', result: String(missed), target: '0' },
    ];
  } finally {
    agent.kill('SIGTERM');
    await new Promise((done) => agent.once('exit', done));
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [...(await throughput()), ...(await latency())];
process.stdout.write('| measurement | result | target |\n|---|---|---|\n');
for (const row of rows) process.stdout.write(`| ${row.measurement} | ${row.result} | ${row.target} |\n`);
