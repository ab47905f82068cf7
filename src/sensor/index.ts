import { readFile } from 'node:fs/promises';
import type { ProcessAction, ProcessEvent } from '../ecs/types.js';
import { markShared } from '../ecs/json.js';
import { RuntimeFailure } from '../errors.js';
import type { Logger } from '../log.js';
import {
  decodeRecords,
  native,
  RecordKind,
  type ConnectorRecord,
  type ConnectorStats,
  type ProcessConnector,
  type ProcSnapshot,
} from '../native.js';
import { grantingHint } from './capabilities.js';
import { buildExecEvent, Clock, collectIds, entityIdOf, entryFromSnapshot, fillNames, sameImage } from './enrich.js';
import { ContainerCache } from './container.js';
import { Hasher, type HashAlgorithm, type HasherStats, DEFAULT_HASH_WAIT_MS, DEFAULT_MAX_HASH_FILE_BYTES, NO_HASHING } from './hashes.js';
import { networkAddresses, readHostIdentity, type HostIdentity } from './host.js';
import { decideEntryLeader, previousAfterExec, sshSourceIp } from './leaders.js';
import { buildEndEvent, buildForkEvent, forkedEntry } from './lifecycle.js';
import { markSystemAccount, UserGroupNames } from './names.js';
import { copyDefined, ProcessTable, type ProcessEntry } from './table.js';

export interface SensorOptions {
  socketBufferBytes: number;
  maxArgsBytes: number;
  maxProcessTableEntries: number;
  /** Environment variables for process.env_vars (config sensor.envVars); none: environ is never read. */
  envVars?: string[];
  /** process.hash.* algorithms (config sensor.hashes); none: no hashing. */
  hashes?: HashAlgorithm[];
  maxHashFileBytes?: number;
  hashWaitMs?: number;
  /** The process events to produce: exec always; fork and end on request (see produce()). Default exec only. */
  events?: readonly ProcessAction[];
  logger: Logger;
  /** Where /proc is mounted (tests); default /proc. */
  procRoot?: string;
  /**
   * Listen as on kernels before 6.6 / 6.13 (tests only; also EXECSENTRY_TEST_LEGACY_KERNEL=1, for tests that
   * start the CLI).
   */
  legacyKernel?: boolean;
}

export interface SensorStats extends HasherStats {
  /** Process events emitted: exec (recovered ones included), and fork and end when produced. */
  events: number;
  /** Of them, fork and end events (produced only when asked for or named by a rule). */
  forkEvents: number;
  endEvents: number;
  /** Records the kernel numbered but we never received (per-CPU sequence gaps): lost exec/fork/exit records. */
  lost: number;
  /** recv() overruns (ENOBUFS): the socket buffer overflowed; each triggers a /proc rescan. */
  overruns: number;
  seqGaps: number;
  /** Exec events emitted by the rescan after an overrun. */
  recovered: number;
  recoveryScans: number;
  /** Exec events whose /proc snapshot was incomplete (the process exited first, or a read was refused). */
  partial: number;
  /** Exec events whose process was exiting, a zombie or reaped when /proc was read. */
  exitedBeforeSnapshot: number;
  /** Exec events with a /proc read refused (EACCES/EPERM). */
  denied: number;
  /** Standard streams reported without their socket's ends: the closer of socket copies was busy or stuck (native/procfs.cc). */
  socketEndsSkipped: number;
  /** Snapshots refused because the pid already held a newer process. */
  pidReused: number;
  /** Exec snapshots skipped because the same pid exec'd again before it could be read. */
  superseded: number;
  tableSize: number;
  tableEvicted: number;
  /** Session and group leaders kept after their exit for members still running. */
  leadersRetained: number;
  /** Exited leaders dropped beyond the bound: their members' leader fields carry the pid only. */
  leadersEvicted: number;
  nameLookUps: number;
  received: number;
  forks: number;
  exits: number;
  backpressureWaits: number;
  /** Batches handed to JavaScript in a sustained flow of records (the 4 ms window of a storm; native/connector.cc). */
  sustainedHandOvers: number;
  /** Times the reader thread woke up. */
  readerWakeups: number;
  /** Execs the reader found only at its 50 ms drain, not when they happened (native/connector.cc). */
  lateExecs: number;
  socketBufferBytes: number;
  /** Errors thrown by the events callback (caught and logged). */
  callbackErrors: number;
}

