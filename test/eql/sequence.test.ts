import { describe, expect, it } from 'vitest';
import { SequenceMatcher, type SequenceSpec, type SequenceStageSpec } from '../../src/eql/sequence.js';

// Hand-made specs: a stage matches events by type (`t`, one letter or several for an event that fits several
// stages) and joins on `k` (undefined = missing non-optional key). ES sources cited: SequenceMatcher,
// OrdinalGroup, KeyToSequences, Sequence, SequenceKey, TumblingWindow, Ordinal in
// x-pack/plugin/eql/src/main/java/org/elasticsearch/xpack/eql/execution/{sequence,search}, and the EQL syntax
// reference (docs/reference/query-languages/eql/eql-syntax.md).

interface Ev {
  readonly id: string;
  readonly t: string;
  readonly ts: number;
  readonly k?: unknown;
  readonly k2?: unknown;
}

type Keys = (doc: Ev) => readonly unknown[] | undefined;
const byK: Keys = (doc) => (doc.k === undefined ? undefined : [doc.k]);
const noKeys: Keys = () => [];

function stage(types: string, options: { missing?: boolean; keys?: Keys } = {}): SequenceStageSpec {
  const keys = options.keys ?? byK;
  return {
    matches: (doc) => [...types].some((type) => (doc as Ev).t.includes(type)),
    keys: (doc) => keys(doc as Ev),
    missing: options.missing ?? false,
  };
}
const missing = (types: string, keys: Keys = byK) => stage(types, { missing: true, keys });

function spec(stages: SequenceStageSpec[], maxspanMs: number | null = null, until: SequenceStageSpec | null = null): SequenceSpec {
  return { stages, maxspanMs, until };
}

let counter = 0;
const ev = (t: string, ts: number, k?: unknown, id?: string): Ev => ({ id: id ?? `${t}${ts}#${counter++}`, t, ts, k });

const ids = (events: readonly (Ev | null)[]) => events.map((event) => event?.id ?? null);

/** Feeds the events in order and ends the input, as the batch CLI does. */
function run(sequence: SequenceSpec, events: readonly Ev[], maxPartials = 1000) {
  const matcher = new SequenceMatcher<Ev>(sequence, { maxPartials });
  const results = events.flatMap((event) => matcher.push(event, event.ts));
  results.push(...matcher.finish());
  return results.map((result) => ({ keys: result.joinKeys, ids: ids(result.events) }));
}

