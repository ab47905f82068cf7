/**
 * The EQL sequence matcher: Elasticsearch's answers for `sequence [..] [..] … until [..]`, computed one event
 * at a time so that the same code serves a sorted file (batch) and a live host (forever, bounded memory).
 *
 * The reference is Elasticsearch's x-pack/plugin/eql execution code (package
 * org.elasticsearch.xpack.eql.execution.sequence, read at the 8.x versions that carry missing events): ES
 * runs one boxed search per stage and feeds each page of hits to SequenceMatcher.match(stage, hits), in
 * (timestamp, tiebreaker, _shard_doc) order. That algorithm only ever looks backwards from the hit it
 * matches, so feeding events one by one in that same order reproduces it; the notes below say where each rule
 * comes from and why the streaming form gives the same answer.
 *
 * State, and why one partial per key and stage is enough: ES keeps, per join key and stage, a list of partial
 * sequences (KeyToSequences → SequenceGroup, an OrdinalGroup). A hit at stage s takes, from the list of stage
 * s-1 for its key, the newest partial strictly before it and removes it together with every older one
 * (OrdinalGroup.trimBefore). Events arrive in order, so every partial already in that list is before the hit:
 * the newest one is always taken and the older ones can never be taken by anyone. The EQL docs say the same
 * ("How sequence queries handle matches": only one pending sequence per state, the most recent overwrites the
 * older). So a slot per (key, stage) holding only the newest partial gives ES's answers; replacing a partial
 * in its slot is that overwrite, not a loss.
 */

export interface SequenceStageSpec {
  /** Whether the event matches this stage's filter (category and condition). */
  readonly matches: (doc: object) => boolean;
  /**
   * The event's join key for this stage (the sequence's `by` values then the stage's own), one value per key;
   * undefined when a non-optional key is missing (then the event joins nothing in this stage). Values are JSON
   * values as read from the document (string, number, boolean, null for an absent optional key, or an array
   * for a multi-valued field). The array may be reused by the next call: the matcher copies what it keeps.
   */
  readonly keys: (doc: object) => readonly unknown[] | undefined;
  /** A missing-event stage `![…]`. */
  readonly missing: boolean;
}

export interface SequenceSpec {
  readonly stages: readonly SequenceStageSpec[];
  readonly until: { readonly matches: (doc: object) => boolean; readonly keys: (doc: object) => readonly unknown[] | undefined } | null;
  /** null (and, as in ES's SequenceMatcher.exceedsMaxSpan, 0) means no limit. */
  readonly maxspanMs: number | null;
}

export interface MatchedSequence<D> {
  /** The sequence's key: one value per key, a multi-valued field contributing the one value this sequence joined on. */
  readonly joinKeys: readonly unknown[];
  /** One entry per stage, in stage order; null for a missing-event stage (nothing happened there). */
  readonly events: readonly (D | null)[];
}

export interface SequenceMatcherOptions {
  /** Partial sequences kept at most (and, separately, as many leading-missing-event records); the oldest is dropped and counted. */
  readonly maxPartials: number;
}

export interface SequenceMatcherStats {
  /** Partial sequences held: waiting for a later stage, or complete but inside a trailing missing-event window. */
  partials: number;
  /** Partials (and leading-missing-event records) dropped by the `maxPartials` bound. */
  dropped: number;
  /** Partials that could no longer finish within maxspan, removed as time passed. */
  expired: number;
  /** Sequences returned. */
  completed: number;
}

interface Linked<T> {
  older: T | null;
  newer: T | null;
}

/** Creation-ordered list with O(1) removal; its head is read without allocating (a Set's iterator would). */
class Chain<T extends Linked<T>> {
  oldest: T | null = null;
  newest: T | null = null;
  size = 0;

  append(item: T): void {
    item.older = this.newest;
    item.newer = null;
    if (this.newest) this.newest.newer = item;
    else this.oldest = item;
    this.newest = item;
    this.size++;
  }

  remove(item: T): void {
    if (item.older) item.older.newer = item.newer;
    else this.oldest = item.newer;
    if (item.newer) item.newer.older = item.older;
    else this.newest = item.older;
    item.older = item.newer = null;
    this.size--;
  }
}

