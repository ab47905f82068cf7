/**
 * `npm run bench:sensor`: what watching every exec costs an exec storm, and whether every exec is seen
 * and described correctly. Compiles bench/exec-storm.c (fork + exec of /bin/true in a loop, one worker per
 * core), then alternates rounds without the agent and with `execsentry events` running, and prints a
 * markdown table.
 *
 * The agent's stdout goes to a file on /dev/shm (memory, nearly as cheap as /dev/null) because the events
 * are needed afterwards: an event is one of the storm's when its parent is a storm worker, and it carries
 * another process's data when its arguments are not the marker that child was exec'd with.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ProcessEvent } from '../src/ecs/types.js';

const ROUNDS = Number(process.env.BENCH_SENSOR_ROUNDS ?? 3);
const ROUND_MS = Number(process.env.BENCH_SENSOR_ROUND_MS ?? 3000);
const WORKERS = availableParallelism();
const CLI = resolve('dist/cli.js');
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

const work = mkdtempSync(join(tmpdir(), 'execsentry-bench-sensor-'));
const eventsDir = mkdtempSync(join('/dev/shm', 'execsentry-bench-sensor-'));
const storm = join(work, 'exec-storm');
execFileSync('cc', ['-O2', '-o', storm, resolve('bench/exec-storm.c')], { stdio: 'inherit' });

interface StormResult {
  execs: number;
  seconds: number;
  /** "<worker pid> <child pid>" → markers exec'd by that child pid under that worker */
  children: Map<string, string[]>;
  workers: Set<number>;
}

function runStorm(tag: string): StormResult {
  const log = join(work, `${tag}.log`);
  const run = spawnSync(storm, [String(ROUND_MS), String(WORKERS), tag, log], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`exec-storm failed: ${run.stderr}`);
  const [execs, seconds] = run.stdout.trim().split(' ').map(Number);
  const children = new Map<string, string[]>();
  const workers = new Set<number>();
  const lines = Array.from({ length: WORKERS }, (_, w) => readFileSync(`${log}.${w}`, 'utf8').split('\n')).flat();
  for (const line of lines) {
    if (line === '') continue;
    const [worker, child, marker] = line.split(' ');
    workers.add(Number(worker));
    const key = `${worker} ${child}`;
    const list = children.get(key);
    if (list === undefined) children.set(key, [marker ?? '']);
    else list.push(marker ?? '');
  }
  return { execs: execs ?? 0, seconds: seconds ?? 0, children, workers };
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
}