const SUBSCRIBE_TIMEOUT_MS = 3_000;
/** Also how often host.ip and host.mac are read again (DHCP, interfaces coming and going). */
const CLOCK_RESYNC_MS = 60_000;

const CAP_NET_ADMIN = 12n;
const CAP_SYS_PTRACE = 19n;

/** Our effective capabilities (CapEff of /proc/self/status); undefined when unreadable. */
async function effectiveCapabilities(): Promise<bigint | undefined> {
  try {
    const hex = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))?.[1];
    return hex === undefined ? undefined : BigInt(`0x${hex}`);
  } catch {
    return undefined;
  }
}


/** What is missing when subscribing fails, and how to fix it, in one line. */
function subscribeFailure(err: unknown): RuntimeFailure {
  const code = (err as { code?: string }).code;
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'EPERM' || code === 'EACCES') {
    return new RuntimeFailure(`the process connector needs CAP_NET_ADMIN (${detail}): ${grantingHint()}`);
  }
  if (code === 'EPROTONOSUPPORT' || code === 'EAFNOSUPPORT' || code === 'ENOENT') {
    return new RuntimeFailure(
      `this kernel has no netlink process connector (${detail}): it needs CONFIG_CONNECTOR=y and CONFIG_PROC_EVENTS=y`,
    );
  }
  return new RuntimeFailure(`cannot subscribe to the kernel's process connector: ${detail}`);
}

/**
 * The sensor: the addon's process-connector records → the process table → one ECS process event per
 * exec, in kernel order, in batches. See ARCHITECTURE.md sections 1 and 3.
 */
export class Sensor {
  private readonly table: ProcessTable;
  private connector: ProcessConnector | undefined;
  private names: UserGroupNames | undefined;
  private identity: HostIdentity | undefined;
  private clock: Clock | undefined;
  private clockTimer: NodeJS.Timeout | undefined;
  private onEvents: ((events: ProcessEvent[]) => void) | undefined;
  /** Batches that arrived before the /proc seed finished, handled right after it. */
  private early: ConnectorRecord[][] | undefined = [];
  /** The tail of event delivery: batches waiting for NSS names keep their order behind it. */
  private delivering: Promise<void> | undefined;
  private subscribed: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private recovery: { running: boolean; again: boolean } = { running: false, again: false };
  private stopped = false;
  private readonly counters = { events: 0, forkEvents: 0, endEvents: 0, recovered: 0, recoveryScans: 0, callbackErrors: 0 };
  private finalConnectorStats: ConnectorStats | undefined;
  private readonly containers = new ContainerCache();
  private readonly hasher: Hasher | undefined;
  /** Hashes the events being built wait for; handed to deliver() with them. */
  private hashWaits: Promise<void>[] = [];
  /** event.sequence of the last event emitted. */
  private sequence = 0;
  /** Whether fork and end records become events; otherwise they only keep the table. */
  private lifecycle = { fork: false, end: false };

  constructor(private readonly options: SensorOptions) {
    this.table = new ProcessTable(options.maxProcessTableEntries);
    const algorithms = [...new Set(options.hashes ?? [])];
    if (algorithms.length > 0) {
      this.hasher = new Hasher({
        algorithms,
        maxFileBytes: options.maxHashFileBytes ?? DEFAULT_MAX_HASH_FILE_BYTES,
        waitMs: options.hashWaitMs ?? DEFAULT_HASH_WAIT_MS,
        logger: options.logger,
      });
    }
    this.produce(options.events ?? ['exec']);
  }

  /** Which process events to produce from now on (the agent widens or narrows it when rules are reloaded). */
  produce(actions: readonly ProcessAction[]): void {
    this.lifecycle = { fork: actions.includes('fork'), end: actions.includes('end') };
  }

  /** The process events produced now. */
  producing(): ProcessAction[] {
    return ['exec', ...(this.lifecycle.fork ? ['fork' as const] : []), ...(this.lifecycle.end ? ['end' as const] : [])];
  }

  /** What snapshots read beyond the defaults: configured environment variables, the exec'd file's identity for hashes. */
  private get snapshotExtras(): { envVarNames: string[]; exeFileKey: boolean } {
    return { envVarNames: this.options.envVars ?? [], exeFileKey: this.hasher !== undefined };
  }

