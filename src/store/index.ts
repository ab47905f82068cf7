import { accessSync, closeSync, constants, existsSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, statSync, type Stats } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RuntimeFailure, UserFacingError, ValidationError } from '../errors.js';
import { escapeControl, type Logger } from '../log.js';
import { native } from '../native.js';
import {
  FORMAT_VERSION,
  MAX_DATE_SECONDS,
  RecordTooLargeError,
  encodeFileHeader,
  encodeHistoryRecord,
  encodeSightingRecord,
  tupleFromKey,
  tupleKey,
} from './codec.js';
import { makeDirectories, plantedFileProblem } from '../io/files.js';
import { StateDirLock, describeStateErrno, linkTarget } from './lock.js';
import { readLog, type LogReadResult } from './log-reader.js';

export { LOCK_FILE_NAME } from './lock.js';

/** The history file inside the state directory. */
export const HISTORY_FILE_NAME = 'new-terms-history.log';

export interface HistoryStoreOptions {
  stateDir: string;
  /** Tuples kept per history; beyond it the least recently seen are evicted (counted). */
  maxTuplesPerRule: number;
  logger: Logger;
  /** Inspect only: nothing is written, damaged files stay where they are (for `store list`). */
  readOnly?: boolean;
  /**
   * Use a state directory that group or others can write to, or that another user owns, with a warning
   * (refused otherwise: whoever can create names in it can plant a link where the lock or history goes).
   */
  allowInsecureStateDir?: boolean;
  /**
   * How far after the machine clock a sighting may be dated. A later one, recorded or found on disk when
   * opening for writing, is cut back to the machine clock plus this: dated in the future, it would keep its
   * tuple silent until that date plus the window. Infinity for replays, whose clock is the events' own.
   */
  maxFutureMs?: number;
  /** How long last-seen refreshes (touch) wait in memory before being written; the crash-loss bound. */
  touchFlushIntervalMs?: number;
  /** Scheduled compaction (expiry by window) interval. */
  compactionIntervalMs?: number;
  /** Compact as soon as the file is this many times its live size… */
  compactionRatio?: number;
  /** …and at least this large. */
  compactionMinBytes?: number;
}

type StoreSettings = Required<
  Pick<HistoryStoreOptions, 'touchFlushIntervalMs' | 'compactionIntervalMs' | 'compactionRatio' | 'compactionMinBytes' | 'maxFutureMs'>
>;

export const STORE_DEFAULTS: Readonly<StoreSettings> = {
  touchFlushIntervalMs: 60_000,
  compactionIntervalMs: 60 * 60_000,
  compactionRatio: 3,
  compactionMinBytes: 8 * 1024 * 1024,
  maxFutureMs: 60_000,
};

export interface HistoryStoreStats {
  /** Histories (rule id + new_terms_fields) held. */
  rules: number;
  tuples: number;
  /** Tuples evicted by maxTuplesPerRule since open (least recently seen first). */
  evicted: number;
  /** Tuples dropped by compaction because their last-seen fell out of the window. */
  expired: number;
  diskBytes: number;
  /** last-seen refreshes waiting for the next batch write. */
  pendingTouches: number;
  /** Group commits (one write + one fdatasync each) and the records they carried. */
  commits: number;
  recordsWritten: number;
  writeErrors: number;
  compactions: number;
  lastCompactionMs: number;
  /** Found at open: a torn last record dropped, damaged byte ranges skipped, sightings of lost histories. */
  tornRecordsDropped: number;
  damagedRanges: number;
  orphanSightings: number;
  /** Files set aside at open (damaged, foreign or from a newer format), by their new names. */
  setAside: string[];
}

/** One tuple as listed by `store list`. */
export interface StoredTuple {
  ruleId: string;
  fields: readonly string[];
  terms: string[];
  lastSeenMs: number;
}

export interface HistorySummary {
  ruleId: string;
  fields: readonly string[];
  windowMs: number;
  tuples: number;
}

export interface HistoryStore {
  /** One history per rule: key = ruleId + newTermsFields; changing the fields starts a fresh history. */
  history(ruleId: string, newTermsFields: readonly string[], windowMs: number): TermHistory;
  /** Writes pending last-seen refreshes and waits until everything recorded so far is fsynced. */
  flush(): Promise<void>;
  /** Rewrites the file from memory (expiry by window) into a temporary file, then renames it in place. */
  compact(): Promise<void>;
  /** Flushes, closes the file and releases the state-directory lock. Idempotent. */
  close(): Promise<void>;
  stats(): HistoryStoreStats;
  /** Every history held, also those of rules not loaded in this process. */
  summaries(): HistorySummary[];
  /** The tuples of one rule (every rule when omitted), least recently seen first. */
  tuples(ruleId?: string): Iterable<StoredTuple>;
  /**
   * Forgets a rule's whole history, or only the given tuples of it (in the order of the history's fields),
   * and compacts so the file no longer holds them. Meant for `store forget` with the agent stopped.
   */
  forget(ruleId: string, tuples?: readonly (readonly string[])[]): Promise<{ forgotten: number; notFound: string[][] }>;
}

