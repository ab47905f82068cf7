import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { documentJson, markHoldsShared, markShared } from '../../src/ecs/json.js';

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string(),
    fc.integer(),
    fc.double({ noNaN: false }),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.array(tie('value'), { maxLength: 4 }),
    tie('object'),
  ),
  object: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('@timestamp', 'process', 'a"b', '\u2028', '__proto__x')), tie('value'), { maxKeys: 5 }),
}));

describe('documentJson', () => {
  it('gives exactly JSON.stringify’s text for any document, shared parts or not', () => {
    fc.assert(
      fc.property(jsonValue.object, fc.array(fc.nat(), { maxLength: 4 }), fc.array(fc.nat(), { maxLength: 4 }), (document, picks, holders) => {
        // mark some nested objects shared, as the sensor marks parents, leaders and host, and some (arrays
        // too, which are encoded whole all the same) as holding shared parts, as it marks an event's process
        const nested: object[] = [];
        const collect = (value: unknown) => {
          if (typeof value !== 'object' || value === null) return;
          nested.push(value);
          for (const inner of Object.values(value)) collect(inner);
        };
        collect(document);
        for (const pick of holders) if (nested.length > 0) markHoldsShared(nested[pick % nested.length]!);
        for (const pick of picks) if (nested.length > 0) markShared(nested[pick % nested.length]!);
        expect(documentJson(document)).toBe(JSON.stringify(document));
        // and again, now from the encoded text of the shared parts
        expect(documentJson(document)).toBe(JSON.stringify(document));
      }),
    );
  });

  it('leaves out what JSON.stringify leaves out: undefined and function values, symbol keys; honours toJSON', () => {
    const symbol = Symbol('hidden');
    const document = { a: undefined, b: () => 1, [symbol]: true, c: { d: undefined, e: [undefined, 1] }, when: new Date(0), f: { toJSON: () => 'x' } };
    expect(documentJson(document)).toBe(JSON.stringify(document));
  });

  it('reuses a shared object’s text: it is encoded once, at its first use', () => {
    const parent = markShared({ pid: 1, name: 'init' });
    const first = documentJson({ process: markHoldsShared({ pid: 2, parent }) });
    parent.name = 'changed after its first encoding';
    expect(documentJson({ process: markHoldsShared({ pid: 3, parent }) })).toBe('{"process":{"pid":3,"parent":{"pid":1,"name":"init"}}}');
    // an object not marked as holding shared parts is encoded whole, as it is now
    expect(documentJson({ process: { pid: 4, parent } })).toBe(`{"process":{"pid":4,"parent":{"pid":1,"name":"${parent.name}"}}}`);
    expect(first).toBe('{"process":{"pid":2,"parent":{"pid":1,"name":"init"}}}');
  });

  it('does not pass the mark on to a spread copy, and shows it to neither Object.keys nor JSON', () => {
    const leader = markShared({ pid: 1, name: 'init' });
    documentJson({ leader });
    const copy = { ...leader, same_as_process: true };
    expect(documentJson({ leader: copy })).toBe('{"leader":{"pid":1,"name":"init","same_as_process":true}}');
    expect(Object.keys(leader)).toEqual(['pid', 'name']);
    expect(JSON.stringify(leader)).toBe('{"pid":1,"name":"init"}');
  });
});
