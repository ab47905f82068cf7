import type { Config } from './config.js';
import type { Alert, ProcessAction } from './ecs/types.js';
import { DetectionEngine, type EngineStats, type RuleCounters } from './engine/index.js';
import { EvaluationQueue, type EvaluationQueueStats } from './engine/queue.js';
import type { Logger } from './log.js';
import { openOutputs, type Outputs } from './outputs/index.js';
import { loadRuleSet, type LoadedRule, type RuleSet } from './rules/index.js';
import { Sensor } from './sensor/index.js';
import { openHistoryStore, type HistoryStore } from './store/index.js';
import { HealthMonitor, type HealthSnapshot } from './service/health.js';
import { rulePathsToLoad } from './service/rule-paths.js';

/**
 * The running agent: Sensor → DetectionEngine → Outputs, with the new-terms history underneath. Owns the
 * start and stop order, signals (SIGINT/SIGTERM stop, SIGHUP reloads the rules), the periodic stats line
 * and one stats() object for the status socket and metrics. Lifecycle hooks let the service layer report
 * readiness and stopping to systemd without the agent knowing about systemd.
 */

/** Everything must be stopped, flushed and closed within this budget after SIGINT/SIGTERM. */
export const STOP_BUDGET_MS = 5_000;
/** How often max_signals intervals are checked for their end-of-interval warning. */
const TICK_INTERVAL_MS = 1_000;
/**
 * How far behind the clock sequence rules are told time has moved: the sensor hands execs over within
 * milliseconds (its reader batches for at most 5 ms), so two seconds leave room for a loaded host.
 */
const SEQUENCE_CLOCK_MARGIN_MS = 2_000;

export interface AgentStats {
  state: AgentState;
  startedAt?: string;
  uptimeSeconds: number;
  rules: { loaded: number; enabled: number; skippedUnsupported: number; reloads: number; rejectedReloads: number };
  sensor: ReturnType<Sensor['stats']> | undefined;
  engine: EngineStats | undefined;
  /** Per enabled rule: matches, alerts, known terms, max_signals suppressions (why a rule is silent). */
  ruleCounters: RuleCounters[];
  evaluation: EvaluationQueueStats | undefined;
  store: ReturnType<HistoryStore['stats']> | undefined;
  outputs: ReturnType<Outputs['stats']> | undefined;
  /** RSS, heap and event-loop delay of this process */
  health: HealthSnapshot;
}

/** Rules shown by name in the stats line: the ones matching most, so the line stays short with 250 rules. */
const STATS_LINE_RULES = 10;

/** The stats line's per-rule part: rule name → "matches/alerts/known terms/suppressed", busiest first. */
function busiestRules(counters: readonly RuleCounters[]): Record<string, string> {
  const busiest: Record<string, string> = {};
  const active = counters.filter((rule) => rule.matches > 0).sort((a, b) => b.matches - a.matches);
  for (const rule of active.slice(0, STATS_LINE_RULES)) {
    busiest[rule.name] = `matches=${rule.matches} alerts=${rule.alerts} knownTerms=${rule.knownTerms} suppressed=${rule.suppressed}`;
  }
  if (active.length > STATS_LINE_RULES) busiest['(others)'] = `${active.length - STATS_LINE_RULES} more rule(s) with matches`;
  return busiest;
}

export type AgentState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

type Hook = (agent: Agent) => void | Promise<void>;

