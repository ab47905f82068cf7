import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { markShared } from '../ecs/json.js';
import type { EcsAgent, EcsHost } from '../ecs/types.js';
import { AGENT_VERSION } from '../version.js';

export interface HostIdentity {
  host: EcsHost;
  agent: EcsAgent;
  /** What process.entity_id hashes in: the machine id, or the host name when there is none. */
  entityNamespace: string;
}

/** KEY=value lines of os-release(5); values may be quoted. */
export function parseOsRelease(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match === null) continue;
    let value = match[2] ?? '';
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
      value = value.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    }
    values.set(match[1] ?? '', value);
  }
  return values;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * agent.id is derived from the machine id (SHA-256 of a fixed prefix and /etc/machine-id, shown as a
 * UUID), so it is stable across restarts and reinstalls on one host and never reveals the machine id itself.
 */
export function agentIdFor(machineIdOrHostName: string): string {
  const hex = createHash('sha256').update(`execsentry-agent:${machineIdOrHostName}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** ECS host.mac: "Each octet ... two uppercase hexadecimal digits ... separated by a hyphen" (RFC 7042 notation). */
export function ecsMac(mac: string): string {
  return mac.toUpperCase().replace(/:/g, '-');
}

/**
 * host.ip and host.mac: every address of every interface that is up, loopback's included, as Elastic
 * Defend lists them (endpoint-package data_stream/process/sample_event.json, and the Linux exec event in
 * elastic/detection-rules#2367, carry 127.0.0.1 and ::1 in host.ip), the others first; each hardware address once, without the all-zero one of loopback and of
 * interfaces that have none. Defend itself wrote colons until it took up ECS's hyphens
 * (elastic/endpoint-package#371).
 */
export function networkAddresses(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): Pick<EcsHost, 'ip' | 'mac'> {
  const external: string[] = [];
  const internal: string[] = [];
  const macs = new Set<string>();
  for (const addresses of Object.values(interfaces)) {
    for (const address of addresses ?? []) {
      const list = address.internal ? internal : external;
      if (!list.includes(address.address)) list.push(address.address);
      if (address.mac !== '00:00:00:00:00:00') macs.add(ecsMac(address.mac));
    }
  }
  const found: Pick<EcsHost, 'ip' | 'mac'> = {};
  const ips = [...external, ...internal];
  if (ips.length > 0) found.ip = ips;
  if (macs.size > 0) found.mac = [...macs];
  return found;
}

/** host.* and agent.* of every event, read at start-up (host.ip and host.mac are refreshed by the sensor). */
export async function readHostIdentity(): Promise<HostIdentity> {
  const machineId = (await readOptional('/etc/machine-id'))?.trim() || undefined;
  const osRelease = parseOsRelease((await readOptional('/etc/os-release')) ?? (await readOptional('/usr/lib/os-release')) ?? '');
  const hostName = os.hostname();
  const host: EcsHost = {
    name: hostName,
    hostname: hostName,
    architecture: os.machine(),
    os: { type: 'linux', kernel: os.release() },
    ...networkAddresses(),
  };
  if (machineId !== undefined) host.id = machineId;
  const family = osRelease.get('ID_LIKE')?.split(/\s+/)[0] ?? osRelease.get('ID');
  if (family) host.os.family = family;
  const name = osRelease.get('NAME');
  if (name) host.os.name = name;
  const version = osRelease.get('VERSION_ID');
  if (version) host.os.version = version;
  const platform = osRelease.get('ID');
  if (platform) host.os.platform = platform;
  const full = osRelease.get('PRETTY_NAME');
  if (full) host.os.full = full;
  const entityNamespace = machineId ?? hostName;
  // Every event carries these same objects: their JSON is encoded once (src/ecs/json.ts).
  return { host: markShared(host), agent: markShared({ type: 'execsentry', version: AGENT_VERSION, id: agentIdFor(entityNamespace) }), entityNamespace };
}
