import type { Alert, AlertSequence, ProcessAction, ProcessEvent } from '../ecs/types.js';
import type { MatchedSequence, SequenceMatcher } from '../eql/index.js';
import { foldCase } from '../eql/regex.js';
import { dateValueMs } from '../kql/date.js';
import { getField } from '../kql/field-path.js';
import type { Logger } from '../log.js';
import type { LoadedRule } from '../rules/index.js';
import type { HistoryStore, TermHistory } from '../store/index.js';
import { alertTemplate, buildAlert, type AlertTemplate } from './alert.js';
import { repairedTermReaders, shownTerm, termCombinations, termValues } from './new-terms.js';

/**
 * Rules evaluated on each process event as it arrives. Query rules alert on every match; new_terms rules
 * alert on the first sighting of a term tuple within the rule's history window and refresh last-seen on
 * every sighting. Alerts per rule are capped at max_signals per interval; what is over is counted and
 * reported in one warning per interval. A new-terms alert leaves the engine only once its tuple's record
 * is on disk (recordNew resolved), so a crash cannot alert twice nor lose a recorded-but-unsent alert
 * silently; alerts leave in event order.
 */

export interface EngineOptions {
  store: HistoryStore;
  logger: Logger;
  /** Receives each alert, in event order. */
  emit: (alert: Alert) => void;
  /** Term tuples considered per event and rule; array fields multiply, so this bounds an attacker. */
  maxTuplesPerEvent?: number;
  /** Partial sequences an EQL sequence rule holds at once; beyond it the oldest is dropped (counted). */
  maxPartialSequencesPerRule?: number;
  /**
   * Fork and end events every rule is evaluated on, as Elasticsearch would on Elastic Defend data (the
   * agent's `sensor.events`); otherwise only the rules that name them (LoadedRule.eventActions) see them.
   */
  everyRuleActions?: readonly ProcessAction[];
}

/**
 * Whether `rule` is evaluated on an event of `action`: exec events (and any other, e.g. a replayed
 * document's) go to every rule; fork and end events to the rules that name them, or to all when
 * `everyRuleActions` lists them.
 */
export function evaluatesAction(rule: LoadedRule, action: unknown, everyRuleActions: readonly ProcessAction[] = []): boolean {
  if (action !== 'fork' && action !== 'end') return true;
  return everyRuleActions.includes(action) || rule.eventActions.includes(action);
}

export interface EngineStats {
  rules: number;
  enabledRules: number;
  events: number;
  /** Events that matched a rule's query (one per rule). */
  matches: number;
  alerts: number;
  /** Alerts held back by max_signals. */
  suppressed: number;
  /** Sightings of tuples already in the history window (last-seen refreshed, no alert). */
  knownTerms: number;
  /** Events whose array fields gave more tuples than maxTuplesPerEvent; the rest were not considered. */
  tuplesTruncated: number;
  /** Events with a matching new_terms rule but missing one of its fields (no tuple, no alert). */
  missingTermFields: number;
  /** recordNew failures (the alert still goes out: a duplicate later beats a missed detection). */
  historyWriteFailures: number;
  /** Alerts waiting for their history record to reach the disk. */
  pendingAlerts: number;
  /** Rule evaluations that threw (a bug): counted, the first per rule logged, the rest of the batch goes on. */
  evaluationErrors: number;
  /** EQL sequence rules: partial sequences held now, over all rules. */
  sequencePartials: number;
  /** Partial sequences dropped because a rule held maxPartialSequencesPerRule (the oldest goes). */
  sequencesDropped: number;
  /** Partial sequences that outlived their maxspan without completing. */
  sequencesExpired: number;
}

/** One rule's share of the counters: why a rule stayed silent (no match? known terms? max_signals?). */
export interface RuleCounters {
  ruleId: string;
  name: string;
  matches: number;
  alerts: number;
  knownTerms: number;
  suppressed: number;
}

/** Alerts over max_signals within one interval of one rule are counted here, reported when it ends. */
class SignalLimiter {
  private windowStartMs = Number.NEGATIVE_INFINITY;
  private alertsInWindow = 0;
  private suppressedInWindow = 0;

  constructor(
    private readonly rule: LoadedRule,
    private readonly logger: Logger,
  ) {}