export class Agent {
  private state: AgentState = 'new';
  private startedAtMs: number | undefined;
  private ruleSet: RuleSet | undefined;
  private store: HistoryStore | undefined;
  private outputs: Outputs | undefined;
  private engine: DetectionEngine | undefined;
  private evaluation: EvaluationQueue | undefined;
  private sensor: Sensor | undefined;
  private timers: NodeJS.Timeout[] = [];
  private readonly health = new HealthMonitor();
  /** Events counted at the previous stats line, for its events/s. */
  private previousStatsLine = { atMs: 0, events: 0 };
  private reloads = 0;
  private rejectedReloads = 0;
  private reloading: Promise<boolean> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly readyHooks: Hook[] = [];
  private readonly stoppingHooks: Hook[] = [];

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    /** Names an entry of config.rules in a message after where it was set (LoadedConfig.describeSetting). */
    private readonly describeRulesEntry: (index: number) => string = (index) => `rules[${index}] = ${JSON.stringify(config.rules[index])}`,
  ) {}

  /** Called once the sensor is subscribed and alerts can flow (sd_notify READY=1, status socket). */
  onReady(hook: Hook): void {
    this.readyHooks.push(hook);
  }

  /** Called when stopping begins, before anything is stopped (sd_notify STOPPING=1). */
  onStopping(hook: Hook): void {
    this.stoppingHooks.push(hook);
  }

  /**
   * Starts in dependency order: rules (so a bad rule file stops us before anything else is touched), the
   * history store (takes the state-directory lock), the outputs, the engine, and last the sensor. On a
   * failure whatever was started is stopped again before the error is rethrown.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`agent cannot start from state ${this.state}`);
    this.state = 'starting';
    try {
      this.ruleSet = await this.loadRules();
      this.store = await openHistoryStore({
        stateDir: this.config.stateDir,
        allowInsecureStateDir: this.config.allowInsecureStateDir,
        maxTuplesPerRule: this.config.store.maxTuplesPerRule,
        logger: this.logger,
      });
      const outputs = await openOutputs(this.config.outputs, {
        stateDir: this.config.stateDir,
        logger: this.logger,
        format: this.config.format ?? (process.stdout.isTTY === true ? 'pretty' : 'json'),
        // `execsentry run | head`: nobody reads the alerts any more, so stop like on SIGTERM.
        onStdoutClosed: () => this.requestStop('stdout was closed by its reader'),
      });
      this.outputs = outputs;
      this.engine = new DetectionEngine(this.ruleSet.rules, {
        store: this.store,
        logger: this.logger,
        emit: (alert) => this.send(outputs, alert),
        maxPartialSequencesPerRule: this.config.engine.maxPartialSequencesPerRule,
        everyRuleActions: this.config.sensor.events,
      });
      this.sensor = new Sensor({ ...this.config.sensor, events: this.producedActions(this.ruleSet.rules), logger: this.logger });
      const queue = new EvaluationQueue(this.engine, this.logger);
      this.evaluation = queue;
      await this.sensor.start((events) => queue.push(events));
    } catch (err) {
      await this.shutDown();
      this.state = 'stopped';
      throw err;
    }
    this.startedAtMs = Date.now();
    this.state = 'running';
    this.health.start();
    this.previousStatsLine = { atMs: this.startedAtMs, events: 0 };
    this.timers.push(setInterval(() => this.tickEngine(), TICK_INTERVAL_MS).unref());
    if (this.config.statsIntervalSeconds > 0) {
      this.timers.push(setInterval(() => this.logStats(), this.config.statsIntervalSeconds * 1000).unref());
    }
    const enabledRules = this.ruleSet.rules.filter((rule) => rule.enabled);
    const rulesByType: Record<string, number> = {};
    for (const rule of enabledRules) rulesByType[rule.type] = (rulesByType[rule.type] ?? 0) + 1;
    const byType = Object.entries(rulesByType).map(([type, count]) => `${count} ${type}`).join(', ');
    const destinations = this.outputs.destinations();
    this.logger.info(
      { rules: this.ruleSet.rules.length, enabled: enabledRules.length, rulesByType, skippedUnsupported: this.ruleSet.skipped.length, outputs: destinations, stateDir: this.config.stateDir },
      `execsentry running: ${enabledRules.length} rule(s) enabled${byType === '' ? '' : ` (${byType})`}; alerts to ${destinations.join(', ')}`,
    );
    await this.runHooks(this.readyHooks, 'ready');
  }

  private async loadRules(): Promise<RuleSet> {
    const paths = await rulePathsToLoad(this.config.rules, { describe: this.describeRulesEntry });
    for (const directory of paths.empty) this.logger.info({ directory }, 'rules directory holds no rule yet; passed over');
    const ruleSet = await loadRuleSet(paths.load, { skipUnsupported: this.config.skipUnsupported });
    for (const skipped of ruleSet.skipped) this.logger.warn({ file: skipped.file, rule: skipped.rule }, `skipped unsupported rule: ${skipped.why}`);
    if (ruleSet.skipped.length > 0) this.logger.warn({ skipped: ruleSet.skipped.length }, `${ruleSet.skipped.length} unsupported rule(s) skipped`);
    for (const warning of ruleSet.warnings) this.logger.warn(warning);
    return ruleSet;
  }

  /** `sensor.events`, and the fork and end events an enabled rule names (LoadedRule.eventActions). */
  private producedActions(rules: readonly LoadedRule[]): ProcessAction[] {
    const produced = new Set<ProcessAction>(this.config.sensor.events);
    for (const rule of rules) if (rule.enabled) for (const action of rule.eventActions) produced.add(action);
    return [...produced];
  }

  private send(outputs: Outputs, alert: Alert): void {
    // Outputs count and spool their own delivery problems; a rejection here would be a bug in them.
    outputs.send(alert).catch((err: unknown) => {
      this.logger.error({ err: err instanceof Error ? err.message : String(err), alert: alert.event.id }, 'output failed to accept an alert');
    });
  }

  /**
   * Reloads the rule files (SIGHUP). A set with any problem is rejected with one log line and the running
   * set stays; a valid one replaces it atomically between two events.
   */
  async reload(): Promise<boolean> {
    if (this.state !== 'running' || this.engine === undefined) {
      this.logger.warn({ state: this.state }, 'rule reload ignored: the agent is not running');
      return false;
    }
    this.reloading ??= (async () => {
      try {
        const ruleSet = await this.loadRules();
        if (this.state !== 'running') return false;
        this.engine!.setRules(ruleSet.rules);
        this.sensor?.produce(this.producedActions(ruleSet.rules));
        this.ruleSet = ruleSet;
        this.reloads += 1;
        this.logger.info({ rules: ruleSet.rules.length, sensorEvents: this.sensor?.producing() }, 'rules reloaded');
        return true;
      } catch (err) {
        this.rejectedReloads += 1;
        this.logger.error(`rule reload rejected, the previous rules keep running: ${err instanceof Error ? err.message : String(err)}`);
        return false;
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /** Stops in reverse order, flushing the store and the outputs; idempotent, bounded by STOP_BUDGET_MS. */
  async stop(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.stopping ??= (async () => {
      this.state = 'stopping';
      await this.runHooks(this.stoppingHooks, 'stopping');
      await this.shutDown();
      this.state = 'stopped';
      this.logStats('final stats');
      this.health.stop();
    })();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    const deadline = Date.now() + STOP_BUDGET_MS - 500;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.attempt('stop the sensor', () => this.sensor?.stop());
    this.evaluation?.finish();
    await this.attempt('deliver pending alerts', () => this.engine?.drain());
    await this.attempt('close the new-terms history', () => this.store?.close());
    await this.attempt('flush the outputs', () => this.outputs?.flush(Math.max(0, deadline - Date.now())));
    await this.attempt('close the outputs', () => this.outputs?.close());
  }

  private async attempt(what: string, action: () => Promise<void> | undefined): Promise<void> {
    try {
      await action();
    } catch (err) {
      this.logger.error({ err: err instanceof Error ? err.message : String(err) }, `failed to ${what}`);
    }
  }

  private async runHooks(hooks: readonly Hook[], name: string): Promise<void> {
    for (const hook of hooks) {
      try {
        await hook(this);
      } catch (err) {
        this.logger.error({ err: err instanceof Error ? err.message : String(err) }, `${name} hook failed`);
      }
    }
  }

  stats(): AgentStats {
    return {
      state: this.state,
      startedAt: this.startedAtMs === undefined ? undefined : new Date(this.startedAtMs).toISOString(),
      uptimeSeconds: this.startedAtMs === undefined ? 0 : Math.floor((Date.now() - this.startedAtMs) / 1000),
      rules: {
        loaded: this.ruleSet?.rules.length ?? 0,
        enabled: this.engine?.stats().enabledRules ?? 0,
        skippedUnsupported: this.ruleSet?.skipped.length ?? 0,
        reloads: this.reloads,
        rejectedReloads: this.rejectedReloads,
      },
      sensor: this.sensor?.stats(),
      engine: this.engine?.stats(),
      ruleCounters: this.engine?.ruleCounters() ?? [],
      evaluation: this.evaluation?.stats(),
      store: this.store?.stats(),
      outputs: this.outputs?.stats(),
      health: this.health.snapshot(),
    };
  }

  /**
   * Once a second: max_signals intervals end, and sequence rules learn that time has passed. The latter
   * only when every event the sensor handed over has been evaluated, and only as far as the pipeline is
   * known to be caught up (DetectionEngine.sequenceClock), for the execs still on their way from the kernel: an event evaluated after its window was closed
   * could otherwise miss its sequence, or let a missing-event sequence complete that it should cancel.
   */
  private tickEngine(): void {
    const nowMs = Date.now();
    this.engine?.tick(nowMs);
    if (this.engine !== undefined && (this.evaluation?.stats().backlog ?? 0) === 0) {
      this.engine.advanceSequences(this.engine.sequenceClock(nowMs, SEQUENCE_CLOCK_MARGIN_MS), nowMs);
    }
  }

  /** The periodic line on stderr: the counters an operator needs to see that nothing is being lost. */
  private logStats(message = 'stats'): void {
    const stats = this.stats();
    const health = this.health.snapshot(true);
    const nowMs = Date.now();
    const events = stats.engine?.events ?? 0;
    const seconds = (nowMs - this.previousStatsLine.atMs) / 1000;
    const eventsPerSecond = seconds > 0 ? Math.round(((events - this.previousStatsLine.events) / seconds) * 10) / 10 : 0;
    this.previousStatsLine = { atMs: nowMs, events };
    this.logger.info(
      {
        events,
        eventsPerSecond,
        lost: stats.sensor?.lost ?? 0,
        alerts: stats.engine?.alerts ?? 0,
        suppressed: stats.engine?.suppressed ?? 0,
        pendingAlerts: stats.engine?.pendingAlerts ?? 0,
        historyWriteFailures: stats.engine?.historyWriteFailures ?? 0,
        evaluationErrors: stats.engine?.evaluationErrors ?? 0,
        sequencePartials: stats.engine?.sequencePartials ?? 0,
        sequencesDropped: stats.engine?.sequencesDropped ?? 0,
        sequencesExpired: stats.engine?.sequencesExpired ?? 0,
        rulesMatching: busiestRules(stats.ruleCounters),
        slowEvaluations: stats.evaluation?.slowEvaluations ?? 0,
        evaluationBacklog: stats.evaluation?.backlog ?? 0,
        storeTuples: stats.store?.tuples ?? 0,
        storeBytes: stats.store?.diskBytes ?? 0,
        storeEvicted: stats.store?.evicted ?? 0,
        sensor: stats.sensor,
        outputs: stats.outputs,
        rssBytes: health.rssBytes,
        eventLoopDelayMs: health.eventLoopDelayMs,
      },
      message,
    );
  }

  /** Asks the owner of the agent (runUntilSignalled, or whoever started it) to stop it. */
  requestStop(reason: string): void {
    this.logger.info({ reason }, 'stopping');
    if (this.stopRequested !== undefined) this.stopRequested();
    else void this.stop();
  }

  private stopRequested: (() => void) | undefined;

  /**
   * Runs until SIGINT or SIGTERM (or requestStop), reloading on SIGHUP. Resolves once stopped; a stop that
   * overruns its budget is reported and the process exits 1 rather than hang.
   */
  async runUntilSignalled(): Promise<void> {
    const stopSignalled = new Promise<void>((resolve) => (this.stopRequested = resolve));
    const onHangup = (): void => void this.reload();
    const onStop = (signal: NodeJS.Signals): void => this.requestStop(signal);
    process.on('SIGINT', onStop);
    process.on('SIGTERM', onStop);
    process.on('SIGHUP', onHangup);
    try {
      await this.start();
      await stopSignalled;
      const overrun = setTimeout(() => {
        this.logger.error(`stop took longer than ${STOP_BUDGET_MS} ms; exiting without waiting further`);
        process.exit(1);
      }, STOP_BUDGET_MS);
      overrun.unref();
      await this.stop();
      clearTimeout(overrun);
    } finally {
      process.off('SIGINT', onStop);
      process.off('SIGTERM', onStop);
      process.off('SIGHUP', onHangup);
      this.stopRequested = undefined;
    }
  }
}
