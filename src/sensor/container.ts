/**
 * container.id and container.runtime from /proc/PID/cgroup. Each line is `hierarchy-ID:controllers:path`
 * (cgroups(7)); cgroup v2 has the one line `0::path`. Container runtimes name the cgroup of a container
 * after its 64-hex id, in one of two shapes:
 * - systemd cgroup driver: a scope unit `<prefix>-<id>.scope` — docker-, cri-containerd- (containerd's CRI
 *   plugin, Kubernetes), crio- (CRI-O), libpod- (podman; rootless podman too, under user@UID.service);
 * - cgroupfs driver: the id as a directory, `/docker/<id>`, `/kubepods/<qos>/pod<uid>/<id>` (a Kubernetes
 *   runtime, which one the path does not say), `/libpod_parent/libpod-<id>`, `.../crio-<id>`.
 * The monitor processes beside a container (`crio-conmon-<id>.scope`, `libpod-conmon-<id>.scope`) are not
 * in it and do not match. Nested containers (docker in docker) nest the cgroups: the deepest match names
 * the container the process is in. The v2 line is read first; on a hybrid host whose v2 hierarchy holds
 * nothing, the v1 lines are.
 */
export interface ContainerIdentity {
  id: string;
  /** ECS container.runtime, when the cgroup's name says which runtime made it. */
  runtime?: 'docker' | 'containerd' | 'cri-o' | 'podman';
}

const PREFIXED = /^(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})(?:\.scope)?$/;
const BARE_ID = /^[0-9a-f]{64}$/;
const RUNTIME_OF_PREFIX: Record<string, NonNullable<ContainerIdentity['runtime']>> = {
  docker: 'docker',
  'cri-containerd': 'containerd',
  crio: 'cri-o',
  libpod: 'podman',
};

/** The container a cgroup path names, from its deepest container-named segment; undefined when none. */
export function containerFromCgroupPath(path: string): ContainerIdentity | undefined {
  const segments = path.split('/');
  for (let i = segments.length - 1; i >= 0; i--) {
    const segment = segments[i] ?? '';
    const prefixed = PREFIXED.exec(segment);
    if (prefixed !== null) return { id: prefixed[2] ?? '', runtime: RUNTIME_OF_PREFIX[prefixed[1] ?? ''] };
    if (BARE_ID.test(segment)) return segments[i - 1] === 'docker' ? { id: segment, runtime: 'docker' } : { id: segment };
  }
  return undefined;
}

/** The container of a /proc/PID/cgroup text; undefined for a process on the host. */
export function containerFromCgroup(text: string): ContainerIdentity | undefined {
  const paths: string[] = [];
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    const path = line.slice(second + 1);
    if (line.startsWith('0::')) paths.unshift(path);
    else paths.push(path);
  }
  for (const path of paths) {
    const found = containerFromCgroupPath(path);
    if (found !== undefined) return found;
  }
  return undefined;
}

const MAX_CACHED_CGROUPS = 4096;

/**
 * Most execs share a handful of cgroup texts (the host's slices, each container's scope): each text is
 * parsed once. Bounded; a full cache starts over.
 */
export class ContainerCache {
  private readonly parsed = new Map<string, ContainerIdentity | null>();

  of(cgroup: string): ContainerIdentity | undefined {
    let found = this.parsed.get(cgroup);
    if (found === undefined) {
      if (this.parsed.size >= MAX_CACHED_CGROUPS) this.parsed.clear();
      found = containerFromCgroup(cgroup) ?? null;
      this.parsed.set(cgroup, found);
    }
    return found ?? undefined;
  }
}
