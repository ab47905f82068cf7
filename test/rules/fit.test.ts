import { describe, expect, it } from 'vitest';
import { impossibleConditionRemark, isKnownField, queryConditions, unknownFieldRemark } from '../../src/rules/fit.js';
import { checkRules } from '../../src/rules/index.js';
import { kibanaRule, ruleTree } from './fixtures.js';

/** Warnings for rules that load but cannot fit execsentry's events; every problem of a rule in one run. */

describe('fields a rule reads', () => {
  it('knows ECS, Elastic Defend and execsentry fields, and the objects they sit in', () => {
    for (const field of ['process.name', 'process.parent.executable', 'process.entry_leader.entry_meta.type', 'user.Ext.real.id', 'execsentry.raw.args', 'process.parent', 'process.*']) {
      expect(isKnownField(field), field).toBe(true);
    }
    for (const field of ['proces.name', 'process.nam', 'auditd.data.syscall']) expect(isKnownField(field), field).toBe(false);
  });

  it('names every unknown field once', () => {
    expect(unknownFieldRemark('R', ['process.name', 'proces.name', 'proces.name', 'auditd.data.a0'])).toBe(
      'rule "R" reads "proces.name", "auditd.data.a0", which are neither ECS nor Elastic Defend fields nor execsentry\'s (misspelled, or from another data source?): execsentry\'s events never carry them',
    );
    expect(unknownFieldRemark('R', ['process.name'])).toBeUndefined();
  });
});

/** The warning for a rule named R with this query. */
function impossible(language: 'kuery' | 'eql', query: string): string | undefined {
  return impossibleConditionRemark('R', queryConditions(language, query));
}

describe('conditions the sensor never satisfies', () => {
  it('KQL: a top-level value on a constant field that the events never hold', () => {
    expect(impossible('kuery', 'event.category:file and file.path:/etc/shadow')).toBe(
      'rule "R" can never match here: it requires event.category:file, but event.category is always "process" in execsentry\'s events',
    );
    expect(impossible('kuery', 'event.action:(fork or end) and process.name:x')).toMatch(/requires event\.action:\(fork or end\)/);
    // one possible alternative, a pattern that covers "exec", or the condition inside an or: possible
    expect(impossible('kuery', 'event.action:(exec or fork)')).toBeUndefined();
    expect(impossible('kuery', 'event.action:ex*')).toBeUndefined();
    expect(impossible('kuery', 'event.category:file or process.name:x')).toBeUndefined();
  });

  it('EQL: ==, in, in~, : and like on a constant field, in an event query and in every stage of a sequence', () => {
    expect(impossible('eql', 'process where event.type == "end" and process.name == "x"')).toBe(
      'rule "R" can never match here: it requires event.type == "end", but event.type is always "start" in execsentry\'s events',
    );
    expect(impossible('eql', 'process where event.action in ("fork", "end")')).toMatch(/requires event\.action in \("fork", "end"\)/);
    expect(impossible('eql', 'process where event.action in~ ("EXEC", "fork")')).toBeUndefined();
    expect(impossible('eql', 'process where event.action : "EX*"')).toBeUndefined();
    expect(impossible('eql', 'process where event.action like "EX*"')).toMatch(/can never match/);
    expect(impossible('eql', 'process where (event.type == "end" or event.type == "start")')).toBeUndefined();
    expect(impossible('eql', 'sequence with maxspan=1m [process where true] [process where event.action == "end"]')).toMatch(/requires event\.action == "end"/);
    // a missing-event stage asks for nothing to happen: an impossible one is always satisfied
    expect(impossible('eql', 'sequence with maxspan=1m [process where true] ![process where event.action == "end"]')).toBeUndefined();
  });
});

describe('rules validate', () => {
  it('reports every problem of a rule in one run, the query’s too', async () => {
    const dir = ruleTree({ 'x.ndjson': JSON.stringify(kibanaRule({ severity: 'urgent', risk_score: 500, query: 'process.name:(' })) });
    const check = await checkRules([dir], { skipUnsupported: false });
    expect(check.problems.map((problem) => problem.key)).toEqual(['severity', 'risk_score', 'query']);
    expect(check.problems[2]!.why).toMatch(/^invalid KQL: /);
  });

  it('warns, and still loads, a rule reading a misspelled field or asking for events the sensor never emits', async () => {
    const dir = ruleTree({ 'a.ndjson': JSON.stringify(kibanaRule({ query: 'event.category:file and proces.name:bash' })) });
    const check = await checkRules([dir], { skipUnsupported: false });
    expect(check.problems).toEqual([]);
    expect(check.rules).toHaveLength(1);
    expect(check.warnings.filter((warning) => /proces\.name|can never match/.test(warning))).toHaveLength(2);
  });
});
