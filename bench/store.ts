/**
 * `npm run bench:store`: the new-terms history at 1,000,000 tuples of realistic executable paths (about
 * 40 bytes). Measures the compiled store (dist/) as the agent runs it. Loading and lookups run in a fresh
 * child process so that its RSS delta is the store's own memory, not the writer's leftovers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type * as StoreModule from '../src/store/index.js';

const TUPLES = Number(process.env.BENCH_STORE_TUPLES ?? 1_000_000);
const RULE = '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb';
const FIELDS = ['process.executable'];
const WINDOW_MS = 14 * 86_400_000;

// npm runs scripts from the package root, where dist/ is.
const { openHistoryStore, HISTORY_FILE_NAME } = (await import(pathToFileURL(resolve('dist/store/index.js')).href)) as typeof StoreModule;
const logger = pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true }));

const DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/lib/x86_64-linux-gnu', '/opt/vendor/agent/bin', '/usr/libexec/openssh', '/snap/core22/current/usr/bin', '/home/builder/.cargo/bin', '/var/lib/docker/overlay2/merged/bin', '/tmp/build-cache/bin'];
const NAMES = ['python3', 'systemd-resolved', 'containerd-shim', 'gpg-agent', 'node', 'postgres', 'nginx', 'sshd', 'cron', 'rsync', 'apt-get', 'dpkg-query'];

/** Deterministic, distinct, realistic paths averaging about 40 bytes. */
function executablePath(i: number): string {
  const dir = DIRS[i % DIRS.length]!;
  const name = NAMES[Math.floor(i / DIRS.length) % NAMES.length]!;
  return `${dir}/${name}-${i.toString(36).padStart(9, '0')}`;
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

interface LoadReport {
  openMs: number;
  tuples: number;
  rssBytes: number;
  heapBytes: number;
  lookupsPerSecond: number;
  missesPerSecond: number;
}

/** Child mode: open the existing store, measure memory and lookups, report as JSON on stdout. */
async function measureLoad(stateDir: string): Promise<void> {
  gc();
  const rssBefore = process.memoryUsage().rss;
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const store = await openHistoryStore({ stateDir, maxTuplesPerRule: 1_000_000, logger });
  const openMs = performance.now() - started;
  // let the file buffer read at open be collected and unmapped before measuring what stays
  gc();
  await new Promise((resolve) => setTimeout(resolve, 100));
  gc();
  const rssBytes = process.memoryUsage().rss - rssBefore;
  const heapBytes = process.memoryUsage().heapUsed - heapBefore;
  const history = store.history(RULE, FIELDS, WINDOW_MS);
  const tuples = store.stats().tuples;
  const probes = Array.from({ length: 100_000 }, (_, i) => [executablePath((i * 7919) % TUPLES)]);
  const misses = Array.from({ length: 100_000 }, (_, i) => [`${executablePath(i)}-unseen`]);
  const rate = (list: string[][], expectHit: boolean): number => {
    let found = 0;
    const rounds = 20;
    const t = performance.now();
    for (let r = 0; r < rounds; r++) for (const tuple of list) if (history.lastSeen(tuple) !== undefined) found++;
    const seconds = (performance.now() - t) / 1000;
    if (found !== (expectHit ? list.length * rounds : 0)) throw new Error(`lookup found ${found}`);
    return (list.length * rounds) / seconds;
  };
  rate(probes, true); // warm up
  const report: LoadReport = { openMs, tuples, rssBytes, heapBytes, lookupsPerSecond: rate(probes, true), missesPerSecond: rate(misses, false) };
  await store.close();
  process.stdout.write(JSON.stringify(report) + '\n');
}

async function main(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'execsentry-bench-store-'));
  try {
    const paths = Array.from({ length: TUPLES }, (_, i) => executablePath(i));
    const averagePath = paths.reduce((sum, p) => sum + Buffer.byteLength(p), 0) / TUPLES;
    const now = Date.now();

    const store = await openHistoryStore({ stateDir, maxTuplesPerRule: 1_000_000, logger, compactionMinBytes: Number.MAX_SAFE_INTEGER });
    const history = store.history(RULE, FIELDS, WINDOW_MS);

    // recordNew as the engine calls it for a burst: a batch per tick, one group commit (fdatasync) each
    const batch = 1000;
    let t = performance.now();
    for (let i = 0; i < TUPLES; i += batch) {
      const acks: Promise<void>[] = [];
      for (let j = i; j < Math.min(TUPLES, i + batch); j++) acks.push(history.recordNew([paths[j]!], now));
      await Promise.all(acks);
    }
    const recordRate = TUPLES / ((performance.now() - t) / 1000);
    const commitsForBurst = store.stats().commits;

    // one alert at a time: each recordNew waits for its own fdatasync
    const serial = 2000;
    const alerts = store.history('bench-serial-rule', FIELDS, WINDOW_MS);
    t = performance.now();
    for (let i = 0; i < serial; i++) await alerts.recordNew([paths[i]!], now);
    const serialRate = serial / ((performance.now() - t) / 1000);
    await store.forget('bench-serial-rule');

    // touch: in memory at once, written by the next batch
    t = performance.now();
    for (let i = 0; i < TUPLES; i++) history.touch([paths[i]!], now + 5000);
    const touchRate = TUPLES / ((performance.now() - t) / 1000);
    // how long the event loop (the agent's event processing) is held up while the batch and the
    // compaction are written
    const stall = monitorEventLoopDelay({ resolution: 1 });
    stall.enable();
    t = performance.now();
    await store.flush();
    const touchFlushMs = performance.now() - t;
    const logBytes = store.stats().diskBytes;

    t = performance.now();
    await store.compact();
    const compactionMs = performance.now() - t;
    stall.disable();
    await store.close();
    const fileBytes = statSync(join(stateDir, HISTORY_FILE_NAME)).size;

    const child = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--load', stateDir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (child.status !== 0) throw new Error(`load measurement failed (${child.status})`);
    const load = JSON.parse(child.stdout) as LoadReport;
    if (load.tuples !== TUPLES) throw new Error(`reopened with ${load.tuples} tuples, expected ${TUPLES}`);

    const rows: [string, string, string][] = [
      ['tuples (single-field, process.executable)', TUPLES.toLocaleString('en-US'), ''],
      ['average path length', `${averagePath.toFixed(1)} bytes`, '~40'],
      ['open (load + verify checksums)', `${(load.openMs / 1000).toFixed(2)} s`, '< 2 s'],
      ['lookups, present (lastSeen)', `${(load.lookupsPerSecond / 1e6).toFixed(2)} M/s`, '≥ 1 M/s'],
      ['lookups, absent', `${(load.missesPerSecond / 1e6).toFixed(2)} M/s`, '≥ 1 M/s'],
      [`recordNew, batches of ${batch} per tick (group commit)`, `${Math.round(recordRate).toLocaleString('en-US')} /s (${commitsForBurst} fdatasyncs)`, ''],
      ['recordNew, one at a time (an fdatasync each)', `${Math.round(serialRate).toLocaleString('en-US')} /s`, ''],
      ['touch (memory; written in batches)', `${(touchRate / 1e6).toFixed(2)} M/s`, ''],
      [`writing ${TUPLES.toLocaleString('en-US')} pending touches`, `${touchFlushMs.toFixed(0)} ms`, ''],
      [`compaction (${mb(logBytes)} MiB log → ${mb(fileBytes)} MiB)`, `${(compactionMs / 1000).toFixed(2)} s`, ''],
      ['longest event-loop stall during those two writes', `${(stall.max / 1e6).toFixed(0)} ms`, ''],
      ['disk per tuple (compacted)', `${(fileBytes / TUPLES).toFixed(1)} B`, '≤ 100 B'],
      ['memory per tuple (RSS delta after load)', `${(load.rssBytes / TUPLES).toFixed(1)} B`, '≤ 200 B'],
      ['of which JS heap', `${(load.heapBytes / TUPLES).toFixed(1)} B`, ''],
    ];
    process.stdout.write(`| metric | measured | target |\n|---|---|---|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`);
    process.stdout.write(`\nNode ${process.version}, ${process.platform}/${process.arch}, state dir on ${tmpdir()}\n`);
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--load') await measureLoad(process.argv[3]!);
else await main();
