import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { EXIT_NOT_RUNNING, RuntimeFailure, UserFacingError } from '../errors.js';
import { escapeControl } from '../log.js';
import { queryStatus, statusSocketPath } from '../service/status-server.js';

/**
 * `execsentry status`: asks the running agent over its status socket and prints its counters and uptime;
 * exit 3 when no agent answers.
 */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show the running agent\'s counters and uptime (exit 3 when no agent runs)')
    .option('--config <file>', 'the configuration the agent runs with (for its runtime directory)')
    .option('--runtime-dir <dir>', 'the runtime directory holding the status socket (default /run/execsentry)')
    .option('--json', 'print the raw status document (JSON) instead of the summary')
    .action(async (options: { config?: string; runtimeDir?: string; json?: boolean }) => {
      const overrides = options.runtimeDir === undefined ? {} : { runtimeDir: options.runtimeDir };
      const { config } = loadConfig({ configFile: options.config, overrides, resolveSecrets: false });
      const socket = statusSocketPath(config.runtimeDir);
      const answer = await queryStatus(socket);
      if (!answer.running) {
        if (answer.denied || 'foreign' in answer) throw new RuntimeFailure(answer.reason);
        throw new UserFacingError(`no agent is running: ${answer.reason}`, EXIT_NOT_RUNNING);
      }
      process.stdout.write(options.json === true ? `${JSON.stringify(answer.snapshot)}\n` : formatStatus(answer.snapshot));
    });
}

/**
 * The summary: who answers and for how long, then one line per section with its counters (nested
 * objects flattened as a.b=value); every value escaped, since output names and errors come from outside.
 */
export function formatStatus(snapshot: unknown): string {
  const document = (snapshot ?? {}) as Record<string, unknown>;
  const lines: string[] = [];
  const version = typeof document['version'] === 'string' ? document['version'] : '?';
  const pid = typeof document['pid'] === 'number' ? document['pid'] : '?';
  const state = typeof document['state'] === 'string' ? document['state'] : 'unknown';
  const uptime = typeof document['uptimeSeconds'] === 'number' ? formatDuration(document['uptimeSeconds']) : '?';
  lines.push(`execsentry ${version} ${state} (pid ${pid}), up ${uptime}${typeof document['startedAt'] === 'string' ? ` since ${document['startedAt']}` : ''}`);
  for (const [section, value] of Object.entries(document)) {
    if (['version', 'pid', 'state', 'uptimeSeconds', 'startedAt'].includes(section)) continue;
    if (section === 'ruleCounters' && Array.isArray(value)) {
      lines.push(...ruleLines(value));
      continue;
    }
    if (section === 'outputs' && value !== null && typeof value === 'object') {
      for (const [name, stats] of Object.entries(value)) lines.push(`output ${name}: ${flatten(stats).join(' ')}`);
      continue;
    }
    const pairs = value !== null && typeof value === 'object' ? flatten(value) : [String(value)];
    lines.push(`${section}: ${pairs.length > 0 ? pairs.join(' ') : '(none)'}`);
  }
  return lines.map((line) => escapeControl(line)).join('\n') + '\n';
}

/** One line per rule that matched anything (why a rule alerted or stayed silent), then how many did not. */
function ruleLines(rules: readonly unknown[]): string[] {
  const lines: string[] = [];
  let idle = 0;
  for (const entry of rules) {
    const rule = (entry ?? {}) as Record<string, unknown>;
    if (typeof rule['matches'] !== 'number' || rule['matches'] === 0) {
      idle += 1;
      continue;
    }
    lines.push(`rule ${JSON.stringify(String(rule['name']))} (${String(rule['ruleId'])}): matches=${rule['matches']} alerts=${String(rule['alerts'])} knownTerms=${String(rule['knownTerms'])} suppressed=${String(rule['suppressed'])}`);
  }
  lines.push(`rules without a match: ${idle}`);
  return lines;
}

function flatten(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object') return [`${prefix}=${String(value)}`];
  const pairs: string[] = [];
  for (const [key, inner] of Object.entries(value)) {
    if (inner === undefined) continue;
    pairs.push(...flatten(inner, prefix === '' ? key : `${prefix}.${key}`));
  }
  return pairs;
}

/** 3725 → "1h 02m 05s" */
export function formatDuration(totalSeconds: number): string {
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = Math.floor(totalSeconds % 60);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (days > 0) return `${days}d ${hours}h ${pad(minutes)}m`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m ${pad(seconds)}s`;
  return `${minutes}m ${pad(seconds)}s`;
}