/** open: waiting in a slot; pending: positives complete, trailing missing-event window still open. */
type Outcome = 'open' | 'pending' | 'complete' | 'discarded';

interface PartialSequence<D> extends Linked<PartialSequence<D>> {
  readonly key: KeyState<D>;
  readonly events: (D | null)[];
  readonly startMs: number;
  /** Newest leading missing-event timestamp before the start, NaN when none (or no leading missing stage). */
  readonly leadingMs: number;
  /** Index of the last positive stage matched; the slot it sits in while open. */
  stage: number;
  lastMs: number;
  /** Earliest event of a missing stage after `stage` seen since reaching it (NaN: none). */
  gapMissingMs: number;
  /** A middle missing-event stage did happen: the sequence still runs (it holds its slot, as in ES) but is never returned. */
  doomed: boolean;
  outcome: Outcome;
}

interface KeyState<D> {
  readonly id: KeyId;
  readonly values: readonly unknown[];
  /** By stage index; only positive stages before the last positive one are used. */
  readonly slots: (PartialSequence<D> | null)[];
  /** Pending partials of this key, in the order they became pending (so by last event). */
  readonly awaiting: PartialSequence<D>[];
  /** Partials that reference this state (open or pending); the state is dropped at 0. */
  live: number;
}

interface LeadingRecord extends Linked<LeadingRecord> {
  readonly id: KeyId;
  lastMs: number;
  /** Newest timestamp strictly before lastMs (NaN: none), for a start at exactly lastMs. */
  prevMs: number;
}

const NOTHING: readonly never[] = Object.freeze([]);

/**
 * One sequence query's matcher. Feed events in ES's order (timestamp, then tiebreaker, then arrival); each
 * call returns the sequences it settles, and the concatenation of all returns is ES's result list in ES's
 * order (by each sequence's last positive event, then key), so `| head N` takes the first N sequences of that
 * stream and `| tail N` the last N, still in that order (Limit.view reverses for tail, and the payload of a
 * descending query is reversed back). Returned arrays are read-only and shared when empty, so that an event
 * matching nothing allocates nothing.
 *
 * Memory: per partial one object (about 12 fields) and an events array of one slot per stage, which keeps the
 * matched documents alive; per join key in use a small record with the key's values, its id and a
 * slot array of one entry per stage; with a leading missing stage, per key that recently had such an event a
 * record with two timestamps (bounded by maxPartials as well, and expired after maxspan). Sequences decided
 * while an earlier one is still in its trailing window are held (one reference each) until it is decided.
 */
export class SequenceMatcher<D extends object> {
  private readonly stages: readonly SequenceStageSpec[];
  private readonly until: SequenceSpec['until'];
  private readonly limitMs: number;
  private readonly maxPartials: number;
  private readonly firstPositive: number;
  private readonly lastPositive: number;
  /** For each stage, the positive stage before it (-1 if none). */
  private readonly previousPositive: readonly number[];

  private readonly keyStates = new Map<KeyId, KeyState<D>>();
  private readonly partialChain = new Chain<PartialSequence<D>>();
  private readonly leading = new Map<KeyId, LeadingRecord>();
  private readonly leadingChain = new Chain<LeadingRecord>();
  /** Sequences decided or pending, in ES's result order, held while an earlier one is still pending. */
  private queue: PartialSequence<D>[] = [];
  private queueHead = 0;
  /** What one push produced, before ordering by key. */
  private readonly batch: PartialSequence<D>[] = [];
  private released: MatchedSequence<D>[] | null = null;
  private nowMs = Number.NEGATIVE_INFINITY;

  readonly stats: SequenceMatcherStats = { partials: 0, dropped: 0, expired: 0, completed: 0 };