export interface TermHistory {
  /**
   * Epoch ms of the last sighting (1-second resolution, rounded down), undefined = never seen, or dropped
   * (expired at compaction, evicted, forgotten). A value older than the window may still be returned
   * until the next compaction: the caller compares it with its own "now" (event time in replays).
   */
  lastSeen(tuple: readonly string[]): number | undefined;
  /** A tuple that alerts: memory updated at once; the promise resolves when the record is fsynced (group commit). */
  recordNew(tuple: readonly string[], atMs: number): Promise<void>;
  /** A repeated sighting: refreshes last-seen in memory; written in batches (bounded loss on crash). */
  touch(tuple: readonly string[], atMs: number): void;
}

/**
 * Times are kept in memory as seconds since this base (2020-09-13), so that they stay small integers
 * (V8 Smis, no heap number per tuple) until 2054 even with pointer compression.
 */
const BASE_SECONDS = 1_600_000_000;
/** Snapshot writes go out in chunks of about this size, yielding to the event loop in between. */
const SNAPSHOT_CHUNK_BYTES = 256 * 1024;
/** Last-seen refreshes encoded per turn of the event loop when a batch is written. */
const TOUCH_SLICE = 5_000;

interface HistoryState {
  readonly id: number;
  readonly ruleId: string;
  readonly fields: readonly string[];
  readonly arity: number;
  windowSeconds: number;
  /** tuple key → last-seen (seconds since BASE_SECONDS); Map order = least recently seen first. */
  readonly entries: Map<string, number>;
  /** Keys whose last-seen changed in memory since they were last written. */
  readonly dirty: Set<string>;
  view: TermHistory | undefined;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

function historyKey(ruleId: string, fields: readonly string[]): string {
  return tupleKey([ruleId, ...fields]);
}

function toSeconds(atMs: number): number {
  if (!(Math.abs(atMs) <= MAX_DATE_SECONDS * 1000)) throw new RangeError(`new-terms time must be an epoch ms within the JavaScript date range, got ${atMs}`);
  return Math.floor(atMs / 1000);
}

function windowSecondsOf(windowMs: number): number {
  if (!(windowMs > 0)) throw new RangeError(`new-terms history window must be positive, got ${windowMs} ms`);
  return Math.min(0xffffffff, Math.ceil(windowMs / 1000));
}

/**
 * Opens (creating when needed) the new-terms history in `stateDir`, taking the state-directory lock.
 *
 * I/O discipline: the file is read synchronously here, before the agent's hot path exists (an async read
 * would not make start-up faster, and decoding is CPU-bound anyway). After open every write is async
 * (fs/promises on libuv's thread pool): group commits, batched last-seen refreshes and compaction, which
 * writes its snapshot in 256 KiB chunks so the event loop keeps running between them.
 */
export async function openHistoryStore(options: HistoryStoreOptions): Promise<HistoryStore> {
  if (!(options.maxTuplesPerRule >= 1)) throw new ValidationError(`store.maxTuplesPerRule must be at least 1, got ${options.maxTuplesPerRule}`);
  if (options.maxFutureMs !== undefined && !(options.maxFutureMs >= 0)) throw new RangeError(`maxFutureMs must be at least 0, got ${options.maxFutureMs}`);
  const readOnly = options.readOnly === true;
  await prepareStateDir(options.stateDir, readOnly, options.allowInsecureStateDir === true, options.logger);
  const lock = StateDirLock.acquire(options.stateDir, readOnly);
  try {
    const store = new FileHistoryStore(options, lock);
    await store.load();
    return store;
  } catch (err) {
    lock.release();
    if (err instanceof UserFacingError || (err as NodeJS.ErrnoException).code === undefined) throw err;
    throw new RuntimeFailure(`opening the new-terms history in ${options.stateDir} failed: ${describeStateErrno(err)}`);
  }
}

/**
 * Takes the state directory's lock without opening the history, after the same checks as the agent (a
 * directory others could plant files in is refused): for commands that change other state in it with
 * the agent stopped (`outputs replay-dead-letter` and the spools).
 */
export async function lockStateDirectory(options: Pick<HistoryStoreOptions, 'stateDir' | 'allowInsecureStateDir' | 'logger'>): Promise<{ release(): void }> {
  await prepareStateDir(options.stateDir, false, options.allowInsecureStateDir === true, options.logger);
  return StateDirLock.acquire(options.stateDir);
}

async function prepareStateDir(stateDir: string, readOnly: boolean, allowInsecure: boolean, logger: Logger): Promise<void> {
  if (!readOnly) {
    try {
      const firstCreated = makeDirectories(stateDir, 0o700);
      // mkdir created firstCreated … stateDir; their entries (in each parent) must survive a power cut
      // like the history inside them.
      if (firstCreated !== undefined)
        for (let dir = dirname(resolve(stateDir)); ; dir = dirname(dir)) {
          syncDirectorySync(dir);
          if (dir === dirname(firstCreated) || dir === dirname(dir)) break;
        }
    } catch (err) {
      throw new RuntimeFailure(`cannot create the state directory ${stateDir}: ${describeStateErrno(err)}`);
    }
  }
  let stat: Stats;
  try {
    stat = statSync(stateDir);
  } catch (err) {
    throw new RuntimeFailure(`cannot read the state directory ${stateDir}: ${describeStateErrno(err)}`);
  }
  if (!stat.isDirectory()) throw new RuntimeFailure(`the state directory ${stateDir} is not a directory`);
  if (!readOnly) {
    try {
      accessSync(stateDir, constants.W_OK);
    } catch (err) {
      throw new RuntimeFailure(
        `the state directory ${stateDir} is not writable: ${describeStateErrno(err)}; execsentry keeps its new-terms history and lock there — point --state-dir (stateDir) at a writable directory`,
      );
    }
  }
  await refuseSharedStateDir(stateDir, stat, allowInsecure, logger);
}

/**
 * Whoever can create names in the state directory can plant a link or a file where the lock or the history
 * goes before we open it. So a directory that group or others can write to is refused (a sticky bit does
 * not help: it guards names that exist, and ours may not yet), and so is one another user owns: its owner
 * can write there whatever the mode says. Root-owned is ours when we run as root; the service user gets
 * its own directory (install and systemd's StateDirectory= create it so), and root inspecting that one is
 * told to run as that user, which also keeps the files the agent must open its own.
 */
async function refuseSharedStateDir(stateDir: string, stat: Stats, allowInsecure: boolean, logger: Logger): Promise<void> {
  const euid = process.geteuid!();
  const writableBy = (stat.mode & 0o022) === 0o022 ? 'its group and others' : (stat.mode & 0o020) !== 0 ? 'its group' : (stat.mode & 0o002) !== 0 ? 'others' : undefined;
  const ownedByOther = stat.uid !== euid;
  if (!allowInsecure && (writableBy !== undefined || ownedByOther)) {
    const [ownerName, ourName] = await userNames([stat.uid, euid]);
    const user = (uid: number, name: string | undefined): string => (name === undefined ? `uid ${uid}` : `${name} (uid ${uid})`);
    const dir = escapeControl(stateDir);
    const problems: string[] = [];
    const fixes: string[] = [];
    if (writableBy !== undefined) {
      problems.push(`writable by ${writableBy}`);
      fixes.push(`chmod 700 ${dir}`);
    }
    if (ownedByOther) {
      problems.push(`not owned by ${user(euid, ourName)}, the user execsentry runs as`);
      // Running as the owner comes first: root inspecting the service user's directory must not chown it away.
      fixes.push(`run execsentry as ${ownerName ?? `uid ${stat.uid}`}, or chown ${ourName ?? euid} ${dir}`);
    }
    throw new RuntimeFailure(
      `the state directory ${dir} (mode ${(stat.mode & 0o7777).toString(8).padStart(4, '0')}, owner ${user(stat.uid, ownerName)}) is ${problems.join(' and ')}, so someone else could plant files where execsentry keeps its lock and history; ${fixes.join('; ')}`,
    );
  }
  // An existing directory is not re-permissioned (it may be shared, like /tmp); our files are 0600 anyway.
  if ((stat.mode & 0o077) !== 0 || ownedByOther)
    logger.warn({ stateDir, mode: (stat.mode & 0o777).toString(8), owner: stat.uid }, 'state directory is accessible to other users; 0700 is recommended');
}

/** Names for a message; a uid without one (or an NSS failure) is shown as the number alone. */
async function userNames(uids: number[]): Promise<(string | undefined)[]> {
  try {
    return (await native().lookUpUserNames(uids)).map((name) => (name === null ? undefined : escapeControl(name)));
  } catch {
    return uids.map(() => undefined);
  }
}

class FileHistoryStore implements HistoryStore {
  private readonly path: string;
  private readonly readOnly: boolean;
  private readonly logger: Logger;
  private readonly cap: number;
  private readonly settings: StoreSettings;
  private readonly histories = new Map<string, HistoryState>();
  private readonly byId = new Map<number, HistoryState>();
  private nextId = 1;
  /** Newest sighting time known (epoch seconds): the clock expiry uses, never ahead of the wall clock. */
  private newestSeconds = -Infinity;
  /** Epoch seconds past which a sighting is cut back (maxFutureMs); only recomputed when one goes past it. */
  private futureLimitSeconds = -Infinity;

