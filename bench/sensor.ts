/**
 * `npm run bench:sensor`: what watching every exec costs an exec storm, whether every exec is seen and
 * described correctly, and how soon an exec becomes an alert; execsentry beside forkstat, its closest peer
 * on the same kernel interface (`forkstat -e exec`, installed here when missing).
 *
 * Compiles bench/exec-storm.c (workers vfork + exec a copy of /bin/true, each exec with a unique argument),
 * then alternates rounds, each in another order: no listener, `execsentry events`, `forkstat -e exec`. Both
 * listeners write to files on /dev/shm (memory, nearly as cheap as /dev/null) because their output is
 * checked afterwards: an
 * execsentry event is the storm's when its parent is a storm worker; forkstat prints no parent, so its line
 * is the storm's when its pid is one the storm exec'd. A line or event carries another process's data when
 * its program or argument is not what that pid was exec'd with. CPU is read per thread from
 * /proc/PID/task: the reader thread (named execsentry-read; in a build that does not name it, the busiest
 * thread other than the main one), the JavaScript (main) thread, the rest. Beside every storm an ordinary
 * thread sleeps 1 ms at a time (bench/wake-probe.c): how late it wakes shows whether the listener's
 * real-time reader keeps ordinary work off the CPU.
 *
 * Then exec → alert latency of `execsentry run` with the built-in rule: shells as user daemon in a
 * pseudo-terminal (`script` + `runuser`), each from a new copy of bash (a new term, so every one alerts and
 * its history entry is fsync'ed first); latency = the alert's arrival on stdout minus its @timestamp (the
 * kernel's exec time, in whole milliseconds: an upper bound by up to 1 ms). At idle, and during a storm. A
 * fresh agent every 90 shells: the built-in rule's max_signals stops it at 100 alerts per rule interval.
 * At idle each fresh agent's first shell is timed apart (its first NSS look-ups and cold code, paid once by
 * an agent that runs for days), and the wake-up probe runs beside the shells too: how late an ordinary
 * thread wakes on this machine while the shells run is the floor under each of the pipeline's hops from
 * one thread to another (reader → JavaScript → thread pool for the fdatasync → the alert's reader).
 * The idle run is repeated with the state directory on /dev/shm (tmpfs: fsync returns at once), and the
 * state directory's own disk is timed alone (append + fdatasync, as the store commits a new term), so that
 * the pipeline's latency and the disk's are told apart.
 *
 * BENCH_SENSOR_ROUNDS (3), BENCH_SENSOR_EXECS (3000 per worker), BENCH_SENSOR_SHELLS (200) change the
 * defaults; BENCH_SENSOR_CLI runs another build of the CLI; BENCH_SENSOR_COMPARE=<cli.js of another build>
 * adds that build's `events` as a fourth listener in every round (a before/after comparison on the same
 * machine state).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Alert, ProcessEvent } from '../src/ecs/types.js';

const ROUNDS = Number(process.env.BENCH_SENSOR_ROUNDS ?? 3);
const EXECS = Number(process.env.BENCH_SENSOR_EXECS ?? 3000);
const SHELLS = Number(process.env.BENCH_SENSOR_SHELLS ?? 200);
const WORKERS = availableParallelism();
const CLI = resolve(process.env.BENCH_SENSOR_CLI ?? 'dist/cli.js');
// Another build's `events` as a fourth listener in every round: a before/after comparison on the same
// machine state (run-to-run spread on a VM is larger than the differences worth measuring).
const COMPARE = process.env.BENCH_SENSOR_COMPARE === undefined ? undefined : resolve(process.env.BENCH_SENSOR_COMPARE);
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

function ensureForkstat(): void {
  if (spawnSync('sh', ['-c', 'command -v forkstat']).status === 0) return;
  process.stderr.write('bench:sensor: installing forkstat (apt-get install -y forkstat)\n');
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', 'forkstat'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (install().status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    if (install().status !== 0) throw new Error('cannot install forkstat');
  }
}
ensureForkstat();

const work = mkdtempSync(join(tmpdir(), 'execsentry-bench-sensor-'));
chmodSync(work, 0o755); // daemon runs the shells copied here
const outDir = mkdtempSync(join('/dev/shm', 'execsentry-bench-sensor-'));
const storm = join(work, 'exec-storm');
execFileSync('cc', ['-O2', '-o', storm, resolve('bench/exec-storm.c')], { stdio: 'inherit' });
const wakeProbe = join(work, 'wake-probe');
execFileSync('cc', ['-O2', '-o', wakeProbe, resolve('bench/wake-probe.c')], { stdio: 'inherit' });
const program = join(work, 'storm-true');
copyFileSync('/bin/true', program);
chmodSync(program, 0o755);

interface StormResult {
  execs: number;
  seconds: number;
  /** "<worker pid> <child pid>" → markers exec'd by that child pid under that worker */
  children: Map<string, string[]>;
  /** child pid → markers (for forkstat, which prints no parent) */
  byPid: Map<number, string[]>;
  workers: Set<number>;
  /** How late an ordinary thread's 1 ms sleeps woke during the storm (bench/wake-probe.c), in µs. */
  wakeLateness: { p99: number; max: number };
}

