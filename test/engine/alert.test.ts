import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alertTemplate, buildAlert } from '../../src/engine/alert.js';
import { BUILTIN_RULES_PATH, loadRuleSet } from '../../src/rules/index.js';
import { kibanaRule, ruleTree } from '../rules/fixtures.js';
import { expectEcsConformant } from './ecs.js';
import { execEvent, replay } from './helpers.js';

const T0 = '2024-05-01T10:00:00.000Z';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('the alert (ARCHITECTURE.md section 4)', () => {
  it('is the event plus what Kibana External Alerts reads, rule.*, tags, threat.* and execsentry.*', async () => {
    const { rules } = await loadRuleSet([], { skipUnsupported: false });
    const event = execEvent(T0);
    const [alert] = await replay(rules, [event]);
    expect(alert).toBeDefined();
    expect(alert).toMatchObject({
      '@timestamp': T0,
      message: 'Unusual Interactive Shell Launched from System User',
      event: {
        kind: 'alert',
        module: 'execsentry',
        dataset: 'execsentry.alerts',
        category: ['process'],
        type: ['start'],
        action: 'exec',
        severity: 21,
        risk_score: 21,
      },
      rule: {
        id: '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb',
        uuid: '9c5b2382-19d2-4b5d-8f14-9e1631a3acdb',
        name: 'Unusual Interactive Shell Launched from System User',
        version: '1',
        license: 'Elastic License v2',
        author: ['Elastic'],
        category: 'Defense Evasion',
      },
      tags: ['Domain: Endpoint', 'OS: Linux', 'Use Case: Threat Detection', 'Tactic: Defense Evasion', 'Data Source: Elastic Defend'],
      threat: {
        framework: ['MITRE ATT&CK'],
        tactic: { id: ['TA0005'], name: ['Defense Evasion'], reference: ['https://attack.mitre.org/tactics/TA0005/'] },
        technique: {
          id: ['T1564'],
          name: ['Hide Artifacts'],
          reference: ['https://attack.mitre.org/techniques/T1564/'],
          subtechnique: { id: ['T1564.002'], name: ['Hidden Users'], reference: ['https://attack.mitre.org/techniques/T1564/002/'] },
        },
      },
      execsentry: { rule: { type: 'new_terms' }, new_terms: { 'process.executable': '/usr/bin/bash' } },
      process: event.process,
      user: event.user,
      host: event.host,
      agent: event.agent,
      ecs: event.ecs,
    });
    expect(alert!.event.id).toMatch(UUID);
    expect(alert!.event.id).not.toBe(event.event.id);
    expect(expectEcsConformant(alert!)).toEqual(['execsentry.rule.type', 'execsentry.new_terms.process.executable']);
  });

  it('maps each severity to ECS event.severity 21/47/73/99 and keeps the rule risk score', async () => {
    const objects = (['low', 'medium', 'high', 'critical'] as const).map((severity, index) =>
      kibanaRule({ rule_id: severity, name: severity, severity, risk_score: 10 + index, type: 'query', new_terms_fields: undefined, history_window_start: undefined }),
    );
    const { rules } = await loadRuleSet([ruleTree({ 'r.ndjson': objects.map((o) => JSON.stringify(o)).join('\n') })], { skipUnsupported: false });
    const alerts = rules.map((rule) => buildAlert(execEvent(T0), alertTemplate(rule)));
    expect(alerts.map((alert) => [alert.event.severity, alert.event.risk_score])).toEqual([
      [21, 10],
      [47, 11],
      [73, 12],
      [99, 13],
    ]);
  });

  it('gives every alert its own event.id and keeps the sensor extras under execsentry', async () => {
    const { rules } = await loadRuleSet([join(BUILTIN_RULES_PATH, 'linux')], { skipUnsupported: false });
    const template = alertTemplate(rules[0]!);
    const event = execEvent(T0, { execsentry: { args_truncated: true } });
    const first = buildAlert(event, template);
    const second = buildAlert(event, template);
    expect(first.event.id).not.toBe(second.event.id);
    expect(first.execsentry).toEqual({ args_truncated: true, rule: { type: 'new_terms' } });
    expect(event.event.kind).toBe('event');
  });

  it('leaves out rule keys and threat a rule does not have', async () => {
    const bare = { rule_id: 'bare', name: 'Bare', description: 'd', type: 'query', query: 'a:b', severity: 'low', risk_score: 1 };
    const { rules } = await loadRuleSet([ruleTree({ 'b.json': JSON.stringify(bare) })], { skipUnsupported: false });
    const alert = buildAlert(execEvent(T0), alertTemplate(rules[0]!));
    expect(alert.rule).toEqual({ id: 'bare', uuid: 'bare', name: 'Bare', description: 'd', version: '1' });
    expect(alert.threat).toBeUndefined();
    expect(alert.tags).toBeUndefined();
    expectEcsConformant(alert);
  });
});