  constructor(spec: SequenceSpec, options: SequenceMatcherOptions) {
    // ES: Sequence requires at least 2 criteria; the docs: a sequence needs at least one positive clause.
    if (spec.stages.length < 2) throw new Error('a sequence needs at least 2 stages');
    if (!Number.isInteger(options.maxPartials) || options.maxPartials < 1) throw new Error('maxPartials must be a positive integer');
    this.stages = spec.stages;
    this.until = spec.until;
    this.limitMs = spec.maxspanMs !== null && spec.maxspanMs > 0 ? spec.maxspanMs : 0;
    this.maxPartials = options.maxPartials;
    this.firstPositive = spec.stages.findIndex((stage) => !stage.missing);
    this.lastPositive = spec.stages.findLastIndex((stage) => !stage.missing);
    if (this.firstPositive < 0) throw new Error('a sequence needs at least one stage that is not a missing event');
    const previous: number[] = [];
    let last = -1;
    for (const [index, stage] of spec.stages.entries()) {
      previous.push(last);
      if (!stage.missing) last = index;
    }
    this.previousPositive = previous;
  }

  /** One event, not older than the events and `advance` times before it. */
  push(doc: D, timestampMs: number): readonly MatchedSequence<D>[] {
    this.moveTime(timestampMs);
    const stages = this.stages;
    // Highest stage first: a stage reads the slot below it before this same event can fill that slot, which is
    // ES's rule that a hit only joins partials strictly before it (OrdinalGroup.findBefore uses `<`), so one
    // event never serves two stages of one sequence, yet may start one sequence and advance another.
    for (let index = stages.length - 1; index >= 0; index--) {
      const stage = stages[index]!;
      if (!stage.matches(doc)) continue;
      const values = stage.keys(doc);
      if (values === undefined) continue;
      if (!values.some(Array.isArray)) this.stageEvent(index, values, doc, timestampMs);
      else for (const key of expandKeys(values)) this.stageEvent(index, key, doc, timestampMs);
    }
    // After the stages: ES checks until markers strictly before a hit (until.before) but then with
    // Ordinal.between, inclusive at both ends, against the partial's last event. So an event that is both an
    // until and a stage still completes a sequence at the last stage, while the partials it starts or advances
    // are dead at their next step, exactly as if until removed them now.
    if (this.until?.matches(doc)) {
      const values = this.until.keys(doc);
      if (values !== undefined) {
        if (!values.some(Array.isArray)) this.untilEvent(values);
        else for (const key of expandKeys(values)) this.untilEvent(key);
      }
    }
    this.releaseBatch();
    return this.takeReleased();
  }

  /** Time has reached `nowMs` with no event (the live timer); events still to come must not be older. */
  advance(nowMs: number): readonly MatchedSequence<D>[] {
    this.moveTime(nowMs);
    return this.takeReleased();
  }

  /** Everything still pending is complete (no trailing missing event can arrive); the matcher is then empty. */
  finish(): readonly MatchedSequence<D>[] {
    for (let index = this.queueHead; index < this.queue.length; index++) {
      const partial = this.queue[index]!;
      if (partial.outcome === 'pending') this.retire(partial, 'complete');
    }
    this.drain();
    for (let partial = this.partialChain.oldest; partial; partial = this.partialChain.oldest) this.retire(partial, 'discarded');
    this.keyStates.clear();
    this.leading.clear();
    for (let record = this.leadingChain.oldest; record; record = this.leadingChain.oldest) this.leadingChain.remove(record);
    this.nowMs = Number.NEGATIVE_INFINITY;
    return this.takeReleased();
  }

  private stageEvent(index: number, key: readonly unknown[], doc: D, timestampMs: number): void {
    if (this.stages[index]!.missing) this.missingEvent(index, key, timestampMs);
    else this.positiveEvent(index, key, doc, timestampMs);
  }

