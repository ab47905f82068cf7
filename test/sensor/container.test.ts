import { describe, expect, it } from 'vitest';
import { ContainerCache, containerFromCgroup } from '../../src/sensor/container.js';

const ID = '9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d';
const INNER = '4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970';

// /proc/PID/cgroup texts as the runtimes leave them (cgroup v1, v2 and hybrid hosts).
describe('container.id from /proc/PID/cgroup', () => {
  it.each([
    ['docker, cgroup v2, systemd driver', `0::/system.slice/docker-${ID}.scope\n`, { id: ID, runtime: 'docker' }],
    ['docker, cgroup v2, cgroupfs driver', `0::/docker/${ID}\n`, { id: ID, runtime: 'docker' }],
    [
      'docker, cgroup v1, cgroupfs driver',
      `12:pids:/docker/${ID}\n11:memory:/docker/${ID}\n2:cpu,cpuacct:/docker/${ID}\n1:name=systemd:/docker/${ID}\n0::/system.slice/containerd.service\n`,
      { id: ID, runtime: 'docker' },
    ],
    [
      'docker, cgroup v1, systemd driver (CentOS 7)',
      `10:devices:/system.slice/docker-${ID}.scope\n2:cpuacct,cpu:/system.slice/docker-${ID}.scope\n1:name=systemd:/system.slice/docker-${ID}.scope\n`,
      { id: ID, runtime: 'docker' },
    ],
    [
      'containerd CRI (Kubernetes), systemd driver',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6a1f2f35_5b0c_4e2e_9f5d_3b4c1c7f0e21.slice/cri-containerd-${ID}.scope\n`,
      { id: ID, runtime: 'containerd' },
    ],
    [
      'Kubernetes, cgroupfs driver (runtime not named)',
      `0::/kubepods/besteffort/pod6a1f2f35-5b0c-4e2e-9f5d-3b4c1c7f0e21/${ID}\n`,
      { id: ID },
    ],
    [
      'CRI-O',
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f2c.slice/crio-${ID}.scope\n`,
      { id: ID, runtime: 'cri-o' },
    ],
    ['podman, rootful', `0::/machine.slice/libpod-${ID}.scope/container\n`, { id: ID, runtime: 'podman' }],
    [
      'podman, rootless',
      `0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope/container\n`,
      { id: ID, runtime: 'podman' },
    ],
    ['podman, cgroupfs driver', `0::/libpod_parent/libpod-${ID}\n`, { id: ID, runtime: 'podman' }],
    ['docker in docker: the inner container', `0::/system.slice/docker-${ID}.scope/docker/${INNER}\n`, { id: INNER, runtime: 'docker' }],
    [
      // A runtime that manages the v2 hierarchy only (podman on a hybrid host) moves the process there; the
      // v1 hierarchies still hold what its parent had (here: the docker container podman runs in).
      'hybrid host: the v2 line wins over the v1 lines',
      `9:name=systemd:/docker/${ID}\n4:memory:/docker/${ID}\n0::/docker/${ID}/libpod-${INNER}.scope\n`,
      { id: INNER, runtime: 'podman' },
    ],
    [
      'hybrid host: v2 holds nothing, v1 names the container',
      `9:name=systemd:/docker/${ID}\n4:memory:/docker/${ID}\n0::/\n`,
      { id: ID, runtime: 'docker' },
    ],
  ])('%s', (_, text, expected) => {
    expect(containerFromCgroup(text)).toEqual(expected);
  });

  it.each([
    ['a host shell (v2)', '0::/user.slice/user-1000.slice/session-3.scope\n'],
    ['a service (v2)', '0::/system.slice/sshd.service\n'],
    ["CRI-O's conmon monitor", `0::/kubepods.slice/crio-conmon-${ID}.scope\n`],
    ["podman's conmon monitor", `0::/machine.slice/libpod-conmon-${ID}.scope\n`],
    ['inside a cgroup namespace', '0::/\n'],
    ['a 32-hex group, not a container id', '4:memory:/process_api/807674b31b3f3aa5292201c635e3d148\n0::/\n'],
    ['an id with upper-case hex', `0::/docker/${ID.toUpperCase()}\n`],
    ['empty', ''],
  ])('none for %s', (_, text) => {
    expect(containerFromCgroup(text)).toBeUndefined();
  });

  it('parses each text once and returns the same answer from the cache', () => {
    const cache = new ContainerCache();
    const text = `0::/system.slice/docker-${ID}.scope\n`;
    const first = cache.of(text);
    expect(first).toEqual({ id: ID, runtime: 'docker' });
    expect(cache.of(text)).toBe(first);
    expect(cache.of('0::/\n')).toBeUndefined();
    expect(cache.of('0::/\n')).toBeUndefined();
  });
});
