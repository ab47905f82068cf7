import { markShared } from '../ecs/json.js';

/**
 * Linux capability numbers (include/uapi/linux/capability.h) → the names ECS and Elastic Defend use in
 * process.thread.capabilities.*. A bit the list does not know yet (a newer kernel) is kept as CAP_<n>
 * rather than dropped.
 */
const CAPABILITY_NAMES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

// Few distinct masks occur on a host (root's, a user's, none): decode each once. Bounded, since masks come
// from processes an attacker can start.
const decoded = new Map<string, readonly string[]>();
const MAX_CACHED_MASKS = 256;

/** "000001ffffffffff" (CapEff/CapPrm of /proc/<pid>/status) → ['CAP_CHOWN', …]. Shared, do not mutate. */
export function capabilityNames(hexMask: string): readonly string[] {
  const cached = decoded.get(hexMask);
  if (cached !== undefined) return cached;
  const mask = BigInt(`0x${hexMask}`);
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((mask >> BigInt(bit)) & 1n) names.push(CAPABILITY_NAMES[bit] ?? `CAP_${bit}`);
  }
  if (decoded.size >= MAX_CACHED_MASKS) decoded.clear();
  decoded.set(hexMask, markShared(names));
  return names;
}

/** process.thread of a process with these masks (either may be unknown): shared, do not mutate. */
export function threadCapabilities(effectiveMask: string | undefined, permittedMask: string | undefined): { capabilities: { effective?: string[]; permitted?: string[] } } {
  const key = `${effectiveMask ?? ''}/${permittedMask ?? ''}`;
  const cached = threads.get(key);
  if (cached !== undefined) return cached;
  const capabilities: { effective?: string[]; permitted?: string[] } = {};
  if (effectiveMask !== undefined) capabilities.effective = capabilityNames(effectiveMask) as string[];
  if (permittedMask !== undefined) capabilities.permitted = capabilityNames(permittedMask) as string[];
  const thread = markShared({ capabilities });
  if (threads.size >= MAX_CACHED_MASKS) threads.clear();
  threads.set(key, thread);
  return thread;
}

const threads = new Map<string, { capabilities: { effective?: string[]; permitted?: string[] } }>();

/**
 * The capabilities the sensor needs, and why (the unit grants exactly these; README explains them):
 * without them it would run and silently miss what detection rules look at, which a security agent must
 * not do.
 */
export const REQUIRED_CAPABILITIES: ReadonlyArray<{ name: string; why: string }> = [
  { name: 'CAP_NET_ADMIN', why: 'subscribe to the process connector (PROC_CN_MCAST_LISTEN) and size its buffer past net.core.rmem_max' },
  { name: 'CAP_SYS_PTRACE', why: "read other users' /proc/PID/exe, cwd and fd links (process.executable, working_directory)" },
  { name: 'CAP_DAC_READ_SEARCH', why: "enter other users' /proc/PID/fd (process.interactive)" },
];

/** How to grant them all, for a refusal's last words: setcap for a foreground run, the unit's line under systemd. */
export function grantingHint(): string {
  const names = REQUIRED_CAPABILITIES.map((capability) => capability.name);
  return `run as root or grant the capabilities (setcap ${names.map((name) => name.toLowerCase()).join(',')}+ep on node, or AmbientCapabilities=${names.join(' ')} under systemd)`;
}
