import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { ValidationError } from '../errors.js';
import { MiB, readRegularFile, UnreadableFile } from '../io/files.js';

const gzip = promisify(gzipCallback);
/** Collector answers larger than this are cut (an Elasticsearch _bulk answer for 10,000 items fits). */
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** skip certificate verification (tests only) */
  insecure: boolean;
}

export interface TlsSettings {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  insecure?: boolean | undefined;
}

/** A CA bundle with every public root is about 200 KiB. */
const MAX_PEM_FILE_BYTES = 4 * MiB;

async function readSetting(what: string, path: string, outputLabel: string): Promise<Buffer> {
  try {
    return await readRegularFile(path, MAX_PEM_FILE_BYTES);
  } catch (err) {
    throw new ValidationError(`output ${outputLabel}: ${what} ${JSON.stringify(path)}: ${err instanceof UnreadableFile ? err.reason : (err as Error).message}`);
  }
}

/** Reads the CA, client certificate and key named in the settings; a missing file is a ValidationError. */
export async function loadTls(settings: TlsSettings, outputLabel: string): Promise<TlsMaterial> {
  if ((settings.certFile === undefined) !== (settings.keyFile === undefined))
    throw new ValidationError(`output ${outputLabel}: certFile and keyFile go together (client certificate and its key)`);
  const material: TlsMaterial = { insecure: settings.insecure === true };
  if (settings.caFile !== undefined) material.ca = await readSetting('caFile', settings.caFile, outputLabel);
  if (settings.certFile !== undefined) material.cert = await readSetting('certFile', settings.certFile, outputLabel);
  if (settings.keyFile !== undefined) material.key = await readSetting('keyFile', settings.keyFile, outputLabel);
  return material;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpPosterOptions {
  /** http: or https: URL of the endpoint (path included) */
  url: URL;
  headers: Record<string, string>;
  tls: TlsMaterial;
  timeoutMs: number;
  gzip: boolean;
}

/**
 * POSTs bodies to one collector over one kept-alive connection, one request at a time. Network failures
 * and timeouts reject; every HTTP answer (any status) resolves, for the caller to classify.
 */
export class HttpPoster {
  private readonly agent: HttpAgent;
  private readonly isHttps: boolean;

  constructor(private readonly options: HttpPosterOptions) {
    this.isHttps = options.url.protocol === 'https:';
    const { tls } = options;
    this.agent = this.isHttps
      ? new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure })
      : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  }

  async post(body: Buffer, contentType: string, path?: string): Promise<HttpResponse> {
    const payload = this.options.gzip ? await gzip(body) : body;
    const headers: Record<string, string | number> = {
      ...this.options.headers,
      'content-type': contentType,
      'content-length': payload.length,
    };
    if (this.options.gzip) headers['content-encoding'] = 'gzip';
    const url = this.options.url;
    const request = this.isHttps ? httpsRequest : httpRequest;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = request(
        {
          protocol: url.protocol,
          hostname: url.hostname.replace(/^\[|\]$/g, ''),
          port: url.port === '' ? undefined : Number(url.port),
          path: path ?? `${url.pathname}${url.search}`,
          method: 'POST',
          agent: this.agent,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            if (size < MAX_RESPONSE_BYTES) chunks.push(chunk);
            size += chunk.length;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.setTimeout(this.options.timeoutMs, () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The URL without user and password, for names, logs and counters. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}
