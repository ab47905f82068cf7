import { isUtf8 } from 'node:buffer';
import { hash, randomUUID } from 'node:crypto';
import {
  ECS_VERSION,
  PROCESS_ACTION_TYPE,
  type EcsParentProcess,
  type EcsPreviousImage,
  type EcsProcess,
  type EcsUserRef,
  type ExecsentryRaw,
  type ProcessAction,
  type ProcessEvent,
  type RawProcessValues,
} from '../ecs/types.js';
import { markHoldsShared, markShared } from '../ecs/json.js';
import type { ProcSnapshot } from '../native.js';
import { threadCapabilities } from './capabilities.js';
import { escapeBytes } from './escape-bytes.js';
import { stdioFields, streamDevice } from './stdio.js';
import type { HostIdentity } from './host.js';
import { ancestryOf, currentEntryLeader, entryLeaderFields, leaderFields, summaryOf } from './leaders.js';
import type { ProcessEntry, ProcessTable } from './table.js';

/** tty_nr of /proc/<pid>/stat → (major, minor), as the kernel's new_encode_dev packs them. */
export function decodeTtyNr(ttyNr: number): { major: number; minor: number } {
  return { major: (ttyNr >>> 8) & 0xfff, minor: (ttyNr & 0xff) | ((ttyNr >>> 12) & 0xfff00) };
}

/**
 * ECS process.interactive: true iff the process has a controlling terminal and both fd 0 and fd 2 are
 * that terminal's character device. undefined when what decides it could not be read.
 */
export function isInteractive(snapshot: ProcSnapshot): boolean | undefined {
  if (snapshot.ttyNr === undefined) return undefined;
  if (snapshot.ttyNr === 0) return false;
  const stdin = streamDevice(snapshot, 0);
  const stderr = streamDevice(snapshot, 2);
  if (stdin === undefined || stderr === undefined) return undefined;
  const tty = decodeTtyNr(snapshot.ttyNr);
  const isTty = (device: [number, number] | null) => device !== null && device[0] === tty.major && device[1] === tty.minor;
  return isTty(stdin) && isTty(stderr);
}

/** basename of an executable path ("/usr/bin/bash" → "bash"). */
export function baseName(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? path : path.slice(slash + 1);
}

/**
 * Converts kernel clocks to wall-clock ISO 8601 strings. Execs in a burst share their millisecond and their
 * start tick, so the last string of each kind is kept (formatting a Date is a tenth of an event's cost).
 */
export class Clock {
  private lastMs = NaN;
  private lastMsText = '';
  private lastTicksMs = NaN;
  private lastTicksText = '';

  constructor(
    public realtimeMinusMonotonicMs: number,
    public realtimeMinusBoottimeMs: number,
    readonly nanosPerTick: number,
  ) {}

  /** A connector record's time (CLOCK_MONOTONIC ns). */
  fromMonotonicNs(timeNs: number): string {
    const ms = Math.floor(this.realtimeMinusMonotonicMs + timeNs / 1e6);
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastMsText = new Date(ms).toISOString();
    }
    return this.lastMsText;
  }

  /** A /proc start time (CLOCK_BOOTTIME clock ticks). */
  fromStartTicks(ticks: number): string {
    const ms = Math.floor(this.realtimeMinusBoottimeMs + (ticks * this.nanosPerTick) / 1e6);
    if (ms !== this.lastTicksMs) {
      this.lastTicksMs = ms;
      this.lastTicksText = new Date(ms).toISOString();
    }
    return this.lastTicksText;
  }
}

/** process.entity_id: stable for one process on one host (host id + pid + start time, hashed). */
export function entityId(namespace: string, pid: number, startTicks: number): string {
  // One-shot hash(): a third of createHash().update().digest() per exec.
  return hash('sha256', `${namespace}\0${pid}\0${startTicks}`, 'base64url').slice(0, 32);
}

export function entityIdOf(entry: ProcessEntry, namespace: string): string | undefined {
  if (entry.startTicks === undefined) return undefined;
  entry.entityId ??= entityId(namespace, entry.pid, entry.startTicks);
  return entry.entityId;
}