function peakRssBytes(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function lineCount(file: string): number {
  let count = 0;
  const data = readFileSync(file);
  for (const byte of data) if (byte === 0x0a) count++;
  return count;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

interface AgentRound extends StormResult {
  captured: number;
  partial: number;
  wrong: number;
  cpuSeconds: number;
  eventsInWindow: number;
  peakRss: number;
  lost: number;
  overruns: number;
}

async function runWithAgent(tag: string): Promise<AgentRound> {
  const out = join(eventsDir, `${tag}.ndjson`);
  const agent = spawn('sh', ['-c', `exec "$0" "$1" events --log-level info > "$2"`, process.execPath, CLI, out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  agent.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(() => stderr.includes('streaming exec events'), 15_000);
  if (!stderr.includes('streaming exec events')) throw new Error(`the agent did not start: ${stderr}`);
  const pid = agent.pid as number;
  const linesBefore = lineCount(out);
  const cpuBefore = cpuTicks(pid);
  const result = runStorm(tag);
  // Let the agent finish what the storm queued: its output stops growing.
  let size = -1;
  await waitFor(() => {
    const now = statSync(out).size;
    const settled = now === size;
    size = now;
    return settled;
  }, 30_000);
  const cpuSeconds = (cpuTicks(pid) - cpuBefore) / TICKS_PER_SECOND;
  const peakRss = peakRssBytes(pid);
  const eventsInWindow = lineCount(out) - linesBefore;
  agent.kill('SIGINT');
  await new Promise((r) => agent.once('exit', r));
  const stats = stderr
    .split('\n')
    .filter((line) => line.includes('"msg":"stopped"'))
    .map((line) => JSON.parse(line) as { lost: number; overruns: number })[0];

  let captured = 0;
  let partial = 0;
  let wrong = 0;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    if (line === '') continue;
    const event = JSON.parse(line) as ProcessEvent;
    const parentPid = event.process.parent?.pid;
    if (parentPid === undefined || !result.workers.has(parentPid)) continue;
    captured++;
    if (event.execsentry?.partial) partial++;
    const markers = result.children.get(`${parentPid} ${event.process.pid}`);
    const exeWrong = event.process.executable !== undefined && event.process.executable !== '/usr/bin/true';
    const argsWrong = event.process.args !== undefined && (markers === undefined || !markers.includes(event.process.args[1] ?? ''));
    if (exeWrong || argsWrong || markers === undefined) {
      wrong++;
      if (process.env.BENCH_SENSOR_DEBUG) process.stderr.write(`wrong: ${JSON.stringify({ pid: event.process.pid, parent: parentPid, exe: event.process.executable, args: event.process.args, markers, x: event.execsentry })}\n`);
    }
  }
  rmSync(out, { force: true });
  return { ...result, captured, partial, wrong, cpuSeconds, eventsInWindow, peakRss, lost: stats?.lost ?? NaN, overruns: stats?.overruns ?? NaN };
}

const without: StormResult[] = [];
const withAgent: AgentRound[] = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    without.push(runStorm(`storm${process.pid}r${round}a`));
    withAgent.push(await runWithAgent(`storm${process.pid}r${round}b`));
    process.stderr.write(`round ${round + 1}/${ROUNDS}: without ${rate(without[round]!).toFixed(0)} execs/s, with ${rate(withAgent[round]!).toFixed(0)} execs/s\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
  rmSync(eventsDir, { recursive: true, force: true });
}

function rate(result: StormResult): number {
  return result.execs / result.seconds;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const generated = sum(withAgent.map((r) => r.execs));
const captured = sum(withAgent.map((r) => r.captured));
const partial = sum(withAgent.map((r) => r.partial));
const wrong = sum(withAgent.map((r) => r.wrong));
const rateWithout = sum(without.map((r) => r.execs)) / sum(without.map((r) => r.seconds));
const rateWith = generated / sum(withAgent.map((r) => r.seconds));
const cpuPerEvent = (sum(withAgent.map((r) => r.cpuSeconds)) * 1e6) / sum(withAgent.map((r) => r.eventsInWindow));
const pct = (n: number, d: number) => `${((100 * n) / d).toFixed(2)} %`;

const rows: [string, string][] = [
  ['rounds (alternating, each)', `${ROUNDS} × ${ROUND_MS / 1000} s without + ${ROUNDS} × ${ROUND_MS / 1000} s with, ${WORKERS} workers`],
  ['execs generated (agent rounds)', String(generated)],
  ['exec events captured', String(captured)],
  ['captured', pct(captured, generated)],
  ['storm throughput without agent', `${rateWithout.toFixed(0)} execs/s`],
  ['storm throughput with agent', `${rateWith.toFixed(0)} execs/s`],
  ['throughput retained', pct(rateWith, rateWithout)],
  ['agent CPU per event', `${cpuPerEvent.toFixed(1)} µs`],
  ['agent peak RSS', `${(Math.max(...withAgent.map((r) => r.peakRss)) / 1024 / 1024).toFixed(1)} MiB`],
  ['events with partial enrichment', `${partial} (${pct(partial, Math.max(captured, 1))})`],
  ['events carrying another process\'s data', String(wrong)],
  ['kernel records lost (sequence gaps) / overruns', `${sum(withAgent.map((r) => r.lost))} / ${sum(withAgent.map((r) => r.overruns))}`],
];
process.stdout.write('| measure | value |\n|---|---|\n');
for (const [name, value] of rows) process.stdout.write(`| ${name} | ${value} |\n`);
