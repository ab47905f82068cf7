import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { afterEach } from 'vitest';
import type { Alert, ProcessEvent } from '../../src/ecs/types.js';
import { replayEvents } from '../../src/engine/replay.js';
import type { LoadedRule } from '../../src/rules/index.js';
import { openHistoryStore } from '../../src/store/index.js';

const created: string[] = [];
afterEach(() => {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'execsentry-engine-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** A pino logger whose records are kept for assertions. */
export function recordingLogger(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, records };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> | undefined : T[K] | undefined };

function merge(base: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const current = out[key];
    if (value === undefined) delete out[key];
    else if (typeof value === 'object' && value !== null && !Array.isArray(value) && typeof current === 'object' && current !== null && !Array.isArray(current)) {
      out[key] = merge(current as Record<string, unknown>, value as Record<string, unknown>);
    } else out[key] = value;
  }
  return out;
}

/**
 * An exec event as the sensor shapes it (ARCHITECTURE.md section 3): by default an interactive bash
 * started by the system user daemon from a parent shell, which the built-in rule matches.
 */
export function execEvent(timestamp: string, overrides: DeepPartial<ProcessEvent> = {}): ProcessEvent {
  const base: ProcessEvent = {
    '@timestamp': timestamp,
    event: {
      kind: 'event',
      category: ['process'],
      type: ['start'],
      action: 'exec',
      id: `event-${timestamp}`,
      created: timestamp,
      module: 'execsentry',
      dataset: 'execsentry.process',
    },
    ecs: { version: '8.11.0' },
    process: {
      pid: 4242,
      entity_id: 'ZW50aXR5LTQyNDI=',
      executable: '/usr/bin/bash',
      name: 'bash',
      args: ['/bin/bash', '-i'],
      args_count: 2,
      command_line: '/bin/bash -i',
      working_directory: '/usr/sbin',
      start: timestamp,
      interactive: true,
      tty: { char_device: { major: 136, minor: 3 } },
      session_leader: { pid: 4242 },
      group_leader: { pid: 4242 },
      user: { id: '1', name: 'daemon' },
      real_user: { id: '1', name: 'daemon' },
      saved_user: { id: '1', name: 'daemon' },
      group: { id: '1', name: 'daemon' },
      real_group: { id: '1', name: 'daemon' },
      saved_group: { id: '1', name: 'daemon' },
      thread: { capabilities: { effective: [], permitted: [] } },
      parent: {
        pid: 4241,
        entity_id: 'ZW50aXR5LTQyNDE=',
        executable: '/usr/sbin/runuser',
        name: 'runuser',
        args: ['runuser', '-u', 'daemon', '--', '/bin/bash', '-i'],
        args_count: 6,
        command_line: 'runuser -u daemon -- /bin/bash -i',
        working_directory: '/root',
        start: timestamp,
        interactive: true,
        user: { id: '0' },
        group: { id: '0' },
      },
    },
    user: { id: '1', name: 'daemon', effective: { id: '1', name: 'daemon' } },
    group: { id: '1', name: 'daemon' },
    host: {
      id: '0123456789abcdef0123456789abcdef',
      name: 'testhost',
      hostname: 'testhost',
      architecture: 'x86_64',
      os: { type: 'linux', family: 'debian', name: 'Debian GNU/Linux', version: '12', kernel: '6.1.0', platform: 'debian' },
    },
    agent: { type: 'execsentry', version: '0.1.0', id: 'c0ffee00-0000-4000-8000-000000000000' },
  };
  return merge(base as unknown as Record<string, unknown>, overrides as Record<string, unknown>) as unknown as ProcessEvent;
}

/** Replays `events` through `rules` with a history in `stateDir` (fresh when omitted); returns the alerts. */
export async function replay(
  rules: readonly LoadedRule[],
  events: readonly object[],
  options: { stateDir?: string; logger?: Logger } = {},
): Promise<Alert[]> {
  const dir = tempDir();
  const eventsFile = join(dir, 'events.ndjson');
  writeFileSync(eventsFile, events.map((event) => JSON.stringify(event)).join('\n') + '\n');
  const logger = options.logger ?? recordingLogger().logger;
  const store = await openHistoryStore({ stateDir: options.stateDir ?? join(dir, 'state'), maxTuplesPerRule: 1000, logger });
  const alerts: Alert[] = [];
  try {
    await replayEvents({ rules, store, logger, eventsName: eventsFile, events: createReadStream(eventsFile), emit: (alert) => alerts.push(alert) });
  } finally {
    await store.close();
  }
  return alerts;
}

export const DAY_MS = 86_400_000;

export function isoAfter(startIso: string, ms: number): string {
  return new Date(Date.parse(startIso) + ms).toISOString();
}