/** What a snapshot tells of the process, as a table entry (parent link set by the caller). */
export function entryFromSnapshot(snapshot: ProcSnapshot & { startTicks: number }, clock: Clock): ProcessEntry {
  const entry: ProcessEntry = {
    pid: snapshot.pid,
    startTicks: snapshot.startTicks,
    start: clock.fromStartTicks(snapshot.startTicks),
    exited: false,
  };
  if (snapshot.executable !== undefined) {
    entry.executable = snapshot.executable;
    entry.name = baseName(snapshot.executable);
  } else if (snapshot.exited === true && snapshot.comm !== undefined) {
    // The exe link went with the process's memory; its own comm (set by exec from the file's base name)
    // is still readable until it is reaped.
    entry.commName = snapshot.comm;
  }
  if (snapshot.args !== undefined) {
    entry.args = snapshot.args;
    entry.commandLine = snapshot.args.join(' ');
  }
  if (snapshot.cwd !== undefined) entry.workingDirectory = snapshot.cwd;
  const raw = rawValues(snapshot);
  if (raw !== undefined) entry.raw = raw;
  const interactive = isInteractive(snapshot);
  if (interactive !== undefined) entry.interactive = interactive;
  if (snapshot.uids !== undefined) {
    entry.uid = snapshot.uids[1];
    entry.ruid = snapshot.uids[0];
  }
  if (snapshot.gids !== undefined) {
    entry.gid = snapshot.gids[1];
    entry.rgid = snapshot.gids[0];
  }
  if (snapshot.groups !== undefined) entry.groups = snapshot.groups;
  if (snapshot.sid !== undefined) entry.sid = snapshot.sid;
  if (snapshot.pgid !== undefined) entry.pgid = snapshot.pgid;
  if (snapshot.ttyNr !== undefined) entry.ttyNr = snapshot.ttyNr;
  if (snapshot.kernelThread === true) entry.kernelThread = true;
  return entry;
}

/** The escaped bytes of the snapshot's values that were not UTF-8 (the addon hands over only those); undefined when all were. */
function rawValues(snapshot: ProcSnapshot): RawProcessValues | undefined {
  const { executableBytes, argsBytes, cwdBytes } = snapshot;
  if (executableBytes === undefined && argsBytes === undefined && cwdBytes === undefined) return undefined;
  const raw: RawProcessValues = {};
  if (executableBytes !== undefined) {
    raw.executable = escapeBytes(executableBytes);
    // Only when the bad bytes are in the name itself, not in a directory above it. Escaping neither adds
    // nor removes a '/', so the escaped path's base name is the escaped name.
    if (!isUtf8(executableBytes.subarray(executableBytes.lastIndexOf(0x2f) + 1))) raw.name = baseName(raw.executable);
  }
  if (argsBytes !== undefined) {
    raw.args = argsBytes.map((bytes) => escapeBytes(bytes));
    raw.command_line = raw.args.join(' ');
  }
  if (cwdBytes !== undefined) raw.working_directory = escapeBytes(cwdBytes);
  return raw;
}

/** Whether /proc shows the program the table knows; where U+FFFD hides a difference, the bytes tell. */
export function sameImage(known: ProcessEntry, snapshot: ProcSnapshot): boolean {
  if (known.executable !== snapshot.executable || !sameArgs(known.args, snapshot.args)) return false;
  const raw = rawValues(snapshot);
  return known.raw?.executable === raw?.executable && sameArgs(known.raw?.args, raw?.args);
}

function sameArgs(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((arg, i) => arg === b[i]);
}

/** execsentry.raw: the process's and its parent's repaired values, under their ECS names. */
export function rawFields(own: RawProcessValues | undefined, parent: RawProcessValues | undefined): ExecsentryRaw | undefined {
  if (own === undefined && parent === undefined) return undefined;
  const raw: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(own ?? {})) raw[`process.${key}`] = value;
  for (const [key, value] of Object.entries(parent ?? {})) raw[`process.parent.${key}`] = value;
  return raw as ExecsentryRaw;
}

/** event.* of a process event of `action`. */
export function eventFields(action: ProcessAction, created: string): ProcessEvent['event'] {
  return {
    kind: 'event',
    category: ['process'],
    type: [PROCESS_ACTION_TYPE[action]],
    action,
    id: randomUUID(),
    created,
    module: 'execsentry',
    dataset: 'execsentry.process',
  };
}

export interface ExecContext {
  identity: HostIdentity;
  /** ISO time of the exec (@timestamp). */
  timestamp: string;
  created: string;
  recovered?: boolean;
  /** Where session, group and entry leaders are looked up; without it they are bare pids. */
  table?: ProcessTable;
}

