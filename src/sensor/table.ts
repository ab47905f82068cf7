import type { EcsEntryLeader, EcsLeaderProcess, EcsParentProcess, EcsPreviousImage, EntryLeaderType, RawProcessValues } from '../ecs/types.js';
import { ancestryOf } from './leaders.js';

/**
 * What the sensor knows of each process, keyed by pid and checked by start time (a pid alone can be
 * reused). Live processes sit in a map bounded by maxEntries (the least recently updated are evicted
 * beyond it, and counted). An exited process leaves the map but stays reachable from its live children's
 * `parent` link, so a child exec'd after its parent exited still gets the parent's fields; once no live
 * child refers to it, it is garbage. An exited entry drops its own parent link, so at most one dead
 * generation is kept per live process.
 */
export interface ProcessEntry {
  pid: number;
  /**
   * /proc/<pid>/stat start time (clock ticks since boot): with pid, the process's identity. Absent when a
   * fork's child was gone before /proc could be read: the entry still links it to its parent.
   */
  startTicks?: number;
  /**
   * startTicks came from the fork record's time, not from /proc: it may be one tick off (a tick boundary
   * between copy_process() taking the start time and sending the record), so it matches within one tick.
   */
  startEstimated?: boolean;
  /** process.entity_id, computed on first use (needs the start time). */
  entityId?: string;
  start?: string;
  executable?: string;
  name?: string;
  args?: string[];
  commandLine?: string;
  workingDirectory?: string;
  /** The kernel's comm, kept only when the executable could not be read because the process was exiting. */
  commName?: string;
  /** The escaped bytes of those of the fields above that were not UTF-8 (execsentry.raw); absent when none was. */
  raw?: RawProcessValues;
  interactive?: boolean;
  /** Effective ids, as Elastic Defend reports the parent's user.id / group.id. */
  uid?: number;
  gid?: number;
  /** A kernel thread (PF_KTHREAD: its snapshot says so, or kthreadd forked it): no fork or end events, as Elastic Defend's probes skip them. */
  kernelThread?: boolean;
  /** Real ids and supplemental groups (a fork copies them). */
  ruid?: number;
  rgid?: number;
  groups?: readonly number[];
  /** stat's session id, process-group id and tty_nr (a fork copies them; setsid/setpgid may change them before an exec). */
  sid?: number;
  pgid?: number;
  ttyNr?: number;
  /** The process that forked this one, when the fork was seen (or known from /proc's ppid). */
  parent?: ProcessEntry;
  /** process.previous: the images run before the current one, oldest first (a fork's child has none). */
  previous?: readonly EcsPreviousImage[];
  /**
   * process.Ext.ancestry, computed on first use and kept: an exited entry drops its parent link, so its
   * descendants read the chain from here.
   */
  ancestry?: readonly string[];
  /** The entry leader (src/sensor/leaders.ts): decided at exec, inherited at fork. May be this entry. */
  entryLeader?: ProcessEntry;
  /** Only on an entry leader: why it is one, and its parent when it became one. */
  entryMeta?: EntryMeta;
  /**
   * Its ECS fields as a parent, and as a leader of another process or of itself, built on first use and
   * shared by every event that names it (user and group names are filled in place, once).
   */
  ecs?: {
    parent: EcsParentProcess;
    leader?: Omit<EcsParentProcess, 'command_line'>;
    leaderSelf?: EcsLeaderProcess;
    leaderOther?: EcsLeaderProcess;
    entryLeader?: Omit<EcsEntryLeader, 'same_as_process'>;
    entryLeaderSelf?: EcsEntryLeader;
    entryLeaderOther?: EcsEntryLeader;
  };
  exited: boolean;
}

export interface EntryMeta {
  type: EntryLeaderType;
  /** entry_meta.source.ip of an ssh entry (SSH_CONNECTION of the session's first process). */
  sourceIp?: string;
  parent?: { pid: number; start?: string; entityId?: string };
}

/**
 * Session and process-group leaders that exited while members may live on (a daemon's setsid'd parent, a
 * pipeline's first command), by pid. The kernel frees a pid only when no process uses it as a session or
 * group id, so until that pid is used again it names this leader; beyond the bound the oldest go.
 */
const MAX_RETAINED_LEADERS = 4096;
/**
 * And at most this many bytes of their argv (args and command line): 4,096 leaders of 64 KiB command lines
 * (sensor.maxArgsBytes) would otherwise hold half a GiB.
 */
const MAX_RETAINED_LEADER_ARGS_BYTES = 16 * 1024 * 1024;

export class ProcessTable {
  private readonly live = new Map<number, ProcessEntry>();
  private readonly exitedLeaders = new Map<number, ProcessEntry>();
  /** Argv bytes of exitedLeaders (by string length, in UTF-16 units: a bound, not an exact size). */
  private retainedArgsBytes = 0;
  evicted = 0;
  /** Exited leaders dropped beyond MAX_RETAINED_LEADERS or MAX_RETAINED_LEADER_ARGS_BYTES: their members' leader fields carry the pid only. */
  leadersEvicted = 0;
  /** process.entity_id namespace (the host's), for the ancestry an exiting entry keeps. */
  entityNamespace = '';

