import fc from 'fast-check';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Alert, ExecsentryRaw } from '../../src/ecs/types.js';
import { DetectionEngine } from '../../src/engine/index.js';
import { termCombinations, termValues } from '../../src/engine/new-terms.js';
import { loadRuleSet } from '../../src/rules/index.js';
import { openHistoryStore } from '../../src/store/index.js';
import { kibanaRule, ruleTree } from '../rules/fixtures.js';
import { execEvent, recordingLogger, replay, tempDir } from './helpers.js';

describe('term values', () => {
  it('reads keyword-like values as text, drops objects and nulls, keeps each value once', () => {
    expect(termValues(['a', 1, true, null, { x: 1 }, 'a', 2n])).toEqual(['a', '1', 'true', '2']);
    expect(termValues([])).toEqual([]);
  });
});

describe('term combinations', () => {
  it('gives every combination, last field fastest', () => {
    expect(termCombinations([['a', 'b'], ['1'], ['x', 'y']], 100)).toEqual({
      tuples: [
        ['a', '1', 'x'],
        ['a', '1', 'y'],
        ['b', '1', 'x'],
        ['b', '1', 'y'],
      ],
      truncated: false,
    });
  });

  it('gives none when a field has no value', () => {
    expect(termCombinations([['a'], []], 100)).toEqual({ tuples: [], truncated: false });
  });

  it('is the cartesian product, distinct tuples, cut at the limit (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uniqueArray(fc.string({ maxLength: 3 }), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 300 }),
        (perField, limit) => {
          const { tuples, truncated } = termCombinations(perField, limit);
          const product = perField.reduce((n, values) => n * values.length, 1);
          expect(tuples).toHaveLength(Math.min(product, limit));
          expect(truncated).toBe(product > limit);
          expect(new Set(tuples.map((tuple) => JSON.stringify(tuple))).size).toBe(tuples.length);
          for (const tuple of tuples) tuple.forEach((term, field) => expect(perField[field]).toContain(term));
        },
      ),
    );
  });
});

describe('an attacker-sized argv', () => {
  it('bounds the tuples per event and counts the events that were cut', async () => {
    const rule = kibanaRule({ rule_id: 'args', name: 'Args', query: 'event.action:exec', new_terms_fields: ['process.args', 'process.thread.capabilities.effective'] });
    const { rules } = await loadRuleSet([ruleTree({ 'r.ndjson': JSON.stringify(rule) })], { skipUnsupported: false });
    const { logger } = recordingLogger();
    const store = await openHistoryStore({ stateDir: join(tempDir(), 'state'), maxTuplesPerRule: 100_000, logger });
    const alerts: Alert[] = [];
    const engine = new DetectionEngine(rules, { store, logger, emit: (alert) => alerts.push(alert), maxTuplesPerEvent: 50 });
    const args = Array.from({ length: 100 }, (_, i) => `arg${i}`);
    const event = execEvent('2024-05-01T10:00:00.000Z', { process: { args, thread: { capabilities: { effective: ['CAP_A', 'CAP_B'] } } } });
    engine.evaluate(event, Date.parse(event['@timestamp']));
    await engine.drain();
    await store.close();
    // max_signals (100 per interval) is above the 50 tuples: what limits is the per-event bound.
    expect(alerts).toHaveLength(50);
    expect(engine.stats()).toMatchObject({ events: 1, matches: 1, alerts: 50, tuplesTruncated: 1, suppressed: 0 });
  });
});

describe('a rule that throws on an event', () => {
  it('is counted and logged once; the other rules and events go on', async () => {
    const query = (id: string, kql: string): Record<string, unknown> =>
      kibanaRule({ rule_id: id, name: id, type: 'query', query: kql, new_terms_fields: undefined, history_window_start: undefined });
    const file = ruleTree({ 'r.ndjson': [query('reads-process', 'process.name:bash'), query('reads-user', 'user.name:daemon')].map((r) => JSON.stringify(r)).join('\n') });
    const { rules } = await loadRuleSet([file], { skipUnsupported: false });
    const { logger, records } = recordingLogger();
    const store = await openHistoryStore({ stateDir: join(tempDir(), 'state'), maxTuplesPerRule: 10, logger });
    const alerts: Alert[] = [];
    const engine = new DetectionEngine(rules, { store, logger, emit: (alert) => alerts.push(alert) });
    // A document whose process.name cannot be read (a getter that throws stands in for any bug).
    const hostile = execEvent('2024-05-01T10:00:00.000Z');
    Object.defineProperty(hostile.process, 'name', {
      enumerable: true,
      get() {
        throw new Error('unreadable');
      },
    });
    engine.evaluate(hostile, 0);
    engine.evaluate(hostile, 1);
    await engine.drain();
    await store.close();
    expect(alerts.map((alert) => alert.rule.id)).toEqual(['reads-user', 'reads-user']);
    expect(engine.stats().evaluationErrors).toBe(2);
    expect(records.filter((record) => record['level'] === 50).map((record) => record['rule'])).toEqual(['reads-process']);
  });
});

