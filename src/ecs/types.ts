/**
 * The shapes every module agrees on: the ECS process event the sensor emits and the alert the engine
 * builds from it. Field names and types follow ECS (see ../shared/ecs/ecs-fields.json): ids are strings,
 * list fields are arrays even with one element, dates are ISO 8601 strings. A field the agent could not
 * read is absent, never guessed. Anything ECS has no place for lives under `execsentry.*`.
 */

export interface EcsUserRef {
  id?: string;
  name?: string;
}

export interface EcsGroupRef {
  id?: string;
  name?: string;
}

export interface EcsCharDevice {
  major: number;
  minor: number;
}

/** The parent as Elastic Defend reports it: what was known of the process that exec'd or forked us. */
export interface EcsParentProcess {
  pid?: number;
  entity_id?: string;
  executable?: string;
  name?: string;
  args?: string[];
  args_count?: number;
  command_line?: string;
  working_directory?: string;
  start?: string;
  interactive?: boolean;
  user?: EcsUserRef;
  group?: EcsGroupRef;
  real_user?: EcsUserRef;
  real_group?: EcsGroupRef;
  /** Absent when the process has none (an empty array would be no ECS field). */
  supplemental_groups?: EcsGroupRef[];
  tty?: { char_device: EcsCharDevice };
}

/** process.session_leader / process.group_leader: the leader's own fields, and whether it is this process. */
export interface EcsLeaderProcess extends EcsParentProcess {
  same_as_process: boolean;
}

/**
 * ECS process.entry_leader.entry_meta.type, as Elastic's open implementations of the same session logic
 * (quark's entry_leader_compute, auditbeat's sessionmd processdb) name them.
 */
export type EntryLeaderType = 'init' | 'kthread' | 'sshd' | 'ssm' | 'container' | 'terminal' | 'console' | 'unknown';

export interface EcsEntryLeader extends EcsLeaderProcess {
  entry_meta: { type: EntryLeaderType; source?: { ip: string } };
  parent?: { pid: number; start?: string; entity_id?: string };
}

/** One element of process.previous: an image the process ran before this exec (ECS keeps executable and args). */
export interface EcsPreviousImage {
  executable?: string;
  args?: string[];
  args_count?: number;
}

export interface EcsProcess {
  pid: number;
  entity_id: string;
  executable?: string;
  name?: string;
  args?: string[];
  args_count?: number;
  command_line?: string;
  working_directory?: string;
  start?: string;
  interactive?: boolean;
  tty?: { char_device: EcsCharDevice };
  /** A bare pid when the leader is not in the process table (exited before we started, or evicted). */
  session_leader?: EcsLeaderProcess | { pid: number };
  group_leader?: EcsLeaderProcess | { pid: number };
  entry_leader?: EcsEntryLeader;
  /** The images this process ran before, oldest first: the one it was forked with, then each exec's. */
  previous?: EcsPreviousImage[];
  /** Elastic Defend: entity ids of the ancestors, parent first. */
  Ext?: { ancestry: string[] };
  supplemental_groups?: EcsGroupRef[];
  user?: EcsUserRef;
  real_user?: EcsUserRef;
  saved_user?: EcsUserRef;
  group?: EcsGroupRef;
  real_group?: EcsGroupRef;
  saved_group?: EcsGroupRef;
  thread?: { capabilities: { effective?: string[]; permitted?: string[] } };
  parent?: EcsParentProcess;
}

export interface EcsHost {
  id?: string;
  name: string;
  hostname: string;
  architecture: string;
  os: {
    type: 'linux';
    family?: string;
    name?: string;
    version?: string;
    kernel: string;
    platform?: string;
    full?: string;
  };
}

export interface EcsAgent {
  type: 'execsentry';
  version: string;
  id: string;
}

/** The values of a process that can hold bytes that are not UTF-8 (ECS names). */
export type RawProcessValues = Partial<Pick<EcsParentProcess, 'executable' | 'name' | 'args' | 'command_line' | 'working_directory'>>;

type Prefixed<Prefix extends string, T> = { [K in keyof T as `${Prefix}.${K & string}`]: T[K] };

/**
 * The original bytes of the process fields that had to be repaired (U+FFFD), escaped as
 * src/sensor/escape-bytes.ts does, keyed by the ECS field's dotted name. Only the repaired fields are
 * present; an array holds every element, in the field's order.
 */
export type ExecsentryRaw = Prefixed<'process', RawProcessValues> & Prefixed<'process.parent', RawProcessValues>;