/**
 * The ECS process event of one exec. `entry` is the process's table entry when its identity (start time)
 * is known; `parent` the parent's entry, or `parentPid` alone when the parent is not known. The process's
 * own user and group fields come with their names, from the sensor's NSS cache (fillNames).
 */
export function buildExecEvent(
  pid: number,
  snapshot: ProcSnapshot,
  entry: ProcessEntry | undefined,
  parent: ProcessEntry | undefined,
  parentPid: number | undefined,
  context: ExecContext,
): ProcessEvent {
  const namespace = context.identity.entityNamespace;
  const process: EcsProcess = markHoldsShared({
    pid,
    // Without a start time the process cannot be identified across events; the id then names this exec only.
    entity_id: (entry !== undefined ? entityIdOf(entry, namespace) : undefined) ?? entityId(namespace, pid, -Date.parse(context.timestamp)),
  });
  if (entry?.executable !== undefined) {
    process.executable = entry.executable;
    process.name = entry.name;
  } else if (entry?.commName !== undefined) {
    process.name = entry.commName;
  }
  if (entry?.args !== undefined) {
    process.args = entry.args;
    process.args_count = entry.args.length;
    process.command_line = entry.commandLine;
  }
  if (entry?.workingDirectory !== undefined) process.working_directory = entry.workingDirectory;
  if (entry?.start !== undefined) process.start = entry.start;
  if (entry?.interactive !== undefined) process.interactive = entry.interactive;
  if (snapshot.ttyNr !== undefined && snapshot.ttyNr !== 0) process.tty = { char_device: decodeTtyNr(snapshot.ttyNr) };
  const table = context.table;
  const memberStart = entry?.startTicks;
  if (snapshot.sid !== undefined && snapshot.sid > 0) {
    const leader = table?.leader(snapshot.sid, memberStart);
    process.session_leader = leader !== undefined ? leaderFields(leader, pid, namespace) : { pid: snapshot.sid };
  }
  if (snapshot.pgid !== undefined && snapshot.pgid > 0) {
    const leader = table?.leader(snapshot.pgid, memberStart);
    process.group_leader = leader !== undefined ? leaderFields(leader, pid, namespace) : { pid: snapshot.pgid };
  }
  const entryLeader = entry !== undefined && table !== undefined ? currentEntryLeader(entry, table) : undefined;
  if (entryLeader !== undefined) process.entry_leader = entryLeaderFields(entryLeader.leader, entryLeader.meta, pid, namespace);
  if (entry?.previous !== undefined && entry.previous.length > 0) process.previous = entry.previous as EcsPreviousImage[];
  if (entry !== undefined && (entry.parent !== undefined || entry.ancestry !== undefined)) {
    const ancestry = ancestryOf(entry, namespace);
    if (ancestry.length > 0) process.Ext = { ancestry: ancestry as string[] };
  }
  if (snapshot.capEff !== undefined || snapshot.capPrm !== undefined) process.thread = threadCapabilities(snapshot.capEff, snapshot.capPrm);
  if (parent !== undefined) process.parent = summaryOf(parent, namespace);
  else if (parentPid !== undefined && parentPid > 0) process.parent = { pid: parentPid };

  const event: ProcessEvent = {
    '@timestamp': context.timestamp,
    event: eventFields('exec', context.created),
    ecs: { version: ECS_VERSION },
    process,
    host: context.identity.host,
    agent: context.identity.agent,
  };
  if (snapshot.uids !== undefined || snapshot.gids !== undefined || snapshot.groups !== undefined) {
    (event as Unnamed)[IDS] = { uids: snapshot.uids, gids: snapshot.gids, groups: snapshot.groups };
  }
  const extras: NonNullable<ProcessEvent['execsentry']> = {};
  if (snapshot.partial || entry?.startTicks === undefined) extras.partial = true;
  if (snapshot.exited === true) extras.exited_before_snapshot = true;
  if (process.executable === undefined && process.name !== undefined) extras.name_from_comm = true;
  if (context.recovered) extras.recovered = true;
  if (snapshot.argsTruncated) extras.args_truncated = true;
  if (snapshot.argsLossy) extras.args_lossy = true;
  if (snapshot.pathsLossy) extras.paths_lossy = true;
  const raw = rawFields(entry?.raw, parent?.raw);
  if (raw !== undefined) extras.raw = raw;
  const stdio = stdioFields(snapshot, process.tty?.char_device);
  if (stdio !== undefined) extras.stdio = stdio;
  if (Object.keys(extras).length > 0) event.execsentry = extras;
  return event;
}

