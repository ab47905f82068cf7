import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { connect as netConnect, isIP, isIPv6, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { native } from '../native.js';
import type { SpoolRecord } from './spool.js';
import type { BatchResult, ItemOutcome, Transport } from './delivery.js';
import type { TlsMaterial } from './http-client.js';

/** RFC 5424 facility codes (section 6.2.1). */
export const FACILITY = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;
export type FacilityName = keyof typeof FACILITY;

/** The largest UDP payload over IPv4; longer messages cannot be sent as one datagram. */
const MAX_UDP_PAYLOAD = 65_507;

/** ECS event.severity (21/47/73/99) → RFC 5424 severity: critical 2, error 3, warning 4, notice 5. */
export function syslogSeverity(eventSeverity: number): number {
  if (eventSeverity >= 99) return 2;
  if (eventSeverity >= 73) return 3;
  if (eventSeverity >= 47) return 4;
  return 5;
}

/** Only PRINTUSASCII (%d33-126) may appear in HOSTNAME, APP-NAME, PROCID and MSGID; anything else goes. */
export function printUsAscii(text: string, maxLength: number): string {
  const kept = text.replace(/[^\x21-\x7e]/g, '').slice(0, maxLength);
  return kept === '' ? '-' : kept;
}

const RFC5424_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

interface AlertHeaderFields {
  '@timestamp'?: unknown;
  host?: { hostname?: unknown };
  rule?: { id?: unknown };
  event?: { severity?: unknown };
}

const localHostname = printUsAscii(osHostname(), 255);

/**
 * One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME execsentry PROCID MSGID - MSG`, MSG = the alert JSON with
 * every non-ASCII character written as a \u escape — still the same JSON, but plain ASCII, so no BOM is
 * needed and no relay can mangle a charset. Header fields keep only the characters RFC 5424 allows.
 */
export function formatSyslogMessage(alertJson: string, facility: number): string {
  const alert = JSON.parse(alertJson) as AlertHeaderFields;
  const severity = syslogSeverity(typeof alert.event?.severity === 'number' ? alert.event.severity : 47);
  const timestamp = typeof alert['@timestamp'] === 'string' && RFC5424_TIMESTAMP.test(alert['@timestamp']) ? alert['@timestamp'] : '-';
  const host = typeof alert.host?.hostname === 'string' ? printUsAscii(alert.host.hostname, 255) : localHostname;
  const msgId = typeof alert.rule?.id === 'string' ? printUsAscii(alert.rule.id, 32) : '-';
  const message = alertJson.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `<${facility * 8 + severity}>1 ${timestamp} ${host} execsentry ${process.pid} ${msgId} - ${message}`;
}

function encodeAll(records: readonly SpoolRecord[], facility: number): Buffer[] {
  return records.map((record) => Buffer.from(formatSyslogMessage(record.payload.toString('utf8'), facility)));
}

export interface StreamTarget {
  host: string;
  port: number;
  /** present for syslog+tls */
  tls?: TlsMaterial;
  timeoutMs: number;
}

/**
 * `syslog+tcp://` and `syslog+tls://`: messages framed by octet counting (RFC 6587 §3.4.1, `LEN SP MSG`),
 * a batch written at once on one long-lived connection. Plain syslog has no acknowledgement, so a batch
 * counts as delivered once the kernel took it; a connection error resends the batch.
 */
export class SyslogStreamTransport implements Transport {
  readonly kind: string;
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;

  constructor(
    private readonly target: StreamTarget,
    private readonly facility: number,
  ) {
    this.kind = target.tls === undefined ? 'syslog+tcp' : 'syslog+tls';
  }

  private connect(): Promise<Socket> {
    if (this.socket !== undefined && !this.socket.destroyed && this.socket.writable) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const { host, port, tls, timeoutMs } = this.target;
      const socket =
        tls === undefined
          ? netConnect({ host, port })
          : tlsConnect({ host, port, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, servername: isIP(host) === 0 ? host : undefined });
      const timer = setTimeout(() => socket.destroy(new Error(`connecting to ${host}:${port} took longer than ${timeoutMs} ms`)), timeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', onError);
      socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setKeepAlive(true, 30_000);
        // a collector never talks back; whatever arrives is ignored, the end of its side ends ours
        socket.on('data', () => undefined);
        socket.on('end', () => socket.destroy());
        socket.on('error', () => undefined);
        socket.on('close', () => {
          if (this.socket === socket) this.socket = undefined;
        });
        this.socket = socket;
        resolve(socket);
      });
    }).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  async deliver(records: readonly SpoolRecord[]): Promise<BatchResult> {
    const socket = await this.connect();
    const frames: Buffer[] = [];
    for (const message of encodeAll(records, this.facility)) frames.push(Buffer.from(`${message.length} `), message);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => socket.destroy(new Error(`write not taken within ${this.target.timeoutMs} ms`)), this.target.timeoutMs);
      const onClose = () => reject(new Error('connection closed by the collector'));
      socket.once('close', onClose);
      socket.write(Buffer.concat(frames), (err) => {
        clearTimeout(timer);
        socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      });
    });
    return { outcomes: records.map(() => 'ack') };
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    this.socket = undefined;
  }
}

