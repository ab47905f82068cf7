import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { markShared } from '../ecs/json.js';
import type { EcsEntryLeader, EcsLeaderProcess, EcsParentProcess, EcsPreviousImage, EntryLeaderType } from '../ecs/types.js';
import { decodeTtyNr, entityIdOf } from './enrich.js';
import { copyDefined, startsAt, type EntryMeta, type ProcessEntry, type ProcessTable } from './table.js';

/**
 * Session, group and entry leaders, ancestry and previous images of a process, from the process table alone.
 *
 * The entry leader rules follow Elastic's two open implementations of the same session logic, read (not
 * copied): quark's entry_leader_compute() (github.com/elastic/quark, quark.c) and auditbeat's session
 * processor (github.com/elastic/beats, x-pack/auditbeat/processors/sessionmd/processdb/db.go,
 * evaluateEntryLeader). Where they differ, the choice is said below.
 */

/** Bound of process.Ext.ancestry: Kibana's resolver reads Defend's array as capped at 20 ("the exact limit should not be relied on"). */
export const MAX_ANCESTRY = 20;
/** Longest parent chain followed to compute an ancestry. */
const MAX_CHAIN = 65_536;
/**
 * Bound of process.previous (ECS: the previous executions "including the initial fork"); the oldest go
 * first. Each image keeps its argv (up to sensor.maxArgsBytes) for as long as the process lives, so a few.
 */
export const MAX_PREVIOUS = 4;

/** How quark's tty_type() and auditbeat's tty.GetTTYType() classify a controlling terminal. */
export type TtyKind = 'pts' | 'tty' | 'console' | 'none' | 'other';

export function ttyKind(ttyNr: number | undefined): TtyKind {
  if (ttyNr === undefined || ttyNr === 0) return 'none';
  const { major, minor } = decodeTtyNr(ttyNr);
  if (major >= 136 && major <= 143) return 'pts'; // Unix98 pseudo-terminal slaves (devices.txt)
  if (major === 4) return minor <= 63 ? 'console' : minor <= 255 ? 'tty' : 'other'; // tty0-63 virtual consoles, ttyS serial
  return 'other';
}

// Both implementations: a session leader with one of these names is plumbing of an entry mechanism, never
// an entry leader itself by its parent's name (quark adds pause).
const FILTERED_PREFIXES = ['runc', 'containerd-shim', 'calico-node', 'check-status', 'pause', 'conmon'];
// A session leader whose parent is one of these is a container's entry.
const CONTAINER_RUNTIME_PREFIXES = ['containerd-shim', 'runc', 'conmon'];
// OpenSSH 9.8 split the per-connection server into sshd-session, which is then the shell's parent; the two
// implementations predate it and match "sshd" only.
const SSHD_NAMES = new Set(['sshd', 'sshd-session']);

const startsWithAny = (name: string, prefixes: readonly string[]) => prefixes.some((prefix) => name.startsWith(prefix));

/**
 * Decides `entry`'s entry leader at exec (entry: the new image, its sid and tty from the snapshot; parent:
 * the process that forked it; inherited: what its fork-time entry carried). Sets entry.entryLeader, and
 * entry.entryMeta when the entry leads itself.
 *
 * - pid 1 leads itself, `init` (quark; auditbeat gives init none, so its children would have none).
 * - kernel threads and usermode helpers (pid 2, or parent 2) are `kthread`, led by kthreadd unless a
 *   session leader (quark; auditbeat gives them none).
 * - a session leader on a tty is `terminal`; on the console, `login` is `console` (auditbeat; quark says
 *   terminal); one whose parent is pid 1 is a service, `init` (auditbeat; quark inherits init's).
 * - a session leader not named like container plumbing: on a pseudo-terminal under ssm-session-worker `ssm`,
 *   under sshd (not sshd itself) `sshd`, under a container runtime `container` (both).
 * - otherwise inherited from the parent (auditbeat also tries the session and group leader's, which share
 *   the parent's here since our table has no setsid events); a session leader that inherits nothing is
 *   `unknown`, led by itself (auditbeat); anything else has none.
 */