  allow(nowMs: number): boolean {
    this.closeIfOver(nowMs);
    if (this.windowStartMs === Number.NEGATIVE_INFINITY) this.windowStartMs = nowMs;
    if (this.alertsInWindow < this.rule.maxSignals) {
      this.alertsInWindow += 1;
      return true;
    }
    this.suppressedInWindow += 1;
    return false;
  }

  /** Ends the interval when `nowMs` is past it (or before it: the clock or the replayed events went back). */
  closeIfOver(nowMs: number): void {
    if (this.windowStartMs === Number.NEGATIVE_INFINITY) return;
    if (nowMs >= this.windowStartMs && nowMs < this.windowStartMs + this.rule.intervalMs) return;
    this.report(this.windowStartMs + this.rule.intervalMs);
    this.windowStartMs = Number.NEGATIVE_INFINITY;
    this.alertsInWindow = 0;
  }

  /** Reports what the current interval suppressed so far (at stop or reload). */
  reportOpen(nowMs: number): void {
    this.report(nowMs);
  }

  private report(untilMs: number): void {
    if (this.suppressedInWindow === 0) return;
    this.logger.warn(
      {
        rule: this.rule.name,
        ruleId: this.rule.ruleId,
        maxSignals: this.rule.maxSignals,
        suppressed: this.suppressedInWindow,
        from: new Date(this.windowStartMs).toISOString(),
        until: new Date(untilMs).toISOString(),
      },
      `rule ${JSON.stringify(this.rule.name)} reached max_signals (${this.rule.maxSignals}); ${this.suppressedInWindow} more alert(s) suppressed in this interval`,
    );
    this.suppressedInWindow = 0;
  }
}

interface RuleRuntime {
  readonly rule: LoadedRule;
  readonly template: AlertTemplate;
  readonly limiter: SignalLimiter;
  readonly history?: TermHistory;
  /** new_terms rules: each field's term reader, in field order (repairedTermReaders). */
  readonly termReaders?: readonly ((event: unknown) => unknown[])[];
  /** EQL sequence rules: the rule's partial sequences. */
  readonly sequence?: SequenceMatcher<ProcessEvent>;
  /** Kept across a reload for the same rule_id, like the limiter. */
  readonly counters: RuleCounters;
  /** The rule requires values of a field (LoadedRule.indexTerms): evaluated only for events the index marks. */
  readonly indexed: boolean;
  /** The number of the last event the name index marked this rule for. */
  markedFor: number;
  failedBefore: boolean;
}

/**
 * Rules by the values of one field they require (LoadedRule.indexTerms: process.name for most rules): an
 * event runs only the rules its values mark, plus every rule without such a requirement. With hundreds of
 * rules most of which name the program they look for, this keeps an exec's cost from growing with the
 * rule count.
 */
class TermIndex {
  private readonly fields = new Map<string, { exact: Map<string, RuleRuntime[]>; folded: Map<string, RuleRuntime[]> }>();
  private readonly all: RuleRuntime[] = [];

  add(runtime: RuleRuntime, terms: { readonly field: string; readonly values: readonly string[]; readonly caseInsensitive: boolean }): void {
    this.all.push(runtime);
    let maps = this.fields.get(terms.field);
    if (maps === undefined) this.fields.set(terms.field, (maps = { exact: new Map(), folded: new Map() }));
    const map = terms.caseInsensitive ? maps.folded : maps.exact;
    for (const value of new Set(terms.caseInsensitive ? terms.values.map(foldCase) : terms.values)) {
      const list = map.get(value);
      if (list === undefined) map.set(value, [runtime]);
      else list.push(runtime);
    }
  }

  /** Marks the rules one of whose values the event holds in their field. */
  mark(event: ProcessEvent, eventNumber: number): void {
    for (const [field, { exact, folded }] of this.fields) {
      for (const value of getField(event, field)) {
        if (typeof value !== 'string') {
          // a number or boolean (a replayed document; the sensor emits strings) compares by value or text in
          // KQL and EQL, which the index cannot mirror: every indexed rule sees the event
          if (typeof value === 'number' || typeof value === 'boolean') for (const runtime of this.all) runtime.markedFor = eventNumber;
          continue;
        }
        const marked = exact.get(value);
        if (marked !== undefined) for (const runtime of marked) runtime.markedFor = eventNumber;
        if (folded.size === 0) continue;
        const markedFolded = folded.get(foldCase(value));
        if (markedFolded !== undefined) for (const runtime of markedFolded) runtime.markedFor = eventNumber;
      }
    }
  }
}