/** What execsentry records that ECS has no field for. */
export interface ExecsentryProcessExtras {
  /** The /proc snapshot could not be completed (the process exited first); missing fields are absent. */
  partial?: boolean;
  /** The process was exiting, a zombie or already reaped when /proc was read: what is missing left with it. */
  exited_before_snapshot?: boolean;
  /** process.name is the kernel's comm (the exec'd file's base name cut at 15 bytes): the executable was gone. */
  name_from_comm?: boolean;
  /** Emitted by the /proc rescan after a kernel-event overrun, not from a live exec record. */
  recovered?: boolean;
  /** argv was longer than the per-event cap; `process.args` holds the kept prefix. */
  args_truncated?: boolean;
  /** argv bytes that were not valid UTF-8 were replaced by U+FFFD in `process.args`. */
  args_lossy?: boolean;
  /** process.executable or process.working_directory held bytes that were not UTF-8 (replaced by U+FFFD). */
  paths_lossy?: boolean;
  /** The bytes of the repaired values, which tell apart what U+FFFD makes look alike (new_terms reads them). */
  raw?: ExecsentryRaw;
}

export interface ProcessEvent {
  '@timestamp': string;
  event: {
    kind: 'event';
    category: ['process'];
    type: ['start'];
    action: 'exec';
    id: string;
    created: string;
    module: 'execsentry';
    dataset: 'execsentry.process';
  };
  ecs: { version: string };
  process: EcsProcess;
  /** Ext.real: Elastic Defend's real (pre-setuid / setgid) user and group. */
  user?: EcsUserRef & { effective?: EcsUserRef; Ext?: { real: EcsUserRef } };
  group?: EcsGroupRef & { Ext?: { real: EcsGroupRef } };
  host: EcsHost;
  agent: EcsAgent;
  execsentry?: ExecsentryProcessExtras;
}

/**
 * The values the constant fields of a process event always hold (ProcessEvent above), for telling a rule
 * that asks for others (`event.action == "fork"`, `event.category:file`) that it cannot match here.
 */
export const PROCESS_EVENT_CONSTANTS: Readonly<Record<string, readonly string[]>> = {
  'event.kind': ['event'],
  'event.category': ['process'],
  'event.type': ['start'],
  'event.action': ['exec'],
  'event.module': ['execsentry'],
  'event.dataset': ['execsentry.process'],
};

export type RuleSeverity = 'low' | 'medium' | 'high' | 'critical';

/** ECS event.severity for each rule severity, as Elastic's detection engine maps them. */
export const SEVERITY_NUMBER: Readonly<Record<RuleSeverity, number>> = {
  low: 21,
  medium: 47,
  high: 73,
  critical: 99,
};

export interface EcsThreat {
  framework: string[];
  tactic: { id: string[]; name: string[]; reference: string[] };
  technique: {
    id: string[];
    name: string[];
    reference: string[];
    subtechnique: { id: string[]; name: string[]; reference: string[] };
  };
}

export interface AlertRule {
  id: string;
  uuid: string;
  name: string;
  description?: string;
  version: string;
  license?: string;
  author?: string[];
  reference?: string[];
  category?: string;
  ruleset?: string;
}

/**
 * The triggering process event turned into an alert that Kibana's "External Alerts" rule promotes
 * unchanged: event.kind "alert", event.module not "endpoint", message = rule name.
 */
/**
 * The sequence behind an EQL sequence alert, shaped as Elasticsearch's EQL search returns one: the join key
 * values, and every stage's event in stage order (`{ missing: true }` for a missing-event stage).
 */
export interface AlertSequence {
  join_keys: unknown[];
  events: (ProcessEvent | { missing: true })[];
}

export interface Alert extends Omit<ProcessEvent, 'event' | 'execsentry'> {
  message: string;
  event: Omit<ProcessEvent['event'], 'kind' | 'dataset'> & {
    kind: 'alert';
    dataset: 'execsentry.alerts';
    severity: number;
    risk_score: number;
  };
  rule: AlertRule;
  tags?: string[];
  threat?: EcsThreat;
  execsentry: ExecsentryProcessExtras & {
    rule: { type: 'query' | 'new_terms' | 'eql' };
    /** new_terms rules: the field → value tuple that had not been seen within the history window. */
    new_terms?: Record<string, string>;
    /** EQL sequence rules: the matched sequence (the alert's own fields are its last event's). */
    sequence?: AlertSequence;
  };
}

export const ECS_VERSION = '8.11.0';

/**
 * The agent's own alert when a network output had to drop alerts (its disk spool was full): rule
 * "execsentry: alerts dropped", sent through that output once the collector accepts data again, so a
 * loss is never silent. Host and agent are those of the alerts it lost.
 */
export interface HealthAlert {
  '@timestamp': string;
  message: string;
  event: {
    kind: 'alert';
    category: ['host'];
    type: ['info'];
    action: 'alerts-dropped';
    id: string;
    created: string;
    module: 'execsentry';
    dataset: 'execsentry.alerts';
    severity: number;
    risk_score: number;
  };
  ecs: { version: string };
  host?: EcsHost;
  agent?: EcsAgent;
  rule: AlertRule;
  execsentry: {
    delivery: {
      /** the output's name (its URL without credentials) */
      output: string;
      /** alerts lost since the previous health alert */
      dropped: number;
      /** when the first of them was dropped */
      first_dropped_at?: string;
    };
  };
}
