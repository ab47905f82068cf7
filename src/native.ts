import { createRequire } from 'node:module';

/**
 * The typed face of the C++ addon (build/Release/execsentry.node). Every native function is declared here
 * and nowhere else; callers import from this module, never load the addon themselves.
 */
export interface NativeAddon {
  /** flock(fd, LOCK_EX|LOCK_NB): true when taken, false when another holder has it. */
  tryLockExclusive(fd: number): boolean;
  /** One sd_notify datagram to `socketPath` ('@…' = abstract namespace). Throws on failure. */
  sdNotify(socketPath: string, message: string): boolean;
  /**
   * Datagrams to a unix socket (`/dev/log`; '@…' = abstract namespace), in order, without blocking: returns
   * how many were sent before the receiver's queue was full (the caller retries the rest later). Throws an
   * Error with `code` (EMSGSIZE, ENOENT, ECONNREFUSED, ESEND) and `sent` for other failures.
   */
  sendUnixDatagrams(socketPath: string, messages: Buffer[]): number;
  /**
   * Subscribes to the kernel's netlink process connector (throws an Error with `code` EPERM,
   * EPROTONOSUPPORT, … and `syscall` when it cannot) and delivers decoded records in batches, from a reader
   * thread, to `onBatch` on the JS thread, packed: the records' numbers and the JSON array of what they
   * carry beyond numbers (decodeRecords turns both into ConnectorRecords). Exec records carry a /proc snapshot taken
   * on that thread.
   */
  ProcessConnector: new (options: ProcessConnectorOptions, onBatch: (records: Float64Array, attachmentsJson: string) => void) => ProcessConnector;
  /** Snapshots of every process of `procRoot` (or of `pids`), taken on a worker thread. */
  scanProcesses(procRoot: string, maxArgsBytes: number, pids?: number[], extras?: SnapshotExtras): Promise<ProcSnapshot[]>;
  /**
   * The pidfd_getfd copies of standard-stream sockets, process-wide: `skipped`, streams left without their
   * ends because the thread that closes copies (off the reader thread: a lingering socket can hold a close
   * for seconds) was full or stuck; `slowCloses`, closes that took it over 100 ms.
   */
  socketCopyStats(): { skipped: number; slowCloses: number };
  /** CLOCK_REALTIME minus CLOCK_MONOTONIC / CLOCK_BOOTTIME (ms), and the length of a /proc clock tick. */
  clockOffsets(): ClockOffsets;
  /** NSS names (getpwuid_r) of each uid, null when unknown; on a worker thread (NSS may block). */
  lookUpUserNames(uids: number[]): Promise<(string | null)[]>;
  /** NSS passwd entries (getpwuid_r) of each uid: name and login shell (pw_shell); null when unknown; on a worker thread. */
  lookUpUsers(uids: number[]): Promise<(UserEntry | null)[]>;
  /** NSS names (getgrgid_r) of each gid, null when unknown; on a worker thread. */
  lookUpGroupNames(gids: number[]): Promise<(string | null)[]>;
}

/** What a snapshot reads beyond the defaults, when configured. */
export interface SnapshotExtras {
  /** Environment variables to capture (process.env_vars); /proc/PID/environ is read only when there are some. */
  envVarNames?: string[];
  /** stat() the exec'd file through /proc/PID/exe for the hash cache (ProcSnapshot.exeFileKey). */
  exeFileKey?: boolean;
  /**
   * Never copy a socket with pidfd_getfd, as on a kernel before 5.6 (tests only): socket streams keep their
   * protocol, not their ends. (A kernel answering ENOSYS is remembered after the first snapshot.)
   */
  withoutPidfdGetfd?: boolean;
}

export interface UserEntry {
  name: string;
  /** The passwd entry's shell field as NSS gives it ('' = /bin/sh, passwd(5)). */
  shell: string;
}

export interface ProcessConnectorOptions extends SnapshotExtras {
  socketBufferBytes: number;
  maxArgsBytes: number;
  /** Where /proc is (tests only). */
  procRoot?: string;
  /**
   * Listen as on a kernel before 6.6/6.13 (one socket with a BPF filter, ids from /proc/PID/status) and 5.6
   * (no pidfd_getfd: no socket ends), even on a newer one (tests only: the older kernels' path must keep working).
   */
  legacyKernel?: boolean;
}

