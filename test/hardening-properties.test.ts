import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { UserFacingError } from '../src/errors.js';
import { compileKql, KqlSyntaxError, parseKql } from '../src/kql/index.js';
import { parseRuleFile } from '../src/rules/formats.js';
import { validateCandidate } from '../src/rules/validate.js';
import { leastRatio } from './helpers/growth.js';

/**
 * Hostile and careless input through every parser an attacker or a hurried administrator can reach:
 * queries, documents, rule files, configs. Whatever comes in, the only exceptions are the project's own
 * (a syntax error, a ValidationError), nothing reaches Object.prototype, and cost grows linearly with size.
 * Bounded: a fixed number of runs, well under a minute in CI.
 */

const NAUGHTY_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();

afterEach(() => {
  // Nothing may have been planted on every object's prototype.
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'execsentry-hostile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const queryToken = fc.constantFrom(
  'a', 'process.name', 'process.command_line.text', 'message', 'user.id', '@timestamp', 'process.args', ...NAUGHTY_KEYS,
  ':', ' : ', '(', ')', '{', '}', '"', '\\', '\\"', '*', '?', ' and ', ' or ', ' not ', 'not ', ' ', '<', '<=', '>', '>=',
  '.', '..', '\u0000', '\u001b[31m', 'é', '𝔘', '\ud800', 'now-1d/d', '2024-01-01', '10.0.0.0/8', '-1', '1e308', 'true', 'null',
);
const query = fc.oneof(
  fc.array(queryToken, { maxLength: 40 }).map((tokens) => tokens.join('')),
  fc.string({ unit: 'binary', maxLength: 60 }),
);

const documentKey = fc.constantFrom('a', 'process', 'name', 'process.name', 'command_line', 'text', 'message', 'user', 'id', 'args', '@timestamp', ...NAUGHTY_KEYS, '');
const documentValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.constantFrom('bash', 'x y z', '2024-01-01T00:00:00Z', '10.1.2.3', '*', 'a.b', '\ud800'),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(documentKey, tie('value'), { maxKeys: 4 }),
  ),
}));
const documentArbitrary = fc.dictionary(documentKey, documentValue.value, { maxKeys: 6 });

/** JSON.parse makes "__proto__" an own key, as a document from the wire has it. */
const asParsed = (value: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

describe('hostile input: no exception but our own, no prototype pollution', () => {
  it('KQL: any query parses or fails with a syntax error; any compiled query evaluates any document to a boolean', () => {
    fc.assert(
      fc.property(query, fc.array(documentArbitrary, { maxLength: 4 }), (text, documents) => {
        let compiled;
        try {
          parseKql(text);
          compiled = compileKql(text);
        } catch (err) {
          if (err instanceof KqlSyntaxError) return;
          throw err;
        }
        for (const document of documents) expect(typeof compiled.matches(asParsed(document))).toBe('boolean');
      }),
      { numRuns: 1500 },
    );
  });

  it('rule files: any TOML, NDJSON or JSON text gives rules or problems, never an exception', () => {
    const tomlLine = fc.oneof(
      fc.constantFrom('[rule]', '[metadata]', '[rule.new_terms]', '[[rule.threat]]', 'type = "new_terms"', 'type = "query"', 'language = "kuery"',
        "query = '''", "'''", 'query = "process.name:bash"', 'rule_id = "x"', 'name = "n"', 'severity = "low"', 'risk_score = 21',
        'interval = "99999999999999d"', 'max_signals = -1', 'value = ["process.executable"]', 'field = "new_terms_fields"',
        '__proto__ = 1', 'constructor = { polluted = 1 }', 'a = [[[[[1]]]]]', 'x = """', '\u0000'),
      fc.string({ unit: 'binary', maxLength: 40 }),
    );
    const jsonRule = fc.record(
      {
        rule_id: fc.oneof(fc.string(), fc.constantFrom(...NAUGHTY_KEYS)),
        name: fc.string(),
        type: fc.constantFrom('query', 'new_terms', 'eql', '__proto__'),
        language: fc.constantFrom('kuery', 'lucene'),
        query: query,
        severity: fc.constantFrom('low', 'high', 'nope'),
        risk_score: fc.oneof(fc.integer(), fc.double()),
        new_terms_fields: fc.array(fc.oneof(fc.string(), fc.constantFrom(...NAUGHTY_KEYS)), { maxLength: 4 }),
        history_window_start: fc.constantFrom('now-14d', 'now-99999999999y', 'x'),
      },
      { requiredKeys: [] },
    );
    // A literal `__proto__` key in an object would set its prototype, not make a key: spliced in as text,
    // as a hostile file has it.
    const hostileKeys = fc.constantFrom('', '"__proto__": {"polluted": 1}, ', '"constructor": {"prototype": {"polluted": 1}}, ');
    const jsonRuleText = fc.tuple(hostileKeys, jsonRule).map(([keys, rule]) => JSON.stringify(rule).replace(/^\{/, `{${keys}`).replace(', }', '}'));
    fc.assert(
      fc.property(fc.array(tomlLine, { maxLength: 30 }), fc.array(fc.oneof(jsonRuleText, fc.json()), { maxLength: 4 }), (toml, json) => {
        const files: Array<[string, string]> = [
          ['rules.toml', toml.join('\n')],
          ['export.ndjson', json.join('\n')],
          ['rule.json', json[0] ?? ''],
        ];
        for (const [name, text] of files) {
          const parsed = parseRuleFile(join(dir, name), text);
          for (const candidate of parsed.candidates) validateCandidate(candidate);
        }
      }),
      { numRuns: 600 },
    );
  });

  it('configs: any JSON file loads or is refused with a ValidationError', () => {
    const configKey = fc.constantFrom('rules', 'stateDir', 'outputs', 'url', 'sensor', 'maxArgsBytes', 'socketBufferBytes', 'headers', 'metrics', 'port', ...NAUGHTY_KEYS);
    const configValue = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.string({ unit: 'binary', maxLength: 20 }),
        fc.constantFrom('stdout', 'http://127.0.0.1:0/', 'file:relative', '/tmp', 1e15, 2 ** 40, -1, 0),
        fc.double(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(configKey, tie('value'), { maxKeys: 4 }),
      ),
    }));
    const file = join(dir, 'config.json');
    fc.assert(
      fc.property(fc.oneof(fc.dictionary(configKey, configValue.value, { maxKeys: 5 }).map((value) => JSON.stringify(value)), fc.string({ unit: 'binary', maxLength: 80 })), (text) => {
        writeFileSync(file, text);
        try {
          loadConfig({ configFile: file, env: {} });
        } catch (err) {
          if (err instanceof UserFacingError) {
            expect(err.message).not.toMatch(/[\n\r]/);
            return;
          }
          throw err;
        }
      }),
      { numRuns: 600 },
    );
  });
});