  private log: FileHandle | undefined;
  private logBytes = 0;
  private pending: Buffer[] = [];
  private waiters: Waiter[] = [];
  private commitQueued = false;
  /** Every file operation runs in this chain, one at a time. */
  private io: Promise<void> = Promise.resolve();
  /** While a compaction writes its snapshot: what was appended to the old file meanwhile. */
  private tail: Buffer[] | undefined;
  private compaction: Promise<void> | undefined;
  private touchFlush: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private closing: Promise<void> | undefined;

  private sightingBytes = 0;
  private sightingRecords = 0;
  private lastEvictionLog = 0;
  private readonly counters = {
    evicted: 0,
    expired: 0,
    commits: 0,
    recordsWritten: 0,
    writeErrors: 0,
    compactions: 0,
    lastCompactionMs: 0,
    tornRecordsDropped: 0,
    damagedRanges: 0,
    orphanSightings: 0,
  };
  private readonly setAside: string[] = [];

  constructor(
    options: HistoryStoreOptions,
    private readonly lock: StateDirLock,
  ) {
    this.path = join(options.stateDir, HISTORY_FILE_NAME);
    this.readOnly = options.readOnly === true;
    this.logger = options.logger;
    this.cap = options.maxTuplesPerRule;
    this.settings = {
      touchFlushIntervalMs: options.touchFlushIntervalMs ?? STORE_DEFAULTS.touchFlushIntervalMs,
      compactionIntervalMs: options.compactionIntervalMs ?? STORE_DEFAULTS.compactionIntervalMs,
      compactionRatio: options.compactionRatio ?? STORE_DEFAULTS.compactionRatio,
      compactionMinBytes: options.compactionMinBytes ?? STORE_DEFAULTS.compactionMinBytes,
      maxFutureMs: options.maxFutureMs ?? STORE_DEFAULTS.maxFutureMs,
    };
  }

