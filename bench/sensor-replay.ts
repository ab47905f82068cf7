/**
 * `npm run bench:sensor-replay` (as root): what the JavaScript thread spends on one exec event, apart from
 * the machine's noise. `bench:sensor` measures the JavaScript thread's CPU during a live storm, where the
 * storm, the reader and the thread's own wake-ups share two cores: its rounds differ by ±25 µs. Here a
 * storm's records are recorded as the addon hands them over (bench/exec-storm.c, two workers × 3,000 execs,
 * through the addon's own connector: real kernel records and real /proc snapshots), then replayed, many
 * times, on a quiet thread, through a started sensor (process table, enrichment, user and group names)
 * and the encoding and writing of `execsentry events` (to /dev/null). Each phase is also timed alone, in
 * a loop over the whole recording: decoding the hand-over, building the events, encoding them, writing.
 * What it leaves out is what the live benchmark adds: the wake-ups, cold caches beside a storm, the
 * reader thread's competition for the cores. Of that, it reports the floor: what receiving and decoding the
 * hand-overs, nothing else, cost the JavaScript thread during the recorded (live) storm.
 *
 * BENCH_REPLAY_ROUNDS (default 15) sets the rounds; the median and the best round are printed.
 * BENCH_REPLAY_COMPARE=<another build's dist directory> replays the same recording through that build too,
 * alternating with this one in every round (its records decoded by this build: the records' fields have not
 * changed; a build from before src/ecs/json.ts is encoded with JSON.stringify, as its `events` did).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type * as ConfigModule from '../src/config.js';
import type * as JsonModule from '../src/ecs/json.js';
import type { ProcessEvent } from '../src/ecs/types.js';
import type * as LogModule from '../src/log.js';
import type * as NativeModule from '../src/native.js';
import type { ConnectorRecord } from '../src/native.js';
import type * as SensorModule from '../src/sensor/index.js';

const ROUNDS = Number(process.env.BENCH_REPLAY_ROUNDS ?? 15);
const COMPARE = process.env.BENCH_REPLAY_COMPARE === undefined ? undefined : resolve(process.env.BENCH_REPLAY_COMPARE);
const EXECS_PER_WORKER = 3000;
const WORKERS = 2;

if (process.getuid?.() !== 0) {
  process.stderr.write("bench:sensor-replay: needs root (the process connector and other users' /proc)\n");
  process.exit(2);
}

const importFrom = async <T>(dist: string, path: string): Promise<T> => (await import(pathToFileURL(join(dist, path)).href)) as T;
const DIST = resolve('dist');
const { ConfigSchema } = await importFrom<typeof ConfigModule>(DIST, 'config.js');
const { decodeRecords, native, RECORD_STRIDE } = await importFrom<typeof NativeModule>(DIST, 'native.js');
const sensorOptions = ConfigSchema.parse({}).sensor;
const settle = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** CPU time of this process's JavaScript thread so far, in ns (schedstat: the scheduler's own account). */
const jsThreadCpuNs = () => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);

/**
 * The batches the addon hands over during one storm, as it hands them over, and what receiving and decoding
 * them cost the JavaScript thread per exec during the live storm: the floor under any JavaScript consumer.
 */
async function record(): Promise<{ batches: { packed: Float64Array; attachments: string }[]; floorMicros: number }> {
  const work = mkdtempSync(join(tmpdir(), 'execsentry-bench-replay-'));
  const storm = join(work, 'exec-storm');
  execFileSync('cc', ['-O2', '-o', storm, resolve('bench/exec-storm.c')], { stdio: 'inherit' });
  const program = join(work, 'storm-true');
  copyFileSync('/bin/true', program);
  chmodSync(program, 0o755);
  const batches: { packed: Float64Array; attachments: string }[] = [];
  const connector = new (native().ProcessConnector)(
    { socketBufferBytes: sensorOptions.socketBufferBytes, maxArgsBytes: sensorOptions.maxArgsBytes },
    (packed, attachments) => {
      batches.push({ packed: packed.slice(), attachments });
      decodeRecords(packed, attachments);
    },
  );
  await settle(300); // subscribed
  const cpuBefore = jsThreadCpuNs();
  const execsBefore = connector.stats().execs;
  const run = spawn(storm, [String(EXECS_PER_WORKER), String(WORKERS), 'replay', join(work, 'replay.log'), program], { stdio: 'ignore' });
  await new Promise((done) => run.once('exit', done));
  await settle(300); // the last records
  const floorMicros = (jsThreadCpuNs() - cpuBefore) / 1000 / (connector.stats().execs - execsBefore);
  connector.stop();
  rmSync(work, { recursive: true, force: true });
  return { batches, floorMicros };
}

interface Round {
  all: number;
  decode: number;
  build: number;
  encode: number;
  write: number;
}

