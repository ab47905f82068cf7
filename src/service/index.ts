import type { Agent, AgentStats } from '../agent.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { AGENT_VERSION } from '../version.js';
import { MetricsServer } from './metrics.js';
import { SystemdNotifier } from './notify.js';
import { StatusServer, statusSocketPath } from './status-server.js';

export { SystemdNotifier } from './notify.js';
export { StatusServer, statusSocketPath, queryStatus } from './status-server.js';
export { MetricsServer, prometheusText } from './metrics.js';
export { HealthMonitor, type HealthSnapshot } from './health.js';

/** How often systemd's STATUS= line is refreshed (`systemctl status` shows it). */
const STATUS_REFRESH_MS = 10_000;

/** What the status socket and the metrics endpoint serve: who answers, and the agent's stats. */
export interface ServiceSnapshot extends AgentStats {
  version: string;
  pid: number;
}

export function serviceSnapshot(agent: Agent): ServiceSnapshot {
  return { version: AGENT_VERSION, pid: process.pid, ...agent.stats() };
}

/**
 * Connects the agent to the world around it: sd_notify (READY=1 once the sensor is subscribed and the
 * rules are loaded, WATCHDOG=1, STATUS=, STOPPING=1), the status socket, and the optional metrics
 * endpoint. The agent knows nothing of these; they hang on its ready and stopping hooks.
 */
export function attachService(agent: Agent, config: Config, logger: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const notifier = new SystemdNotifier(logger, env);
  const snapshot = (): ServiceSnapshot => serviceSnapshot(agent);
  const status = new StatusServer(statusSocketPath(config.runtimeDir), snapshot, logger);
  const metrics = config.metrics.enabled
    ? new MetricsServer(config.metrics.address, config.metrics.port, () => snapshot() as unknown as Record<string, unknown>, logger)
    : undefined;
  let refresh: NodeJS.Timeout | undefined;

  agent.onReady(async () => {
    await status.start();
    await metrics?.start();
    notifier.ready(statusLine(agent.stats()));
    notifier.startWatchdog();
    if (notifier.enabled) {
      // At least as often as the watchdog pings, so a short WatchdogSec also gets fresh counters.
      const watchdogMs = notifier.watchdogIntervalMs();
      const everyMs = watchdogMs === undefined ? STATUS_REFRESH_MS : Math.min(STATUS_REFRESH_MS, Math.max(100, watchdogMs / 2));
      refresh = setInterval(() => notifier.status(statusLine(agent.stats())), everyMs);
      refresh.unref();
    }
  });
  agent.onStopping(async () => {
    if (refresh !== undefined) clearInterval(refresh);
    notifier.stopping();
    await status.stop();
    await metrics?.stop();
  });
}

/** The one-line summary systemd shows: the counters an operator checks first. */
export function statusLine(stats: AgentStats): string {
  const sensor = (stats.sensor ?? {}) as unknown as Record<string, unknown>;
  const lost = typeof sensor['lost'] === 'number' ? sensor['lost'] : typeof sensor['overruns'] === 'number' ? sensor['overruns'] : 0;
  const events = stats.engine?.events ?? 0;
  const alerts = stats.engine?.alerts ?? 0;
  return `${stats.state}: ${stats.rules.enabled} rule(s), ${events} event(s), ${alerts} alert(s), ${lost} lost`;
}