/** The fastest of `runs` calls of `work(size)`, in ms: the least disturbed by whatever else the machine does. */
function fastestMs(work: (size: number) => void, size: number, runs = 5): number {
  let fastest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    work(size);
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

/**
 * Cost at 20× the size over cost at the size: 20 when linear (a little more with the garbage collector's
 * share), 400 when quadratic — far enough apart for a machine that is busy with something else.
 */
function growth(work: (size: number) => void, size: number): number {
  work(size * 20); // warm-up: the JIT compiles the path and the heap grows to its working size
  return leastRatio(() => fastestMs(work, size * 20) / Math.max(fastestMs(work, size), 0.05), LINEAR);
}

const LINEAR = 80;

describe('hostile input: cost linear in size', () => {
  it('a KQL query with many clauses, values or nested groups', () => {
    expect(growth((n) => compileKql(Array.from({ length: n }, (_, i) => `f${i % 50}:v${i}`).join(' or ')), 1_000)).toBeLessThan(LINEAR);
    expect(growth((n) => compileKql(`a:(${Array.from({ length: n }, (_, i) => `v${i}`).join(' or ')})`), 1_000)).toBeLessThan(LINEAR);
    expect(growth((n) => void parseKql(`a:"${'x '.repeat(n)}"`), 20_000)).toBeLessThan(LINEAR);
  });

  it('a field name with many dots, in a query and in a document', () => {
    expect(growth((n) => compileKql(`${Array(n).fill('a').join('.')}:b`).matches({ a: { a: 'b' } }), 300)).toBeLessThan(LINEAR);
  });

  it('wildcards and analyzed text against long attacker-chosen values', () => {
    const wildcard = compileKql('process.command_line:*needle*in*haystack*');
    expect(growth((n) => wildcard.matches({ process: { command_line: 'needle '.repeat(n) } }), 5_000)).toBeLessThan(LINEAR);
    const text = compileKql('process.command_line.text:"no such phrase"');
    expect(growth((n) => text.matches({ process: { command_line: 'word '.repeat(n) } }), 2_000)).toBeLessThan(LINEAR);
  });

  it('a config file that is not JSON, where the scanner looks for the error', () => {
    const file = join(dir, 'numbers.json');
    const refuse = (n: number): void => {
      writeFileSync(file, `{"pad": [${Array(n).fill('12345').join(',')}], oops}`);
      expect(() => loadConfig({ configFile: file, env: {} })).toThrow(/not valid JSON/);
    };
    expect(growth(refuse, 5_000)).toBeLessThan(LINEAR);
  });
});