const DEFAULT_MAX_TUPLES_PER_EVENT = 1024;
/**
 * Partial sequences per sequence rule by default. A partial holds references to events already in memory
 * for the pipeline, about 100 bytes of its own plus the events it keeps alive (a few KiB each): 10,000 is
 * at most some tens of MiB per rule under an exec flood, and far above what real hosts reach in a maxspan.
 */
export const DEFAULT_MAX_PARTIAL_SEQUENCES = 10_000;

function sameFields(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((field, index) => field === b[index]);
}

export class DetectionEngine {
  private runtimes: RuleRuntime[] = [];
  /** The rules fork and end events go to (evaluatesAction); every other event goes to all of runtimes. */
  private lifecycleRuntimes = new Map<string, RuleRuntime[]>();
  private termIndex = new TermIndex();
  private sequenceRules = 0;
  /** Rules loaded, disabled ones included (runtimes holds only the enabled). */
  private loadedRuleCount = 0;
  /** The tail of the in-order delivery chain. */
  private delivered: Promise<void> = Promise.resolve();
  private readonly maxTuplesPerEvent: number;
  private readonly counters: Omit<EngineStats, 'rules' | 'enabledRules' | 'sequencePartials' | 'sequencesDropped' | 'sequencesExpired'> = {
    events: 0,
    matches: 0,
    alerts: 0,
    suppressed: 0,
    knownTerms: 0,
    tuplesTruncated: 0,
    missingTermFields: 0,
    historyWriteFailures: 0,
    pendingAlerts: 0,
    evaluationErrors: 0,
  };
  /** Sequence counters of rules no longer loaded (a reload keeps the totals honest). */
  private retiredSequences = { dropped: 0, expired: 0 };

  constructor(
    rules: readonly LoadedRule[],
    private readonly options: EngineOptions,
  ) {
    this.maxTuplesPerEvent = options.maxTuplesPerEvent ?? DEFAULT_MAX_TUPLES_PER_EVENT;
    this.setRules(rules);
  }

  /**
   * Swaps in a new rule set (SIGHUP). A rule keeps its max_signals interval across the swap when its
   * rule_id and interval stay, so a reload cannot be used to reset the cap.
   */
  setRules(rules: readonly LoadedRule[], nowMs: number = Date.now()): void {
    const previous = new Map(this.runtimes.map((runtime) => [runtime.rule.ruleId, runtime]));
    const runtimes: RuleRuntime[] = [];
    for (const rule of rules) {
      if (!rule.enabled) continue;
      const earlier = previous.get(rule.ruleId);
      const keepLimiter = earlier !== undefined && earlier.rule.intervalMs === rule.intervalMs && earlier.rule.maxSignals === rule.maxSignals;
      if (earlier !== undefined && !keepLimiter) earlier.limiter.reportOpen(nowMs);
      runtimes.push({
        rule,
        template: alertTemplate(rule),
        limiter: keepLimiter ? earlier.limiter : new SignalLimiter(rule, this.options.logger),
        history:
          rule.newTerms === undefined
            ? undefined
            : this.options.store.history(rule.ruleId, rule.newTerms.fields, rule.newTerms.historyWindowStart.maxLookbackMs),
        termReaders: rule.newTerms && repairedTermReaders(rule.newTerms.fields, rule.newTerms.readers),
        sequence: this.sequenceMatcher(rule, earlier),
        counters:
          earlier === undefined
            ? { ruleId: rule.ruleId, name: rule.name, matches: 0, alerts: 0, knownTerms: 0, suppressed: 0 }
            : Object.assign(earlier.counters, { name: rule.name }),
        indexed: rule.indexTerms !== undefined,
        markedFor: 0,
        failedBefore: false,
      });
      previous.delete(rule.ruleId);
    }
    for (const dropped of previous.values()) dropped.limiter.reportOpen(nowMs);
    const kept = new Set(runtimes.map((runtime) => runtime.sequence));
    for (const runtime of this.runtimes) {
      if (runtime.sequence === undefined || kept.has(runtime.sequence)) continue;
      this.retiredSequences.dropped += runtime.sequence.stats.dropped;
      this.retiredSequences.expired += runtime.sequence.stats.expired;
    }
    this.runtimes = runtimes;
    this.lifecycleRuntimes = new Map(
      (['fork', 'end'] as const).map((action) => [action, runtimes.filter((runtime) => evaluatesAction(runtime.rule, action, this.options.everyRuleActions))]),
    );
    this.termIndex = new TermIndex();
    this.sequenceRules = runtimes.filter((runtime) => runtime.sequence !== undefined).length;
    for (const runtime of runtimes) if (runtime.rule.indexTerms !== undefined) this.termIndex.add(runtime, runtime.rule.indexTerms);
    this.loadedRuleCount = rules.length;
  }

