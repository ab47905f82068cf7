import type { Logger } from '../log.js';
import { native } from '../native.js';

/**
 * sd_notify(3) for a Type=notify unit: READY=1, WATCHDOG=1, STATUS=…, STOPPING=1, sent as datagrams by
 * the addon (Node has no unix datagram sockets). Outside systemd ($NOTIFY_SOCKET unset) every call is a
 * no-op, so `execsentry run` in a terminal behaves the same with or without it.
 */
export class SystemdNotifier {
  private readonly socket: string | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private failed = false;
  private lastStatus: string | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    const socket = env.NOTIFY_SOCKET;
    this.socket = socket === undefined || socket === '' ? undefined : socket;
  }

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /**
   * The watchdog interval systemd asked for (WatchdogSec= → $WATCHDOG_USEC), in ms, or undefined when
   * there is none or it is meant for another process ($WATCHDOG_PID).
   */
  watchdogIntervalMs(): number | undefined {
    if (!this.enabled) return undefined;
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.env.WATCHDOG_PID;
    if (pid !== undefined && pid !== '' && Number(pid) !== process.pid) return undefined;
    return usec / 1000;
  }

  /**
   * Pings WATCHDOG=1 at half the interval systemd allows. The timer runs on the event loop on purpose:
   * a loop wedged long enough to miss two pings gets the agent restarted (Restart=on-failure).
   */
  startWatchdog(): void {
    const intervalMs = this.watchdogIntervalMs();
    if (intervalMs === undefined || this.watchdog !== undefined) return;
    this.send('WATCHDOG=1');
    this.watchdog = setInterval(() => this.send('WATCHDOG=1'), Math.max(1, Math.floor(intervalMs / 2)));
    this.watchdog.unref();
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${oneLine(status)}`);
    this.lastStatus = status;
  }

  /** STATUS=… shown by `systemctl status`; unchanged text is not sent again. */
  status(text: string): void {
    if (text === this.lastStatus) return;
    this.lastStatus = text;
    this.send(`STATUS=${oneLine(text)}`);
  }

  stopping(): void {
    this.stopWatchdog();
    this.send('STOPPING=1\nSTATUS=stopping');
  }

  stopWatchdog(): void {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private send(message: string): void {
    if (this.socket === undefined) return;
    try {
      native().sdNotify(this.socket, message);
      this.failed = false;
    } catch (err) {
      // Reported once per run of failures: a full or vanished socket must not flood the log.
      if (!this.failed) this.logger.warn({ err: err instanceof Error ? err.message : String(err), socket: this.socket }, 'sd_notify failed');
      this.failed = true;
    }
  }
}

/** A STATUS= value is one line of the notify message; a newline would start a new assignment. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