export interface ProcessConnector {
  /** Unsubscribes, wakes and joins the reader thread. Idempotent. */
  stop(): void;
  stats(): ConnectorStats;
  /** How the reader thread runs, for the start-up log. */
  reader(): ReaderInfo;
}

export interface ReaderInfo {
  /** 'SCHED_FIFO 1', 'nice -10' or 'normal': what the scheduler allowed the reader thread. */
  priority: string;
  /** Filtered subscriptions (Linux 6.6+) or one socket behind a BPF filter. */
  subscription: string;
}

export interface ConnectorStats {
  /** Process records received (acks excluded). */
  received: number;
  execs: number;
  forks: number;
  exits: number;
  /** Thread creations and exits, skipped. */
  threadEvents: number;
  idChanges: number;
  /** recv() reported ENOBUFS: the kernel dropped records because the socket buffer was full. */
  overruns: number;
  /** Records missing from the per-CPU sequence numbers. */
  seqGaps: number;
  /** Exec snapshots that could not be completed (the process exited first, or a read was refused). */
  partial: number;
  /** Exec snapshots that found the process leaving (PF_EXITING, zombie) or already reaped. */
  exitedBeforeSnapshot: number;
  /** Exec snapshots with a read refused (EACCES/EPERM). */
  denied: number;
  /** Snapshots refused because the pid already belonged to a newer process. */
  pidReused: number;
  /** Exec snapshots skipped because the same pid exec'd again within the batch. */
  superseded: number;
  batches: number;
  /** Hand-overs made in a sustained flow of records, with the widened window (native/connector.cc kSustainedCoalesceNs). */
  sustainedHandOvers: number;
  /** Times the reader paused because JavaScript had not consumed its batches yet. */
  backpressureWaits: number;
  /** Times the reader thread woke from poll(). */
  wakeups: number;
  /** Execs found by the 50 ms drain timer, not announced by the exec doorbell (Linux 6.6+; a doorbell overflow). */
  lateExecs: number;
  /** The receive buffer the kernel granted. */
  socketBufferBytes: number;
  /** Socket streams reported without their ends: the closer of pidfd_getfd copies was full or stuck (process-wide). */
  socketEndsSkipped: number;
}

/** Numbers of ConnectorRecord.kind (native/connector.cc RecordKind). */
export const RecordKind = {
  exec: 1,
  fork: 2,
  exit: 3,
  uidChange: 4,
  gidChange: 5,
  overrun: 6,
  subscribed: 7,
  readError: 8,
  sessionChange: 9,
} as const;

/** Only what the sensor uses of each kernel record (src/sensor/index.ts). */
export type ConnectorRecord =
  | { kind: typeof RecordKind.exec; timeNs: number; pid: number; snapshot: ProcSnapshot }
  /** startTicks: the child's start time on /proc's clock, from the record's time (may differ by one tick). */
  | { kind: typeof RecordKind.fork; timeNs: number; pid: number; parentPid: number; startTicks: number }
  /**
   * exitStatus: the task's exit_code as the kernel keeps it, a wait(2) status: the code given to
   * exit_group() shifted left by 8, or the killing signal (| 0x80 when it dumped core). Threads never get here.
   */
  | { kind: typeof RecordKind.exit; timeNs: number; pid: number; exitStatus: number }
  /**
   * groups: the supplemental groups read right after the change (setgroups() has no record of its own);
   * absent when the process was gone by then, or changed its ids again (or exec'd) later in the same batch.
   */
  | { kind: typeof RecordKind.uidChange | typeof RecordKind.gidChange; pid: number; effectiveId: number; realId: number; groups?: number[] }
  /** setsid(): the process now leads a session and a process group of its own, with no controlling terminal. */
  | { kind: typeof RecordKind.sessionChange; pid: number }
  | { kind: typeof RecordKind.overrun }
  | { kind: typeof RecordKind.subscribed | typeof RecordKind.readError; code: number };