  async start(onEvents: (events: ProcessEvent[]) => void): Promise<void> {
    if (this.connector !== undefined || this.stopped) throw new Error('Sensor.start: already started');
    this.onEvents = onEvents;
    const addon = native();
    // Recent kernels let anyone listen to the connector, but without privilege /proc hides other users'
    // programs, so every event would be partial: refuse rather than report half of what happens.
    const capabilities = await effectiveCapabilities();
    if (capabilities !== undefined && ((capabilities >> CAP_NET_ADMIN) & 1n) === 0n) {
      throw new RuntimeFailure(`the process connector needs CAP_NET_ADMIN, which this process does not have: ${grantingHint()}`);
    }
    if (capabilities !== undefined && ((capabilities >> CAP_SYS_PTRACE) & 1n) === 0n) {
      this.options.logger.warn('without CAP_SYS_PTRACE, /proc hides the program, arguments and directory of other users\' processes: their events will be partial');
    }
    this.identity = await readHostIdentity();
    this.table.entityNamespace = this.identity.entityNamespace;
    const offsets = addon.clockOffsets();
    this.clock = new Clock(offsets.realtimeMinusMonotonicMs, offsets.realtimeMinusBoottimeMs, offsets.nanosPerTick);
    const ack = new Promise<void>((resolve, reject) => {
      this.subscribed = { resolve, reject };
    });
    try {
      this.connector = new addon.ProcessConnector(
        {
          socketBufferBytes: this.options.socketBufferBytes,
          maxArgsBytes: this.options.maxArgsBytes,
          ...(this.options.procRoot ? { procRoot: this.options.procRoot } : {}),
          legacyKernel: this.options.legacyKernel ?? process.env.EXECSENTRY_TEST_LEGACY_KERNEL === '1',
          ...this.snapshotExtras,
        },
        (packed, attachments) => this.onBatch(decodeRecords(packed, attachments)),
      );
    } catch (err) {
      throw subscribeFailure(err);
    }
    this.names = new UserGroupNames(addon.lookUpUsers, addon.lookUpGroupNames);
    // Time steps (NTP, an administrator) move CLOCK_REALTIME but not the kernel's clocks.
    this.clockTimer = setInterval(() => {
      const now = addon.clockOffsets();
      if (this.clock) {
        this.clock.realtimeMinusMonotonicMs = now.realtimeMinusMonotonicMs;
        this.clock.realtimeMinusBoottimeMs = now.realtimeMinusBoottimeMs;
      }
      this.refreshAddresses();
    }, CLOCK_RESYNC_MS);
    this.clockTimer.unref();

    const timeout = new Promise<void>((resolve) => setTimeout(resolve, SUBSCRIBE_TIMEOUT_MS).unref());
    try {
      await Promise.race([ack, timeout]);
      const seed = await addon.scanProcesses(this.procRoot, this.options.maxArgsBytes);
      this.seed(seed);
    } catch (err) {
      await this.stop();
      throw err instanceof RuntimeFailure ? err : subscribeFailure(err);
    }
    const early = this.early ?? [];
    this.early = undefined;
    for (const records of early) this.handle(records);
    const reader = this.connector.reader();
    this.options.logger.info(
      { processes: this.table.size, readerPriority: reader.priority, subscription: reader.subscription, events: this.producing() },
      `sensor started; reader thread at ${reader.priority}`,
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.clockTimer) clearInterval(this.clockTimer);
    if (this.connector) {
      this.connector.stop();
      this.finalConnectorStats = this.connector.stats(); // final: the reader thread has ended
    }
    this.names?.close();
    // Events already built are delivered before stop() resolves: those waiting for their hash get it first,
    // or go without once each has waited sensor.hashWaitMs (its own timer, started when it was built).
    if (this.hasher !== undefined && this.delivering !== undefined) {
      const waitMs = this.options.hashWaitMs ?? DEFAULT_HASH_WAIT_MS;
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([this.delivering, new Promise<void>((resolve) => (bound = setTimeout(resolve, waitMs)))]);
      clearTimeout(bound);
    }
    await this.hasher?.close();
    await this.delivering;
  }