/**
 * The ids an exec event reports, kept on it until fillNames turns them into its user and group fields. A
 * symbol key: JSON and Object.entries do not see it.
 */
const IDS = Symbol('ids to name');
interface ReportedIds {
  /** real, effective, saved */
  uids: readonly [number, number, number] | undefined;
  gids: readonly [number, number, number] | undefined;
  groups: readonly number[] | undefined;
}
/** null once the fields are in place: the event's own user and group fields are then shared ones. */
type Unnamed = ProcessEvent & { [IDS]?: ReportedIds | null };

/** An exec event's user and group fields: process.user … process.saved_group, supplemental groups, user.*, group.*. */
interface IdentityFields {
  process: Pick<EcsProcess, 'supplemental_groups' | 'user' | 'real_user' | 'saved_user' | 'group' | 'real_group' | 'saved_group'>;
  user?: NonNullable<ProcessEvent['user']>;
  group?: NonNullable<ProcessEvent['group']>;
}

/**
 * The same ids with the same names give the same fields: they are built once and shared by every event
 * that reports them (read-only, their JSON text cached: src/ecs/json.ts), since a host runs its programs
 * under a handful of identities. Keyed by the ids; an entry whose names no longer match (NSS answered
 * differently since) is rebuilt. Bounded, since ids come from processes an attacker can start.
 */
const identities = new Map<string, { names: (string | undefined)[]; fields: IdentityFields }>();
const MAX_IDENTITIES = 1024;

function identityOf(ids: ReportedIds, userName: NameOf, groupName: NameOf): IdentityFields {
  const { uids, gids, groups } = ids;
  const key = `${uids?.join(',') ?? ''}/${gids?.join(',') ?? ''}/${groups?.join(',') ?? ''}`;
  const names: (string | undefined)[] = [];
  if (uids !== undefined) for (const uid of uids) names.push(userName(uid));
  if (gids !== undefined) for (const gid of gids) names.push(groupName(gid));
  if (groups !== undefined) for (const gid of groups) names.push(groupName(gid));
  const cached = identities.get(key);
  if (cached !== undefined && cached.names.length === names.length && cached.names.every((name, i) => name === names[i])) return cached.fields;
  let at = 0;
  const ref = (id: number): EcsUserRef => {
    const name = names[at++];
    return markShared(name === undefined ? { id: String(id) } : { id: String(id), name });
  };
  const fields: IdentityFields = { process: {} };
  if (uids !== undefined) {
    const [real, effective, saved] = [ref(uids[0]), ref(uids[1]), ref(uids[2])];
    fields.process.user = effective;
    fields.process.real_user = real;
    fields.process.saved_user = saved;
    fields.user = markShared({ ...effective, effective, Ext: { real } });
  }
  if (gids !== undefined) {
    const [real, effective, saved] = [ref(gids[0]), ref(gids[1]), ref(gids[2])];
    fields.process.group = effective;
    fields.process.real_group = real;
    fields.process.saved_group = saved;
    fields.group = markShared({ ...effective, Ext: { real } });
  }
  if (groups !== undefined && groups.length > 0) fields.process.supplemental_groups = markShared(groups.map(ref));
  if (identities.size >= MAX_IDENTITIES) identities.clear();
  identities.set(key, { names, fields });
  return fields;
}

function addIdentity(event: ProcessEvent, fields: IdentityFields): void {
  const p = event.process;
  const own = fields.process;
  if (own.supplemental_groups !== undefined) p.supplemental_groups = own.supplemental_groups;
  if (own.user !== undefined) {
    p.user = own.user;
    p.real_user = own.real_user;
    p.saved_user = own.saved_user;
  }
  if (own.group !== undefined) {
    p.group = own.group;
    p.real_group = own.real_group;
    p.saved_group = own.saved_group;
  }
  if (fields.user !== undefined) event.user = fields.user;
  if (fields.group !== undefined) event.group = fields.group;
}

/**
 * Marks a parent's or leader's object (shared by events, leaders.ts) whose names were filled. A symbol key:
 * JSON and Object.entries do not see it.
 */
const NAMED = Symbol('names filled');
type Shared = EcsParentProcess & { [NAMED]?: true };