  private positiveEvent(index: number, key: readonly unknown[], doc: D, timestampMs: number): void {
    if (index === this.firstPositive) {
      this.start(index, key, doc, timestampMs);
      return;
    }
    const state = this.keyStates.get(keyId(key));
    const below = this.previousPositive[index]!;
    const partial = state?.slots[below];
    if (!state || !partial) return;
    // ES takes (and removes) the partial before checking maxspan or until; a rejected one is simply gone.
    state.slots[below] = null;
    // SequenceMatcher.exceedsMaxSpan: rejected when to - from > maxspan, from the first event's timestamp; a
    // span of exactly maxspan is accepted.
    if (this.exceeds(partial.startMs, timestampMs)) {
      this.stats.expired++;
      this.retire(partial, 'discarded');
      return;
    }
    // TumblingWindow.prepareQueryForMissingEvents: a middle `![…]` looks for an event strictly after the
    // previous positive event's timestamp and strictly before the next one's (milliseconds, not ordinals).
    if (partial.gapMissingMs < timestampMs) partial.doomed = true;
    partial.gapMissingMs = Number.NaN;
    partial.events[index] = doc;
    partial.stage = index;
    partial.lastMs = timestampMs;
    if (index === this.lastPositive) this.positivesComplete(partial);
    else this.occupy(state, index, partial);
  }

  private start(index: number, key: readonly unknown[], doc: D, timestampMs: number): void {
    const id = keyId(key);
    let state = this.keyStates.get(id);
    if (!state) {
      state = { id, values: key.slice(), slots: new Array<PartialSequence<D> | null>(this.stages.length).fill(null), awaiting: [], live: 0 };
      this.keyStates.set(id, state);
    }
    const events = new Array<D | null>(this.stages.length).fill(null);
    events[index] = doc;
    const partial: PartialSequence<D> = {
      key: state,
      events,
      startMs: timestampMs,
      leadingMs: this.firstPositive > 0 ? this.leadingBefore(id, timestampMs) : Number.NaN,
      stage: index,
      lastMs: timestampMs,
      gapMissingMs: Number.NaN,
      doomed: false,
      outcome: 'open',
      older: null,
      newer: null,
    };
    state.live++;
    this.partialChain.append(partial);
    this.stats.partials++;
    if (index === this.lastPositive) this.positivesComplete(partial);
    else this.occupy(state, index, partial);
    // Only now is it known whether the partial adds one: it may have replaced its key's partial in the slot,
    // or be complete already. The oldest is the same as before it was added, since it went in newest.
    if (this.partialChain.size > this.maxPartials) {
      this.stats.dropped++;
      this.retire(this.partialChain.oldest!, 'discarded');
    }
  }

  private occupy(state: KeyState<D>, index: number, partial: PartialSequence<D>): void {
    const previous = state.slots[index];
    state.slots[index] = partial;
    if (previous) this.retire(previous, 'discarded');
  }

  /**
   * The last positive stage matched. Without missing stages ES completes it at once (SequenceMatcher.tryComplete);
   * with them it is checked by TumblingWindow.doCheckMissingEvents, whose conditions are kept here as written:
   * discarded if a middle missing event happened; otherwise complete when nothing leading or trailing was found,
   * or when the first stage is missing and nothing leading was found (whatever trails), or when the last stage
   * is missing and nothing trailing was found, or when the leading and/or trailing events found lie more than
   * maxspan from the other end: newest leading to last positive event (only first stage missing), first
   * positive event to first trailing (only last missing), newest leading to first trailing (both missing).
   */
  private positivesComplete(partial: PartialSequence<D>): void {
    if (partial.doomed) {
      this.retire(partial, 'discarded');
      return;
    }
    const hasLeading = this.firstPositive > 0;
    if (this.lastPositive < this.stages.length - 1) {
      if (hasLeading && Number.isNaN(partial.leadingMs)) {
        this.retire(partial, 'complete');
      } else if (this.exceeds(hasLeading ? partial.leadingMs : partial.startMs, partial.lastMs)) {
        // Any trailing event comes after the last positive one, so beyond maxspan already.
        this.retire(partial, 'complete');
      } else {
        partial.outcome = 'pending';
        partial.key.awaiting.push(partial);
      }
    } else if (hasLeading && !Number.isNaN(partial.leadingMs) && !this.exceeds(partial.leadingMs, partial.lastMs)) {
      this.retire(partial, 'discarded');
      return;
    } else {
      this.retire(partial, 'complete');
    }
    this.batch.push(partial);
  }

