import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions } from 'node:https';
import { gunzipSync } from 'node:zlib';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** the body, gunzipped when it was sent gzip-encoded */
  body: string;
  at: number;
}

/** What the collector does with the n-th request (0-based); `undefined` = never answer. */
export type Behaviour = (request: ReceivedRequest, index: number) => { status: number; headers?: Record<string, string>; body?: string } | undefined;

export interface HttpCollector {
  port: number;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

/** A real HTTP(S) server on 127.0.0.1 answering as `behaviour` says, recording every request. */
export async function startHttpCollector(behaviour: Behaviour, options: { port?: number; tls?: ServerOptions } = {}): Promise<HttpCollector> {
  const requests: ReceivedRequest[] = [];
  const hanging: ServerResponse[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
      const request: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() };
      requests.push(request);
      const answer = behaviour(request, requests.length - 1);
      if (answer === undefined) {
        hanging.push(res);
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '{}');
    });
  };
  const server: Server = options.tls === undefined ? createHttpServer(handler) : createHttpsServer(options.tls, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    requests,
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The event.id of every alert in an NDJSON body. */
export function idsInNdjson(body: string): string[] {
  return body
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { event: { id: string } }).event.id);
}