  // ---- open ------------------------------------------------------------------------------------

  async load(): Promise<void> {
    await this.loadFile();
    this.startTimers();
  }

  private async loadFile(): Promise<void> {
    const file = this.path;
    let bytes: Buffer | undefined;
    let fd: number | undefined;
    try {
      // Never through a link planted under the history's name; O_NONBLOCK keeps a planted FIFO from hanging us.
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP')
        return this.startAfresh('symlink', `new-terms history ${file} is a symbolic link (to ${linkTarget(file)}); execsentry never follows links in its state directory`);
      if (code !== 'ENOENT') throw new RuntimeFailure(`cannot read the new-terms history ${file}: ${describeStateErrno(err)}`);
    }
    if (fd === undefined) {
      if (!this.readOnly) await this.writeSnapshot();
      return;
    }
    let planted: string | undefined;
    try {
      planted = plantedFileProblem(fstatSync(fd));
      if (planted === undefined) bytes = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
    if (bytes === undefined) return this.startAfresh('foreign', `new-terms history ${file} is ${planted}`);
    // A sighting dated after the machine clock (a clock set ahead then corrected, a replay of future events
    // into this directory, version 1's 2106 ceiling) would keep its tuple silent until then: cut back here,
    // and the file rewritten below so that it stays cut back at the next start.
    let cutBack = 0;
    let latestCut = -Infinity;
    const result = readLog(bytes, {
      history: (def) => this.defineLoaded(def.id, def.ruleId, def.fields, def.windowSeconds),
      sighting: (historyId, dated, key, recordBytes) => {
        const history = this.byId.get(historyId)!;
        const seconds = this.readOnly ? dated : this.bounded(dated);
        if (seconds !== dated) {
          cutBack++;
          latestCut = Math.max(latestCut, dated);
        }
        this.newestSeconds = Math.max(this.newestSeconds, seconds);
        this.put(history, key, seconds - BASE_SECONDS);
        this.sightingBytes += recordBytes;
        this.sightingRecords++;
      },
    });
    this.counters.orphanSightings = result.orphanSightings;
    this.counters.damagedRanges = result.damage.length;
    if (result.tornTail) this.counters.tornRecordsDropped = 1;
    if (cutBack > 0)
      this.logger.warn(
        { file, sightings: cutBack },
        `new-terms history ${file}: ${cutBack} sighting(s) dated after the machine clock (the latest ${new Date(latestCut * 1000).toISOString()}) cut back to ${new Date(this.futureLimitSeconds * 1000).toISOString()}`,
      );
    const size = bytes.length;
    bytes = undefined;
    await this.recover(result, size, cutBack > 0);
  }

  /**
   * Brings the file to a state new records can be appended to, reporting what was wrong. `rewrite`: memory
   * holds what the file does not (cut-back times), so it is rewritten even when it reads cleanly.
   */
  private async recover(result: LogReadResult, size: number, rewrite: boolean): Promise<void> {
    const file = this.path;
    if (result.state === 'future')
      return this.startAfresh(
        `v${result.version}`,
        `new-terms history ${file} was written by a newer execsentry (format version ${result.version}; this one reads up to ${FORMAT_VERSION})`,
        'upgrade execsentry to read it',
      );
    if (result.state === 'foreign') return this.startAfresh('foreign', `${file} is not an execsentry new-terms history (unknown header)`);
    if (result.state === 'empty') {
      this.logger.warn({ file, bytes: size }, `new-terms history ${file} holds no header (${size} bytes, interrupted creation?); starting with an empty history`);
      if (!this.readOnly) await this.writeSnapshot();
      return;
    }
    const tuples = this.tupleCount();
    if (result.damage.length > 0) {
      const first = result.damage[0]!;
      const where = result.damage.map((d) => `offset ${d.offset} (${d.bytes} bytes: ${d.reason})`).join(', ');
      const base = `new-terms history ${file} is damaged at ${where}`;
      if (this.readOnly) {
        this.logger.error({ file, offset: first.offset, damage: result.damage }, `${base}; showing the ${tuples} tuples that could be read`);
        return;
      }
      const aside = this.moveAside('corrupt');
      this.logger.error(
        { file, offset: first.offset, damage: result.damage, keptAs: aside, tuples, orphanSightings: result.orphanSightings },
        `${base}; kept it as ${aside} and started with the ${tuples} tuples that could be read`,
      );
      await this.writeSnapshot();
      return;
    }
    if (result.tornTail) {
      const { offset, bytes } = result.tornTail;
      this.logger.warn({ file, offset, bytes }, `new-terms history ${file}: dropped a torn last record at offset ${offset} (${bytes} bytes, an interrupted write)`);
    }
    if (this.readOnly) return;
    // Version 1 is migrated here, by the same crash-safe rewrite as a compaction (which also drops a torn tail).
    if (rewrite || result.version < FORMAT_VERSION) {
      await this.writeSnapshot();
      if (result.version < FORMAT_VERSION)
        this.logger.info({ file, version: result.version }, `new-terms history ${file} was in format version ${result.version}; rewrote it as version ${FORMAT_VERSION}`);
      return;
    }
    this.log = await openExisting(file);
    if (result.validBytes < size) {
      await this.log.truncate(result.validBytes);
      await this.log.sync();
    }
    this.logBytes = result.validBytes;
  }

  /**
   * A file that cannot be used is renamed aside (never read through, changed or deleted) and the store starts
   * with an empty history; inspecting (read-only) refuses instead, with `readOnlyAdvice` when there is some.
   */
  private async startAfresh(reason: string, message: string, readOnlyAdvice?: string): Promise<void> {
    if (this.readOnly) throw new RuntimeFailure(readOnlyAdvice === undefined ? message : `${message}; ${readOnlyAdvice}`);
    const aside = this.moveAside(reason);
    this.logger.error({ file: this.path, keptAs: aside }, `${message}; kept it as ${aside} and started with an empty history`);
    await this.writeSnapshot();
  }

  private moveAside(reason: string): string {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    let aside = `${this.path}.${reason}-${stamp}`;
    for (let n = 2; existsSync(aside); n++) aside = `${this.path}.${reason}-${stamp}-${n}`;
    try {
      renameSync(this.path, aside);
    } catch (err) {
      throw new RuntimeFailure(`cannot set aside the unreadable new-terms history ${this.path}: ${describeStateErrno(err)}`);
    }
    this.setAside.push(aside);
    return aside;
  }

  private startTimers(): void {
    if (this.readOnly) return;
    const flush = setInterval(
      () =>
        void this.flushTouches().catch((err: unknown) =>
          this.logger.error({ file: this.path, err: describeStateErrno(err) }, 'writing new-terms last-seen refreshes failed'),
        ),
      this.settings.touchFlushIntervalMs,
    );
    const compact = setInterval(() => this.compactInBackground('scheduled'), this.settings.compactionIntervalMs);
    flush.unref();
    compact.unref();
    this.timers.push(flush, compact);
  }

  // ---- histories -------------------------------------------------------------------------------

  private defineLoaded(id: number, ruleId: string, fields: readonly string[], windowSeconds: number): void {
    const existing = this.byId.get(id);
    if (existing !== undefined) {
      existing.windowSeconds = windowSeconds;
      return;
    }
    const state: HistoryState = { id, ruleId, fields, arity: fields.length, windowSeconds, entries: new Map(), dirty: new Set(), view: undefined };
    this.histories.set(historyKey(ruleId, fields), state);
    this.byId.set(id, state);
    this.nextId = Math.max(this.nextId, id + 1);
  }

  history(ruleId: string, newTermsFields: readonly string[], windowMs: number): TermHistory {
    if (newTermsFields.length < 1) throw new RangeError('a new-terms history needs at least one field');
    const windowSeconds = windowSecondsOf(windowMs);
    const key = historyKey(ruleId, newTermsFields);
    let state = this.histories.get(key);
    if (state === undefined) {
      state = {
        id: this.nextId++,
        ruleId,
        fields: [...newTermsFields],
        arity: newTermsFields.length,
        windowSeconds,
        entries: new Map(),
        dirty: new Set(),
        view: undefined,
      };
      this.histories.set(key, state);
      this.byId.set(state.id, state);
      this.appendDefinition(state);
    } else if (state.windowSeconds !== windowSeconds) {
      state.windowSeconds = windowSeconds;
      this.appendDefinition(state);
    }
    state.view ??= this.viewOf(state);
    return state.view;
  }

  private appendDefinition(state: HistoryState): void {
    if (this.readOnly || this.closing) return;
    this.pending.push(encodeHistoryRecord(state));
  }

  private viewOf(state: HistoryState): TermHistory {
    return {
      lastSeen: (tuple) => {
        const value = state.entries.get(this.keyOf(state, tuple));
        return value === undefined ? undefined : (value + BASE_SECONDS) * 1000;
      },
      recordNew: (tuple, atMs) => this.recordNew(state, tuple, atMs),
      touch: (tuple, atMs) => this.touch(state, tuple, atMs),
    };
  }

  private keyOf(state: HistoryState, tuple: readonly string[]): string {
    if (tuple.length !== state.arity)
      throw new RangeError(`rule ${state.ruleId}: a tuple of ${tuple.length} values for ${state.arity} new_terms_fields`);
    return state.arity === 1 ? tuple[0]! : tupleKey(tuple);
  }

  private recordNew(state: HistoryState, tuple: readonly string[], atMs: number): Promise<void> {
    if (this.readOnly || this.closing) return Promise.reject(new Error(`new-terms history ${this.path} is ${this.readOnly ? 'open read-only' : 'closed'}`));
    let record: Buffer;
    try {
      const key = this.keyOf(state, tuple);
      const seconds = this.bounded(toSeconds(atMs));
      const relative = seconds - BASE_SECONDS;
      const old = state.entries.get(key);
      // Encoded first: a tuple that cannot be written (over the record size limit) is not remembered either.
      record = encodeSightingRecord(state.id, (old !== undefined && old > relative ? old : relative) + BASE_SECONDS, key, state.arity);
      if (seconds > this.newestSeconds) this.newestSeconds = seconds;
      this.put(state, key, relative);
      state.dirty.delete(key);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.sightingBytes += record.length;
    this.sightingRecords++;
    this.pending.push(record);
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.scheduleCommit();
    });
  }