  private missingEvent(index: number, key: readonly unknown[], timestampMs: number): void {
    const id = keyId(key);
    if (index < this.firstPositive) {
      this.recordLeading(id, timestampMs);
      return;
    }
    const state = this.keyStates.get(id);
    if (!state) return;
    if (index > this.lastPositive) {
      // The first trailing event strictly after the last positive one decides (ES sorts ascending, takes 1).
      const awaiting = state.awaiting;
      for (let partial = awaiting[0]; partial && partial.lastMs < timestampMs; partial = awaiting[0]) {
        const from = this.firstPositive > 0 ? partial.leadingMs : partial.startMs;
        this.retire(partial, this.exceeds(from, timestampMs) ? 'complete' : 'discarded');
      }
      return;
    }
    const partial = state.slots[this.previousPositive[index]!];
    if (partial && partial.lastMs < timestampMs && Number.isNaN(partial.gapMissingMs)) partial.gapMissingMs = timestampMs;
  }

  /** ES keeps until markers per key and rejects an advance across one; removing the key's open partials now is the same. */
  private untilEvent(key: readonly unknown[]): void {
    const state = this.keyStates.get(keyId(key));
    if (!state) return;
    for (const partial of state.slots) if (partial) this.retire(partial, 'discarded');
  }

  /**
   * Leading `![…]`: ES asks for the newest matching event with a timestamp strictly before the sequence's first
   * event (sorted descending, size 1) and keeps the newest over all leading stages, so one timestamp per key is
   * enough, plus the one before it for a start in the same millisecond.
   */
  private recordLeading(id: KeyId, timestampMs: number): void {
    let record = this.leading.get(id);
    if (record) {
      if (record.lastMs >= timestampMs) return;
      record.prevMs = record.lastMs;
      record.lastMs = timestampMs;
      this.leadingChain.remove(record);
    } else {
      if (this.leadingChain.size >= this.maxPartials) {
        const oldest = this.leadingChain.oldest!;
        this.leadingChain.remove(oldest);
        this.leading.delete(oldest.id);
        this.stats.dropped++;
      }
      record = { id, lastMs: timestampMs, prevMs: Number.NaN, older: null, newer: null };
      this.leading.set(id, record);
    }
    this.leadingChain.append(record);
  }

  private leadingBefore(id: KeyId, timestampMs: number): number {
    const record = this.leading.get(id);
    if (!record) return Number.NaN;
    return record.lastMs < timestampMs ? record.lastMs : record.prevMs;
  }

  /**
   * Time is now at least `nowMs` (events still to come have timestamps >= nowMs). With a maxspan, an open
   * partial started more than maxspan ago can never advance (ES would reject it at its next hit); a pending one
   * is then complete, as any trailing event would lie beyond maxspan from its first event (and from its leading
   * event, which is older). Leading records that old can no longer keep any sequence from completing. A
   * sequence whose trailing window runs from a leading event is settled by this sweep at its first event's
   * deadline, a little after its own: the answer is the same (complete), only later.
   */
  private moveTime(nowMs: number): void {
    if (nowMs <= this.nowMs) return;
    this.nowMs = nowMs;
    if (this.limitMs === 0) return;
    for (let partial = this.partialChain.oldest; partial && nowMs - partial.startMs > this.limitMs; partial = this.partialChain.oldest) {
      if (partial.outcome === 'pending') {
        this.retire(partial, 'complete');
      } else {
        this.stats.expired++;
        this.retire(partial, 'discarded');
      }
    }
    for (let record = this.leadingChain.oldest; record && nowMs - record.lastMs > this.limitMs; record = this.leadingChain.oldest) {
      this.leadingChain.remove(record);
      this.leading.delete(record.id);
    }
    this.drain();
  }

  /**
   * Ends a partial's life as open or pending, letting go of its slot or its place among its key's pending
   * partials; a complete or discarded one stays only in the result queue.
   */
  private retire(partial: PartialSequence<D>, outcome: 'complete' | 'discarded'): void {
    const state = partial.key;
    if (partial.outcome === 'open') {
      if (state.slots[partial.stage] === partial) state.slots[partial.stage] = null;
    } else if (partial.outcome === 'pending') {
      state.awaiting.splice(state.awaiting.indexOf(partial), 1);
    } else {
      return;
    }
    partial.outcome = outcome;
    this.partialChain.remove(partial);
    this.stats.partials--;
    if (--state.live === 0) this.keyStates.delete(state.id);
  }

