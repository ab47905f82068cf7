import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { EVALUATION_SLICE_MS, EvaluationQueue, MAX_EVALUATION_BACKLOG, SLOW_EVALUATION_MS } from '../../src/engine/queue.js';
import { recordingLogger } from './helpers.js';

/** An engine whose every evaluation costs `costMs` of busy CPU, recording the order it saw. */
function slowEngine(costMs: number): { seen: number[]; evaluate(event: ProcessEvent): void; slowestRule(): { rule: string; ms: number } } {
  const seen: number[] = [];
  return {
    seen,
    evaluate(event) {
      const until = performance.now() + costMs;
      while (performance.now() < until);
      seen.push((event as unknown as { n: number }).n);
    },
    slowestRule: () => ({ rule: 'the slow one', ms: costMs }),
  };
}

const quiet = pino({ level: 'silent' });

const events = (from: number, count: number): ProcessEvent[] => Array.from({ length: count }, (_, i) => ({ n: from + i }) as unknown as ProcessEvent);
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('EvaluationQueue', () => {
  it('gives the event loop back after a slice, and evaluates everything in arrival order', async () => {
    const engine = slowEngine(1);
    const queue = new EvaluationQueue(engine, quiet);
    const started = performance.now();
    queue.push(events(0, 200));
    // the push returned after about one slice, not after 200 ms of evaluation
    expect(performance.now() - started).toBeLessThan(EVALUATION_SLICE_MS + 40);
    expect(queue.stats().backlog).toBeGreaterThan(0);
    queue.push(events(200, 10));
    while (queue.stats().backlog > 0) await turn();
    expect(engine.seen).toEqual(Array.from({ length: 210 }, (_, i) => i));
    expect(queue.stats().yields).toBeGreaterThan(0);
  });

  it('under a lasting flood: the backlog stays at its bound and evaluated events are let go', async () => {
    const engine = slowEngine(0.02);
    const queue = new EvaluationQueue(engine, quiet);
    const held = (): number => (queue as unknown as { waiting: unknown[] }).waiting.length;
    let pushed = 0;
    let mostHeld = 0;
    // counted in events, not time: a loaded machine must not make the flood too short to prove anything
    while (pushed <= 5 * MAX_EVALUATION_BACKLOG) {
      // more per turn than a slice evaluates: the backlog climbs to its bound and stays there
      queue.push(events(pushed, 5000));
      pushed += 5000;
      expect(queue.stats().backlog).toBeLessThanOrEqual(MAX_EVALUATION_BACKLOG);
      mostHeld = Math.max(mostHeld, held());
      await turn();
    }
    // a lasting backlog: the queue never emptied, yet it holds about the backlog, not all since the start
    expect(pushed).toBeGreaterThan(4 * MAX_EVALUATION_BACKLOG);
    expect(mostHeld).toBeLessThan(3 * MAX_EVALUATION_BACKLOG);
    queue.finish();
    expect(queue.stats().backlog).toBe(0);
    expect(queue.stats().peakBacklog).toBeGreaterThan(MAX_EVALUATION_BACKLOG);
    expect(engine.seen.length).toBe(pushed);
    expect(engine.seen.every((n, i) => n === i)).toBe(true);
  });

  it('counts an event slower than SLOW_EVALUATION_MS and logs it with the slowest rule, once a minute', async () => {
    const engine = slowEngine(SLOW_EVALUATION_MS + 2);
    const { logger, records } = recordingLogger();
    const queue = new EvaluationQueue(engine, logger);
    queue.push(events(0, 3));
    while (queue.stats().backlog > 0) await turn();
    expect(queue.stats()).toMatchObject({ slowEvaluations: 3 });
    expect(queue.stats().slowestEvaluationMs).toBeGreaterThan(SLOW_EVALUATION_MS);
    const warnings = records.filter((record) => typeof record.msg === 'string' && record.msg.includes('to evaluate'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ slowestRule: 'the slow one', slowEvaluations: 1 });
  });
});