  private touch(state: HistoryState, tuple: readonly string[], atMs: number): void {
    if (this.readOnly || this.closing) throw new Error(`new-terms history ${this.path} is ${this.readOnly ? 'open read-only' : 'closed'}`);
    const key = this.keyOf(state, tuple);
    const seconds = this.bounded(toSeconds(atMs));
    if (seconds > this.newestSeconds) this.newestSeconds = seconds;
    const relative = seconds - BASE_SECONDS;
    const old = state.entries.get(key);
    if (old !== undefined && relative <= old) return;
    this.put(state, key, relative);
    state.dirty.add(key);
  }

  /** `seconds`, or the machine clock plus maxFutureMs when it is later than that. */
  private bounded(seconds: number): number {
    if (seconds <= this.futureLimitSeconds) return seconds;
    // A limit computed earlier is at most today's (a clock stepped back leaves it that step too high), so it
    // needs recomputing only when a sighting passes it: no clock read per sighting on the hot path.
    this.futureLimitSeconds = Math.floor((Date.now() + this.settings.maxFutureMs) / 1000);
    return Math.min(seconds, this.futureLimitSeconds);
  }

  /** Sets last-seen to the later of old and new; a change moves the tuple to the recent end. */
  private put(state: HistoryState, key: string, relative: number): void {
    const old = state.entries.get(key);
    if (old !== undefined) {
      if (relative <= old) return;
      state.entries.delete(key);
      state.entries.set(key, relative);
      return;
    }
    state.entries.set(key, relative);
    if (state.entries.size > this.cap) this.evictOldest(state);
  }

