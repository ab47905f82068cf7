import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, freeUdpPort, waitFor } from './ports.js';

export interface RsyslogCollector {
  tcpPort: number;
  udpPort: number;
  /** imuxsock's datagram socket (what /dev/log is on a real host) */
  socketPath: string;
  /** every message received, one line each: `pri|app|procid|msgid|hostname|timestamp|msg` */
  lines(): string[];
  stop(): Promise<void>;
}

/** One received message, split at the template's separators (MSG, last, may hold '|' itself). */
export function splitReceived(line: string): { pri: number; app: string; procid: string; msgid: string; hostname: string; timestamp: string; msg: string } {
  const parts = line.split('|');
  const [pri, app, procid, msgid, hostname, timestamp] = parts;
  return { pri: Number(pri), app: app!, procid: procid!, msgid: msgid!, hostname: hostname!, timestamp: timestamp!, msg: parts.slice(6).join('|') };
}

/**
 * A real rsyslogd in the foreground with its own configuration, pid file and work directory in a temp
 * directory: imtcp (octet-counted framing is auto-detected) and imudp on loopback ports, imuxsock on a
 * socket path, everything written with a template that keeps each header field apart.
 */
export async function startRsyslog(): Promise<RsyslogCollector> {
  const dir = mkdtempSync(join(tmpdir(), 'execsentry-rsyslog-'));
  const tcpPort = await freeTcpPort();
  const udpPort = await freeUdpPort();
  const socketPath = join(dir, 'log.sock');
  const outputFile = join(dir, 'received.log');
  writeFileSync(
    join(dir, 'rsyslog.conf'),
    `global(workDirectory="${dir}" maxMessageSize="256k")
module(load="imtcp")
module(load="imudp")
module(load="imuxsock" SysSock.Use="off")
input(type="imtcp" port="${tcpPort}" address="127.0.0.1")
input(type="imudp" port="${udpPort}" address="127.0.0.1")
input(type="imuxsock" Socket="${socketPath}" RateLimit.Interval="0" UseSpecialParser="off" ParseHostname="on" UseSysTimeStamp="off")
template(name="fields" type="string" string="%pri%|%app-name%|%procid%|%msgid%|%hostname%|%timereported:::date-rfc3339%|%msg%\\n")
action(type="omfile" file="${outputFile}" template="fields")
`,
  );
  const child: ChildProcess = spawn('rsyslogd', ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let exited = false;
  child.on('exit', () => (exited = true));
  await waitFor(`rsyslogd to listen (stderr: ${stderr})`, async () => {
    if (exited) throw new Error(`rsyslogd exited: ${stderr}`);
    if (!existsSync(socketPath)) return false;
    return new Promise<boolean>((resolve) => {
      const probe = connect(tcpPort, '127.0.0.1');
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
  });
  return {
    tcpPort,
    udpPort,
    socketPath,
    lines: () => (existsSync(outputFile) ? readFileSync(outputFile, 'utf8').split('\n').filter((line) => line !== '') : []),
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