  stats(): SensorStats {
    const native = this.finalConnectorStats ?? this.connector?.stats();
    return {
      events: this.counters.events,
      forkEvents: this.counters.forkEvents,
      endEvents: this.counters.endEvents,
      lost: native?.seqGaps ?? 0,
      overruns: native?.overruns ?? 0,
      seqGaps: native?.seqGaps ?? 0,
      recovered: this.counters.recovered,
      recoveryScans: this.counters.recoveryScans,
      partial: native?.partial ?? 0,
      exitedBeforeSnapshot: native?.exitedBeforeSnapshot ?? 0,
      denied: native?.denied ?? 0,
      socketEndsSkipped: native?.socketEndsSkipped ?? 0,
      pidReused: native?.pidReused ?? 0,
      superseded: native?.superseded ?? 0,
      tableSize: this.table.size,
      tableEvicted: this.table.evicted,
      leadersRetained: this.table.retainedLeaders,
      leadersEvicted: this.table.leadersEvicted,
      nameLookUps: this.names?.lookUps ?? 0,
      received: native?.received ?? 0,
      forks: native?.forks ?? 0,
      exits: native?.exits ?? 0,
      backpressureWaits: native?.backpressureWaits ?? 0,
      sustainedHandOvers: native?.sustainedHandOvers ?? 0,
      readerWakeups: native?.wakeups ?? 0,
      lateExecs: native?.lateExecs ?? 0,
      socketBufferBytes: native?.socketBufferBytes ?? 0,
      callbackErrors: this.counters.callbackErrors,
      ...(this.hasher?.stats() ?? NO_HASHING),
    };
  }

  /** A new host object: the events already emitted keep the one they were built with. */
  private refreshAddresses(): void {
    if (this.identity === undefined) return;
    const { ip: _ip, mac: _mac, ...host } = this.identity.host;
    this.identity = { ...this.identity, host: markShared({ ...host, ...networkAddresses() }) };
  }

  private get procRoot(): string {
    return this.options.procRoot ?? '/proc';
  }

  private onBatch(records: ConnectorRecord[]): void {
    if (this.stopped) return;
    for (const record of records) {
      if (record.kind === RecordKind.subscribed) {
        if (record.code === 0) this.subscribed?.resolve();
        else this.subscribed?.reject(subscribeFailure(Object.assign(new Error(`PROC_CN_MCAST_LISTEN: errno ${record.code}`), { code: record.code === 1 ? 'EPERM' : undefined })));
      }
    }
    if (this.early !== undefined) {
      this.early.push(records);
      return;
    }
    this.handle(records);
  }

  /** Start-up: every process alive now, so parents exec'd before we started are known. */
  private seed(snapshots: ProcSnapshot[]): void {
    const clock = this.clock as Clock;
    const entries: [ProcessEntry, number | undefined][] = [];
    for (const snapshot of snapshots) {
      if (snapshot.startTicks === undefined || this.table.get(snapshot.pid) !== undefined) continue;
      const entry = entryFromSnapshot({ ...snapshot, startTicks: snapshot.startTicks }, clock);
      this.table.set(entry);
      entries.push([entry, snapshot.ppid]);
    }
    for (const [entry, ppid] of entries) this.linkParent(entry, ppid);
    // Entry leaders are inherited, so each parent's comes first (quark walks its tree from the roots down too).
    const ppids = new Map(entries);
    const decided = new Set<ProcessEntry>();
    const decide = (entry: ProcessEntry): void => {
      const chain: ProcessEntry[] = [];
      for (let at: ProcessEntry | undefined = entry; at !== undefined && !decided.has(at); at = at.parent) {
        decided.add(at);
        chain.push(at);
      }
      for (let i = chain.length - 1; i >= 0; i--) this.decideEntryLeader(chain[i] as ProcessEntry, ppids.get(chain[i] as ProcessEntry), undefined);
    };
    for (const [entry] of entries) decide(entry);
  }

  private decideEntryLeader(entry: ProcessEntry, ppid: number | undefined, inherited: ProcessEntry | undefined): void {
    decideEntryLeader(entry, entry.parent, ppid, inherited, this.table.entityNamespace);
    if (entry.entryMeta?.type === 'sshd') {
      const ip = sshSourceIp(this.procRoot, entry);
      if (ip !== undefined) entry.entryMeta.sourceIp = ip;
    }
  }

  /** The parent from /proc's ppid, when that process is older than the child (pid reuse otherwise). */
  private linkParent(entry: ProcessEntry, ppid: number | undefined): void {
    if (ppid === undefined || ppid <= 0) return;
    const parent = this.table.get(ppid);
    if (parent === undefined) return;
    if (parent.startTicks !== undefined && entry.startTicks !== undefined && parent.startTicks > entry.startTicks) return;
    entry.parent = parent;
  }