function addId(ids: Set<number>, ref: { id?: string; name?: string } | undefined): void {
  if (ref?.id !== undefined && ref.name === undefined) ids.add(Number(ref.id));
}

function collectSharedIds(p: EcsParentProcess | { pid: number } | undefined, uids: Set<number>, gids: Set<number>): void {
  const shared = p as Shared | undefined;
  if (shared === undefined || shared[NAMED] === true) return;
  addId(uids, shared.user);
  addId(uids, shared.real_user);
  addId(gids, shared.group);
  addId(gids, shared.real_group);
  if (shared.supplemental_groups !== undefined) for (const group of shared.supplemental_groups) addId(gids, group);
}

/** Every uid and gid an event names that has no name yet (for the NSS cache). */
export function collectIds(event: ProcessEvent, uids: Set<number>, gids: Set<number>): void {
  const ids = (event as Unnamed)[IDS];
  if (ids !== undefined && ids !== null) {
    if (ids.uids !== undefined) for (const uid of ids.uids) uids.add(uid);
    if (ids.gids !== undefined) for (const gid of ids.gids) gids.add(gid);
    if (ids.groups !== undefined) for (const gid of ids.groups) gids.add(gid);
  }
  const p = event.process;
  addId(uids, p.user);
  addId(uids, p.real_user);
  addId(gids, p.group);
  addId(gids, p.real_group);
  if (p.supplemental_groups !== undefined) for (const group of p.supplemental_groups) addId(gids, group);
  collectSharedIds(p.parent, uids, gids);
  collectSharedIds(p.session_leader, uids, gids);
  collectSharedIds(p.group_leader, uids, gids);
  collectSharedIds(p.entry_leader, uids, gids);
}

type NameOf = (id: number) => string | undefined;

function nameRef(ref: { id?: string; name?: string } | undefined, nameOf: NameOf): void {
  if (ref?.id === undefined || ref.name !== undefined) return;
  const name = nameOf(Number(ref.id));
  if (name !== undefined) ref.name = name;
}

/**
 * A user or group reference of a shared object is named once, even when several shared objects hold it
 * (a leader's fields are a copy of its parent summary's): once an object has been encoded
 * (src/ecs/json.ts markShared), nothing under it changes.
 */
const namesLookedUp = new WeakSet<object>();

function nameSharedRef(ref: { id?: string; name?: string } | undefined, nameOf: NameOf): void {
  if (ref === undefined || namesLookedUp.has(ref)) return;
  nameRef(ref, nameOf);
  namesLookedUp.add(ref);
}

function nameShared(p: EcsParentProcess | { pid: number } | undefined, userName: NameOf, groupName: NameOf): void {
  const shared = p as Shared | undefined;
  if (shared === undefined || shared[NAMED] === true) return;
  nameSharedRef(shared.user, userName);
  nameSharedRef(shared.real_user, userName);
  nameSharedRef(shared.group, groupName);
  nameSharedRef(shared.real_group, groupName);
  if (shared.supplemental_groups !== undefined) for (const group of shared.supplemental_groups) nameSharedRef(group, groupName);
  // An id NSS did not know stays without a name for this object's lifetime (the process's, or its image's).
  shared[NAMED] = true;
}

/** Adds the cached names; an id NSS does not know keeps its id and gets no name. */
export function fillNames(event: ProcessEvent, userName: NameOf, groupName: NameOf): void {
  const p = event.process;
  const ids = (event as Unnamed)[IDS];
  if (ids !== undefined && ids !== null) {
    (event as Unnamed)[IDS] = null;
    addIdentity(event, identityOf(ids, userName, groupName));
  } else if (ids === undefined) {
    // A fork or end event's own copies of its process's references.
    nameRef(p.user, userName);
    nameRef(p.real_user, userName);
    nameRef(p.group, groupName);
    nameRef(p.real_group, groupName);
    if (p.supplemental_groups !== undefined) for (const group of p.supplemental_groups) nameRef(group, groupName);
    if (event.user !== undefined && p.user?.name !== undefined) {
      event.user.name = p.user.name;
      if (event.user.effective !== undefined) event.user.effective.name = p.user.name;
    }
    if (event.group !== undefined && p.group?.name !== undefined) event.group.name = p.group.name;
  }
  nameShared(p.parent, userName, groupName);
  nameShared(p.session_leader, userName, groupName);
  nameShared(p.group_leader, userName, groupName);
  nameShared(p.entry_leader, userName, groupName);
}