  /**
   * A sequence rule's matcher: the one it had before a reload when its query, the fields it reads and its
   * timestamp field did not change (partial sequences survive a SIGHUP), else a new one. The matcher holds
   * the stage predicates it was compiled with, so the fields are compared too: an event_category_override
   * changes them (the category field is read) while the query text stays. A restart forgets partial sequences.
   */
  private sequenceMatcher(rule: LoadedRule, earlier: RuleRuntime | undefined): SequenceMatcher<ProcessEvent> | undefined {
    if (rule.compiled.kind !== 'sequence') return undefined;
    if (
      earlier?.sequence !== undefined &&
      earlier.rule.query === rule.query &&
      earlier.rule.timestampField === rule.timestampField &&
      earlier.rule.eventCategoryField === rule.eventCategoryField &&
      sameFields(earlier.rule.compiled.fields, rule.compiled.fields)
    ) {
      return earlier.sequence;
    }
    return rule.compiled.createMatcher<ProcessEvent>({ maxPartials: this.options.maxPartialSequencesPerRule ?? DEFAULT_MAX_PARTIAL_SEQUENCES });
  }

  /** Evaluates every enabled rule on one event; `nowMs` is the wall clock live, the event's time in replay. */
  evaluate(event: ProcessEvent, nowMs: number): void {
    this.counters.events += 1;
    const eventNumber = this.counters.events;
    try {
      this.termIndex.mark(event, eventNumber);
    } catch {
      // an event the index cannot read (a bug, never expected): every rule sees it and fails or not on its own
      for (const runtime of this.runtimes) runtime.markedFor = eventNumber;
    }
    this.eventTimes.clear();
    // only sequence rules need the pipeline's lag (sequenceClock); the date is read once for them all
    if (this.sequenceRules > 0) {
      const eventTimeMs = this.eventDate(event, '@timestamp');
      if (eventTimeMs !== null) this.lastEvaluated = { eventTimeMs, atMs: nowMs };
    }
    const action = (event.event as { action?: unknown } | undefined)?.action;
    const runtimes = (typeof action === 'string' ? this.lifecycleRuntimes.get(action) : undefined) ?? this.runtimes;
    for (const runtime of runtimes) {
      if (runtime.indexed && runtime.markedFor !== eventNumber) continue;
      this.evaluateRule(runtime, event, nowMs);
    }
  }

  /** The current event's dates by field, read once however many sequence rules ask. */
  private readonly eventTimes = new Map<string, number | null>();

  /** The current event's date in `field`, null when it has none (read once per event and field). */
  private eventDate(event: ProcessEvent, field: string): number | null {
    let timeMs = this.eventTimes.get(field);
    if (timeMs === undefined) {
      timeMs = dateValueMs(getField(event, field)[0]);
      this.eventTimes.set(field, timeMs);
    }
    return timeMs;
  }

  /** The time that orders and spaces a sequence: the event's own, the wall clock when it has none. */
  private eventTime(event: ProcessEvent, field: string, nowMs: number): number {
    return this.eventDate(event, field) ?? nowMs;
  }

  private evaluateRule(runtime: RuleRuntime, event: ProcessEvent, nowMs: number): void {
    try {
      const compiled = runtime.rule.compiled;
      if (compiled.kind === 'sequence') {
        this.sequenceAlerts(runtime, runtime.sequence!.push(event, this.eventTime(event, runtime.rule.timestampField, nowMs)), nowMs);
        return;
      }
      if (!compiled.matches(event)) return;
      this.counters.matches += 1;
      runtime.counters.matches += 1;
      if (runtime.history === undefined) {
        if (this.admit(runtime, nowMs)) this.deliver(runtime, buildAlert(event, runtime.template), undefined);
      } else {
        this.evaluateNewTerms(runtime, runtime.history, event, nowMs);
      }
    } catch (err) {
      // One rule failing on one event (a bug, never expected) must not cost the other rules or events.
      this.counters.evaluationErrors += 1;
      if (!runtime.failedBefore) {
        runtime.failedBefore = true;
        this.options.logger.error(
          { rule: runtime.rule.name, err: err instanceof Error ? err.message : String(err) },
          'rule evaluation failed; counted in evaluationErrors, further failures of this rule are not logged',
        );
      }
    }
  }

