import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { markShared } from '../ecs/json.js';
import type { ProcessEvent } from '../ecs/types.js';
import type { UserEntry } from '../native.js';

/** Resolves many ids at once (the addon's NSS look-ups, on a worker thread); null = unknown id. */
export type LookUp<T> = (ids: number[]) => Promise<(T | null)[]>;
export type NameLookUp = LookUp<string>;

interface Cached<T> {
  value: T | undefined;
  expiresAt: number;
}

// Local files are watched; names from LDAP/SSSD change without touching them, so answers also expire.
const KNOWN_TTL_MS = 10 * 60_000;
const UNKNOWN_TTL_MS = 60_000;
// An attacker can make processes run under many uids; the cache is cleared beyond this rather than grow.
const MAX_CACHED_IDS = 65_536;

class NameCache<T> {
  private readonly cache = new Map<number, Cached<T>>();
  private readonly inFlight = new Map<number, Promise<void>>();
  lookUps = 0;

  constructor(private readonly lookUp: LookUp<T>) {}

  /** The cached entry; undefined when unknown to NSS or not looked up yet. */
  get(id: number, now: number): T | undefined {
    const entry = this.cache.get(id);
    return entry !== undefined && entry.expiresAt > now ? entry.value : undefined;
  }

  isFresh(id: number, now: number): boolean {
    const entry = this.cache.get(id);
    return entry !== undefined && entry.expiresAt > now;
  }

  /** Looks up every id not freshly cached; resolves once they are (never rejects: failures mean "no name"). */
  resolve(ids: Iterable<number>, now: number): Promise<void> {
    const wanted: number[] = [];
    const waiting: Promise<void>[] = [];
    for (const id of ids) {
      if (this.isFresh(id, now)) continue;
      const pending = this.inFlight.get(id);
      if (pending !== undefined) waiting.push(pending);
      else if (!wanted.includes(id)) wanted.push(id);
    }
    if (wanted.length > 0) {
      this.lookUps += wanted.length;
      const done = this.lookUp(wanted)
        .then(
          (names) => names,
          () => wanted.map(() => null),
        )
        .then((names) => {
          const at = Date.now();
          if (this.cache.size + wanted.length > MAX_CACHED_IDS) this.cache.clear();
          wanted.forEach((id, i) => {
            const value = names[i] ?? null;
            this.cache.set(id, { value: value ?? undefined, expiresAt: at + (value === null ? UNKNOWN_TTL_MS : KNOWN_TTL_MS) });
            this.inFlight.delete(id);
          });
        });
      for (const id of wanted) this.inFlight.set(id, done);
      waiting.push(done);
    }
    return Promise.all(waiting).then(() => undefined);
  }

  clear(): void {
    this.cache.clear();
  }
}

/** login.defs(5) default of UID_MIN, the lowest uid useradd gives a regular (non-system) user. */
export const DEFAULT_UID_MIN = 1000;

/** UID_MIN of a login.defs text ("UID_MIN  1000"); the default when absent or not a number. */
export function parseUidMin(loginDefs: string): number {
  const value = /^\s*UID_MIN\s+(\d+)\s*(?:#.*)?$/m.exec(loginDefs)?.[1];
  return value === undefined ? DEFAULT_UID_MIN : Number(value);
}

function readUidMin(path: string): number {
  try {
    return parseUidMin(readFileSync(path, 'utf8'));
  } catch {
    return DEFAULT_UID_MIN;
  }
}

/** Shells of accounts nobody logs in to: nologin(8), false(1) and the like (Debian's sync user has /bin/sync). */
const NON_LOGIN_SHELLS: ReadonlySet<string> = new Set(['nologin', 'false', 'true', 'sync', 'shutdown', 'halt']);

/** Whether a passwd shell field refuses logins ('' means /bin/sh, a login shell: passwd(5)). */
export function isNonLoginShell(shell: string): boolean {
  return NON_LOGIN_SHELLS.has(shell.slice(shell.lastIndexOf('/') + 1));
}

/**
 * User and group names for uids and gids, cached on the JS thread so the hot path never waits on NSS
 * except for an id it has not seen, and whether a uid is a system account. The cache is dropped when
 * /etc/passwd, /etc/group, /etc/nsswitch.conf or /etc/login.defs change (watched through /etc, since tools
 * replace these files by renaming).
 */
export class UserGroupNames {
  private readonly users: NameCache<UserEntry>;
  private readonly groups: NameCache<string>;
  private watcher: FSWatcher | undefined;
  private uidMin: number;

  constructor(
    lookUpUsers: LookUp<UserEntry>,
    lookUpGroups: NameLookUp,
    watchDir: string | undefined = '/etc',
    private readonly loginDefsPath = '/etc/login.defs',
  ) {
    this.users = new NameCache(lookUpUsers);
    this.groups = new NameCache(lookUpGroups);
    this.uidMin = readUidMin(loginDefsPath);
    if (watchDir !== undefined) {
      try {
        this.watcher = watch(watchDir, { persistent: false }, (_event, file) => {
          const name = String(file ?? '');
          if (file === null || name === 'passwd' || name === 'group' || name === 'nsswitch.conf' || name === 'login.defs' || name.startsWith('passwd') || name.startsWith('group')) {
            this.invalidate();
          }
        });
        this.watcher.on('error', () => this.invalidate());
      } catch {
        // Without a watch, the expiry above still refreshes names.
        this.watcher = undefined;
      }
    }
  }

  userName(uid: number, now: number): string | undefined {
    return this.users.get(uid, now)?.name;
  }

  /**
   * A system account: a uid below login.defs' UID_MIN (root included), or a passwd entry whose shell
   * refuses logins (www-data, nobody). A uid NSS does not know is judged by its number alone.
   */
  isSystemAccount(uid: number, now: number): boolean {
    if (uid < this.uidMin) return true;
    const entry = this.users.get(uid, now);
    return entry !== undefined && isNonLoginShell(entry.shell);
  }

  groupName(gid: number, now: number): string | undefined {
    return this.groups.get(gid, now);
  }

  /** undefined when every id is freshly cached (the common case: no promise, no wait). */
  resolve(uids: ReadonlySet<number>, gids: ReadonlySet<number>, now: number): Promise<void> | undefined {
    let missing = false;
    for (const uid of uids) if (!this.users.isFresh(uid, now)) missing = true;
    for (const gid of gids) if (!this.groups.isFresh(gid, now)) missing = true;
    if (!missing) return undefined;
    return Promise.all([this.users.resolve(uids, now), this.groups.resolve(gids, now)]).then(() => undefined);
  }

  invalidate(): void {
    this.users.clear();
    this.groups.clear();
    this.uidMin = readUidMin(this.loginDefsPath);
  }

  get lookUps(): number {
    return this.users.lookUps + this.groups.lookUps;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}

/** execsentry.user.system_account of the event's user.id (the effective user, as user.name). */
export function markSystemAccount(event: ProcessEvent, isSystemAccount: (uid: number) => boolean): void {
  const id = event.user?.id;
  if (id === undefined) return;
  (event.execsentry ??= {}).user = isSystemAccount(Number(id)) ? SYSTEM_ACCOUNT : NOT_SYSTEM_ACCOUNT;
}

// Shared by every event (read-only).
const SYSTEM_ACCOUNT = markShared({ system_account: true });
const NOT_SYSTEM_ACCOUNT = markShared({ system_account: false });
