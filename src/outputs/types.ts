import { documentJson } from '../ecs/json.js';
import type { Alert } from '../ecs/types.js';
import type { Logger } from '../log.js';

/** What every output reports; the agent's periodic stats line and the status socket show these. */
export interface OutputStats {
  /** stdout, file, http, elasticsearch, syslog */
  kind: string;
  /** alerts handed to the transport (a resend counts again) */
  sent: number;
  /** alerts the destination confirmed (or, for stdout/file, wrote) */
  acknowledged: number;
  /** alerts sent again after a retryable failure */
  retried: number;
  /** alerts lost: spool full (oldest dropped), stdout closed, local write failed */
  dropped: number;
  /** alerts the destination refused for good, kept in the dead-letter file */
  deadLettered: number;
  /** bytes held in this output's disk spool (0 for local outputs) */
  spoolBytes: number;
  /** alerts waiting in the spool (or write queue) */
  pending: number;
  /** the most recent failure of any kind: a batch to retry, a refusal into the dead-letter file, a failed write */
  lastError?: string;
  lastErrorAt?: string;
}

export interface OutputContext {
  stateDir: string;
  logger: Logger;
  /** stdout alert format; the caller decides (default pretty when stdout is a terminal). */
  format?: 'json' | 'pretty';
  /**
   * Called once when the reader of stdout went away (EPIPE, e.g. `execsentry run | head`). The stdout
   * output stops writing and counts further alerts as dropped; `run` typically stops the agent here.
   */
  onStdoutClosed?: () => void;
}

/** An alert with its JSON text made at most once, however many outputs need it. */
export class EncodedAlert {
  private text: string | undefined;

  constructor(readonly alert: Alert) {}

  get json(): string {
    this.text ??= documentJson(this.alert);
    return this.text;
  }
}

/** Where an output keeps the alerts its destination refused for good, and the way back into its delivery. */
export interface DeadLetterTarget {
  /** the output's dead-letter file (rotated ones are `<path>.1` … `.N`) */
  readonly path: string;
  /** Puts a refused alert back into delivery; resolves once it is durably queued, rejects when it is not. */
  requeue(id: string, alertJson: string): Promise<void>;
  /** Bytes of alerts that can be requeued before the bounded spool would drop its oldest ones. */
  freeBytes(): number;
}

/** One destination. Implementations live one per file in this directory. */
export interface Output {
  readonly name: string;
  /** Only outputs whose destination can refuse an alert (the network ones) have a dead-letter file. */
  readonly deadLetters?: DeadLetterTarget;
  /** Takes the alert; resolves once it is durably held (spooled and fsynced) for network outputs. */
  send(encoded: EncodedAlert): Promise<void>;
  /** Waits until everything taken was delivered, or the time is up (then resolves anyway). */
  flush(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
  stats(): OutputStats;
}

export function emptyStats(kind: string): OutputStats {
  return { kind, sent: 0, acknowledged: 0, retried: 0, dropped: 0, deadLettered: 0, spoolBytes: 0, pending: 0 };
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