  private evictOldest(state: HistoryState): void {
    const oldest = state.entries.keys().next();
    if (oldest.done === true) return;
    state.entries.delete(oldest.value);
    state.dirty.delete(oldest.value);
    this.counters.evicted++;
    const now = Date.now();
    if (now - this.lastEvictionLog >= 60_000) {
      this.lastEvictionLog = now;
      this.logger.warn(
        { ruleId: state.ruleId, fields: state.fields, maxTuplesPerRule: this.cap, evicted: this.counters.evicted },
        'new-terms history is full; evicting the least recently seen tuples (store.maxTuplesPerRule)',
      );
    }
  }

  // ---- writing ---------------------------------------------------------------------------------

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.io.then(task);
    this.io = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Group commit: records pushed before the queued commit starts share its write and fdatasync; those
   * pushed while one is in flight go with the next.
   */
  private scheduleCommit(): void {
    if (this.commitQueued) return;
    this.commitQueued = true;
    void this.exclusive(() => this.commit());
  }

  private async commit(): Promise<void> {
    this.commitQueued = false;
    const buffers = this.pending;
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    if (buffers.length === 0) {
      for (const waiter of waiters) waiter.resolve();
      return;
    }
    const log = this.log;
    const data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
    try {
      if (log === undefined) throw new Error('no history file is open');
      await writeFully(log, data, this.logBytes);
      await log.datasync();
    } catch (err) {
      this.counters.writeErrors++;
      // Cut what a failed write may have left, and keep the records for the next commit.
      await log?.truncate(this.logBytes).catch(() => undefined);
      this.pending = buffers.concat(this.pending);
      const failure = new RuntimeFailure(`writing the new-terms history ${this.path} failed: ${describeStateErrno(err)}`);
      this.logger.error({ file: this.path, records: buffers.length, err: describeStateErrno(err) }, failure.message);
      for (const waiter of waiters) waiter.reject(failure);
      return;
    }
    this.logBytes += data.length;
    this.tail?.push(data);
    this.counters.commits++;
    this.counters.recordsWritten += buffers.length;
    for (const waiter of waiters) waiter.resolve();
    if (this.compaction === undefined && this.logBytes > this.settings.compactionMinBytes && this.logBytes > this.settings.compactionRatio * this.liveBytesEstimate())
      this.compactInBackground('size');
  }

