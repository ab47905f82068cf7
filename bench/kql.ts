/**
 * `npm run bench:kql`: the compiled default-rule query on one core.
 *
 * - evaluations per second of CompiledQuery.matches on a realistic non-matching exec event (root's `ls`) and
 *   on a matching one (interactive bash as `daemon`), each the best of several rounds;
 * - the same through matchesAccessor with a getField-based accessor (how an engine without whole documents
 *   would call it);
 * - parse+compile time of a 40-line query mixing every construct.
 *
 * Prints a markdown table. Numbers from a machine busy with other work are only indicative.
 */
import { performance } from 'node:perf_hooks';
import { compileKql, getField, parseKql } from '../src/kql/index.js';
import { DEFAULT_RULE_QUERY, FORTY_LINE_QUERY, matchingEvent, nonMatchingEvent } from './kql-fixtures.js';
import { bestRate } from './rate.js';

const ROUNDS = 7;
const EVALUATIONS = Number(process.env.BENCH_KQL_EVALUATIONS ?? 2_000_000);
const COMPILES = 2_000;

function parseCompileMs(): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now();
    for (let i = 0; i < COMPILES; i++) compileKql(parseKql(FORTY_LINE_QUERY));
    best = Math.min(best, (performance.now() - start) / COMPILES);
  }
  return best;
}

const query = compileKql(DEFAULT_RULE_QUERY);
const miss = nonMatchingEvent();
const hit = matchingEvent();
const missGet = (field: string): unknown => getField(miss, field);
const hitGet = (field: string): unknown => getField(hit, field);

const rows: [string, string, string, string][] = [];
const rate = (n: number): string => Math.round(n).toLocaleString('en-US');
const verdict = (ok: boolean): string => (ok ? 'yes' : '**no**');

const missRate = bestRate(() => query.matches(miss), false, ROUNDS, EVALUATIONS);
rows.push(['default rule, non-matching event (matches)', `${rate(missRate)} evals/s`, '≥ 2,000,000 evals/s', verdict(missRate >= 2_000_000)]);
const hitRate = bestRate(() => query.matches(hit), true, ROUNDS, EVALUATIONS);
rows.push(['default rule, matching event (matches)', `${rate(hitRate)} evals/s`, '≥ 500,000 evals/s', verdict(hitRate >= 500_000)]);
const missAccessorRate = bestRate(() => query.matchesAccessor(missGet), false, ROUNDS, EVALUATIONS);
rows.push(['default rule, non-matching event (matchesAccessor + getField)', `${rate(missAccessorRate)} evals/s`, '—', '—']);
const hitAccessorRate = bestRate(() => query.matchesAccessor(hitGet), true, ROUNDS, EVALUATIONS);
rows.push(['default rule, matching event (matchesAccessor + getField)', `${rate(hitAccessorRate)} evals/s`, '—', '—']);
const compileMs = parseCompileMs();
rows.push([`parse+compile, ${FORTY_LINE_QUERY.split('\n').length}-line query`, `${(compileMs * 1000).toFixed(1)} µs`, '< 1 ms', verdict(compileMs < 1)]);

process.stdout.write(`KQL benchmark (node ${process.version}, ${EVALUATIONS.toLocaleString('en-US')} evaluations × best of ${ROUNDS} rounds)\n\n`);
process.stdout.write('| measurement | result | target | met |\n|---|---|---|---|\n');
for (const row of rows) process.stdout.write(`| ${row.join(' | ')} |\n`);
