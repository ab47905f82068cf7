import { createServer, type Server } from 'node:http';
import type { Logger } from '../log.js';

type MetricType = 'counter' | 'gauge';

/**
 * What each number of the status document is to Prometheus: a counter (only ever grows while the agent
 * runs; rate() works on it, and it is named `_total`) or a gauge (a level now), and its HELP text. Keyed by
 * the number's path in the document; an output's counters are under `output.`.
 */
const METRICS: Record<string, [MetricType, string]> = {
  uptimeSeconds: ['gauge', 'Seconds since the agent started.'],
  pid: ['gauge', 'Process id of the agent.'],
  'rules.loaded': ['gauge', 'Rules loaded from the rule files.'],
  'rules.enabled': ['gauge', 'Rules enabled and evaluated.'],
  'rules.skippedUnsupported': ['gauge', 'Rules skipped as unsupported (skipUnsupported).'],
  'rules.reloads': ['counter', 'Rule reloads (SIGHUP) that replaced the rule set.'],
  'rules.rejectedReloads': ['counter', 'Rule reloads rejected because the new set had a problem.'],
  'sensor.events': ['counter', 'Process events enriched and handed to the engine (exec, and fork and end when produced).'],
  'sensor.forkEvents': ['counter', 'Fork events produced (only when asked for or named by a rule).'],
  'sensor.endEvents': ['counter', 'End events produced (only when asked for or named by a rule).'],
  'sensor.lost': ['counter', 'Kernel records lost, from gaps in their sequence numbers (a lower bound).'],
  'sensor.overruns': ['counter', 'Receive-queue overflows the kernel reported (ENOBUFS).'],
  'sensor.seqGaps': ['counter', 'Gaps in the kernel records\' per-CPU sequence numbers.'],
  'sensor.recovered': ['counter', 'Events emitted by the /proc rescan after an overrun.'],
  'sensor.recoveryScans': ['counter', '/proc rescans after an overrun.'],
  'sensor.partial': ['counter', 'Events whose process exited before /proc could be read completely.'],
  'sensor.exitedBeforeSnapshot': ['counter', 'Execs whose process was gone before its /proc snapshot.'],
  'sensor.denied': ['counter', '/proc reads refused by permissions.'],
  'sensor.socketEndsSkipped': ['counter', 'Standard-stream sockets reported without their ends (the socket-copy closer was busy or stuck).'],
  'sensor.pidReused': ['counter', 'Snapshots refused because the pid belonged to a newer process.'],
  'sensor.superseded': ['counter', 'Execs whose pid exec\'d again before it could be read.'],
  'sensor.tableSize': ['gauge', 'Processes in the process table.'],
  'sensor.tableEvicted': ['counter', 'Processes evicted from the full process table.'],
  'sensor.leadersRetained': ['gauge', 'Session and group leaders kept after their exit for members still running.'],
  'sensor.leadersEvicted': ['counter', 'Exited session and group leaders dropped beyond the bound.'],
  'sensor.nameLookUps': ['counter', 'User and group name look-ups (NSS).'],
  'sensor.received': ['counter', 'Kernel records received.'],
  'sensor.forks': ['counter', 'Fork records received.'],
  'sensor.exits': ['counter', 'Exit records received.'],
  'sensor.backpressureWaits': ['counter', 'Times the reader thread waited for the JavaScript thread.'],
  'sensor.sustainedHandOvers': ['counter', 'Batches handed to the JavaScript thread with the wider window of a sustained flow of records.'],
  'sensor.readerWakeups': ['counter', 'Wake-ups of the reader thread.'],
  'sensor.lateExecs': ['counter', 'Execs the reader found only at its 50 ms drain, not when their exec doorbell rang.'],
  'sensor.socketBufferBytes': ['gauge', 'Netlink receive buffer granted, in bytes.'],
  'sensor.callbackErrors': ['counter', 'Batches whose handling threw.'],
  'sensor.hashedFiles': ['counter', 'Executable files read and hashed (sensor.hashes; cache misses).'],
  'sensor.hashedBytes': ['counter', 'Bytes read to hash executable files.'],
  'sensor.hashCacheHits': ['counter', 'Exec events whose hashes came from the cache.'],
  'sensor.hashTimeouts': ['counter', 'Exec events sent without hashes after sensor.hashWaitMs.'],
  'sensor.hashWorkerRestarts': ['counter', 'Hash worker threads restarted because one file took longer than its deadline.'],
  'sensor.hashWorkerErrors': ['counter', 'Errors of the hash worker thread.'],
  'engine.rules': ['gauge', 'Rules held by the engine.'],
  'engine.enabledRules': ['gauge', 'Enabled rules held by the engine.'],
  'engine.events': ['counter', 'Events evaluated.'],
  'engine.matches': ['counter', 'Events that matched a rule\'s query (one per rule).'],
  'engine.alerts': ['counter', 'Alerts raised.'],
  'engine.suppressed': ['counter', 'Alerts held back by max_signals.'],
  'engine.knownTerms': ['counter', 'new_terms sightings of terms already in the history window (no alert).'],
  'engine.tuplesTruncated': ['counter', 'Events whose array fields gave more term tuples than considered.'],
  'engine.missingTermFields': ['counter', 'Events matching a new_terms rule but missing one of its fields.'],
  'engine.historyWriteFailures': ['counter', 'New terms whose history record could not be written.'],
  'engine.pendingAlerts': ['gauge', 'Alerts waiting for their history record to reach the disk.'],
  'engine.evaluationErrors': ['counter', 'Rule evaluations that threw.'],
  'engine.sequencePartials': ['gauge', 'Partial EQL sequences held.'],
  'engine.sequencesDropped': ['counter', 'Partial EQL sequences dropped beyond maxPartialSequencesPerRule.'],
  'engine.sequencesExpired': ['counter', 'Partial EQL sequences that outlived their maxspan.'],
  'evaluation.backlog': ['gauge', 'Events waiting for evaluation.'],
  'evaluation.peakBacklog': ['gauge', 'The most events that ever waited for evaluation.'],
  'evaluation.yields': ['counter', 'Times evaluation gave the event loop back mid-batch.'],
  'evaluation.slowEvaluations': ['counter', 'Events whose evaluation by all rules took more than 10 ms.'],
  'evaluation.slowestEvaluationMs': ['gauge', 'The longest evaluation of one event by all rules, in milliseconds.'],
  'store.rules': ['gauge', 'new_terms histories held.'],
  'store.tuples': ['gauge', 'new_terms tuples held.'],
  'store.evicted': ['counter', 'Tuples evicted by store.maxTuplesPerRule.'],
  'store.expired': ['counter', 'Tuples dropped by compaction as out of their window.'],
  'store.diskBytes': ['gauge', 'Size of the history file in bytes.'],
  'store.pendingTouches': ['gauge', 'Last-seen refreshes waiting for the next batch write.'],
  'store.commits': ['counter', 'Group commits (one write and fdatasync each).'],
  'store.recordsWritten': ['counter', 'History records written.'],
  'store.writeErrors': ['counter', 'History writes that failed.'],
  'store.compactions': ['counter', 'History compactions.'],
  'store.lastCompactionMs': ['gauge', 'Duration of the last compaction in milliseconds.'],
  'store.tornRecordsDropped': ['gauge', 'Torn last records dropped when the history was opened.'],
  'store.damagedRanges': ['gauge', 'Damaged byte ranges skipped when the history was opened.'],
  'store.orphanSightings': ['gauge', 'Sightings of unknown histories skipped when the history was opened.'],
  'health.rssBytes': ['gauge', 'Resident memory of the agent in bytes.'],
  'health.heapUsedBytes': ['gauge', 'JavaScript heap in use in bytes.'],
  'health.eventLoopDelayMs.mean': ['gauge', 'Mean event-loop delay in milliseconds.'],
  'health.eventLoopDelayMs.p99': ['gauge', '99th percentile of the event-loop delay in milliseconds.'],
  'health.eventLoopDelayMs.max': ['gauge', 'Longest event-loop delay in milliseconds.'],
  'output.sent': ['counter', 'Alerts handed to the output\'s destination (a resend counts again).'],
  'output.acknowledged': ['counter', 'Alerts the destination confirmed (or, for stdout and file, wrote).'],
  'output.retried': ['counter', 'Alerts sent again after a retryable failure.'],
  'output.dropped': ['counter', 'Alerts lost: spool full, stdout closed, local write failed.'],
  'output.deadLettered': ['counter', 'Alerts the destination refused for good, kept in the dead-letter file.'],
  'output.spoolBytes': ['gauge', 'Bytes held in the output\'s disk spool.'],
  'output.pending': ['gauge', 'Alerts waiting in the output\'s spool or write queue.'],
};