  private liveBytesEstimate(): number {
    const average = this.sightingRecords > 0 ? this.sightingBytes / this.sightingRecords : 64;
    return average * this.tupleCount() + 64 * this.histories.size;
  }

  /**
   * Writes every pending last-seen refresh (at most one record per tuple per interval). Encoding runs in
   * slices of TOUCH_SLICE records with the event loop free in between, so a minute with a million
   * distinct refreshes does not stall event processing.
   */
  private flushTouches(): Promise<void> {
    this.touchFlush ??= this.writeTouches().finally(() => {
      this.touchFlush = undefined;
    });
    return this.touchFlush;
  }

  private async writeTouches(): Promise<void> {
    let inSlice = 0;
    for (const state of this.histories.values()) {
      // Deleting while iterating is well-defined for a Set; keys touched again during a pause come round again.
      for (const key of state.dirty) {
        state.dirty.delete(key);
        const relative = state.entries.get(key);
        if (relative !== undefined) {
          try {
            this.pending.push(encodeSightingRecord(state.id, relative + BASE_SECONDS, key, state.arity));
          } catch (err) {
            if (!(err instanceof RecordTooLargeError)) throw err;
            this.logger.error({ ruleId: state.ruleId, err: err.message }, 'new-terms last-seen refresh not written');
          }
        }
        if (++inSlice === TOUCH_SLICE) {
          inSlice = 0;
          this.scheduleCommit();
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
    }
    if (this.pending.length > 0) this.scheduleCommit();
  }

  async flush(): Promise<void> {
    if (this.readOnly) return;
    if (this.closing) return this.closing;
    await this.flushTouches();
    await new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.scheduleCommit();
    });
  }

  // ---- compaction ------------------------------------------------------------------------------

  private compactInBackground(reason: string): void {
    if (this.compaction !== undefined || this.closing) return;
    this.compact().catch((err: unknown) =>
      this.logger.error({ file: this.path, reason, err: describeStateErrno(err) }, `compacting the new-terms history failed: ${describeStateErrno(err)}`),
    );
  }

  async compact(): Promise<void> {
    if (this.readOnly) throw new Error(`new-terms history ${this.path} is open read-only`);
    while (this.compaction !== undefined) await this.compaction.catch(() => undefined);
    const started = performance.now();
    this.compaction = this.writeSnapshot().finally(() => {
      this.compaction = undefined;
    });
    await this.compaction;
    this.counters.compactions++;
    this.counters.lastCompactionMs = performance.now() - started;
  }

