import { describe, expect, it } from 'vitest';
import { impossibleConditionRemark, isKnownField, namedActions, queryConditions, unknownFieldRemark } from '../../src/rules/fit.js';
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
    expect(impossible('kuery', 'event.action:(uid_change or gid_change) and process.name:x')).toBe(
      'rule "R" can never match here: it requires event.action:(uid_change or gid_change), but event.action is one of "exec", "fork", "end" in execsentry\'s events',
    );
    // fork and end events are produced for a rule that names them: not impossible any more
    expect(impossible('kuery', 'event.action:(fork or end) and process.name:x')).toBeUndefined();
    expect(impossible('kuery', 'event.action:(exec or signal)')).toBeUndefined();
    expect(impossible('kuery', 'event.action:ex*')).toBeUndefined();
    expect(impossible('kuery', 'event.category:file or process.name:x')).toBeUndefined();
  });

  it('EQL: ==, in, in~, : and like on a constant field, in an event query and in every stage of a sequence', () => {
    expect(impossible('eql', 'process where event.type == "change" and process.name == "x"')).toBe(
      'rule "R" can never match here: it requires event.type == "change", but event.type is one of "start", "end" in execsentry\'s events',
    );
    expect(impossible('eql', 'process where event.type == "end" and process.name == "x"')).toBeUndefined();
    expect(impossible('eql', 'process where event.action in ("fork", "end")')).toBeUndefined();
    expect(impossible('eql', 'process where event.action in ("uid_change", "session_id_change")')).toMatch(/requires event\.action in \("uid_change", "session_id_change"\)/);
    expect(impossible('eql', 'process where event.action in~ ("EXEC", "signal")')).toBeUndefined();
    expect(impossible('eql', 'process where event.action : "EX*"')).toBeUndefined();
    expect(impossible('eql', 'process where event.action like "EX*"')).toMatch(/can never match/);
    expect(impossible('eql', 'process where (event.type == "end" or event.type == "start")')).toBeUndefined();
    expect(impossible('eql', 'sequence with maxspan=1m [process where true] [process where event.action == "ptrace"]')).toMatch(/requires event\.action == "ptrace"/);
    // a missing-event stage asks for nothing to happen: an impossible one is always satisfied
    expect(impossible('eql', 'sequence with maxspan=1m [process where true] ![process where event.action == "ptrace"]')).toBeUndefined();
  });

  it('an event.action and event.type that no event has together, at the top level or in every branch', () => {
    expect(impossible('kuery', '(event.type:end and event.action:fork) or (event.type:start and event.action:end)')).toBe(
      'rule "R" can never match here: it requires event.action and event.type values, which no event of execsentry\'s has together (exec and fork events are of event.type "start", end events of "end")',
    );
    expect(impossible('kuery', '(event.type:end and event.action:fork) or (event.type:start and event.action:exec)')).toBeUndefined();
    expect(impossible('kuery', 'event.type:start and not event.action:exec')).toBeUndefined();
    expect(impossible('eql', 'process where event.type == "end" and event.action == "fork"')).toBe(
      'rule "R" can never match here: it requires event.type == "end" and event.action == "fork", which no event of execsentry\'s has together (exec and fork events are of event.type "start", end events of "end")',
    );
    expect(impossible('kuery', 'event.type:start and event.action:end')).toMatch(/requires event\.type:start and event\.action:end, which no event/);
    expect(impossible('eql', 'process where event.type == "start" and event.action in ("exec", "fork")')).toBeUndefined();
    expect(impossible('eql', 'process where event.type == "end" and event.action == "end"')).toBeUndefined();
  });
});

/** The process events a rule with this query is evaluated on (and has the sensor produce). */
function actions(language: 'kuery' | 'eql', query: string): string[] {
  return namedActions(queryConditions(language, query));
}

