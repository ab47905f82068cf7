import { z } from 'zod';
import type { RuleSeverity } from '../ecs/types.js';
import { DateMathError, parseDateMath, parseInterval } from '../engine/date-math.js';

/**
 * One detection rule as Kibana's rule API and its export name the keys (the detection-rules TOML `[rule]`
 * table uses the same names, with new-terms parameters nested; src/rules/formats.ts flattens them). Keys
 * this agent does not use (Kibana's created_at, related_integrations, setup, …) are accepted and ignored,
 * so an export or a newer rule version loads without edits; every key it does use is checked here.
 */

export const SUPPORTED_TYPES = ['query', 'new_terms', 'eql'] as const;
export type SupportedRuleType = (typeof SUPPORTED_TYPES)[number];
/** The query language each rule type is written in (Kibana's `language`; the default when a rule omits it). */
export const RULE_LANGUAGE: Readonly<Record<SupportedRuleType, 'kuery' | 'eql'>> = { query: 'kuery', new_terms: 'kuery', eql: 'eql' };

const nonEmpty = z.string().min(1, 'must not be empty');

/** A text setting parsed into its value; what the parser says is wrong becomes the key's issue. */
function parsedWith<T>(parse: (text: string) => T) {
  return (text: string, context: z.core.$RefinementCtx<string>): T => {
    try {
      return parse(text);
    } catch (err) {
      if (!(err instanceof DateMathError)) throw err;
      context.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  };
}

/** A history window must reach back: `now` or `now+1d` would make every term new forever. */
function pastDateMath(text: string) {
  const window = parseDateMath(text);
  if (window.maxLookbackMs <= 0) throw new DateMathError(`"${text}" must lie in the past (for example "now-14d")`);
  return window;
}

const MitreEntry = z.object({ id: nonEmpty, name: nonEmpty, reference: nonEmpty });

const ThreatEntry = z.object({
  framework: nonEmpty,
  tactic: MitreEntry,
  technique: z.array(MitreEntry.extend({ subtechnique: z.array(MitreEntry).optional() })).optional(),
});

const Severity = z.enum(['low', 'medium', 'high', 'critical'] satisfies RuleSeverity[]);

export const RuleSchema = z.looseObject({
  rule_id: nonEmpty,
  /** Kibana's saved-object id of the rule, present in exports. */
  id: nonEmpty.optional(),
  name: nonEmpty,
  description: nonEmpty,
  type: z.enum(SUPPORTED_TYPES),
  /** Checked against the type before the schema runs (unsupportedReason); the default is the type's language. */
  language: z.enum(['kuery', 'eql']).optional(),
  query: z.string(),
  severity: Severity,
  risk_score: z.number().int('must be a whole number').min(0).max(100),
  version: z.number().int('must be a whole number').min(1).default(1),
  enabled: z.boolean().default(true),
  /** Kibana's look-back; parsed so that a typo is caught, not needed by a streaming engine. */
  from: nonEmpty.default('now-6m').transform(parsedWith(parseDateMath)),
  /** max_signals counts per interval. */
  interval: nonEmpty.default('5m').transform(parsedWith(parseInterval)),
  max_signals: z.number().int('must be a whole number').min(1).default(100),
  index: z.array(z.string()).optional(),
  author: z.array(z.string()).default([]),
  license: z.string().optional(),
  tags: z.array(z.string()).default([]),
  references: z.array(z.string()).default([]),
  threat: z.array(ThreatEntry).default([]),
  new_terms_fields: z.array(nonEmpty).min(1, 'needs 1 to 3 fields').max(3, 'allows at most 3 fields').optional(),
  history_window_start: nonEmpty.transform(parsedWith(pastDateMath)).optional(),
  /** EQL rules: the field holding the event category, instead of event.category (Kibana's EQL rule parameter). */
  event_category_override: nonEmpty.optional(),
  /** EQL rules: Kibana's timestamp and tiebreaker fields order events in a search; events reach this agent in order. */
  timestamp_field: nonEmpty.optional(),
  tiebreaker_field: nonEmpty.optional(),
  /** Kibana query filters (Elasticsearch DSL): this agent cannot evaluate them, so a rule with any is refused. */
  filters: z.array(z.unknown()).optional(),
});

export type RuleFields = z.infer<typeof RuleSchema>;
export type RuleThreat = z.infer<typeof ThreatEntry>;

/** The detection-rules repository's TOML document: `[metadata]` and `[rule]`. */
export const TomlNewTermsSchema = z.object({
  field: z.literal('new_terms_fields'),
  value: z.array(z.unknown()),
  history_window_start: z
    .array(z.object({ field: z.literal('history_window_start'), value: z.unknown() }))
    .length(1, 'must hold exactly one [[rule.new_terms.history_window_start]] entry'),
});