describe('values the sensor had to repair (bytes that were not UTF-8)', () => {
  const shown = '/tmp/x\uFFFD';
  const at = (minute: number) => `2024-05-01T10:${String(minute).padStart(2, '0')}:00.000Z`;
  /** The event of /tmp/x<byte>: shown with U+FFFD as the sensor repairs it, its bytes under execsentry.raw. */
  const lossy = (minute: number, raw: ExecsentryRaw, process: Record<string, unknown> = {}) =>
    execEvent(at(minute), { process: { executable: shown, name: 'x\uFFFD', ...process }, execsentry: { paths_lossy: true, raw } });
  const plain = (minute: number, process: Record<string, unknown> = {}) => execEvent(at(minute), { process: { executable: shown, name: 'x\uFFFD', ...process } });

  async function newTermsOf(fields: string[], events: readonly ReturnType<typeof execEvent>[]) {
    const rule = kibanaRule({ rule_id: `repaired-${fields.join('-')}`, name: 'Repaired', query: 'event.action:exec', new_terms_fields: fields });
    const { rules } = await loadRuleSet([ruleTree({ 'r.ndjson': JSON.stringify(rule) })], { skipUnsupported: false });
    const { logger } = recordingLogger();
    const store = await openHistoryStore({ stateDir: join(tempDir(), 'state'), maxTuplesPerRule: 1000, logger });
    const alerts: Alert[] = [];
    const engine = new DetectionEngine(rules, { store, logger, emit: (alert) => alerts.push(alert) });
    for (const event of events) engine.evaluate(event, Date.parse(event['@timestamp']));
    await engine.drain();
    await store.close();
    // `rules test` reads the same events back from NDJSON: it must find the same terms.
    const replayed = await replay(rules, events);
    const terms = (list: Alert[]) => list.map((alert) => alert.execsentry.new_terms);
    expect(terms(replayed)).toEqual(terms(alerts));
    return { terms: terms(alerts), alerts, stats: engine.stats() };
  }

  it('are two terms when their bytes differ, though they look the same; without raw bytes, the value is the term', async () => {
    const { terms, alerts } = await newTermsOf(
      ['process.executable'],
      [
        lossy(0, { 'process.executable': '/tmp/x\\xff' }),
        lossy(1, { 'process.executable': '/tmp/x\\xfe' }),
        lossy(2, { 'process.executable': '/tmp/x\\xff' }),
        plain(3),
        plain(4),
      ],
    );
    expect(terms).toEqual([{ 'process.executable': '/tmp/x\\xff' }, { 'process.executable': '/tmp/x\\xfe' }, { 'process.executable': shown }]);
    // The alert shows what the analyst sees, and the bytes beside it.
    expect(alerts[0]?.process.executable).toBe(shown);
    expect(alerts[0]?.execsentry.raw).toEqual({ 'process.executable': '/tmp/x\\xff' });
  });

  it('reads a multi-field from its parent\'s raw bytes, normalized as the multi-field is', async () => {
    const { terms } = await newTermsOf(
      ['process.executable.caseless'],
      [
        lossy(0, { 'process.executable': '/tmp/X\\xff' }),
        lossy(1, { 'process.executable': '/tmp/x\\xff' }),
        lossy(2, { 'process.executable': '/tmp/x\\xfe' }),
      ],
    );
    expect(terms).toEqual([{ 'process.executable.caseless': '/tmp/x\\xff' }, { 'process.executable.caseless': '/tmp/x\\xfe' }]);
  });

  it('never share a term with a valid name that reads like their escape (a file really named x\\xff)', async () => {
    const { terms } = await newTermsOf(
      ['process.executable'],
      [lossy(0, { 'process.executable': '/tmp/x\\xff' }), plain(1, { executable: '/tmp/x\\xff' }), plain(2, { executable: '/tmp/x\\xff' })],
    );
    // two alerts, shown alike: the repaired one's term is kept apart in the history, not in the alert
    expect(terms).toEqual([{ 'process.executable': '/tmp/x\\xff' }, { 'process.executable': '/tmp/x\\xff' }]);
  });

  it('keep the plain term for the elements of a repaired array that needed no repair', async () => {
    const { terms } = await newTermsOf(
      ['process.args'],
      [plain(0, { args: ['a\\b', '-i'] }), lossy(1, { 'process.args': ['/tmp/x\\xff', 'a\\\\b', '-i'] }, { args: [shown, 'a\\b', '-i'] })],
    );
    expect(terms).toEqual([{ 'process.args': 'a\\b' }, { 'process.args': '-i' }, { 'process.args': '/tmp/x\\xff' }]);
  });

  it('takes an array field\'s raw array as a whole', async () => {
    const args = [shown, '-i'];
    const { terms } = await newTermsOf(
      ['process.args'],
      [
        lossy(0, { 'process.args': ['/tmp/x\\xff', '-i'] }, { args }),
        lossy(1, { 'process.args': ['/tmp/x\\xfe', '-i'] }, { args }),
        plain(2, { args }),
      ],
    );
    expect(terms).toEqual([{ 'process.args': '/tmp/x\\xff' }, { 'process.args': '-i' }, { 'process.args': '/tmp/x\\xfe' }, { 'process.args': shown }]);
  });

  it('lets the value decide whether there is a term: escaping cannot push it over ignore_above', async () => {
    const long = (byte: string) => lossy(0, { 'process.executable': `/t/${byte.repeat(300)}` }, { executable: `/t/${'\uFFFD'.repeat(300)}` });
    const { terms } = await newTermsOf(['process.executable'], [long('\\xff'), long('\\xfe')]);
    expect(terms).toEqual([{ 'process.executable': `/t/${'\\xff'.repeat(300)}` }, { 'process.executable': `/t/${'\\xfe'.repeat(300)}` }]);
    // A value over ignore_above has no term, whatever its bytes.
    const over = await newTermsOf(['process.executable'], [lossy(0, { 'process.executable': '\\xff'.repeat(1100) }, { executable: '\uFFFD'.repeat(1100) })]);
    expect(over.terms).toEqual([]);
    expect(over.stats.missingTermFields).toBe(1);
  });

  it('ignores raw bytes that do not fit the field\'s values (an event edited by hand)', async () => {
    const { terms } = await newTermsOf(['process.args'], [lossy(0, { 'process.args': ['only-one'] }, { args: ['a', 'b'] })]);
    expect(terms).toEqual([{ 'process.args': 'a' }, { 'process.args': 'b' }]);
  });
});