export function decideEntryLeader(
  entry: ProcessEntry,
  parent: ProcessEntry | undefined,
  ppid: number | undefined,
  inherited: ProcessEntry | undefined,
  namespace: string,
): void {
  const lead = (type: EntryLeaderType): void => {
    entry.entryLeader = entry;
    entry.entryMeta = { type };
    if (parent !== undefined) {
      const entityId = entityIdOf(parent, namespace);
      entry.entryMeta.parent = { pid: parent.pid, ...(parent.start !== undefined ? { start: parent.start } : {}), ...(entityId !== undefined ? { entityId } : {}) };
    } else if (ppid !== undefined && ppid > 0) {
      entry.entryMeta.parent = { pid: ppid };
    }
  };
  const parentPid = parent?.pid ?? ppid;
  if (entry.pid === 1) return lead('init');
  const sessionLeader = entry.sid !== undefined && entry.sid === entry.pid;
  if (entry.pid === 2 || parentPid === 2) {
    if (sessionLeader || parent === undefined) return lead('kthread');
    entry.entryLeader = parent.entryLeader ?? parent;
    return;
  }
  if (sessionLeader) {
    const tty = ttyKind(entry.ttyNr);
    const name = entry.name ?? entry.commName ?? '';
    if (tty === 'tty') return lead('terminal');
    if (tty === 'console' && name === 'login') return lead('console');
    // The parent now: a process reparented to init before its exec was started for init.
    if (ppid === 1) return lead('init');
    if (parent !== undefined && !startsWithAny(name, FILTERED_PREFIXES)) {
      const parentName = parent.name ?? parent.commName ?? '';
      if (tty === 'pts' && parentName === 'ssm-session-worker') return lead('ssm');
      if (SSHD_NAMES.has(parentName) && !SSHD_NAMES.has(name)) return lead('sshd');
      if (startsWithAny(parentName, CONTAINER_RUNTIME_PREFIXES)) return lead('container');
    }
  }
  const from = inherited ?? parent?.entryLeader;
  if (from !== undefined) entry.entryLeader = from;
  else if (sessionLeader) lead('unknown');
}

/** A fork's child: same session, group, terminal, credentials and entry leader as its parent. */
export function inheritAtFork(parent: ProcessEntry, child: ProcessEntry): void {
  copyDefined(parent, child, INHERITED_AT_FORK);
}

const INHERITED_AT_FORK = ['sid', 'pgid', 'ttyNr', 'ruid', 'rgid', 'groups', 'entryLeader'] as const;

/**
 * entry_meta.source.ip of an ssh entry: the client address sshd put first in SSH_CONNECTION ("client port
 * server port") of the session's environment. Read from /proc only for an sshd entry leader (a login, not
 * every exec), and kept only if the pid still holds that process afterwards.
 */
export function sshSourceIp(procRoot: string, entry: ProcessEntry): string | undefined {
  const environ = ownProcFile(procRoot, entry, 'environ');
  if (environ === undefined) return undefined;
  const key = 'SSH_CONNECTION=';
  const ip = environ.split('\0').find((variable) => variable.startsWith(key))?.slice(key.length).split(' ')[0] ?? '';
  return isIP(ip) !== 0 ? ip : undefined;
}

/**
 * /proc/<pid>/<file> of the process `entry` is: read, then the pid's start time checked, so that what was
 * read is never another process's that has taken the pid since. undefined when unreadable or not it.
 */
function ownProcFile(procRoot: string, entry: ProcessEntry, file: string): string | undefined {
  if (entry.startTicks === undefined) return undefined;
  try {
    const text = readFileSync(`${procRoot}/${entry.pid}/${file}`, 'latin1');
    const stat = readFileSync(`${procRoot}/${entry.pid}/stat`, 'latin1');
    const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]); // field 22
    return startsAt(entry, startTicks) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** process.Ext.ancestry of `entry`: its ancestors' entity ids, parent first, up to the first unknown one. */
export function ancestryOf(entry: ProcessEntry, namespace: string): readonly string[] {
  if (entry.ancestry !== undefined) return entry.ancestry;
  // Up the parent links to the nearest entry that knows its own ancestry (or the root), then down again:
  // each entry's is computed once, and only from a complete parent's.
  // (A cycle cannot form from fork records, but /proc's ppids are not read at one instant: a bound keeps
  // a corrupt table from hanging the agent.)
  const chain: ProcessEntry[] = [];
  for (let at: ProcessEntry | undefined = entry; at !== undefined && at.ancestry === undefined && chain.length < MAX_CHAIN; at = at.parent) chain.push(at);
  for (let i = chain.length - 1; i >= 0; i--) {
    const at = chain[i] as ProcessEntry;
    const parent = at.parent;
    const parentId = parent !== undefined ? entityIdOf(parent, namespace) : undefined;
    if (parent === undefined || parentId === undefined) at.ancestry = [];
    else at.ancestry = [parentId, ...(parent.ancestry ?? []).slice(0, MAX_ANCESTRY - 1)];
  }
  return entry.ancestry ?? [];
}

/** process.previous after an exec: what the process was before it (`known`), appended to its own previous ones. */
export function previousAfterExec(known: ProcessEntry): readonly EcsPreviousImage[] | undefined {
  if (known.executable === undefined && known.args === undefined) return known.previous;
  const image: EcsPreviousImage = {};
  if (known.executable !== undefined) image.executable = known.executable;
  if (known.args !== undefined) {
    image.args = known.args;
    image.args_count = known.args.length;
  }
  const before = known.previous ?? [];
  return [...(before.length >= MAX_PREVIOUS ? before.slice(before.length - MAX_PREVIOUS + 1) : before), image];
}