describe('the process events a rule names', () => {
  it('exec alone for a rule that names no action or type, or only exec', () => {
    expect(actions('kuery', 'process.name:bash')).toEqual(['exec']);
    expect(actions('kuery', 'event.category:process and event.type:start and event.action:exec and user.name:daemon')).toEqual(['exec']);
    // on Defend data these would match fork events too; here they keep to execs (README: what a rule sees)
    expect(actions('eql', 'process where event.type == "start" and process.name == "bash"')).toEqual(['exec']);
    expect(actions('kuery', 'not process.name:bash')).toEqual(['exec']);
  });

  it('end for a query reading process.exit_code or process.end, which only end events carry', () => {
    expect(actions('kuery', 'process.exit_code:137')).toEqual(['exec', 'end']);
    expect(actions('eql', 'process where process.exit_code != 0 and process.name == "sudo"')).toEqual(['exec', 'end']);
    expect(actions('eql', 'process where process.end > process.start')).toEqual(['exec', 'end']);
    expect(actions('kuery', 'not process.exit_code:0')).toEqual(['exec', 'end']);
    // an end event never has event.type "start": this one cannot need them
    expect(actions('eql', 'process where event.type == "start" and process.exit_code != 0')).toEqual(['exec']);
  });

  it('an or names what each of its branches names, at any depth', () => {
    expect(actions('kuery', '(event.action:fork and process.name:bash) or (event.action:end and process.name:sh)')).toEqual(['fork', 'end']);
    expect(actions('eql', 'process where (event.action == "fork" and process.name == "bash") or (event.action == "end" and process.name == "sh")')).toEqual(['fork', 'end']);
    expect(actions('kuery', '(event.action:fork and process.name:a) or process.name:b')).toEqual(['exec', 'fork']);
    expect(actions('kuery', 'process.name:a and (event.action:fork or (event.type:end and process.name:b))')).toEqual(['fork', 'end']);
    expect(actions('eql', 'process where process.name == "a" and (event.type == "start" or process.pid == 1)')).toEqual(['exec']);
  });

  it('all three for a negated or otherwise opaque use of event.action or event.type', () => {
    const all = ['exec', 'fork', 'end'];
    expect(actions('kuery', 'not event.action:exec')).toEqual(all);
    expect(actions('kuery', 'process.name:a and not event.type:end')).toEqual(all);
    expect(actions('eql', 'process where event.action != "exec"')).toEqual(all);
    expect(actions('eql', 'process where not event.action == "exec"')).toEqual(all);
    expect(actions('eql', 'process where event.action not in ("exec", "end")')).toEqual(all);
    expect(actions('eql', 'process where startsWith(event.action, "f")')).toEqual(all);
    expect(actions('eql', 'process where event.action regex "fo.*"')).toEqual(all);
    expect(actions('kuery', 'event.action:* and process.name:a')).toEqual(all);
    expect(actions('kuery', 'event.*:fork')).toEqual(all);
    expect(actions('kuery', 'fork')).toEqual(all);
    expect(actions('kuery', 'event:{ action:fork }')).toEqual(all);
  });

  it('fork when event.action lets it through, end for event.action or an event.type of "end"', () => {
    expect(actions('kuery', 'event.category:process and event.action:(exec or exec_event or fork or fork_event) and process.name:x')).toEqual(['exec', 'fork']);
    expect(actions('eql', 'process where event.type == "start" and event.action in ("exec", "fork")')).toEqual(['exec', 'fork']);
    expect(actions('eql', 'process where event.type == "end" and process.name in ("vmware-vmx", "vmx")')).toEqual(['end']);
    expect(actions('eql', 'process where event.action == "end" and process.exit_code != 0')).toEqual(['end']);
    expect(actions('kuery', 'event.action:e*')).toEqual(['exec', 'end']);
    expect(actions('eql', 'process where event.action : "FORK"')).toEqual(['fork']);
    expect(actions('eql', 'process where event.type == "start" and event.action == "end"')).toEqual([]);
  });

  it('a sequence names what each of its stages names, missing-event stages and until too', () => {
    expect(actions('eql', 'sequence by process.entity_id [process where event.type == "start"] [process where event.type == "end"]')).toEqual(['exec', 'end']);
    expect(actions('eql', 'sequence by host.id with maxspan=1m [process where event.action == "end" and process.name == "sshd"] [process where process.name == "bash"]')).toEqual(['exec', 'end']);
    expect(actions('eql', 'sequence with maxspan=1m [process where process.name == "a"] ![process where event.action == "fork"]')).toEqual(['exec', 'fork']);
    expect(actions('eql', 'sequence [process where process.name == "a"] [process where process.name == "b"] until [process where event.type == "end"]')).toEqual(['exec', 'end']);
  });

  it('is what the loaded rule carries', async () => {
    const dir = ruleTree({ 'a.ndjson': JSON.stringify(kibanaRule({ query: 'event.action:fork and process.name:x' })) });
    const check = await checkRules([dir], { skipUnsupported: false });
    expect(check.rules[0]?.eventActions).toEqual(['fork']);
    expect(check.warnings).toEqual([]);
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