describe('SequenceMatcher: stages and partials', () => {
  it('joins events of the same key in order', () => {
    const results = run(spec([stage('A'), stage('B')]), [ev('A', 1, 'x', 'a1'), ev('A', 2, 'y', 'a2'), ev('B', 3, 'x', 'b1'), ev('B', 4, 'z', 'b2')]);
    expect(results).toEqual([{ keys: ['x'], ids: ['a1', 'b1'] }]);
  });

  it('does not join an event to a later stage that came before it', () => {
    expect(run(spec([stage('A'), stage('B')]), [ev('B', 1, 'x'), ev('A', 2, 'x')])).toEqual([]);
  });

  it('keeps only the newest partial at the first stage (docs: the most recent sequence overwrites the older)', () => {
    const results = run(spec([stage('A'), stage('B')]), [ev('A', 1, 'x', 'a1'), ev('A', 2, 'x', 'a2'), ev('B', 3, 'x', 'b1'), ev('B', 4, 'x', 'b2')]);
    // OrdinalGroup.trimBefore: b1 takes the newest partial before it (a2) and removes a1 with it; b2 finds none.
    expect(results).toEqual([{ keys: ['x'], ids: ['a2', 'b1'] }]);
  });

  it('replaces an older partial at a middle stage with a newer one of the same key', () => {
    const events = [ev('A', 1, 'x', 'a1'), ev('B', 2, 'x', 'b1'), ev('A', 3, 'x', 'a2'), ev('B', 4, 'x', 'b2'), ev('C', 5, 'x', 'c1'), ev('C', 6, 'x', 'c2')];
    expect(run(spec([stage('A'), stage('B'), stage('C')]), events)).toEqual([{ keys: ['x'], ids: ['a2', 'b2', 'c1'] }]);
  });

  it('lets one event advance a sequence and start another, but never serve two stages of one sequence', () => {
    // SequenceMatcher.match handles each stage's hits on their own; findBefore only takes ordinals strictly before.
    const sequence = spec([stage('A'), stage('B')]);
    expect(run(sequence, [ev('AB', 1, 'x', 'ab')])).toEqual([]);
    expect(run(sequence, [ev('A', 1, 'x', 'a'), ev('AB', 2, 'x', 'ab'), ev('B', 3, 'x', 'b')])).toEqual([
      { keys: ['x'], ids: ['a', 'ab'] },
      { keys: ['x'], ids: ['ab', 'b'] },
    ]);
  });

  it('matches runs (repeated stages) on every overlapping window', () => {
    const events = [1, 2, 3, 4].map((ts) => ev('A', ts, 'x', `a${ts}`));
    expect(run(spec([stage('A'), stage('A'), stage('A')]), events)).toEqual([
      { keys: ['x'], ids: ['a1', 'a2', 'a3'] },
      { keys: ['x'], ids: ['a2', 'a3', 'a4'] },
    ]);
  });

  it('works without keys (SequenceKey.NONE)', () => {
    const sequence = spec([stage('A', { keys: noKeys }), stage('B', { keys: noKeys })]);
    expect(run(sequence, [ev('A', 1, undefined, 'a'), ev('B', 2, undefined, 'b')])).toEqual([{ keys: [], ids: ['a', 'b'] }]);
  });

  it('forms sequences from events with equal timestamps, in the order they are fed (tiebreaker, then _shard_doc)', () => {
    const sequence = spec([stage('A'), stage('B')], 0);
    expect(run(sequence, [ev('A', 5, 'x', 'a'), ev('B', 5, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', 'b'] }]);
    expect(run(sequence, [ev('B', 5, 'x', 'b'), ev('A', 5, 'x', 'a')])).toEqual([]);
  });
});

describe('SequenceMatcher: maxspan', () => {
  // SequenceMatcher.exceedsMaxSpan: rejected only when last - first > maxspan, measured from the first event.
  const sequence = spec([stage('A'), stage('B'), stage('C')], 10);

  it('accepts a span of exactly maxspan and rejects one millisecond more', () => {
    expect(run(sequence, [ev('A', 0, 'x', 'a'), ev('B', 5, 'x', 'b'), ev('C', 10, 'x', 'c')])).toEqual([{ keys: ['x'], ids: ['a', 'b', 'c'] }]);
    expect(run(sequence, [ev('A', 0, 'x'), ev('B', 5, 'x'), ev('C', 11, 'x')])).toEqual([]);
  });

  it('measures from the first event, not the previous one', () => {
    expect(run(sequence, [ev('A', 0, 'x'), ev('B', 9, 'x'), ev('C', 18, 'x')])).toEqual([]);
  });

  it('treats maxspan 0 as no limit (exceedsMaxSpan requires maxspan > 0)', () => {
    expect(run(spec([stage('A'), stage('B')], 0), [ev('A', 0, 'x', 'a'), ev('B', 1e12, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', 'b'] }]);
  });

  it('expires partials as time advances without events, and keeps them without maxspan', () => {
    const matcher = new SequenceMatcher<Ev>(spec([stage('A'), stage('B')], 10), { maxPartials: 10 });
    matcher.push(ev('A', 0, 'x'), 0);
    expect(matcher.advance(10)).toEqual([]);
    expect(matcher.stats).toMatchObject({ partials: 1, expired: 0 });
    matcher.advance(11);
    expect(matcher.stats).toMatchObject({ partials: 0, expired: 1 });
    expect(matcher.push(ev('B', 11, 'x'), 11)).toEqual([]);

    const unbounded = new SequenceMatcher<Ev>(spec([stage('A'), stage('B')]), { maxPartials: 10 });
    unbounded.push(ev('A', 0, 'x'), 0);
    unbounded.advance(1e12);
    expect(unbounded.stats).toMatchObject({ partials: 1, expired: 0 });
    expect(unbounded.push(ev('B', 1e12, 'x', 'b'), 1e12)).toHaveLength(1);
  });
});

describe('SequenceMatcher: join keys', () => {
  const sequence = spec([stage('A'), stage('B')]);

  it('compares keys type-sensitively (SequenceKey uses Arrays.deepEquals)', () => {
    expect(run(sequence, [ev('A', 1, '1'), ev('B', 2, 1)])).toEqual([]);
    expect(run(sequence, [ev('A', 1, true), ev('B', 2, 'true')])).toEqual([]);
  });

  it('keeps a one-value key apart from the JSON text of another key, and 0 with -0 as JSON does', () => {
    const twoKeys: Keys = (doc) => (doc.k2 === undefined ? [doc.k] : [doc.k, doc.k2]);
    const keyed = spec([stage('A', { keys: twoKeys }), stage('B', { keys: twoKeys })]);
    const pair: Ev = { id: 'pair', t: 'A', ts: 1, k: 'a', k2: 1 };
    expect(run(keyed, [pair, ev('B', 2, '["a",1]'), ev('B', 3, '[null]'), ev('B', 4, 'null')])).toEqual([]);
    expect(run(keyed, [ev('A', 1, null), ev('B', 2, '[null]'), ev('B', 3, 'null')])).toEqual([]);
    expect(run(keyed, [ev('A', 1, '[x', 'a'), ev('B', 2, '[x', 'b')])).toEqual([{ keys: ['[x'], ids: ['a', 'b'] }]);
    expect(run(keyed, [ev('A', 1, 0, 'a'), ev('B', 2, -0, 'b')])).toEqual([{ keys: [0], ids: ['a', 'b'] }]);
    expect(run(keyed, [pair, { id: 'b', t: 'B', ts: 2, k: 'a', k2: 1 }])).toEqual([{ keys: ['a', 1], ids: ['pair', 'b'] }]);
  });

  it('keeps the key it was given when the stage reuses its key array', () => {
    const scratch: unknown[] = [null];
    const reused: Keys = (doc) => {
      scratch[0] = doc.k;
      return scratch;
    };
    const matcher = new SequenceMatcher<Ev>(spec([stage('A', { keys: reused }), stage('B', { keys: reused })]), { maxPartials: 10 });
    matcher.push(ev('A', 1, 'x'), 1);
    matcher.push(ev('A', 2, 'y'), 2);
    const [done] = matcher.push(ev('B', 3, 'y'), 3);
    matcher.push(ev('B', 4, 'z'), 4);
    expect(done?.joinKeys).toEqual(['y']);
    expect(matcher.push(ev('B', 5, 'x'), 5).map((result) => result.joinKeys)).toEqual([['x']]);
  });

  it('joins nothing for a missing non-optional key (the optimizer filters such events out)', () => {
    expect(run(sequence, [ev('A', 1, undefined), ev('B', 2, undefined)])).toEqual([]);
    expect(run(sequence, [ev('A', 1, 'x', 'a'), ev('B', 2, undefined), ev('B', 3, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', 'b'] }]);
  });

  it('joins null optional keys with each other (deepEquals(null, null))', () => {
    expect(run(sequence, [ev('A', 1, null, 'a'), ev('B', 2, null, 'b')])).toEqual([{ keys: [null], ids: ['a', 'b'] }]);
    expect(run(sequence, [ev('A', 1, null), ev('B', 2, 'x')])).toEqual([]);
  });

  it('joins a multi-valued key once per value (TumblingWindow.wrapValues: cartesian product)', () => {
    expect(run(sequence, [ev('A', 1, ['x', 'y'], 'a'), ev('B', 2, 'y', 'b')])).toEqual([{ keys: ['y'], ids: ['a', 'b'] }]);
    // Both values complete on one event: ordered by key (Sequence.compareTo falls back to SequenceKey.compareTo).
    expect(run(sequence, [ev('A', 1, ['y', 'x'], 'a'), ev('B', 2, ['y', 'x'], 'b')])).toEqual([
      { keys: ['x'], ids: ['a', 'b'] },
      { keys: ['y'], ids: ['a', 'b'] },
    ]);
    expect(run(sequence, [ev('A', 1, [], 'a'), ev('B', 2, [], 'b')])).toEqual([]);
  });

  it('expands several multi-valued keys as a product', () => {
    const twoKeys: Keys = (doc) => [doc.k, doc.k2];
    const keyed = spec([stage('A', { keys: twoKeys }), stage('B', { keys: twoKeys })]);
    const a: Ev = { id: 'a', t: 'A', ts: 1, k: ['u', 'v'], k2: [1, 2] };
    const b: Ev = { id: 'b', t: 'B', ts: 2, k: 'v', k2: [2, 3] };
    expect(run(keyed, [a, b])).toEqual([{ keys: ['v', 2], ids: ['a', 'b'] }]);
  });

  it('joins per-stage keys on different fields (sequence by user, then [A] by pid, [B] by ppid)', () => {
    interface Proc extends Ev {
      readonly user: string;
      readonly pid?: number;
      readonly ppid?: number;
    }
    const first = stage('A', { keys: (doc) => [(doc as Proc).user, (doc as Proc).pid] });
    const second = stage('B', { keys: (doc) => [(doc as Proc).user, (doc as Proc).ppid] });
    const events: Proc[] = [
      { id: 'a', t: 'A', ts: 1, user: 'root', pid: 10 },
      { id: 'b-other-user', t: 'B', ts: 2, user: 'bob', ppid: 10 },
      { id: 'b', t: 'B', ts: 3, user: 'root', ppid: 10 },
    ];
    expect(run(spec([first, second]), events)).toEqual([{ keys: ['root', 10], ids: ['a', 'b'] }]);
  });
});

describe('SequenceMatcher: until', () => {
  const sequence = spec([stage('A'), stage('B')], null, stage('C'));

  it('cancels the partials of its key that it falls between (docs: A, B, C and A, B match; A, C, B does not)', () => {
    expect(run(sequence, [ev('A', 1, 'x'), ev('C', 2, 'x'), ev('B', 3, 'x')])).toEqual([]);
    expect(run(sequence, [ev('A', 1, 'x', 'a'), ev('B', 2, 'x', 'b'), ev('C', 3, 'x')])).toEqual([{ keys: ['x'], ids: ['a', 'b'] }]);
    expect(run(sequence, [ev('A', 1, 'x', 'a'), ev('C', 2, 'y'), ev('B', 3, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', 'b'] }]);
  });

  it('leaves later sequences of the key alone', () => {
    expect(run(sequence, [ev('A', 1, 'x'), ev('C', 2, 'x'), ev('A', 3, 'x', 'a'), ev('B', 4, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', 'b'] }]);
  });

  it('treats an event that is both until and a stage as the Ordinal.between bounds say', () => {
    // until.before() looks strictly before the hit, so the until event can still complete the last stage ...
    expect(run(sequence, [ev('A', 1, 'x', 'a'), ev('BC', 2, 'x', 'bc')])).toEqual([{ keys: ['x'], ids: ['a', 'bc'] }]);
    // ... but between() is inclusive, so a partial it starts is dead at its next step.
    expect(run(sequence, [ev('AC', 1, 'x'), ev('B', 2, 'x')])).toEqual([]);
  });
});

describe('SequenceMatcher: missing events', () => {
  it('middle: rejects the sequence when the missing event happens strictly between its neighbours', () => {
    const sequence = spec([stage('A'), missing('M'), stage('B')], 100);
    expect(run(sequence, [ev('A', 0, 'x', 'a'), ev('B', 10, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', null, 'b'] }]);
    expect(run(sequence, [ev('A', 0, 'x'), ev('M', 5, 'x'), ev('B', 10, 'x')])).toEqual([]);
    expect(run(sequence, [ev('A', 0, 'x', 'a'), ev('M', 5, 'y'), ev('B', 10, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', null, 'b'] }]);
    // The range query is gt/lt on the timestamps, so the same millisecond as a neighbour does not count.
    expect(run(sequence, [ev('A', 0, 'x', 'a'), ev('M', 0, 'x'), ev('M', 10, 'x'), ev('B', 10, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', null, 'b'] }]);
  });

  it('middle: a rejected sequence still used up its events (the check comes after matching)', () => {
    const sequence = spec([stage('A'), missing('M'), stage('B')], 100);
    expect(run(sequence, [ev('A', 0, 'x'), ev('M', 5, 'x'), ev('B', 10, 'x'), ev('B', 20, 'x')])).toEqual([]);
  });

  it('middle: consecutive missing stages are each checked over the same gap', () => {
    const sequence = spec([stage('A'), missing('M'), missing('N'), stage('B')], 100);
    expect(run(sequence, [ev('A', 0, 'x'), ev('N', 5, 'x'), ev('B', 10, 'x')])).toEqual([]);
    expect(run(sequence, [ev('A', 0, 'x', 'a'), ev('B', 10, 'x', 'b')])).toEqual([{ keys: ['x'], ids: ['a', null, null, 'b'] }]);
  });

  it('trailing: completes once maxspan from the first event has passed without the missing event', () => {
    const sequence = spec([stage('A'), missing('B')], 10);
    expect(run(sequence, [ev('A', 0, 'x'), ev('B', 5, 'x')])).toEqual([]);
    expect(run(sequence, [ev('A', 0, 'x'), ev('B', 10, 'x')])).toEqual([]);
    expect(run(sequence, [ev('A', 0, 'x', 'a'), ev('B', 11, 'x')])).toEqual([{ keys: ['x'], ids: ['a', null] }]);
    expect(run(sequence, [ev('A', 0, 'x', 'a'), ev('B', 5, 'y')])).toEqual([{ keys: ['x'], ids: ['a', null] }]);
    // Trailing means strictly after the last positive event's timestamp.
    expect(run(sequence, [ev('A', 0, 'x', 'a'), ev('B', 0, 'x')])).toEqual([{ keys: ['x'], ids: ['a', null] }]);

    const matcher = new SequenceMatcher<Ev>(sequence, { maxPartials: 10 });
    expect(matcher.push(ev('A', 0, 'x', 'a'), 0)).toEqual([]);
    expect(matcher.advance(10)).toEqual([]);
    expect(matcher.stats.partials).toBe(1);
    expect(ids(matcher.advance(11)[0]!.events)).toEqual(['a', null]);
    expect(matcher.stats).toMatchObject({ partials: 0, completed: 1, expired: 0 });
  });

  it('trailing: every candidate sequence of a key is checked (each A starts its own)', () => {
    const sequence = spec([stage('A'), missing('B')], 10);
    const results = run(sequence, [ev('A', 0, 'x', 'a0'), ev('A', 3, 'x', 'a3'), ev('B', 12, 'x')]);
    // B at 12 is beyond maxspan from a0 (complete) but within it from a3 (rejected).
    expect(results).toEqual([{ keys: ['x'], ids: ['a0', null] }]);
  });

  it('leading: rejects when the newest missing event before the start lies within maxspan of the last event', () => {
    const sequence = spec([missing('X'), stage('A'), stage('B')], 10);
    expect(run(sequence, [ev('X', 0, 'x'), ev('A', 5, 'x'), ev('B', 8, 'x')])).toEqual([]);
    expect(run(sequence, [ev('X', 0, 'x'), ev('A', 5, 'x', 'a'), ev('B', 11, 'x', 'b')])).toEqual([{ keys: ['x'], ids: [null, 'a', 'b'] }]);
    expect(run(sequence, [ev('A', 5, 'x', 'a'), ev('B', 8, 'x', 'b')])).toEqual([{ keys: ['x'], ids: [null, 'a', 'b'] }]);
    // Strictly before the first event's timestamp: the same millisecond, or after it, does not count.
    expect(run(sequence, [ev('X', 5, 'x'), ev('A', 5, 'x', 'a'), ev('X', 6, 'x'), ev('B', 8, 'x', 'b')])).toEqual([{ keys: ['x'], ids: [null, 'a', 'b'] }]);
    expect(run(sequence, [ev('X', 2, 'x'), ev('X', 5, 'x'), ev('A', 5, 'x'), ev('B', 8, 'x')])).toEqual([]);
  });

  it('first and last missing: as doCheckMissingEvents decides, including no leading event completing at once', () => {
    const sequence = spec([missing('X'), stage('A'), missing('Y')], 10);
    expect(run(sequence, [ev('X', 0, 'x'), ev('A', 5, 'x'), ev('Y', 8, 'x')])).toEqual([]);
    expect(run(sequence, [ev('X', 0, 'x'), ev('A', 5, 'x', 'a'), ev('Y', 11, 'x')])).toEqual([{ keys: ['x'], ids: [null, 'a', null] }]);
    expect(run(sequence, [ev('X', 0, 'x'), ev('A', 5, 'x', 'a')])).toEqual([{ keys: ['x'], ids: [null, 'a', null] }]);
    // `lastLeading == null && isMissingEvent(0)` completes whatever trails.
    expect(run(sequence, [ev('A', 5, 'x', 'a'), ev('Y', 6, 'x')])).toEqual([{ keys: ['x'], ids: [null, 'a', null] }]);
  });

  it('interleaved missing and positive stages', () => {
    const sequence = spec([missing('F'), stage('N'), missing('F'), stage('N'), missing('F')], 100);
    expect(run(sequence, [ev('N', 1, 'x', 'n1'), ev('N', 2, 'x', 'n2')])).toEqual([{ keys: ['x'], ids: [null, 'n1', null, 'n2', null] }]);
    expect(run(sequence, [ev('N', 1, 'x'), ev('F', 2, 'x'), ev('N', 3, 'x')])).toEqual([]);
  });
});

describe('SequenceMatcher: result order', () => {
  it('returns sequences in the order of their last event (Sequence.compareTo), not their first', () => {
    const results = run(spec([stage('A'), stage('B')]), [ev('A', 1, 'x', 'ax'), ev('A', 2, 'y', 'ay'), ev('B', 3, 'y', 'by'), ev('B', 4, 'x', 'bx')]);
    expect(results.map((result) => result.ids)).toEqual([
      ['ay', 'by'],
      ['ax', 'bx'],
    ]);
  });

  it('holds a complete sequence back behind an earlier one still inside its trailing window', () => {
    const matcher = new SequenceMatcher<Ev>(spec([missing('X'), stage('A'), missing('Y')], 10), { maxPartials: 10 });
    expect(matcher.push(ev('X', 0, 'k1'), 0)).toEqual([]);
    expect(matcher.push(ev('A', 5, 'k1', 'a1'), 5)).toEqual([]);
    // k2 has no leading event, so it is complete now, but k1's last event came first.
    expect(matcher.push(ev('A', 6, 'k2', 'a2'), 6)).toEqual([]);
    const released = matcher.push(ev('Y', 11, 'k1'), 11);
    expect(released.map((result) => result.joinKeys)).toEqual([['k1'], ['k2']]);
  });
});

describe('SequenceMatcher: bounds and lifecycle', () => {
  it('drops the oldest partial when full, and counts it', () => {
    const matcher = new SequenceMatcher<Ev>(spec([stage('A'), stage('B')]), { maxPartials: 2 });
    for (const [ts, key] of [[1, 'k1'], [2, 'k2'], [3, 'k3']] as const) matcher.push(ev('A', ts, key), ts);
    expect(matcher.stats).toMatchObject({ partials: 2, dropped: 1 });
    expect(matcher.push(ev('B', 4, 'k1'), 4)).toEqual([]);
    expect(matcher.push(ev('B', 5, 'k2'), 5)).toHaveLength(1);
    expect(matcher.stats).toMatchObject({ partials: 1, dropped: 1, completed: 1 });
  });

  it('drops nothing when a key restarts its own sequence at the bound: the new partial replaces its own', () => {
    const matcher = new SequenceMatcher<Ev>(spec([stage('A'), stage('B')]), { maxPartials: 3 });
    for (const [ts, key] of [[1, 'x'], [2, 'y'], [3, 'z'], [4, 'z']] as const) matcher.push(ev('A', ts, key, `a${ts}`), ts);
    expect(matcher.stats).toMatchObject({ partials: 3, dropped: 0 });
    expect(matcher.push(ev('B', 5, 'x', 'b'), 5).map((result) => ids(result.events))).toEqual([['a1', 'b']]);
    matcher.push(ev('A', 6, 'w'), 6);
    matcher.push(ev('A', 7, 'v'), 7);
    expect(matcher.stats).toMatchObject({ partials: 3, dropped: 1 });
  });

  it('drops a pending trailing-window sequence like any partial', () => {
    const matcher = new SequenceMatcher<Ev>(spec([stage('A'), missing('B')], 10), { maxPartials: 1 });
    matcher.push(ev('A', 0, 'k1'), 0);
    matcher.push(ev('A', 1, 'k2', 'a2'), 1);
    expect(matcher.stats).toMatchObject({ partials: 1, dropped: 1 });
    expect(matcher.finish().map((result) => result.joinKeys)).toEqual([['k2']]);
  });

  it('returns the same empty answer for events that match nothing', () => {
    const matcher = new SequenceMatcher<Ev>(spec([stage('A'), stage('B')], 10), { maxPartials: 10 });
    const first = matcher.push(ev('Z', 1, 'x'), 1);
    expect(first).toHaveLength(0);
    expect(matcher.push(ev('Z', 2, 'x'), 2)).toBe(first);
  });

  it('completes pending sequences at finish and starts over afterwards', () => {
    const matcher = new SequenceMatcher<Ev>(spec([stage('A'), stage('B'), missing('C')], 10), { maxPartials: 10 });
    matcher.push(ev('A', 0, 'x', 'a'), 0);
    matcher.push(ev('B', 1, 'x', 'b'), 1);
    matcher.push(ev('A', 2, 'y'), 2);
    expect(matcher.finish().map((result) => ids(result.events))).toEqual([['a', 'b', null]]);
    expect(matcher.stats).toMatchObject({ partials: 0, completed: 1 });
    expect(matcher.push(ev('B', 3, 'y'), 3)).toEqual([]);
  });

  it('rejects specs ES would not run', () => {
    expect(() => new SequenceMatcher(spec([stage('A')]), { maxPartials: 1 })).toThrow();
    expect(() => new SequenceMatcher(spec([missing('A'), missing('B')], 10), { maxPartials: 1 })).toThrow();
    expect(() => new SequenceMatcher(spec([stage('A'), stage('B')]), { maxPartials: 0 })).toThrow();
  });
});

describe('a bound on the keys of one event', () => {
  it('joins an event under at most MAX_KEYS_PER_EVENT keys, however many values its key fields hold', async () => {
    const { compileEql } = await import('../../src/eql/index.js');
    const { MAX_KEYS_PER_EVENT } = await import('../../src/eql/sequence.js');
    const compiled = compileEql('sequence by process.args, process.parent.args [process where true] [process where false]');
    if (compiled.kind !== 'sequence') throw new Error('a sequence');
    const matcher = compiled.createMatcher<object>({ maxPartials: 10_000_000 });
    const args = Array.from({ length: 1000 }, (_, i) => `a${i}`);
    matcher.push({ event: { category: ['process'] }, process: { args, parent: { args } } }, 0);
    expect(matcher.stats.partials).toBe(MAX_KEYS_PER_EVENT);
  });
});