/** Numbers per record in the packed batch (native/connector.cc kRecordStride and PackRecord). */
export const RECORD_STRIDE = 6;

/** The addon's JSON array of snapshots (native/procfs_js.cc SnapshotJson): raw bytes come as base64. */
export function parseSnapshots(json: string): ProcSnapshot[] {
  return (JSON.parse(json) as WireSnapshot[]).map(fromWire);
}

function fromWire(snapshot: WireSnapshot): ProcSnapshot {
  if (snapshot.executableBytes !== undefined) snapshot.executableBytes = Buffer.from(snapshot.executableBytes as string, 'base64');
  if (snapshot.cwdBytes !== undefined) snapshot.cwdBytes = Buffer.from(snapshot.cwdBytes as string, 'base64');
  if (snapshot.argsBytes !== undefined) snapshot.argsBytes = (snapshot.argsBytes as string[]).map((bytes) => Buffer.from(bytes, 'base64'));
  return snapshot as ProcSnapshot;
}

/** A snapshot as JSON carries it, before fromWire turns its base64 fields into Buffers. */
type WireSnapshot = Omit<ProcSnapshot, 'executableBytes' | 'cwdBytes' | 'argsBytes'> & {
  executableBytes?: string | Buffer;
  cwdBytes?: string | Buffer;
  argsBytes?: string[] | Buffer[];
};

/**
 * A batch as the addon hands it over, as records: RECORD_STRIDE numbers each (kind, pid, timeNs, two per
 * kind, the index of its attachment or -1), and the JSON array of attachments: an exec's snapshot, a
 * uid/gid change's supplemental groups. Objects made here cost a fraction of what the addon paid to make
 * them (a Node-API call per property).
 */
export function decodeRecords(packed: Float64Array, attachmentsJson: string): ConnectorRecord[] {
  const attachments = JSON.parse(attachmentsJson) as (WireSnapshot | number[])[];
  const records: ConnectorRecord[] = [];
  for (let at = 0; at + RECORD_STRIDE <= packed.length; at += RECORD_STRIDE) {
    const kind = packed[at] as number;
    const pid = packed[at + 1] as number;
    const timeNs = packed[at + 2] as number;
    const first = packed[at + 3] as number;
    const second = packed[at + 4] as number;
    const attachment = attachments[packed[at + 5] as number];
    switch (kind) {
      case RecordKind.exec:
        // The addon snapshots every exec; one without would still be an exec, of a program unknown.
        records.push({ kind, timeNs, pid, snapshot: attachment !== undefined && !Array.isArray(attachment) ? fromWire(attachment) : { pid, partial: true } });
        break;
      case RecordKind.fork:
        records.push({ kind, timeNs, pid, parentPid: first, startTicks: second });
        break;
      case RecordKind.exit:
        records.push({ kind, timeNs, pid, exitStatus: first });
        break;
      case RecordKind.uidChange:
      case RecordKind.gidChange:
        records.push({ kind, pid, effectiveId: first, realId: second, ...(Array.isArray(attachment) ? { groups: attachment } : {}) });
        break;
      case RecordKind.sessionChange:
        records.push({ kind, pid });
        break;
      case RecordKind.overrun:
        records.push({ kind });
        break;
      case RecordKind.subscribed:
      case RecordKind.readError:
        records.push({ kind, code: pid });
        break;
      default:
        break;
    }
  }
  return records;
}

/**
 * One process as /proc showed it. Every field is optional: what could not be read is absent (`partial`
 * says so), never guessed. `reused`: the pid already held a newer process, so nothing of it is here.
 */