  /**
   * ES returns completed sequences from a TreeSet ordered by Sequence.compareTo: the ordinal of the sequence's
   * last positive event, then SequenceKey.compareTo. Sequences ending on one event (a multi-valued key) are
   * ordered by key; a sequence still inside a trailing missing-event window holds back the ones after it.
   */
  private releaseBatch(): void {
    const batch = this.batch;
    if (batch.length > 1) batch.sort((a, b) => compareKeys(a.key.values, b.key.values));
    for (const partial of batch) this.queue.push(partial);
    batch.length = 0;
    this.drain();
  }

  private drain(): void {
    const queue = this.queue;
    while (this.queueHead < queue.length) {
      const partial = queue[this.queueHead]!;
      if (partial.outcome === 'pending') break;
      this.queueHead++;
      if (partial.outcome === 'complete') {
        this.stats.completed++;
        (this.released ??= []).push({ joinKeys: partial.key.values, events: partial.events });
      }
    }
    if (this.queueHead === queue.length) {
      queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > queue.length) {
      this.queue = queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private takeReleased(): readonly MatchedSequence<D>[] {
    const released = this.released;
    this.released = null;
    return released ?? NOTHING;
  }

  private exceeds(fromMs: number, toMs: number): boolean {
    return this.limitMs > 0 && toMs - fromMs > this.limitMs;
  }
}

/**
 * The keys one event may join under: beyond it the rest of the product of its multi-valued key fields is
 * not considered (Elasticsearch has no such bound; a host agent on attacker-controlled argv needs one).
 */
export const MAX_KEYS_PER_EVENT = 1024;

/**
 * TumblingWindow.wrapValues: a multi-valued key field makes the hit join once per value (the cartesian product
 * over the key fields), each as its own key; an empty list yields no key at all. Identical products collapse:
 * ES would just find the slot already taken by the same hit. Callers pass only keys holding a list, so that a
 * plain key costs no allocation.
 */
function expandKeys(values: readonly unknown[]): readonly (readonly unknown[])[] {
  let combos: unknown[][] = [[]];
  for (const value of values) {
    const choices: readonly unknown[] = Array.isArray(value) ? value : [value];
    const next: unknown[][] = [];
    outer: for (const choice of choices) {
      for (const combo of combos) {
        // an attacker controls argv: two multi-valued key fields of 1,000 values would be a million keys
        if (next.length === MAX_KEYS_PER_EVENT) break outer;
        next.push([...combo, choice]);
      }
    }
    combos = next;
  }
  const seen = new Set<KeyId>();
  return combos.filter((combo) => {
    const id = keyId(combo);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Equal for equal keys, as a Map key. */
type KeyId = string | number | boolean;

/**
 * SequenceKey equality is Arrays.deepEquals over the extracted values: type-sensitive ("1" is not 1) and null
 * equal to null (so absent optional keys join each other). JSON text keeps exactly those distinctions; a key of
 * one string, finite number or boolean is its own id instead, as the Map tells types apart too. Such a string
 * never starts with `[`, which every JSON id does.
 */
function keyId(values: readonly unknown[]): KeyId {
  if (values.length === 1) {
    const value = values[0];
    if (typeof value === 'string' ? value.charCodeAt(0) !== 0x5b : typeof value === 'boolean' || Number.isFinite(value)) return value as KeyId;
  }
  return JSON.stringify(values);
}

/**
 * SequenceKey.compareTo: value by value with the values' own ordering, skipping values that have none (null,
 * lists), then the shorter key first. Values of different types (which would not compare in Java) are ordered
 * by type name so that the order stays total.
 */
function compareKeys(a: readonly unknown[], b: readonly unknown[]): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const x = a[index];
    const y = b[index];
    if (x === null || y === null || typeof x === 'object' || typeof y === 'object') continue;
    if (typeof x !== typeof y) return typeof x < typeof y ? -1 : 1;
    if (x !== y) return (x as number | string | boolean) < (y as number | string | boolean) ? -1 : 1;
  }
  return a.length - b.length;
}
