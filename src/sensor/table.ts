import type { RawProcessValues } from '../ecs/types.js';

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
  /** The process that forked this one, when the fork was seen (or known from /proc's ppid). */
  parent?: ProcessEntry;
  exited: boolean;
}

export class ProcessTable {
  private readonly live = new Map<number, ProcessEntry>();
  evicted = 0;

  constructor(private readonly maxEntries: number) {}

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
      if (previous !== entry && !sameProcess) markExited(previous);
    }
    this.live.set(entry.pid, entry);
    if (this.live.size > this.maxEntries) {
      const oldest = this.live.keys().next();
      if (!oldest.done) {
        const victim = this.live.get(oldest.value);
        this.live.delete(oldest.value);
        if (victim !== undefined) markExited(victim);
        this.evicted++;
      }
    }
  }

  /** The process exited: it leaves the table, and stays only as long as a live child refers to it. */
  exit(pid: number): ProcessEntry | undefined {
    const entry = this.live.get(pid);
    if (entry === undefined) return undefined;
    this.live.delete(pid);
    markExited(entry);
    return entry;
  }

  values(): IterableIterator<ProcessEntry> {
    return this.live.values();
  }
}

/** Whether entry can be the process that started at `startTicks` (unknown start times match anything). */
export function startsAt(entry: ProcessEntry, startTicks: number): boolean {
  if (entry.startTicks === undefined) return true;
  return entry.startEstimated === true ? Math.abs(entry.startTicks - startTicks) <= 1 : entry.startTicks === startTicks;
}

function markExited(entry: ProcessEntry): void {
  entry.exited = true;
  entry.parent = undefined;
}