function stormArgs(tag: string, execs = EXECS): string[] {
  return [String(execs), String(WORKERS), tag, join(work, `${tag}.log`), program];
}

function readStorm(tag: string, stdout: string): Omit<StormResult, 'wakeLateness'> {
  const [execs, seconds] = stdout.trim().split(' ').map(Number);
  const children = new Map<string, string[]>();
  const byPid = new Map<number, string[]>();
  const workers = new Set<number>();
  for (let w = 0; w < WORKERS; w++) {
    for (const line of readFileSync(join(work, `${tag}.log.${w}`), 'utf8').split('\n')) {
      if (line === '') continue;
      const [worker, child, marker = ''] = line.split(' ');
      workers.add(Number(worker));
      const key = `${worker} ${child}`;
      (children.get(key) ?? children.set(key, []).get(key)!).push(marker);
      (byPid.get(Number(child)) ?? byPid.set(Number(child), []).get(Number(child))!).push(marker);
    }
  }
  return { execs: execs ?? 0, seconds: seconds ?? 0, children, byPid, workers };
}

/** One storm, with the wake-up probe running beside it. */
async function runStorm(tag: string): Promise<StormResult> {
  const probe = spawn(wakeProbe, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  let probeOutput = '';
  probe.stdout!.on('data', (chunk: Buffer) => (probeOutput += chunk.toString()));
  await new Promise((r) => setTimeout(r, 50)); // the probe sleeping
  const run = spawnSync(storm, stormArgs(tag), { encoding: 'utf8' });
  probe.kill('SIGTERM');
  await exited(probe);
  if (run.status !== 0) throw new Error(`exec-storm failed: ${run.stderr}`);
  const [, p99 = NaN, max = NaN] = probeOutput.trim().split(' ').map(Number);
  return { ...readStorm(tag, run.stdout), wakeLateness: { p99, max } };
}

/** utime + stime of every thread of pid, by thread id, with its name. */
function threadTicks(pid: number): Map<number, { name: string; ticks: number }> {
  const threads = new Map<number, { name: string; ticks: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.set(Number(tid), { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the thread ended
    }
  }
  return threads;
}

interface CpuSplit {
  reader: number;
  main: number;
  other: number;
}

/** CPU seconds per thread class between two samples. */
function cpuSplit(pid: number, before: Map<number, { name: string; ticks: number }>, after: Map<number, { name: string; ticks: number }>): CpuSplit {
  const deltas = [...after].map(([tid, { name, ticks }]) => ({ tid, name, seconds: (ticks - (before.get(tid)?.ticks ?? 0)) / TICKS_PER_SECOND }));
  const main = deltas.find((d) => d.tid === pid)?.seconds ?? 0;
  const others = deltas.filter((d) => d.tid !== pid);
  const named = others.find((d) => d.name === 'execsentry-read');
  const reader = named ?? others.reduce<(typeof others)[number] | undefined>((best, d) => (best === undefined || d.seconds > best.seconds ? d : best), undefined);
  const readerSeconds = reader?.seconds ?? 0;
  const total = deltas.reduce((sum, d) => sum + d.seconds, 0);
  return { reader: readerSeconds, main, other: total - main - readerSeconds };
}

function peakRssBytes(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/** Until `file` stops growing for 300 ms. */
async function settled(file: string): Promise<void> {
  let size = -1;
  let still = 0;
  await waitFor(() => {
    const now = statSync(file).size;
    still = now === size ? still + 1 : 0;
    size = now;
    return still >= 6;
  }, 30_000);
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

interface ListenerRound extends StormResult {
  captured: number;
  complete: number;
  wrong: number;
  cpu: CpuSplit;
  peakRss: number;
  stats?: Record<string, number>;
}

async function runExecsentry(tag: string, cli = CLI): Promise<ListenerRound> {
  const out = join(outDir, `${tag}.ndjson`);
  const agent = spawn('sh', ['-c', 'exec "$0" "$1" events --log-level info --log-format json > "$2"', process.execPath, cli, out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  agent.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(() => stderr.includes('streaming exec events'), 15_000);
  if (!stderr.includes('streaming exec events')) throw new Error(`the agent did not start: ${stderr}`);
  const pid = agent.pid as number;
  await settled(out);
  const before = threadTicks(pid);
  const result = await runStorm(tag);
  await settled(out);
  const cpu = cpuSplit(pid, before, threadTicks(pid));
  const peakRss = peakRssBytes(pid);
  agent.kill('SIGINT');
  await exited(agent);
  const stats = stderr
    .split('\n')
    .filter((line) => line.includes('"msg":"stopped"'))
    .map((line) => JSON.parse(line) as Record<string, number>)[0];

  let captured = 0;
  let complete = 0;
  let wrong = 0;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    if (line === '') continue;
    const event = JSON.parse(line) as ProcessEvent;
    // with EXECSENTRY_SENSOR_EVENTS=exec,fork,end (what fork and end events cost), only execs are the storm's
    if (event.event.action !== 'exec') continue;
    const parentPid = event.process.parent?.pid;
    if (parentPid === undefined || !result.workers.has(parentPid)) continue;
    captured++;
    const markers = result.children.get(`${parentPid} ${event.process.pid}`);
    const exeWrong = event.process.executable !== undefined && event.process.executable !== program;
    const argsWrong = event.process.args !== undefined && (markers === undefined || !markers.includes(event.process.args[1] ?? ''));
    if (exeWrong || argsWrong || markers === undefined) {
      wrong++;
      if (process.env.BENCH_SENSOR_DEBUG) process.stderr.write(`wrong: ${JSON.stringify({ pid: event.process.pid, parent: parentPid, exe: event.process.executable, args: event.process.args, markers, x: event.execsentry })}\n`);
    } else if (event.process.executable !== undefined && event.process.args !== undefined) {
      complete++;
    }
  }
  rmSync(out, { force: true });
  return { ...result, captured, complete, wrong, cpu, peakRss, ...(stats ? { stats } : {}) };
}

async function runForkstat(tag: string): Promise<ListenerRound> {
  const out = join(outDir, `${tag}.forkstat`);
  const listener = spawn('sh', ['-c', 'exec forkstat -e exec -l > "$0"', out], { stdio: 'ignore' });
  await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').includes('Event'), 15_000);
  const pid = listener.pid as number;
  const before = threadTicks(pid);
  const result = await runStorm(tag);
  await settled(out);
  const cpu = cpuSplit(pid, before, threadTicks(pid));
  const peakRss = peakRssBytes(pid);
  listener.kill('SIGINT');
  await exited(listener);
  let captured = 0;
  let complete = 0;
  let wrong = 0;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    // "HH:MM:SS exec  PID  <command line, or the comm when /proc was gone>"
    const match = /^\S+\s+exec\s+(\d+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const markers = result.byPid.get(Number(match[1]));
    if (markers === undefined) continue;
    captured++;
    const words = (match[2] ?? '').trim().split(/\s+/);
    const argument = words.find((word) => word.startsWith(`${tag}-`));
    if (argument === undefined) continue; // no command line: only the comm was printed
    if (!markers.includes(argument) || words[0] !== program) wrong++;
    else complete++;
  }
  rmSync(out, { force: true });
  return { ...result, captured, complete, wrong, cpu: { reader: cpu.main + cpu.reader + cpu.other, main: 0, other: 0 }, peakRss };
}

interface Latency {
  samples: number[];
  missed: number;
  /** During a storm: the agent's JavaScript (main) thread CPU per storm exec, in seconds. */
  mainPerExec?: number;
  /** At idle: the first shell of each fresh agent (not in samples), and the wake-up probe beside the shells. */
  firstOfAgent?: number[];
  wakeLateness?: { p99: number; max: number };
}

// The built-in rule's max_signals (100 alerts per rule interval): a fresh agent after this many shells.
const SHELLS_PER_AGENT = 90;

interface RunningAgent {
  pid: number;
  arrivals: Map<string, number>;
  timestamps: Map<string, number>;
  stop(): Promise<void>;
  /** The end of the agent's log, for a shell that got no alert. */
  stderrTail(): string;
}

async function startRun(stateDir: string): Promise<RunningAgent> {
  const agent = spawn(process.execPath, [CLI, 'run', '--format', 'json', '--log-format', 'json', '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const arrivals = new Map<string, number>();
  const timestamps = new Map<string, number>();
  createInterface({ input: agent.stdout! }).on('line', (line) => {
    const at = Date.now();
    const alert = JSON.parse(line) as Alert;
    const executable = alert.process.executable ?? '';
    arrivals.set(executable, at);
    timestamps.set(executable, Date.parse(alert['@timestamp']));
  });
  let stderr = '';
  agent.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(() => stderr.includes('execsentry running'), 30_000);
  if (!stderr.includes('execsentry running')) throw new Error(`run did not start: ${stderr}`);
  return {
    pid: agent.pid as number,
    stderrTail: () => stderr.slice(-1500),
    arrivals,
    timestamps,
    stop: async () => {
      agent.kill('SIGTERM');
      await exited(agent);
    },
  };
}

/**
 * `execsentry run` with the built-in rule; `shells` shells as daemon, or as many as a storm lasts. The
 * agents' state directories go under stateRoot.
 */
async function alertLatency(shells: number, duringStorm: boolean, stateRoot: string, name: string): Promise<Latency> {
  const shellDir = join(work, `shells-${name}`);
  mkdirSync(shellDir, { mode: 0o755 });
  let agent = await startRun(join(stateRoot, `state-${name}-0`));
  let background: ChildProcess | undefined;
  let stormDone = false;
  let stormOutput = '';
  let before: ReturnType<typeof threadTicks> | undefined;
  if (duringStorm) {
    before = threadTicks(agent.pid);
    background = spawn(storm, stormArgs(`latency${process.pid}`, EXECS * 4), { stdio: ['ignore', 'pipe', 'ignore'] });
    background.stdout!.on('data', (chunk: Buffer) => (stormOutput += chunk.toString()));
    void exited(background).then(() => (stormDone = true));
    await new Promise((r) => setTimeout(r, 200)); // the storm under way
  }
  const samples: number[] = [];
  const firstOfAgent: number[] = [];
  let missed = 0;
  /** One shell as daemon, from a new copy of bash: its exec → alert latency, or undefined without alert. */
  const shellLatency = async (shell: string): Promise<number | undefined> => {
    copyFileSync('/bin/bash', shell);
    chmodSync(shell, 0o755);
    // script passes on the end of its standard input (/dev/null) to the terminal, so read meets EOF at once:
    // the shell lives about 8 ms after its exec. A snapshot later than that finds it gone and the alert
    // lost, which is why the benchmark reports every shell without one.
    const child = spawn('script', ['-qec', `runuser -u daemon -- ${shell} -c 'read -t 0.05 v'`, '/dev/null'], { stdio: 'ignore' });
    await exited(child);
    await waitFor(() => agent.arrivals.has(shell), 2_000);
    const arrived = agent.arrivals.get(shell);
    const at = agent.timestamps.get(shell);
    if (arrived === undefined) {
      // Late, or never? (An alert of an event without process.executable is keyed '' by startRun.)
      await waitFor(() => agent.arrivals.has(shell), 15_000);
      const late = agent.arrivals.get(shell);
      const came = late === undefined ? 'none in 15 s more' : `it came ${late - (agent.timestamps.get(shell) ?? late)} ms after the exec`;
      const anonymous = agent.arrivals.has('') ? 'some' : 'none';
      process.stderr.write(`bench:sensor: no alert for ${shell} within 2 s (${came}; alerts without process.executable so far: ${anonymous}); the agent's log ends: ${agent.stderrTail()}\n`);
    }
    return arrived === undefined || at === undefined ? undefined : arrived - at;
  };
  // The first alert of a fresh agent waits for its first NSS look-ups and runs cold code: an agent that
  // runs for days pays that once, this benchmark once per SHELLS_PER_AGENT shells. At idle it is a shell of
  // its own, reported apart.
  const firstShell = async (i: number) => {
    if (duringStorm) return;
    const latency = await shellLatency(join(shellDir, `first-${i}`));
    if (latency !== undefined) firstOfAgent.push(latency);
  };
  // The probe runs beside the timed shells only, not beside an agent's start (its /proc scan).
  const lateness: { p99: number; max: number }[] = [];
  let stopProbe: (() => Promise<void>) | undefined;
  const startProbe = () => {
    if (duringStorm) return;
    const probe = spawn(wakeProbe, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    probe.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    stopProbe = async () => {
      probe.kill('SIGTERM');
      await exited(probe);
      const [, p99 = NaN, max = NaN] = output.trim().split(' ').map(Number);
      lateness.push({ p99, max });
    };
  };
  await firstShell(0);
  startProbe();
  // During the storm one agent only, so that its CPU can be read across the whole storm.
  for (let i = 0; duringStorm ? !stormDone && i < Math.min(shells, SHELLS_PER_AGENT) : i < shells; i++) {
    if (i > 0 && i % SHELLS_PER_AGENT === 0) {
      await stopProbe?.();
      await agent.stop();
      agent = await startRun(join(stateRoot, `state-${name}-${i}`));
      await firstShell(i);
      startProbe();
    }
    const latency = await shellLatency(join(shellDir, `sh-${i}`));
    if (latency === undefined) missed++;
    else samples.push(latency);
  }
  await stopProbe?.();
  // The worst stretch's p99 and the worst wake-up of all.
  const wakeLateness = lateness.length === 0 ? undefined : { p99: Math.max(...lateness.map((l) => l.p99)), max: Math.max(...lateness.map((l) => l.max)) };
  let mainPerExec: number | undefined;
  if (background !== undefined && before !== undefined) {
    await exited(background);
    await new Promise((r) => setTimeout(r, 1_000)); // the agent catches up
    mainPerExec = cpuSplit(agent.pid, before, threadTicks(agent.pid)).main / Number(stormOutput.trim().split(' ')[0]);
  }
  await agent.stop();
  return { samples, missed, ...(mainPerExec !== undefined ? { mainPerExec } : {}), ...(duringStorm ? {} : { firstOfAgent, wakeLateness }) };
}

/**
 * What one durable commit costs on dir's filesystem: a 100-byte append and fdatasync, `count` times, 20 ms
 * apart (about the shells' pace). The floor under any alert that waits for its history entry's fsync.
 */
async function fdatasyncLatency(dir: string, count: number): Promise<Latency> {
  const fd = openSync(join(dir, 'fdatasync-probe'), 'a');
  const samples: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = process.hrtime.bigint();
      writeSync(fd, 'x'.repeat(100));
      fdatasyncSync(fd);
      samples.push(Number(process.hrtime.bigint() - started) / 1e6);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    closeSync(fd);
  }
  return { samples, missed: 0 };
}

function rate(result: StormResult): number {
  return result.execs / result.seconds;
}

const without: StormResult[] = [];
const withAgent: ListenerRound[] = [];
const withForkstat: ListenerRound[] = [];
const withCompared: ListenerRound[] = [];
let idle: Latency;
let idleOnTmpfs: Latency;
let diskCommit: Latency;
let busy: Latency;
try {
  for (let round = 0; round < ROUNDS; round++) {
    const tag = `s${process.pid}r${round}`;
    // Each round in another order, so that no mode always runs first (or right after another).
    const modes = [
      async () => void without.push(await runStorm(`${tag}n`)),
      async () => void withAgent.push(await runExecsentry(`${tag}e`)),
      async () => void withForkstat.push(await runForkstat(`${tag}f`)),
      ...(COMPARE === undefined ? [] : [async () => void withCompared.push(await runExecsentry(`${tag}c`, COMPARE))]),
    ];
    for (let i = 0; i < modes.length; i++) await modes[(i + round) % modes.length]!();
    process.stderr.write(
      `round ${round + 1}/${ROUNDS}: no listener ${rate(without[round]!).toFixed(0)} execs/s, execsentry ${rate(withAgent[round]!).toFixed(0)}, forkstat ${rate(withForkstat[round]!).toFixed(0)}${COMPARE === undefined ? '' : `, compared build ${rate(withCompared[round]!).toFixed(0)}`}\n`,
    );
  }
  idle = await alertLatency(SHELLS, false, work, 'idle');
  idleOnTmpfs = await alertLatency(SHELLS, false, outDir, 'idle-tmpfs');
  diskCommit = await fdatasyncLatency(work, SHELLS);
  busy = await alertLatency(SHELLS, true, work, 'storm');
} finally {
  rmSync(work, { recursive: true, force: true });
  rmSync(outDir, { recursive: true, force: true });
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const pct = (n: number, d: number) => `${((100 * n) / d).toFixed(2)} %`;
const rateOf = (rounds: StormResult[]) => sum(rounds.map((r) => r.execs)) / sum(rounds.map((r) => r.seconds));
const baseline = rateOf(without);

function column(rounds: ListenerRound[], js: boolean): string[] {
  const generated = sum(rounds.map((r) => r.execs));
  const captured = sum(rounds.map((r) => r.captured));
  const complete = sum(rounds.map((r) => r.complete));
  const perExec = (seconds: number) => `${((seconds * 1e6) / generated).toFixed(1)} µs`;
  const stat = (key: string) => sum(rounds.map((r) => r.stats?.[key] ?? 0));
  return [
    `${rateOf(rounds).toFixed(0)} execs/s`,
    pct(rateOf(rounds), baseline),
    `${captured} / ${generated} (${pct(captured, generated)})`,
    `${complete} (${pct(complete, generated)})`,
    String(sum(rounds.map((r) => r.wrong))),
    perExec(sum(rounds.map((r) => r.cpu.reader))),
    js ? perExec(sum(rounds.map((r) => r.cpu.main))) : '—',
    js ? perExec(sum(rounds.map((r) => r.cpu.other))) : '—',
    `${(Math.max(...rounds.map((r) => r.peakRss)) / 1024 / 1024).toFixed(1)} MiB`,
    js ? `${stat('partial')} / ${stat('exitedBeforeSnapshot')}` : '—',
    js ? `${stat('lost')} / ${stat('overruns')}` : '—',
    js && rounds.some((r) => r.stats?.['readerWakeups'] !== undefined) ? (stat('readerWakeups') / generated).toFixed(2) : '—',
  ];
}

function percentiles({ samples, missed }: Latency, unit = 'shells', digits = 0): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN).toFixed(digits);
  return `${at(0.5)} / ${at(0.99)} / ${at(1)} ms (${sorted.length} ${unit}${missed > 0 ? `, ${missed} without alert` : ''})`;
}

const labels = [
  'storm throughput',
  'throughput kept',
  'storm execs captured',
  'with executable and args',
  'wrong attributions',
  'reader CPU per exec',
  'JavaScript thread CPU per exec',
  'other threads CPU per exec',
  'peak RSS',
  'partial / exited before snapshot',
  'records lost / overruns',
  'reader wake-ups per exec',
];
const agentColumn = column(withAgent, true);
const forkstatColumn = column(withForkstat, false);
// With BENCH_SENSOR_COMPARE, the other build's column sits between this one's and forkstat's.
const comparedColumn = COMPARE === undefined ? undefined : column(withCompared, true);
const middle = (i: number) => (comparedColumn === undefined ? '' : ` ${comparedColumn[i]} |`);
process.stdout.write(`${ROUNDS} alternating rounds × ${WORKERS} workers × ${EXECS} execs (vfork + exec of a copy of /bin/true)\n`);
if (COMPARE !== undefined) process.stdout.write(`compared build: ${COMPARE}\n`);
process.stdout.write(`\n| measure | no listener | execsentry |${COMPARE === undefined ? '' : ' compared build |'} forkstat -e exec |\n|---|---|---|${COMPARE === undefined ? '' : '---|'}---|\n`);
process.stdout.write(`| storm throughput | ${baseline.toFixed(0)} execs/s | ${agentColumn[0]} |${middle(0)} ${forkstatColumn[0]} |\n`);
for (let i = 1; i < labels.length; i++) process.stdout.write(`| ${labels[i]} | | ${agentColumn[i]} |${middle(i)} ${forkstatColumn[i]} |\n`);
/** The worst round's p99 and the worst wake-up of all rounds. */
const lateness = (rounds: StormResult[]) =>
  `${Math.max(...rounds.map((r) => r.wakeLateness.p99))} / ${Math.max(...rounds.map((r) => r.wakeLateness.max))} µs`;
process.stdout.write(`| ordinary thread's 1 ms sleeps during the storm: lateness p99 / max | ${lateness(without)} | ${lateness(withAgent)} |${COMPARE === undefined ? '' : ` ${lateness(withCompared)} |`} ${lateness(withForkstat)} |\n`);
// The rows below are this build's alone: the compared build's column stays empty.
const blank = COMPARE === undefined ? '' : ' |';
process.stdout.write(`| \`run\` exec → alert p50 / p99 / max, idle | | ${percentiles(idle)} |${blank} |\n`);
process.stdout.write(`| the same, state directory on tmpfs (no disk in the path) | | ${percentiles(idleOnTmpfs)} |${blank} |\n`);
const firsts = [...(idle.firstOfAgent ?? []), ...(idleOnTmpfs.firstOfAgent ?? [])];
process.stdout.write(`| the first alert of each fresh agent (first NSS look-ups, cold code; not in the rows above) | | ${firsts.map((ms) => `${ms}`).join(', ')} ms |${blank} |\n`);
const idleWake = (latency: Latency) => (latency.wakeLateness ? `${latency.wakeLateness.p99} / ${latency.wakeLateness.max} µs` : '—');
process.stdout.write(`| ordinary thread's 1 ms sleeps during the idle shells: lateness p99 / max (disk run, tmpfs run) | | ${idleWake(idle)}, ${idleWake(idleOnTmpfs)} |${blank} |\n`);
process.stdout.write(`| the state directory's disk alone: append + fdatasync p50 / p99 / max | | ${percentiles(diskCommit, 'commits', 2)} |${blank} |\n`);
process.stdout.write(`| \`run\` exec → alert p50 / p99 / max, during a storm | | ${percentiles(busy)} |${blank} |\n`);
process.stdout.write(`| \`run\` (built-in rule) JavaScript thread CPU per storm exec | | ${((busy.mainPerExec ?? NaN) * 1e6).toFixed(1)} µs |${blank} |\n`);