  /**
   * The rule whose query takes longest on `event`, timed one by one (matching only: no alert, no history
   * write), to name the culprit of a slow evaluation.
   */
  slowestRule(event: ProcessEvent): { rule: string; ms: number } | undefined {
    let slowest: { rule: string; ms: number } | undefined;
    for (const runtime of this.runtimes) {
      const startedMs = performance.now();
      try {
        const compiled = runtime.rule.compiled;
        if (compiled.kind === 'sequence') compiled.spec.stages.some((stage) => stage.matches(event));
        else compiled.matches(event);
      } catch {
        // counted by evaluateRule already
      }
      const ms = performance.now() - startedMs;
      if (slowest === undefined || ms > slowest.ms) slowest = { rule: runtime.rule.name, ms: Math.round(ms * 1000) / 1000 };
    }
    return slowest;
  }

  private evaluateNewTerms(runtime: RuleRuntime, history: TermHistory, event: ProcessEvent, nowMs: number): void {
    const { fields } = runtime.rule.newTerms!;
    const perField: string[][] = [];
    for (const read of runtime.termReaders!) {
      const values = termValues(read(event));
      if (values.length === 0) {
        this.counters.missingTermFields += 1;
        return;
      }
      perField.push(values);
    }
    const { tuples, truncated } = termCombinations(perField, this.maxTuplesPerEvent);
    if (truncated) this.counters.tuplesTruncated += 1;
    const windowStartMs = runtime.rule.newTerms!.historyWindowStart.resolve(nowMs);
    for (const tuple of tuples) {
      const lastSeenMs = history.lastSeen(tuple);
      if (lastSeenMs !== undefined && lastSeenMs >= windowStartMs) {
        this.counters.knownTerms += 1;
        runtime.counters.knownTerms += 1;
        if (this.options.logger.isLevelEnabled('debug')) this.logKnownTerm(runtime, tuple, lastSeenMs, windowStartMs);
        if (nowMs > lastSeenMs) history.touch(tuple, nowMs);
        continue;
      }
      // Over max_signals the tuple is not recorded either: its next sighting alerts instead of never.
      if (!this.admit(runtime, nowMs)) continue;
      const newTerms: Record<string, string> = {};
      tuple.forEach((term, index) => (newTerms[fields[index]!] = shownTerm(term)));
      this.deliver(runtime, buildAlert(event, runtime.template, { newTerms }), history.recordNew(tuple, nowMs));
    }
  }

  /** Debug level: the sighting that raised nothing because its terms were seen within the window. */
  private logKnownTerm(runtime: RuleRuntime, tuple: readonly string[], lastSeenMs: number, windowStartMs: number): void {
    const terms: Record<string, string> = {};
    tuple.forEach((term, index) => (terms[runtime.rule.newTerms!.fields[index]!] = shownTerm(term)));
    this.options.logger.debug(
      { rule: runtime.rule.name, ruleId: runtime.rule.ruleId, terms, lastSeen: new Date(lastSeenMs).toISOString(), windowStart: new Date(windowStartMs).toISOString() },
      'known term, no alert: seen within the history window',
    );
  }

  /** One alert per completed sequence, built on its last event and carrying every stage's event. */
  private sequenceAlerts(runtime: RuleRuntime, sequences: readonly MatchedSequence<ProcessEvent>[], nowMs: number): void {
    for (const { joinKeys, events } of sequences) {
      this.counters.matches += 1;
      runtime.counters.matches += 1;
      if (!this.admit(runtime, nowMs)) continue;
      const last = events.findLast((event) => event !== null);
      if (last === undefined || last === null) continue;
      const sequence: AlertSequence = { join_keys: [...joinKeys], events: events.map((event) => event ?? { missing: true }) };
      this.deliver(runtime, buildAlert(last, runtime.template, { sequence }), undefined);
    }
  }