/** A started sensor of the build in `dist`, and the replay of the recording through it. */
async function replayer(dist: string, recorded: { packed: Float64Array; attachments: string }[]) {
  const { Sensor } = await importFrom<typeof SensorModule>(dist, 'sensor/index.js');
  const { createLogger } = await importFrom<typeof LogModule>(dist, 'log.js');
  const encode: (event: ProcessEvent) => string = existsSync(join(dist, 'ecs/json.js'))
    ? (await importFrom<typeof JsonModule>(dist, 'ecs/json.js')).documentJson
    : (event) => JSON.stringify(event);
  const sensor = new Sensor({ ...sensorOptions, logger: createLogger('warn', 'json') });
  // onBatch is private: the connector's callback. The replay calls it synchronously, so no live batch (the
  // sensor is subscribed for real) comes between two replayed ones, and only replayed events are counted.
  const onBatch = (records: ConnectorRecord[]) => (sensor as unknown as { onBatch(records: ConnectorRecord[]): void }).onBatch(records);
  const devNull = openSync('/dev/null', 'w');
  let replaying = false;
  let events = 0;
  let capture: ProcessEvent[][] | undefined;
  const lines = (batch: ProcessEvent[]) => {
    let text = '';
    for (const event of batch) text += `${encode(event)}\n`;
    return text;
  };
  // As `execsentry events` writes them (src/commands/events.ts), to /dev/null.
  await sensor.start((batch) => {
    if (!replaying) return;
    events += batch.length;
    if (capture !== undefined) capture.push(batch);
    else writeSync(devNull, lines(batch));
  });
  const decodeAll = () => recorded.map(({ packed, attachments }) => decodeRecords(packed, attachments));
  const replay = (batches: ConnectorRecord[][]) => {
    replaying = true;
    for (const records of batches) onBatch(records);
    replaying = false;
  };
  // The first replay meets new uids and gids (the names wait for NSS) and cold code: not counted.
  replay(decodeAll());
  await settle(500);
  return {
    stop: () => sensor.stop(),
    async round(): Promise<Round> {
      // All together, batch after batch, as the agent runs them.
      events = 0;
      replaying = true;
      let started = performance.now();
      for (const { packed, attachments } of recorded) onBatch(decodeRecords(packed, attachments));
      const all = performance.now() - started;
      replaying = false;
      const count = events;
      await settle(20);
      // Then each phase alone, over the whole recording.
      started = performance.now();
      const decoded = decodeAll();
      const decode = performance.now() - started;
      capture = [];
      started = performance.now();
      replay(decoded);
      const build = performance.now() - started;
      const built = capture;
      capture = undefined;
      started = performance.now();
      const texts = built.map(lines);
      const encoded = performance.now() - started;
      started = performance.now();
      for (const text of texts) writeSync(devNull, text);
      const write = performance.now() - started;
      await settle(20);
      const micros = (ms: number) => (ms * 1000) / count;
      return { all: micros(all), decode: micros(decode), build: micros(build), encode: micros(encoded), write: micros(write) };
    },
  };
}

const { batches: recorded, floorMicros } = await record();
const builds = [{ name: 'this build', replay: await replayer(DIST, recorded), rounds: [] as Round[] }];
if (COMPARE !== undefined) builds.push({ name: COMPARE, replay: await replayer(COMPARE, recorded), rounds: [] });
for (let round = 0; round < ROUNDS; round++) {
  for (const build of round % 2 === 0 ? builds : [...builds].reverse()) build.rounds.push(await build.replay.round());
}
for (const build of builds) await build.replay.stop();

const records = recorded.reduce((n, { packed }) => n + packed.length, 0) / RECORD_STRIDE;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? NaN;
const cell = (rounds: Round[], pick: (round: Round) => number) => {
  const values = rounds.map(pick);
  return `${median(values).toFixed(1)} / ${Math.min(...values).toFixed(1)} µs`;
};
process.stdout.write(`${recorded.length} batches, ${Math.round(records)} records recorded; ${ROUNDS} rounds\n`);
process.stdout.write(`live, during the recorded storm: receiving and decoding the hand-overs, nothing else, cost the JavaScript thread ${floorMicros.toFixed(1)} µs per exec\n\n`);
process.stdout.write(`| per exec event, JavaScript thread (median / best round) | ${builds.map((build) => build.name).join(' | ')} |\n`);
process.stdout.write(`|---|${builds.map(() => '---|').join('')}\n`);
const row = (label: string, pick: (round: Round) => number) =>
  process.stdout.write(`| ${label} | ${builds.map((build) => cell(build.rounds, pick)).join(' | ')} |\n`);
row('all together (`events` to /dev/null)', (round) => round.all);
row('decoding the hand-over (src/native.ts decodeRecords)', (round) => round.decode);
row('building the events (process table, enrichment, names)', (round) => round.build);
row('encoding them', (round) => round.encode);
row('writing them', (round) => round.write);
