import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { makeDirectories } from '../io/files.js';

/** The status socket's file name in the runtime directory. */
export const STATUS_SOCKET_NAME = 'execsentry.sock';

export function statusSocketPath(runtimeDir: string): string {
  return join(runtimeDir, STATUS_SOCKET_NAME);
}

/**
 * The unix socket `execsentry status` asks: each connection gets the current snapshot as one JSON document
 * and is closed. Mode 0600 in a 0700 runtime directory: the counters name rules and outputs, which are the
 * operator's business only.
 */
export class StatusServer {
  private server: Server | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly snapshot: () => unknown,
    private readonly logger: Logger,
  ) {}

  /**
   * Starts serving. Resolves false (with one warning) when it cannot — no permission for the runtime
   * directory, or another live agent answers there — because the agent itself works without it.
   */
  async start(): Promise<boolean> {
    try {
      makeDirectories(join(this.socketPath, '..'), 0o700);
      if (await answers(this.socketPath)) {
        this.logger.warn({ socket: this.socketPath }, 'another execsentry agent answers on the status socket; this one serves no status');
        return false;
      }
      // Nothing answers: a socket file left by an agent that was killed; binding needs the name free.
      await unlink(this.socketPath).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      const server = createServer((connection) => {
        connection.on('error', () => connection.destroy());
        let body: string;
        try {
          body = JSON.stringify(this.snapshot()) + '\n';
        } catch (err) {
          body = JSON.stringify({ error: err instanceof Error ? err.message : String(err) }) + '\n';
        }
        connection.end(body);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (err) => this.logger.warn({ err: err.message }, 'status socket error'));
      await chmod(this.socketPath, 0o600);
      this.server = server;
      this.logger.debug({ socket: this.socketPath }, 'status socket listening');
      return true;
    } catch (err) {
      this.logger.warn(
        { socket: this.socketPath, err: err instanceof Error ? err.message : String(err) },
        'cannot serve the status socket; `execsentry status` will not reach this agent',
      );
      return false;
    }
  }

  /** Idempotent; removes the socket file so `execsentry status` reports "not running" at once. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.socketPath).catch(() => undefined);
  }
}

/** True when something accepts connections on the socket. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** The outcome of asking the status socket. */
export type StatusQuery =
  | { running: true; snapshot: unknown }
  | { running: false; reason: string; denied: boolean }
  /** Something answers on the socket, but not an execsentry agent: a runtime failure, not "not running". */
  | { running: false; reason: string; denied: false; foreign: true };

/** An agent's status document is a few KiB; an answer past this is not one, and is not read further. */
const MAX_STATUS_ANSWER_BYTES = 1024 * 1024;

/** Asks a running agent for its snapshot; `running: false` when nothing answers (no agent). */
export function queryStatus(socketPath: string, timeoutMs = 5_000): Promise<StatusQuery> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const connection = createConnection(socketPath);
    const timer = setTimeout(() => {
      connection.destroy();
      resolve({ running: false, reason: `the agent on ${socketPath} did not answer within ${timeoutMs} ms`, denied: false });
    }, timeoutMs);
    connection.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_STATUS_ANSWER_BYTES) {
        clearTimeout(timer);
        connection.destroy();
        resolve(foreign(socketPath, `answered more than ${MAX_STATUS_ANSWER_BYTES / 1024 / 1024} MiB`));
        return;
      }
      chunks.push(chunk);
    });
    connection.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        err.code === 'ENOENT'
          ? `no status socket at ${socketPath}`
          : err.code === 'ECONNREFUSED'
            ? `nothing answers on ${socketPath} (a stale socket)`
            : err.code === 'EACCES'
              ? `permission denied on ${socketPath} (run as root or as the execsentry user)`
              : `${socketPath}: ${err.message}`;
      resolve({ running: false, reason: why, denied: err.code === 'EACCES' });
    });
    connection.once('end', () => {
      clearTimeout(timer);
      let snapshot: unknown;
      try {
        snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        resolve(foreign(socketPath, 'answered something that is not JSON'));
        return;
      }
      const document = snapshot as Record<string, unknown> | null;
      if (document === null || typeof document !== 'object' || typeof document['version'] !== 'string' || typeof document['pid'] !== 'number') {
        resolve(foreign(socketPath, 'answered JSON that is not an execsentry status document (no version and pid)'));
        return;
      }
      resolve({ running: true, snapshot });
    });
  });
}

function foreign(socketPath: string, what: string): StatusQuery {
  return { running: false, reason: `${socketPath} ${what}: is another program listening there?`, denied: false, foreign: true };
}
