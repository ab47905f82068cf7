import type { SpoolRecord } from './spool.js';
import type { BatchResult, ItemOutcome, Transport } from './delivery.js';
import { HttpPoster, type HttpResponse } from './http-client.js';
import { parseRetryAfter } from './time.js';

const NEWLINE = Buffer.from('\n');

/** 408, 429 and 5xx mean "try again later" (RFC 9110); any other 4xx will not succeed by repeating it. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Joins spooled alerts (each one JSON text) into an NDJSON body. */
export function ndjsonBody(records: readonly SpoolRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const record of records) parts.push(record.payload, NEWLINE);
  return Buffer.concat(parts);
}

/** Classifies a whole-request answer: one outcome for every record. */
export function wholeBatchOutcome(response: HttpResponse, count: number): BatchResult {
  const { status } = response;
  if (status >= 200 && status < 300) return { outcomes: new Array<ItemOutcome>(count).fill('ack') };
  const retryAfterMs = parseRetryAfter(headerValue(response.headers['retry-after']));
  if (isRetryableStatus(status))
    return { outcomes: new Array<ItemOutcome>(count).fill('retry'), error: `HTTP ${status}`, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  const refusal: ItemOutcome = { deadLetter: `HTTP ${status}`, response: response.body };
  return { outcomes: new Array<ItemOutcome>(count).fill(refusal), error: `HTTP ${status}` };
}

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * `http://…` / `https://…`: one POST of NDJSON (`application/x-ndjson`) per batch. 2xx acknowledges the
 * batch, 408/429/5xx and network errors retry it, any other status dead-letters it with the response.
 */
export class HttpTransport implements Transport {
  readonly kind = 'http';

  constructor(private readonly poster: HttpPoster) {}

  async deliver(records: readonly SpoolRecord[]): Promise<BatchResult> {
    const response = await this.poster.post(ndjsonBody(records), 'application/x-ndjson');
    return wholeBatchOutcome(response, records.length);
  }

  async close(): Promise<void> {
    this.poster.close();
  }
}