  private handle(records: ConnectorRecord[]): void {
    const clock = this.clock as Clock;
    const identity = this.identity as HostIdentity;
    const created = new Date().toISOString();
    let events: ProcessEvent[] | undefined;
    for (const record of records) {
      switch (record.kind) {
        case RecordKind.exec: {
          (events ??= []).push(this.onExec(record.pid, record.snapshot, clock.fromMonotonicNs(record.timeNs), created, identity));
          break;
        }
        case RecordKind.fork: {
          const child = forkedEntry(record, this.table.get(record.parentPid), clock.fromStartTicks(record.startTicks));
          this.table.set(child);
          if (this.lifecycle.fork && child.kernelThread !== true) {
            (events ??= []).push(buildForkEvent(child, { identity, timestamp: clock.fromMonotonicNs(record.timeNs), created }));
            this.counters.forkEvents++;
          }
          break;
        }
        case RecordKind.exit:
          if (this.lifecycle.end) {
            // built before the table lets go of it: an exited entry drops its parent link
            const entry = this.table.get(record.pid);
            if (entry?.kernelThread !== true) {
              (events ??= []).push(buildEndEvent(record.pid, entry, record.exitStatus, { identity, timestamp: clock.fromMonotonicNs(record.timeNs), created }));
              this.counters.endEvents++;
            }
          }
          this.table.exit(record.pid);
          break;
        case RecordKind.uidChange:
        case RecordKind.gidChange: {
          const entry = this.table.get(record.pid);
          if (entry === undefined) break;
          // The record has both: a setuid() that changes the real id too (a login's session process
          // dropping root) would otherwise leave it stale in every child's process.parent.real_user.
          if (record.kind === RecordKind.uidChange) {
            entry.uid = record.effectiveId;
            entry.ruid = record.realId;
          } else {
            entry.gid = record.effectiveId;
            entry.rgid = record.realId;
          }
          if (record.groups !== undefined) entry.groups = record.groups;
          // Its fields as a parent or leader are rebuilt with the new id.
          entry.ecs = undefined;
          break;
        }
        case RecordKind.overrun:
          this.options.logger.warn('kernel process events were lost (socket buffer overrun); rescanning /proc');
          this.recover();
          break;
        case RecordKind.sessionChange: {
          // A process that calls setsid() without exec'ing (a daemon's middle fork) leads its session and
          // group from now on, as its members' leader fields and its retention at exit need to know.
          const entry = this.table.get(record.pid);
          if (entry === undefined) break;
          entry.sid = record.pid;
          entry.pgid = record.pid;
          entry.ttyNr = 0;
          entry.interactive = false;
          entry.ecs = undefined;
          break;
        }
        case RecordKind.readError:
          this.options.logger.error({ errno: record.code }, 'reading the process connector failed; no more process events');
          break;
        default:
          break;
      }
    }
    if (events !== undefined) this.deliver(events);
  }

  private onExec(pid: number, snapshot: ProcSnapshot, timestamp: string, created: string, identity: HostIdentity, recovered = false): ProcessEvent {
    const clock = this.clock as Clock;
    // The entry made at fork time (same pid and start time) knows who forked it, even if that parent has
    // exited since and /proc now names a reaper as ppid.
    // Records arrive in kernel order, so the live entry of this pid is this process (an exit would have
    // removed an older one) unless both start times are known and differ (records were lost).
    const known = snapshot.reused ? undefined : this.table.get(pid, snapshot.startTicks);
    let entry: ProcessEntry | undefined;
    if (snapshot.startTicks !== undefined) {
      entry = entryFromSnapshot({ ...snapshot, startTicks: snapshot.startTicks }, clock);
      if (known !== undefined) {
        // An entity id already handed out (as a child's parent.entity_id) stays this process's id, even if
        // it was computed from a fork-time start one tick off.
        if (known.startTicks !== undefined && known.entityId !== undefined) entry.entityId = known.entityId;
        // and one not yet handed out is the exact one from now on, also for children forked before this
        // exec, whose parent link still leads to the fork-time entry
        else if (known.startTicks !== undefined) known.entityId = entityIdOf(entry, identity.entityNamespace);
        copyDefined(known, entry, ['parent', 'ancestry']);
        const previous = previousAfterExec(known);
        if (previous !== undefined) entry.previous = previous;
      } else {
        this.linkParent(entry, snapshot.ppid);
      }
      this.table.set(entry);
      this.decideEntryLeader(entry, snapshot.ppid, known?.entryLeader);
    } else if (known !== undefined) {
      // Snapshot gone (the process exited first): the identity from the fork record stays; the program is unknown.
      entry = { pid, exited: known.exited };
      copyDefined(known, entry, ['startTicks', 'start', 'entityId', 'parent', 'ancestry', 'entryLeader']);
    }
    // A parent that exec'd after forking this process is shown as it is now, not as the image it forked with.
    const forkedBy = entry?.parent;
    const parent = forkedBy === undefined ? undefined : (this.table.get(forkedBy.pid, forkedBy.startTicks) ?? forkedBy);
    const event = buildExecEvent(pid, snapshot, entry, parent, parent?.pid ?? snapshot.ppid, { identity, timestamp, created, recovered, table: this.table });
    this.addSnapshotFields(event, snapshot);
    return event;
  }

