import { watch, type FSWatcher } from 'node:fs';

/** Resolves many ids at once (the addon's NSS look-ups, on a worker thread). */
export type NameLookUp = (ids: number[]) => Promise<(string | null)[]>;

interface CachedName {
  name: string | undefined;
  expiresAt: number;
}

// Local files are watched; names from LDAP/SSSD change without touching them, so answers also expire.
const KNOWN_TTL_MS = 10 * 60_000;
const UNKNOWN_TTL_MS = 60_000;
// An attacker can make processes run under many uids; the cache is cleared beyond this rather than grow.
const MAX_CACHED_IDS = 65_536;

class NameCache {
  private readonly cache = new Map<number, CachedName>();
  private readonly inFlight = new Map<number, Promise<void>>();
  lookUps = 0;

  constructor(private readonly lookUp: NameLookUp) {}

  /** The cached name; undefined when unknown to NSS or not looked up yet. */
  get(id: number, now: number): string | undefined {
    const entry = this.cache.get(id);
    return entry !== undefined && entry.expiresAt > now ? entry.name : undefined;
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
            const name = names[i] ?? null;
            this.cache.set(id, { name: name ?? undefined, expiresAt: at + (name === null ? UNKNOWN_TTL_MS : KNOWN_TTL_MS) });
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

/**
 * User and group names for uids and gids, cached on the JS thread so the hot path never waits on NSS
 * except for an id it has not seen. The cache is dropped when /etc/passwd, /etc/group or
 * /etc/nsswitch.conf change (watched through /etc, since tools replace these files by renaming).
 */
export class UserGroupNames {
  private readonly users: NameCache;
  private readonly groups: NameCache;
  private watcher: FSWatcher | undefined;

  constructor(lookUpUsers: NameLookUp, lookUpGroups: NameLookUp, watchDir: string | undefined = '/etc') {
    this.users = new NameCache(lookUpUsers);
    this.groups = new NameCache(lookUpGroups);
    if (watchDir !== undefined) {
      try {
        this.watcher = watch(watchDir, { persistent: false }, (_event, file) => {
          const name = String(file ?? '');
          if (file === null || name === 'passwd' || name === 'group' || name === 'nsswitch.conf' || name.startsWith('passwd') || name.startsWith('group')) {
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
    return this.users.get(uid, now);
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
  }

  get lookUps(): number {
    return this.users.lookUps + this.groups.lookUps;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
