import { readFileSync } from 'node:fs';
import type { ExecsentryStdio, ExecsentryStdStream, StdSocket } from '../ecs/types.js';
import type { ProcSnapshot, StdStreamSnapshot } from '../native.js';

/**
 * execsentry.stdio.{stdin,stdout,stderr}: what each standard stream of an exec'd process is, from the fd
 * links the reader thread read with the rest of the /proc snapshot (native/procfs.cc ReadStdStream). A
 * stream that could not be read (refused, or the process was leaving) is absent: unknown, never "closed".
 */

/** Majors of the character devices that are terminals when /proc/tty/drivers cannot be read: tty/ttyS, /dev/tty + console + ptmx, UNIX98 ptys (Documentation/admin-guide/devices.txt). */
const FALLBACK_TERMINAL_MAJORS = [4, 5, 136, 137, 138, 139, 140, 141, 142, 143];

/** Majors of /proc/tty/drivers ("name  /dev/path  major  minor-range  type" per tty driver; tty/tty_io.c). */
export function parseTtyDriverMajors(text: string): Set<number> {
  const majors = new Set<number>();
  for (const line of text.split('\n')) {
    const major = Number(line.trim().split(/\s+/)[2]);
    if (Number.isInteger(major) && major > 0) majors.add(major);
  }
  return majors;
}

let terminalMajors: ReadonlySet<number> | undefined;

/** The tty drivers' majors of this host, read once (a driver loaded later keeps a fixed major or uses the fallback list's). */
function isTerminalMajor(major: number): boolean {
  if (terminalMajors === undefined) {
    let read: Set<number> | undefined;
    try {
      read = parseTtyDriverMajors(readFileSync('/proc/tty/drivers', 'utf8'));
    } catch {
      read = undefined;
    }
    terminalMajors = read !== undefined && read.size > 0 ? read : new Set(FALLBACK_TERMINAL_MAJORS);
  }
  return terminalMajors.has(major);
}

const NULL_DEVICE = [1, 3] as const; // /dev/null (devices.txt: major 1 "mem", minor 3)

/**
 * Address family and transport (ECS network.transport's lowercase names) of the protocol names sockfs
 * gives sockets (each `struct proto`'s name: net/ipv4/tcp_ipv4.c "TCP", net/ipv6/tcp_ipv6.c "TCPv6",
 * net/unix/af_unix.c "UNIX" and "UNIX-STREAM", ...).
 */
const SOCKET_PROTOCOLS: Readonly<Record<string, { family: string; transport?: string }>> = {
  TCP: { family: 'inet', transport: 'tcp' },
  TCPv6: { family: 'inet6', transport: 'tcp' },
  UDP: { family: 'inet', transport: 'udp' },
  UDPv6: { family: 'inet6', transport: 'udp' },
  'UDP-Lite': { family: 'inet', transport: 'udplite' },
  UDPLITEv6: { family: 'inet6', transport: 'udplite' },
  MPTCP: { family: 'inet', transport: 'mptcp' },
  MPTCPv6: { family: 'inet6', transport: 'mptcp' },
  SCTP: { family: 'inet', transport: 'sctp' },
  SCTPv6: { family: 'inet6', transport: 'sctp' },
  RAW: { family: 'inet' },
  RAWv6: { family: 'inet6' },
  PING: { family: 'inet', transport: 'icmp' },
  PINGv6: { family: 'inet6', transport: 'ipv6-icmp' },
  UNIX: { family: 'unix' },
  'UNIX-STREAM': { family: 'unix' },
  NETLINK: { family: 'netlink' },
  PACKET: { family: 'packet' },
  AF_VSOCK: { family: 'vsock' },
};

function socketFields(stream: StdStreamSnapshot): StdSocket | undefined {
  if (stream.protocol === undefined) return undefined;
  const socket: StdSocket = { protocol: stream.protocol };
  const known = SOCKET_PROTOCOLS[stream.protocol];
  if (known !== undefined) {
    socket.family = known.family;
    if (known.transport !== undefined) socket.transport = known.transport;
  }
  if (stream.localIp !== undefined && stream.localPort !== undefined) socket.local = { ip: stream.localIp, port: stream.localPort };
  if (stream.remoteIp !== undefined && stream.remotePort !== undefined) socket.remote = { ip: stream.remoteIp, port: stream.remotePort };
  return socket;
}

/** One stream's fields; `controllingTerminal` is the process's tty (from tty_nr), a terminal whatever its major. */
export function stdStreamFields(stream: StdStreamSnapshot, controllingTerminal: { major: number; minor: number } | undefined): ExecsentryStdStream {
  if (stream.type === 'character_device' && stream.device !== undefined) {
    const [major, minor] = stream.device;
    const isControlling = controllingTerminal !== undefined && controllingTerminal.major === major && controllingTerminal.minor === minor;
    const type = major === NULL_DEVICE[0] && minor === NULL_DEVICE[1] ? 'null_device' : isControlling || isTerminalMajor(major) ? 'terminal' : 'character_device';
    const out: ExecsentryStdStream = { type, char_device: { major, minor } };
    if (stream.path !== undefined) out.path = stream.path;
    return out;
  }
  const out: ExecsentryStdStream = { type: stream.type };
  if (stream.path !== undefined) out.path = stream.path;
  if (stream.type === 'socket') {
    const socket = socketFields(stream);
    if (socket !== undefined) out.socket = socket;
  }
  return out;
}

const STREAM_NAMES = ['stdin', 'stdout', 'stderr'] as const;

/** execsentry.stdio of a snapshot; undefined when no stream could be read. */
export function stdioFields(snapshot: ProcSnapshot, controllingTerminal: { major: number; minor: number } | undefined): ExecsentryStdio | undefined {
  if (snapshot.stdio === undefined) return undefined;
  const out: ExecsentryStdio = {};
  snapshot.stdio.forEach((stream, fd) => {
    if (stream !== null) out[STREAM_NAMES[fd]!] = stdStreamFields(stream, controllingTerminal);
  });
  return Object.keys(out).length > 0 ? out : undefined;
}

/** [major, minor] of the character device on `fd`; null when the stream is known and is something else; undefined when unknown. */
export function streamDevice(snapshot: ProcSnapshot, fd: 0 | 1 | 2): [number, number] | null | undefined {
  const stream = snapshot.stdio?.[fd];
  if (stream === undefined || stream === null) return undefined;
  return stream.device ?? null;
}