  constructor(private readonly maxEntries: number) {}

  get retainedLeaders(): number {
    return this.exitedLeaders.size;
  }

  /**
   * The session or group leader with this pid (alive, or exited while its session or group went on), if
   * it can be the leader of a process started at `memberStartTicks` (a leader starts before its members).
   */
  leader(pid: number, memberStartTicks: number | undefined): ProcessEntry | undefined {
    const entry = this.live.get(pid) ?? this.exitedLeaders.get(pid);
    if (entry === undefined) return undefined;
    if (memberStartTicks !== undefined && entry.startTicks !== undefined && entry.startTicks > memberStartTicks + 1) return undefined;
    return entry;
  }

  get size(): number {
    return this.live.size;
  }

  /** The live process with this pid (and this start time, when both sides know it). */
  get(pid: number, startTicks?: number): ProcessEntry | undefined {
    const entry = this.live.get(pid);
    if (entry === undefined || (startTicks !== undefined && !startsAt(entry, startTicks))) return undefined;
    return entry;
  }

  /** Adds or replaces the live process with entry.pid (an older holder of that pid has exited). */
  set(entry: ProcessEntry): void {
    const previous = this.live.get(entry.pid);
    if (previous !== undefined) {
      this.live.delete(entry.pid);
      // Same process (exec, or a fork entry getting its start time) or a newer one on a reused pid.
      const sameProcess = previous.startTicks === undefined || (entry.startTicks !== undefined && startsAt(previous, entry.startTicks));
      if (previous !== entry && !sameProcess) this.markExited(previous);
    } else {
      // A new process on this pid: the exited leader it named has no members left.
      this.forgetLeader(entry.pid);
    }
    this.live.set(entry.pid, entry);
    if (this.live.size > this.maxEntries) {
      const oldest = this.live.keys().next();
      if (!oldest.done) {
        const victim = this.live.get(oldest.value);
        this.live.delete(oldest.value);
        if (victim !== undefined) this.markExited(victim);
        this.evicted++;
      }
    }
  }

  /** The process exited: it leaves the table, and stays only as long as a live child refers to it. */
  exit(pid: number): ProcessEntry | undefined {
    const entry = this.live.get(pid);
    if (entry === undefined) return undefined;
    this.live.delete(pid);
    this.markExited(entry);
    if (entry.pid === entry.sid || entry.pid === entry.pgid) this.retainLeader(entry);
    return entry;
  }

  private retainLeader(entry: ProcessEntry): void {
    // Kept for members that may exec later (most groups end with their leader): only what they read stays;
    // their leader fields are rebuilt if asked for. (Its command line stays too: to a child it is also the
    // parent, whose process.parent.command_line an exec after the parent's exit still carries.)
    entry.ecs = undefined;
    entry.previous = undefined;
    this.forgetLeader(entry.pid);
    this.exitedLeaders.set(entry.pid, entry);
    this.retainedArgsBytes += argsBytes(entry);
    while (this.exitedLeaders.size > MAX_RETAINED_LEADERS || this.retainedArgsBytes > MAX_RETAINED_LEADER_ARGS_BYTES) {
      const oldest = this.exitedLeaders.keys().next();
      if (oldest.done) break;
      this.forgetLeader(oldest.value);
      this.leadersEvicted++;
    }
  }

  private forgetLeader(pid: number): void {
    const leader = this.exitedLeaders.get(pid);
    if (leader === undefined) return;
    this.exitedLeaders.delete(pid);
    this.retainedArgsBytes -= argsBytes(leader);
  }

  private markExited(entry: ProcessEntry): void {
    // Its children still need its ancestors after its own parent link goes.
    if (entry.parent !== undefined && entry.ancestry === undefined) ancestryOf(entry, this.entityNamespace);
    entry.exited = true;
    entry.parent = undefined;
  }

  values(): IterableIterator<ProcessEntry> {
    return this.live.values();
  }
}

function argsBytes(entry: ProcessEntry): number {
  let bytes = entry.commandLine?.length ?? 0;
  for (const arg of entry.args ?? []) bytes += arg.length;
  return bytes;
}

/** Whether entry can be the process that started at `startTicks` (unknown start times match anything). */
/** Copies each of `keys` that `from` has onto `to` (an absent one stays absent, not undefined). */
export function copyDefined<K extends keyof ProcessEntry>(from: ProcessEntry, to: ProcessEntry, keys: readonly K[]): void {
  for (const key of keys) {
    if (from[key] !== undefined) to[key] = from[key];
  }
}

export function startsAt(entry: ProcessEntry, startTicks: number): boolean {
  if (entry.startTicks === undefined) return true;
  return entry.startEstimated === true ? Math.abs(entry.startTicks - startTicks) <= 1 : entry.startTicks === startTicks;
}