  /** env_vars, container and hashes: what the snapshot read for them. */
  private addSnapshotFields(event: ProcessEvent, snapshot: ProcSnapshot): void {
    if (snapshot.envVars !== undefined) event.process.env_vars = snapshot.envVars;
    if (snapshot.envVarsOversized !== undefined) (event.execsentry ??= {}).env_vars_oversized = snapshot.envVarsOversized;
    if (snapshot.envVarsTruncated === true) (event.execsentry ??= {}).env_vars_truncated = true;
    const container = snapshot.cgroup === undefined ? undefined : this.containers.of(snapshot.cgroup);
    if (container !== undefined) event.container = container;
    const hashed = this.hasher?.fill(event, snapshot);
    if (hashed !== undefined) this.hashWaits.push(hashed);
  }

  /** Emits in order; a batch naming an uncached uid/gid waits for NSS (and so do the batches behind it). */
  private deliver(events: ProcessEvent[]): void {
    const names = this.names as UserGroupNames;
    for (const event of events) event.event.sequence = ++this.sequence;
    const hashWaits = this.hashWaits;
    this.hashWaits = [];
    const uids = new Set<number>();
    const gids = new Set<number>();
    for (const event of events) collectIds(event, uids, gids);
    const emit = () => {
      const now = Date.now();
      const userName = (uid: number) => names.userName(uid, now);
      const groupName = (gid: number) => names.groupName(gid, now);
      const isSystemAccount = (uid: number) => names.isSystemAccount(uid, now);
      for (const event of events) {
        fillNames(event, userName, groupName);
        markSystemAccount(event, isSystemAccount);
      }
      this.counters.events += events.length;
      try {
        this.onEvents?.(events);
      } catch (err) {
        this.counters.callbackErrors++;
        this.options.logger.error({ err }, 'the process events handler failed');
      }
    };
    const pendingNames = names.resolve(uids, gids, Date.now());
    // Each hash wait is bounded (sensor.hashWaitMs), so a batch is never held longer than that by hashing.
    const pendingHashes = hashWaits.length > 0 ? Promise.all(hashWaits) : undefined;
    if (this.delivering === undefined && pendingNames === undefined && pendingHashes === undefined) {
      emit();
      return;
    }
    const tail: Promise<void> = (this.delivering ?? Promise.resolve()).then(() => Promise.all([pendingNames, pendingHashes])).then(emit);
    this.delivering = tail;
    void tail.finally(() => {
      if (this.delivering === tail) this.delivering = undefined;
    });
  }

  /**
   * After an overrun: every process not in the table (or running another program than the table says)
   * started or exec'd while records were lost. Each gets an exec event marked execsentry.recovered, so a
   * long-lived shell started during the overrun is still seen. Its @timestamp is the rescan's time (the
   * exec time was lost with the record).
   */
  private recover(): void {
    if (this.recovery.running) {
      this.recovery.again = true;
      return;
    }
    this.recovery.running = true;
    this.counters.recoveryScans++;
    native()
      .scanProcesses(this.procRoot, this.options.maxArgsBytes, undefined, this.snapshotExtras)
      .then((snapshots) => {
        if (this.stopped) return;
        const identity = this.identity as HostIdentity;
        const now = new Date().toISOString();
        const events: ProcessEvent[] = [];
        for (const snapshot of snapshots) {
          if (snapshot.startTicks === undefined || snapshot.kernelThread) continue;
          const known = this.table.get(snapshot.pid, snapshot.startTicks);
          if (known !== undefined && sameImage(known, snapshot)) continue;
          events.push(this.onExec(snapshot.pid, snapshot, now, now, identity, true));
        }
        this.counters.recovered += events.length;
        if (events.length > 0) this.deliver(events);
      })
      .catch((err: unknown) => this.options.logger.error({ err }, 'the /proc rescan after an overrun failed'))
      .finally(() => {
        this.recovery.running = false;
        if (this.recovery.again && !this.stopped) {
          this.recovery.again = false;
          this.recover();
        }
      });
  }
}