export interface ProcSnapshot {
  pid: number;
  partial: boolean;
  /** The process was exiting (PF_EXITING), a zombie, or already reaped when it was read. */
  exited?: boolean;
  /** Some read was refused (no CAP_SYS_PTRACE over the process). */
  denied?: boolean;
  reused?: boolean;
  kernelThread?: boolean;
  /** The kernel's comm (stat field 2): the exec'd file's base name cut at 15 bytes, unless the process renamed itself. */
  comm?: string;
  /** /proc/<pid>/stat field 22: clock ticks since boot. */
  startTicks?: number;
  ppid?: number;
  pgid?: number;
  sid?: number;
  ttyNr?: number;
  /** real, effective, saved */
  uids?: [number, number, number];
  gids?: [number, number, number];
  /** Supplemental group ids (the Groups: line of /proc/<pid>/status). */
  groups?: number[];
  /** CapEff / CapPrm as the kernel prints them (hex). */
  capEff?: string;
  capPrm?: string;
  executable?: string;
  cwd?: string;
  /** Some byte of executable or cwd was not UTF-8 and was replaced by U+FFFD. */
  pathsLossy?: boolean;
  /** The original bytes of executable / cwd, only when that path was not UTF-8. */
  executableBytes?: Buffer;
  cwdBytes?: Buffer;
  args?: string[];
  argsTruncated?: boolean;
  argsLossy?: boolean;
  /** With argsLossy: the original bytes of every argument in args (as kept under the cap). */
  argsBytes?: Buffer[];
  /** The environ entries ("NAME=value") of the configured names, every binding in environ order. */
  envVars?: string[];
  /** Configured names whose value was over 1023 bytes (left out of envVars, as Elastic Defend does). */
  envVarsOversized?: string[];
  /** environ was longer than the 40 KiB read (native/procfs.cc kMaxEnvironBytes): a configured name beyond it is not seen. */
  envVarsTruncated?: boolean;
  /** /proc/PID/cgroup as read. */
  cgroup?: string;
  /** The exec'd file's identity, "dev:ino:size:mtimeNs:ctimeNs" in hex (when exeFileKey was asked for). */
  exeFileKey?: string;
  exeFileSize?: number;
  /**
   * fd 0, 1 and 2 as their /proc/<pid>/fd links show them; null = unknown (unreadable, or the process was
   * leaving, so a missing link is not taken for a closed fd). Absent for kernel threads and when no stream
   * could be read.
   */
  stdio?: [StdStreamSnapshot | null, StdStreamSnapshot | null, StdStreamSnapshot | null];
}

/** One standard stream of a process, as native/procfs.cc ReadStdStream reads it. */
export interface StdStreamSnapshot {
  /** 'other': an anonymous inode (eventfd, epoll, …), a directory, a block device. */
  type: 'closed' | 'pipe' | 'socket' | 'file' | 'character_device' | 'other';
  /** The fd link's text for a file or a character device other than /dev/null, as UTF-8 (other bytes replaced by U+FFFD). */
  path?: string;
  /** character_device: [major, minor]. */
  device?: [number, number];
  /** socket: the protocol sockfs names it by ('TCP', 'TCPv6', 'UDP', 'UDPv6', 'UNIX-STREAM', 'UNIX', 'NETLINK', …). */
  protocol?: string;
  /** IP sockets: both ends, from a pidfd_getfd copy (Linux 5.6+, ptrace access; remote only when connected). */
  localIp?: string;
  localPort?: number;
  remoteIp?: string;
  remotePort?: number;
}

export interface ClockOffsets {
  realtimeMinusMonotonicMs: number;
  realtimeMinusBoottimeMs: number;
  nanosPerTick: number;
}

const require = createRequire(import.meta.url);

/** What the addon exports: scanProcesses answers JSON (in chunks), which native() parses. */
type AddonExports = Omit<NativeAddon, 'scanProcesses'> & {
  scanProcesses(procRoot: string, maxArgsBytes: number, pids?: number[], extras?: SnapshotExtras): Promise<string[]>;
};

let loaded: NativeAddon | undefined;

/** Loads the addon once; throws a clear error when it was not built (`npm ci` builds it). */
export function native(): NativeAddon {
  if (loaded === undefined) {
    let exports: AddonExports;
    try {
      exports = require('../build/Release/execsentry.node') as AddonExports;
    } catch (err) {
      throw new Error(
        `the native addon is not built (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); run \`npm ci\` or \`npx node-gyp rebuild\``,
      );
    }
    loaded = { ...exports, scanProcesses: (...args) => exports.scanProcesses(...args).then((chunks) => chunks.flatMap(parseSnapshots)) };
  }
  return loaded;
}
