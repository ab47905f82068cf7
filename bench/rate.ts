import { performance } from 'node:perf_hooks';

/**
 * The best evaluations per second of `run` over `rounds` rounds of `evaluations` calls, checking that every
 * call gives the `expected` answer (a benchmark of a wrong answer measures nothing).
 */
export function bestRate(run: () => boolean, expected: boolean, rounds: number, evaluations: number): number {
  if (run() !== expected) throw new Error(`benchmark fixture answered ${String(!expected)}, expected ${String(expected)}`);
  let best = 0;
  for (let round = 0; round < rounds; round++) {
    let agree = 0;
    const start = performance.now();
    for (let i = 0; i < evaluations; i++) if (run() === expected) agree++;
    const seconds = (performance.now() - start) / 1000;
    if (agree !== evaluations) throw new Error('the answer changed between evaluations');
    best = Math.max(best, evaluations / seconds);
  }
  return best;
}
