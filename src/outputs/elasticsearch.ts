import type { SpoolRecord } from './spool.js';
import type { BatchResult, ItemOutcome, Transport } from './delivery.js';
import { HttpPoster } from './http-client.js';
import { isRetryableStatus, wholeBatchOutcome } from './http.js';

export const DEFAULT_DATA_STREAM = 'logs-execsentry.alerts-default';

const NEWLINE = Buffer.from('\n');

interface BulkItemResult {
  status?: number;
  error?: unknown;
}

interface BulkResponse {
  errors?: boolean;
  items?: Array<Record<string, BulkItemResult | undefined>>;
}

/**
 * `elasticsearch://`, `elasticsearchs://`, `es+https://`: the _bulk API spoken directly (one POST per batch,
 * `create` actions into a data stream, `_id` = the alert's event.id). Per item: 201 created and 409
 * "already exists" (an earlier attempt got through) acknowledge, 429 and 5xx retry only that item, anything
 * else (400 mapping errors) goes to the dead-letter file with the item's error.
 */
export class ElasticsearchTransport implements Transport {
  readonly kind = 'elasticsearch';
  private readonly bulkPath: string;

  constructor(
    private readonly poster: HttpPoster,
    basePath: string,
    index: string,
  ) {
    const prefix = basePath.replace(/\/+$/, '');
    // filter_path keeps the answer small: only what the per-item decision needs
    this.bulkPath = `${prefix}/${encodeURIComponent(index)}/_bulk?filter_path=errors,items.*.status,items.*.error`;
  }

  async deliver(records: readonly SpoolRecord[]): Promise<BatchResult> {
    const parts: Buffer[] = [];
    for (const record of records) parts.push(Buffer.from(`{"create":{"_id":${JSON.stringify(record.key)}}}\n`), record.payload, NEWLINE);
    const response = await this.poster.post(Buffer.concat(parts), 'application/x-ndjson', this.bulkPath);
    if (response.status < 200 || response.status >= 300) return wholeBatchOutcome(response, records.length);
    let parsed: BulkResponse;
    try {
      parsed = JSON.parse(response.body) as BulkResponse;
    } catch {
      return { outcomes: records.map(() => 'retry'), error: `unreadable _bulk answer (HTTP ${response.status})` };
    }
    if (parsed.errors === false) return { outcomes: records.map(() => 'ack') };
    const items = parsed.items;
    if (!Array.isArray(items) || items.length !== records.length)
      return { outcomes: records.map(() => 'retry'), error: `_bulk answer has ${Array.isArray(items) ? items.length : 'no'} items for ${records.length} actions` };
    let retryStatus: number | undefined;
    const outcomes = items.map((item): ItemOutcome => {
      const result = item.create ?? Object.values(item)[0];
      const status = result?.status ?? 0;
      if ((status >= 200 && status < 300) || status === 409) return 'ack';
      if (isRetryableStatus(status)) {
        retryStatus ??= status;
        return 'retry';
      }
      return { deadLetter: `_bulk item status ${status}`, response: JSON.stringify(result?.error ?? null) };
    });
    return retryStatus === undefined ? { outcomes } : { outcomes, error: `_bulk items answered ${retryStatus}` };
  }

  async close(): Promise<void> {
    this.poster.close();
  }
}
