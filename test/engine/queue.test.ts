import { describe, expect, it } from 'vitest';
import type { ProcessEvent } from '../../src/ecs/types.js';
import { EVALUATION_SLICE_MS, EvaluationQueue, MAX_EVALUATION_BACKLOG } from '../../src/engine/queue.js';

/** An engine whose every evaluation costs `costMs` of busy CPU, recording the order it saw. */
function slowEngine(costMs: number): { seen: number[]; evaluate(event: ProcessEvent): void } {
  const seen: number[] = [];
  return {
    seen,
    evaluate(event) {
      const until = performance.now() + costMs;
      while (performance.now() < until);
      seen.push((event as unknown as { n: number }).n);
    },
  };
}

const events = (from: number, count: number): ProcessEvent[] => Array.from({ length: count }, (_, i) => ({ n: from + i }) as unknown as ProcessEvent);
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('EvaluationQueue', () => {
  it('gives the event loop back after a slice, and evaluates everything in arrival order', async () => {
    const engine = slowEngine(1);
    const queue = new EvaluationQueue(engine);
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
    const queue = new EvaluationQueue(engine);
    const held = (): number => (queue as unknown as { waiting: unknown[] }).waiting.length;
    let pushed = 0;
    let mostHeld = 0;
    const deadline = performance.now() + 1500;
    while (performance.now() < deadline) {
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
});
