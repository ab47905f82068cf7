import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_MS, openTestStore, tempStateDir } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);
const value = fc.oneof(
  fc.constantFrom('/bin/sh', '/bin/bash', 'a:b', ':', '1:', '', '\ud800', 'é', '🦀', '\n'),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 6 }),
);
const operation = fc.record({
  kind: fc.constantFrom('recordNew', 'touch', 'compact', 'reopen'),
  arity: fc.integer({ min: 1, max: 3 }),
  tuple: fc.array(value, { minLength: 3, maxLength: 3 }),
  offsetMs: fc.integer({ min: 0, max: 10 * DAY_MS }),
});

describe('store against a model (a map of the latest sighting per tuple)', () => {
  it('answers lastSeen like the model after any mix of records, touches, compactions and reopens', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { maxLength: 40 }), async (operations) => {
        const { dir, cleanup } = tempStateDir();
        const model = new Map<string, number>();
        const modelKey = (arity: number, tuple: readonly string[]) => JSON.stringify([arity, tuple]);
        let { store } = await openTestStore(dir);
        const historyOf = (arity: number) => store.history('rule', ['f1', 'f2', 'f3'].slice(0, arity), 365 * DAY_MS);
        try {
          for (const op of operations) {
            const tuple = op.tuple.slice(0, op.arity);
            const at = T0 + op.offsetMs;
            if (op.kind === 'compact') await store.compact();
            else if (op.kind === 'reopen') {
              await store.close();
              ({ store } = await openTestStore(dir));
            } else {
              if (op.kind === 'recordNew') await historyOf(op.arity).recordNew(tuple, at);
              else historyOf(op.arity).touch(tuple, at);
              const key = modelKey(op.arity, tuple);
              model.set(key, Math.max(model.get(key) ?? -Infinity, Math.floor(at / 1000) * 1000));
            }
          }
          await store.close();
          ({ store } = await openTestStore(dir));
          for (const [key, lastSeen] of model) {
            const [arity, tuple] = JSON.parse(key) as [number, string[]];
            expect(historyOf(arity).lastSeen(tuple)).toBe(lastSeen);
          }
          expect(store.stats().tuples).toBe(model.size);
        } finally {
          await store.close();
          cleanup();
        }
      }),
      { numRuns: 60 },
    );
  });
});