  private admit(runtime: RuleRuntime, nowMs: number): boolean {
    if (runtime.limiter.allow(nowMs)) return true;
    this.counters.suppressed += 1;
    runtime.counters.suppressed += 1;
    return false;
  }

  /** Emits `alert` after every earlier alert and after its history record (if any) is durable. */
  private deliver(runtime: RuleRuntime, alert: Alert, recorded: Promise<void> | undefined): void {
    this.counters.alerts += 1;
    runtime.counters.alerts += 1;
    this.counters.pendingAlerts += 1;
    const durable = recorded?.catch((err: unknown) => {
      this.counters.historyWriteFailures += 1;
      this.options.logger.error(
        { rule: alert.rule.name, err: err instanceof Error ? err.message : String(err) },
        'new-terms history write failed; alerting anyway (the term may alert again after a restart)',
      );
    });
    this.delivered = this.delivered.then(async () => {
      if (durable !== undefined) await durable;
      this.counters.pendingAlerts -= 1;
      try {
        this.options.emit(alert);
      } catch (err) {
        this.options.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'alert delivery failed');
      }
    });
  }

  /** Ends max_signals intervals that are over (called periodically live; each event does it in replay). */
  tick(nowMs: number): void {
    for (const runtime of this.runtimes) runtime.limiter.closeIfOver(nowMs);
  }

  /**
   * Tells the sequence rules that no event older than `eventTimeMs` is still to come: missing-event stages
   * whose window ended complete, partials beyond maxspan expire. The caller must be sure of it — an event
   * evaluated later with an older time would be judged against windows already closed.
   */
  advanceSequences(eventTimeMs: number, nowMs: number = eventTimeMs): void {
    for (const runtime of this.runtimes) {
      // `eventTimeMs` is on @timestamp's clock; a rule timed by another field advances with its own events only
      if (runtime.sequence === undefined || runtime.rule.timestampField !== '@timestamp') continue;
      this.sequenceAlerts(runtime, runtime.sequence.advance(eventTimeMs), nowMs);
    }
  }

  /**
   * The live agent's clock for sequences: how far @timestamp time is known to have passed. While the last
   * evaluated exec arrived within `marginMs` of its @timestamp the pipeline is caught up, and time is
   * `nowMs - marginMs`; when it arrived later (a flood held execs in the kernel's buffer or the reader, or
   * the wall clock stepped forward) only that exec's own time is known to have passed.
   */
  sequenceClock(nowMs: number, marginMs: number): number {
    const last = this.lastEvaluated;
    if (last === undefined || last.atMs - last.eventTimeMs <= marginMs) return nowMs - marginMs;
    return Math.min(nowMs - marginMs, last.eventTimeMs);
  }

  /** The @timestamp of the last evaluated event and the clock it was evaluated at. */
  private lastEvaluated: { eventTimeMs: number; atMs: number } | undefined;

  /**
   * End of a replay: the sequences still complete once no more events can come (missing-event stages whose
   * windows the input ended in). The live agent never calls it: its input does not end.
   */
  finishSequences(nowMs: number): void {
    for (const runtime of this.runtimes) if (runtime.sequence !== undefined) this.sequenceAlerts(runtime, runtime.sequence.finish(), nowMs);
  }

  /** Waits until every alert evaluated so far has been emitted, then reports open suppression counts. */
  async drain(nowMs: number = Date.now()): Promise<void> {
    await this.delivered;
    for (const runtime of this.runtimes) runtime.limiter.reportOpen(nowMs);
  }

  /** Each enabled rule's counters, in rule order. */
  ruleCounters(): RuleCounters[] {
    return this.runtimes.map((runtime) => ({ ...runtime.counters }));
  }

  stats(): EngineStats {
    let sequencePartials = 0;
    let { dropped: sequencesDropped, expired: sequencesExpired } = this.retiredSequences;
    for (const runtime of this.runtimes) {
      if (runtime.sequence === undefined) continue;
      sequencePartials += runtime.sequence.stats.partials;
      sequencesDropped += runtime.sequence.stats.dropped;
      sequencesExpired += runtime.sequence.stats.expired;
    }
    return { rules: this.loadedRuleCount, enabledRules: this.runtimes.length, ...this.counters, sequencePartials, sequencesDropped, sequencesExpired };
  }
}
