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
  /** "NAME=value" of the configured variables (sensor.envVars), as Elastic Defend captures them. */
  env_vars?: string[];
  /** Of the exec'd file, per configured algorithm (sensor.hashes). */
  hash?: { md5?: string; sha1?: string; sha256?: string };
  /** End events: when the process exited (the kernel's exit record). */
  end?: string;
  /** End events: the exit status byte, as Elastic Defend reports it (src/sensor/lifecycle.ts). */
  exit_code?: number;
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
  /** Every address of every interface, loopback included (as Elastic Defend lists them). */
  ip?: string[];
  /** The interfaces' hardware addresses, upper-case and hyphen-separated (ECS), loopback's none excluded. */
  mac?: string[];
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

/** A socket on a standard stream (src/sensor/stdio.ts). */
export interface StdSocket {
  /** The protocol the kernel names the socket by: "TCP", "TCPv6", "UDP", "UDPv6", "UNIX-STREAM", "NETLINK", … */
  protocol: string;
  /** inet, inet6, unix, netlink, packet, vsock; absent for a protocol not listed in src/sensor/stdio.ts. */
  family?: string;
  /** tcp, udp, udplite, mptcp, sctp, icmp, ipv6-icmp (as ECS network.transport names them). */
  transport?: string;
  /** TCP and UDP: the socket's own address, and the peer's when connected (IPv4-mapped IPv6 shown as IPv4). */
  local?: { ip: string; port: number };
  remote?: { ip: string; port: number };
}

/** What one standard stream (fd 0, 1 or 2) of the process is. */
export interface ExecsentryStdStream {
  /** other: an anonymous inode (eventfd, epoll, …), a directory, a block device. */
  type: 'terminal' | 'pipe' | 'socket' | 'file' | 'null_device' | 'character_device' | 'closed' | 'other';
  /** The path of a file or a device other than /dev/null, as /proc shows it (" (deleted)" included). */
  path?: string;
  char_device?: EcsCharDevice;
  socket?: StdSocket;
}

/** A stream absent here could not be read (refused, or the process was already leaving). */
export type ExecsentryStdio = Partial<Record<'stdin' | 'stdout' | 'stderr', ExecsentryStdStream>>;

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
  /** Configured environment variables whose value was over 1023 bytes, left out of process.env_vars. */
  env_vars_oversized?: string[];
  /** /proc/PID/environ was longer than the 40 KiB read: a configured variable beyond it is missing from process.env_vars. */
  env_vars_truncated?: boolean;
  /**
   * Why process.hash is absent although sensor.hashes asks for it: too_large (over sensor.maxHashFileBytes),
   * timeout (not ready within sensor.hashWaitMs; hashed on and cached for the next exec), busy (too many
   * files waiting to be hashed), exited (the process was gone before its file was read, and nothing is left at
   * its path), changed (neither /proc/PID/exe nor the path was the exec'd file any more, or the file changed while
   * read), unreadable.
   */
  hash_missing?: 'too_large' | 'timeout' | 'busy' | 'exited' | 'changed' | 'unreadable';
  /** End events of a process a signal killed: the signal's number (process.exit_code is then 0, as Defend reports it). */
  exit_signal?: number;
  /** End events of a process killed by a signal that dumped core. */
  core_dumped?: boolean;
  /** What the process's standard streams are (src/sensor/stdio.ts). */
  stdio?: ExecsentryStdio;
  /** Host knowledge of user.id (src/sensor/names.ts): a system account is below UID_MIN or has a non-login shell. */
  user?: { system_account: boolean };
}

/**
 * The process events of Elastic Defend's Linux event model (ECS RFC 0030; endpoint-package's "Linux Process
 * Fork, Exec, and Exit" event): exec always, fork and end when produced (src/sensor/lifecycle.ts).
 */
export type ProcessAction = 'exec' | 'fork' | 'end';

/** event.type of each action: a fork starts a process as an exec does (Elastic's rules ask for both with event.type "start"). */
export const PROCESS_ACTION_TYPE = { exec: 'start', fork: 'start', end: 'end' } as const satisfies Record<ProcessAction, string>;

export interface ProcessEvent {
  '@timestamp': string;
  event: {
    kind: 'event';
    category: ['process'];
    type: ['start'] | ['end'];
    action: ProcessAction;
    id: string;
    created: string;
    module: 'execsentry';
    dataset: 'execsentry.process';
    /** Per agent run, in kernel order: events of one millisecond keep their order. */
    sequence?: number;
  };
  ecs: { version: string };
  process: EcsProcess;
  /** The container the process runs in, from its cgroup (src/sensor/container.ts). */
  container?: { id: string; runtime?: string };
  /** Ext.real: Elastic Defend's real (pre-setuid / setgid) user and group. */
  user?: EcsUserRef & { effective?: EcsUserRef; Ext?: { real: EcsUserRef } };
  group?: EcsGroupRef & { Ext?: { real: EcsGroupRef } };
  host: EcsHost;
  agent: EcsAgent;
  execsentry?: ExecsentryProcessExtras;
}

/**
 * The values the constant fields of a process event can hold (ProcessEvent above; fork and end events are
 * produced when a rule names them), for telling a rule that asks for others (`event.action == "signal"`,
 * `event.category:file`) that it cannot match here.
 */
export const PROCESS_EVENT_CONSTANTS: Readonly<Record<string, readonly string[]>> = {
  'event.kind': ['event'],
  'event.category': ['process'],
  'event.type': ['start', 'end'],
  'event.action': ['exec', 'fork', 'end'],
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