/**
 * The ECS fields of a process as a parent or leader: built once per entry and shared by the events that
 * name it, so the events' objects are read-only (names are filled in place, once).
 */
export function summaryOf(entry: ProcessEntry, namespace: string): EcsParentProcess {
  if (entry.ecs !== undefined) return entry.ecs.parent;
  const out: EcsParentProcess = { pid: entry.pid };
  const id = entityIdOf(entry, namespace);
  if (id !== undefined) out.entity_id = id;
  if (entry.executable !== undefined) out.executable = entry.executable;
  if (entry.name !== undefined) out.name = entry.name;
  if (entry.args !== undefined) {
    out.args = entry.args;
    out.args_count = entry.args.length;
  }
  if (entry.commandLine !== undefined) out.command_line = entry.commandLine;
  if (entry.workingDirectory !== undefined) out.working_directory = entry.workingDirectory;
  if (entry.start !== undefined) out.start = entry.start;
  if (entry.interactive !== undefined) out.interactive = entry.interactive;
  if (entry.uid !== undefined) out.user = { id: String(entry.uid) };
  if (entry.gid !== undefined) out.group = { id: String(entry.gid) };
  if (entry.ruid !== undefined) out.real_user = { id: String(entry.ruid) };
  if (entry.rgid !== undefined) out.real_group = { id: String(entry.rgid) };
  if (entry.groups !== undefined && entry.groups.length > 0) out.supplemental_groups = entry.groups.map((gid) => ({ id: String(gid) }));
  if (entry.ttyNr !== undefined && entry.ttyNr !== 0) out.tty = { char_device: decodeTtyNr(entry.ttyNr) };
  entry.ecs = { parent: markShared(out) };
  return out;
}

/** A leader's fields: the parent's but command_line, which Defend's leaders do not carry (their args they do). */
function asLeader(summary: EcsParentProcess): Omit<EcsParentProcess, 'command_line'> {
  const { command_line: _commandLine, ...leader } = summary;
  return leader;
}

/** The leader view of an entry's fields, built once. */
function asLeaderOnce(entry: ProcessEntry, namespace: string): Omit<EcsParentProcess, 'command_line'> {
  summaryOf(entry, namespace);
  const cache = entry.ecs as NonNullable<ProcessEntry['ecs']>;
  return (cache.leader ??= asLeader(cache.parent));
}

/** A session or group leader's fields for the event of process `pid`. */
export function leaderFields(leader: ProcessEntry, pid: number, namespace: string): EcsLeaderProcess {
  const summary = asLeaderOnce(leader, namespace);
  const cache = (leader.ecs as NonNullable<ProcessEntry['ecs']>);
  // Built when first needed: a process-group leader often names only itself (one command of a shell).
  if (leader.pid === pid) return (cache.leaderSelf ??= markShared({ ...summary, same_as_process: true }));
  return (cache.leaderOther ??= markShared({ ...summary, same_as_process: false }));
}

/** process.entry_leader of the event of process `pid`, led by `leader`. */
export function entryLeaderFields(leader: ProcessEntry, meta: EntryMeta, pid: number, namespace: string): EcsEntryLeader {
  const summary = asLeaderOnce(leader, namespace);
  const cache = (leader.ecs as NonNullable<ProcessEntry['ecs']>);
  if (cache.entryLeader === undefined) {
    const entryMeta: EcsEntryLeader['entry_meta'] = { type: meta.type };
    if (meta.sourceIp !== undefined) entryMeta.source = { ip: meta.sourceIp };
    const base: Omit<EcsEntryLeader, 'same_as_process'> = { ...summary, entry_meta: entryMeta };
    if (meta.parent !== undefined) {
      const parent: NonNullable<EcsEntryLeader['parent']> = { pid: meta.parent.pid };
      if (meta.parent.start !== undefined) parent.start = meta.parent.start;
      if (meta.parent.entityId !== undefined) parent.entity_id = meta.parent.entityId;
      base.parent = parent;
    }
    cache.entryLeader = base;
  }
  if (leader.pid === pid) return (cache.entryLeaderSelf ??= markShared({ ...cache.entryLeader, same_as_process: true }));
  return (cache.entryLeaderOther ??= markShared({ ...cache.entryLeader, same_as_process: false }));
}

/** The entry leader `entry` points to, as the table knows it now (a leader that exec'd since is its newer entry). */
export function currentEntryLeader(entry: ProcessEntry, table: ProcessTable): { leader: ProcessEntry; meta: EntryMeta } | undefined {
  const recorded = entry.entryLeader;
  if (recorded === undefined) return undefined;
  const live = recorded === entry ? undefined : table.get(recorded.pid, recorded.startTicks);
  const leader = live?.entryMeta !== undefined ? live : recorded;
  return leader.entryMeta !== undefined ? { leader, meta: leader.entryMeta } : undefined;
}
