import { createServer, type Server } from 'node:http';
import type { Logger } from '../log.js';

/**
 * The Prometheus text exposition (format 0.0.4) of a stats snapshot: every number (and boolean, as 0/1)
 * becomes `execsentry_<path in snake_case>`; the per-output section becomes one series per output with an
 * `output` label. Types are `untyped`: the snapshot mixes counters and gauges and Prometheus treats
 * untyped series correctly for both rate() and plain reads.
 */
export function prometheusText(snapshot: Record<string, unknown>): string {
  const families = new Map<string, string[]>();
  const add = (name: string, labels: string, value: number): void => {
    let lines = families.get(name);
    if (lines === undefined) families.set(name, (lines = []));
    lines.push(`${name}${labels} ${formatNumber(value)}`);
  };
  const walk = (value: unknown, path: string[], labels: string): void => {
    if (typeof value === 'number') add(metricName(path), labels, value);
    else if (typeof value === 'boolean') add(metricName(path), labels, value ? 1 : 0);
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(inner, [...path, key], labels);
    }
  };
  for (const [section, value] of Object.entries(snapshot)) {
    if (section === 'outputs' && value !== null && typeof value === 'object') {
      for (const [output, stats] of Object.entries(value)) walk(stats, ['output'], `{output="${escapeLabel(output)}"}`);
    } else walk(value, [section], '');
  }
  let text = '';
  for (const [name, lines] of families) text += `# TYPE ${name} untyped\n${lines.join('\n')}\n`;
  return text;
}

function metricName(path: readonly string[]): string {
  const snake = path.map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().replace(/[^a-z0-9_]/g, '_'));
  return `execsentry_${snake.join('_')}`;
}

/** Label values may hold anything (an output's URL); the format allows any UTF-8 with \\, " and \n escaped. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
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