  /**
   * Writes every live tuple (expired ones are dropped) to <file>.tmp in chunks while appends continue on
   * the current file; those appends are also kept (`tail`) and added to the new file in the final step,
   * which runs in the I/O chain (no write in flight): fsync, rename over the file, fsync the directory.
   * A crash at any point leaves either the old complete file or the new complete one.
   */
  private async writeSnapshot(): Promise<void> {
    const temporary = `${this.path}.tmp`;
    // A leftover of a crash during compaction: start over with a fresh file (and a fresh 0600 mode).
    await rm(temporary, { force: true });
    // Exclusive: whatever appears under the name after the rm (a planted link) makes this fail, not write through it.
    const out = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    this.tail = [];
    let position = 0;
    try {
      let chunk: Buffer[] = [encodeFileHeader()];
      let chunkBytes = chunk[0]!.length;
      const writeChunk = async (): Promise<void> => {
        const data = Buffer.concat(chunk, chunkBytes);
        chunk = [];
        chunkBytes = 0;
        await writeFully(out, data, position);
        position += data.length;
      };
      const nowRelative = Math.min(Math.floor(Date.now() / 1000), this.newestSeconds) - BASE_SECONDS;
      for (const state of this.histories.values()) {
        if (state.entries.size === 0 && state.view === undefined) continue;
        const definition = encodeHistoryRecord(state);
        chunk.push(definition);
        chunkBytes += definition.length;
        const cutoff = nowRelative - state.windowSeconds;
        for (const [key, relative] of state.entries) {
          if (relative < cutoff) {
            state.entries.delete(key);
            state.dirty.delete(key);
            this.counters.expired++;
            continue;
          }
          const record = encodeSightingRecord(state.id, relative + BASE_SECONDS, key, state.arity);
          chunk.push(record);
          chunkBytes += record.length;
          if (chunkBytes >= SNAPSHOT_CHUNK_BYTES) await writeChunk();
        }
      }
      await writeChunk();
      await this.exclusive(async () => {
        const tail = this.tail ?? [];
        for (const data of tail) {
          await writeFully(out, data, position);
          position += data.length;
        }
        await out.sync();
        await rename(temporary, this.path);
        // From the rename on, appends must go to the new file, whatever fails next.
        const old = this.log;
        this.log = out;
        this.logBytes = position;
        this.tail = undefined;
        await old?.close().catch(() => undefined);
        await syncDirectory(this.path);
      });
    } catch (err) {
      this.tail = undefined;
      if (this.log !== out) {
        await out.close().catch(() => undefined);
        await rm(temporary, { force: true }).catch(() => undefined);
      }
      throw err;
    }
  }

  // ---- inspection and editing ------------------------------------------------------------------

  private tupleCount(): number {
    let total = 0;
    for (const state of this.histories.values()) total += state.entries.size;
    return total;
  }

  stats(): HistoryStoreStats {
    let pendingTouches = 0;
    for (const state of this.histories.values()) pendingTouches += state.dirty.size;
    return {
      rules: this.histories.size,
      tuples: this.tupleCount(),
      diskBytes: this.logBytes,
      pendingTouches,
      ...this.counters,
      setAside: [...this.setAside],
    };
  }

  summaries(): HistorySummary[] {
    return [...this.histories.values()].map((state) => ({
      ruleId: state.ruleId,
      fields: state.fields,
      windowMs: state.windowSeconds * 1000,
      tuples: state.entries.size,
    }));
  }

  *tuples(ruleId?: string): Iterable<StoredTuple> {
    for (const state of this.histories.values()) {
      if (ruleId !== undefined && state.ruleId !== ruleId) continue;
      for (const [key, relative] of state.entries)
        yield { ruleId: state.ruleId, fields: state.fields, terms: tupleFromKey(key, state.arity), lastSeenMs: (relative + BASE_SECONDS) * 1000 };
    }
  }

  async forget(ruleId: string, tuples?: readonly (readonly string[])[]): Promise<{ forgotten: number; notFound: string[][] }> {
    if (this.readOnly) throw new Error(`new-terms history ${this.path} is open read-only`);
    // A snapshot already being written could still hold what we remove: let it finish first.
    while (this.compaction !== undefined) await this.compaction.catch(() => undefined);
    const states = [...this.histories.entries()].filter(([, state]) => state.ruleId === ruleId);
    let forgotten = 0;
    const notFound: string[][] = [];
    if (tuples === undefined) {
      for (const [key, state] of states) {
        forgotten += state.entries.size;
        this.histories.delete(key);
        this.byId.delete(state.id);
      }
    } else {
      for (const tuple of tuples) {
        let found = false;
        for (const [, state] of states) {
          if (tuple.length !== state.arity) continue;
          const key = this.keyOf(state, tuple);
          if (state.entries.delete(key)) {
            state.dirty.delete(key);
            forgotten++;
            found = true;
          }
        }
        if (!found) notFound.push([...tuple]);
      }
    }
    await this.compact();
    return { forgotten, notFound };
  }

  // ---- close -----------------------------------------------------------------------------------

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    try {
      if (!this.readOnly) {
        while (this.compaction !== undefined) await this.compaction.catch(() => undefined);
        await this.flushTouches();
        await new Promise<void>((resolve, reject) => {
          this.waiters.push({ resolve, reject });
          this.scheduleCommit();
        });
        await this.exclusive(async () => {
          await this.log?.close();
          this.log = undefined;
        });
      }
    } finally {
      this.lock.release();
    }
  }
}

async function openExisting(file: string): Promise<FileHandle> {
  const handle = await open(file, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    const stat = await handle.stat();
    const planted = plantedFileProblem(stat);
    if (planted !== undefined) throw new RuntimeFailure(`new-terms history ${file} is ${planted} (it was not when read a moment ago)`);
    if ((stat.mode & 0o777) !== 0o600) await handle.chmod(0o600);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

async function writeFully(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

function syncDirectorySync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes a rename in the file's directory durable. */
async function syncDirectory(file: string): Promise<void> {
  const dir = await open(join(file, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