/** Dates of the status document exposed as Unix times, Prometheus's way to say "when". */
const TIMESTAMPS: Record<string, string> = {
  startedAt: 'Unix time the agent started.',
  'output.lastErrorAt': 'Unix time of the output\'s last failure.',
};

/** Metric families in the order first seen, each with its HELP, TYPE and series. */
class Exposition {
  private readonly families = new Map<string, { help: string; type: MetricType | 'untyped'; lines: string[] }>();

  add(name: string, type: MetricType | 'untyped', help: string, labels: string, value: number): void {
    let family = this.families.get(name);
    if (family === undefined) this.families.set(name, (family = { help, type, lines: [] }));
    family.lines.push(`${name}${labels} ${formatNumber(value)}`);
  }

  text(): string {
    let text = '';
    for (const [name, family] of this.families) text += `# HELP ${name} ${escapeHelp(family.help)}\n# TYPE ${name} ${family.type}\n${family.lines.join('\n')}\n`;
    return text;
  }
}

/**
 * The Prometheus text exposition (format 0.0.4) of a stats snapshot: every number (and boolean, as 0/1)
 * becomes `execsentry_<path in snake_case>`, with `# HELP` and `# TYPE` from METRICS and `_total` on
 * counters; dates become gauges of Unix seconds; the per-output section becomes one series per output with
 * `output` and `kind` labels. A number METRICS does not know yet is still exposed, `untyped`, rather than
 * hidden.
 */