/** `syslog+udp://`: one message per datagram; no acknowledgement exists, so sent = delivered. */
export class SyslogUdpTransport implements Transport {
  readonly kind = 'syslog+udp';
  private readonly socket: DgramSocket;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly facility: number,
  ) {
    this.socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    this.socket.on('error', () => undefined);
    this.socket.unref();
  }

  async deliver(records: readonly SpoolRecord[]): Promise<BatchResult> {
    const messages = encodeAll(records, this.facility);
    const outcomes: ItemOutcome[] = [];
    let error: string | undefined;
    for (const message of messages) {
      if (message.length > MAX_UDP_PAYLOAD) {
        outcomes.push({ deadLetter: `message of ${message.length} bytes does not fit a UDP datagram` });
        continue;
      }
      try {
        await new Promise<void>((resolve, reject) => this.socket.send(message, this.port, this.host, (err) => (err ? reject(err) : resolve())));
        outcomes.push('ack');
      } catch (err) {
        error = (err as Error).message;
        outcomes.push('retry');
      }
    }
    return error === undefined ? { outcomes } : { outcomes, error };
  }

  async close(): Promise<void> {
    this.socket.close();
  }
}

/**
 * `syslog:///dev/log` (or any unix datagram socket): one message per datagram through the addon (Node.js
 * has no unix datagram sockets), never blocking the event loop. A unix datagram queue is short (the
 * kernel's net.unix.max_dgram_qlen, 10 by default without systemd), so a full queue is the normal case
 * under load: the transport pauses a few milliseconds and goes on while the receiver makes progress, and
 * leaves the rest to the delivery loop's backoff only when nothing moved for the timeout.
 */
export class SyslogUnixTransport implements Transport {
  readonly kind = 'syslog+unix';
  private closed = false;

  constructor(
    private readonly socketPath: string,
    private readonly facility: number,
    private readonly timeoutMs: number,
  ) {}

  async deliver(records: readonly SpoolRecord[]): Promise<BatchResult> {
    const messages = encodeAll(records, this.facility);
    const outcomes: ItemOutcome[] = [];
    let lastProgress = Date.now();
    let pause = 1;
    while (outcomes.length < messages.length) {
      const rest = messages.slice(outcomes.length);
      let sent: number;
      try {
        sent = native().sendUnixDatagrams(this.socketPath, rest);
      } catch (err) {
        const failure = err as Error & { code?: string; sent?: number };
        for (let i = 0; i < (failure.sent ?? 0); i++) outcomes.push('ack');
        if (failure.code === 'EMSGSIZE') {
          outcomes.push({ deadLetter: `message of ${messages[outcomes.length]!.length} bytes is too large for ${this.socketPath}` });
          continue;
        }
        while (outcomes.length < messages.length) outcomes.push('retry');
        return { outcomes, error: failure.message };
      }
      for (let i = 0; i < sent; i++) outcomes.push('ack');
      if (outcomes.length === messages.length) break;
      if (sent > 0) {
        // the receiver is draining: give it the CPU for a moment, without a timer's millisecond
        lastProgress = Date.now();
        pause = 1;
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (this.closed || Date.now() - lastProgress > this.timeoutMs) {
        while (outcomes.length < messages.length) outcomes.push('retry');
        return { outcomes, error: `${this.socketPath}: the receiver took nothing for ${this.timeoutMs} ms (queue full)` };
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 50);
    }
    return { outcomes };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
