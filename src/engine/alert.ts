import { randomUUID } from 'node:crypto';
import { SEVERITY_NUMBER, type Alert, type AlertRule, type AlertSequence, type EcsThreat, type ProcessEvent } from '../ecs/types.js';
import type { LoadedRule } from '../rules/index.js';

/**
 * The alert for one rule hit (ARCHITECTURE.md section 4): the triggering event with event.kind "alert",
 * message = rule name, severity and risk score where Kibana's "External Alerts" rule reads them, a fresh
 * event.id (also the delivery id), rule.*, tags, threat.* and execsentry.{rule.type,new_terms,sequence}.
 * event.module stays the sensor's "execsentry" (not "endpoint"), which is what lets that rule promote it.
 */

/** What every alert of one rule shares, built once per rule load rather than per alert. */
export interface AlertTemplate {
  readonly message: string;
  readonly severity: number;
  readonly riskScore: number;
  readonly rule: Readonly<AlertRule>;
  readonly tags?: readonly string[];
  readonly threat?: Readonly<EcsThreat>;
  readonly type: LoadedRule['type'];
}

/** MITRE entries of every [[rule.threat]] flattened into ECS's parallel threat.* arrays. */
function ecsThreat(rule: LoadedRule): EcsThreat | undefined {
  if (rule.threat.length === 0) return undefined;
  const threat: EcsThreat = {
    framework: [],
    tactic: { id: [], name: [], reference: [] },
    technique: { id: [], name: [], reference: [], subtechnique: { id: [], name: [], reference: [] } },
  };
  const add = (target: { id: string[]; name: string[]; reference: string[] }, entry: { id: string; name: string; reference: string }): void => {
    if (target.id.includes(entry.id)) return;
    target.id.push(entry.id);
    target.name.push(entry.name);
    target.reference.push(entry.reference);
  };
  for (const entry of rule.threat) {
    if (!threat.framework.includes(entry.framework)) threat.framework.push(entry.framework);
    add(threat.tactic, entry.tactic);
    for (const technique of entry.technique ?? []) {
      add(threat.technique, technique);
      for (const subtechnique of technique.subtechnique ?? []) add(threat.technique.subtechnique, subtechnique);
    }
  }
  return threat;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export function alertTemplate(rule: LoadedRule): AlertTemplate {
  const alertRule: AlertRule = {
    id: rule.ruleId,
    uuid: rule.uuid,
    name: rule.name,
    description: rule.description,
    version: String(rule.version),
  };
  if (rule.license !== undefined) alertRule.license = rule.license;
  if (rule.author.length > 0) alertRule.author = rule.author;
  if (rule.references.length > 0) alertRule.reference = rule.references;
  const firstTactic = rule.threat[0]?.tactic.name;
  if (firstTactic !== undefined) alertRule.category = firstTactic;
  return deepFreeze({
    message: rule.name,
    severity: SEVERITY_NUMBER[rule.severity],
    riskScore: rule.riskScore,
    rule: alertRule,
    tags: rule.tags.length > 0 ? [...rule.tags] : undefined,
    threat: ecsThreat(rule),
    type: rule.type,
  });
}

/**
 * One alert. The event's own fields are kept as they are (replayed documents may carry more than the
 * sensor emits); the alert's shared parts are frozen and shared between alerts of the same rule.
 */
export function buildAlert(event: ProcessEvent, template: AlertTemplate, found: { newTerms?: Record<string, string>; sequence?: AlertSequence } = {}): Alert {
  const { event: sourceEvent, execsentry: extras, ...rest } = event;
  const alert: Alert = {
    ...rest,
    message: template.message,
    event: {
      ...sourceEvent,
      kind: 'alert',
      dataset: 'execsentry.alerts',
      id: randomUUID(),
      severity: template.severity,
      risk_score: template.riskScore,
    },
    rule: template.rule as AlertRule,
    execsentry: { ...extras, rule: { type: template.type } },
  };
  if (template.tags !== undefined) alert.tags = template.tags as string[];
  if (template.threat !== undefined) alert.threat = template.threat as EcsThreat;
  if (found.newTerms !== undefined) alert.execsentry.new_terms = found.newTerms;
  if (found.sequence !== undefined) alert.execsentry.sequence = found.sequence;
  return alert;
}