export function prometheusText(snapshot: Record<string, unknown>): string {
  const exposition = new Exposition();
  if (typeof snapshot['version'] === 'string') exposition.add('execsentry_info', 'gauge', "The agent's version.", `{version="${escapeLabel(snapshot['version'])}"}`, 1);
  const walk = (value: unknown, path: string[], labels: string): void => {
    const key = path.join('.');
    if (typeof value === 'number' || typeof value === 'boolean') {
      const [type, help] = METRICS[key] ?? ['untyped' as const, `${key} of the status document.`];
      exposition.add(metricName(path) + (type === 'counter' ? '_total' : ''), type, help, labels, Number(value));
    } else if (typeof value === 'string' && key in TIMESTAMPS) {
      const ms = Date.parse(value);
      if (Number.isFinite(ms)) exposition.add(timestampName(path), 'gauge', TIMESTAMPS[key]!, labels, ms / 1000);
    } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [inner, innerValue] of Object.entries(value)) walk(innerValue, [...path, inner], labels);
    }
  };
  for (const [section, value] of Object.entries(snapshot)) {
    if (section === 'outputs' && value !== null && typeof value === 'object') {
      for (const [output, stats] of Object.entries(value as Record<string, unknown>)) {
        const kind = (stats as { kind?: unknown } | null)?.kind;
        walk(stats, ['output'], `{output="${escapeLabel(output)}"${typeof kind === 'string' ? `,kind="${escapeLabel(kind)}"` : ''}}`);
      }
    } else walk(value, [section], '');
  }
  return exposition.text();
}

/** Prometheus's own names for times: startedAt → `start_time_seconds`, lastErrorAt → `last_error_timestamp_seconds`. */
function timestampName(path: readonly string[]): string {
  const last = path[path.length - 1]!;
  const stem = last === 'startedAt' ? ['startTime'] : [last.replace(/At$/, ''), 'timestamp'];
  return `${metricName([...path.slice(0, -1), ...stem])}_seconds`;
}

function metricName(path: readonly string[]): string {
  const snake = path.map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().replace(/[^a-z0-9_]/g, '_'));
  return `execsentry_${snake.join('_')}`;
}

/** Label values may hold anything (an output's URL); the format allows any UTF-8 with \\, " and \n escaped. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes only \\ and newlines. */
function escapeHelp(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** GET /metrics on a loopback address (the config refuses any other); everything else is 404. */
export class MetricsServer {
  private server: Server | undefined;

  constructor(
    private readonly address: string,
    private readonly port: number,
    private readonly snapshot: () => Record<string, unknown>,
    private readonly logger: Logger,
  ) {}

  /** Resolves false (with one warning) when the port is taken: metrics are optional, detection is not. */
  async start(): Promise<boolean> {
    const server = createServer((request, response) => {
      if (request.method !== 'GET' || (request.url ?? '/').split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('execsentry serves GET /metrics only\n');
        return;
      }
      let body: string;
      try {
        body = prometheusText(this.snapshot());
      } catch (err) {
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`${err instanceof Error ? err.message : String(err)}\n`);
        return;
      }
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port, this.address, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.logger.warn({ address: this.address, port: this.port, err: err instanceof Error ? err.message : String(err) }, 'cannot serve metrics');
      return false;
    }
    this.server = server;
    this.logger.info({ url: `http://${this.address.includes(':') ? `[${this.address}]` : this.address}:${this.port}/metrics` }, 'metrics endpoint listening');
    return true;
  }

  /** Idempotent. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
