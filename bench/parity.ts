/**
 * `npm run bench:parity`: how many of the fields of Elastic Defend's Linux exec event
 * (../shared/ecs/elastic-defend-linux-exec-fields.txt) the exec event of an interactive login shell carries,
 * and why each missing one is missing.
 *
 * Models a real interactive login: a real sshd on 127.0.0.1 (test/helpers/sshd.ts, as the session test's),
 * `ssh -tt` to it as a login user created for the run (`execsentry-parity`, a bash login shell with the
 * supplemental groups `users` and `cdrom`, removed at the end), the client sending LD_LIBRARY_PATH (SetEnv,
 * which the server accepts). Two `execsentry events` watch the same login at once: one with the default
 * configuration, one with every opt-in (sensor.envVars, sensor.hashes md5+sha1+sha256, sensor.events with
 * fork and end). Each one's exec event of the login shell (`-bash`) is counted, and each missing field is
 * put under the first reason of ABSENCE_RULES that explains it. Needs root, and openssh-server and
 * -client (scripts/system-deps.sh installs them). BENCH_PARITY_CLI runs another build of the CLI;
 * BENCH_PARITY_EVENTS=FILE writes the events counted (NDJSON) to FILE.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { ProcessEvent } from '../src/ecs/types.js';
import { SSH, sshdUnavailable, startSshd } from '../test/helpers/sshd.js';

const CLI = resolve(process.env.BENCH_PARITY_CLI ?? 'dist/cli.js');
const DEFEND_FIELDS_PATH = '../shared/ecs/elastic-defend-linux-exec-fields.txt';
const DEFEND_FIELDS = resolve(DEFEND_FIELDS_PATH);
const README = resolve('README.md');
const LOGIN_USER = 'execsentry-parity';
const LOGIN_GROUPS = ['users', 'cdrom'];
/** Sent by the client, as `ssh -o SetEnv` sends it; the other captured names sshd itself sets. */
const CLIENT_ENVIRONMENT = { LD_LIBRARY_PATH: '/opt/parity/lib' };
const ENV_VAR_NAMES = ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'PATH', 'HOME', 'SSH_CONNECTION'];
const HASH_ALGORITHMS = ['md5', 'sha1', 'sha256'];

interface Configuration {
  label: string;
  /** EXECSENTRY_* variables over the defaults (src/config.ts's environment layer). */
  environment: Record<string, string>;
}

const CONFIGURATIONS: Configuration[] = [
  { label: 'default configuration', environment: {} },
  {
    label: `every opt-in (sensor.envVars ${ENV_VAR_NAMES.join(',')}; sensor.hashes ${HASH_ALGORITHMS.join(',')}; sensor.events exec,fork,end)`,
    environment: { EXECSENTRY_SENSOR_ENV_VARS: ENV_VAR_NAMES.join(','), EXECSENTRY_SENSOR_HASHES: HASH_ALGORITHMS.join(','), EXECSENTRY_SENSOR_EVENTS: 'exec,fork,end' },
  },
];

/** Before anything is set up: say why and stop. */
const fail = (message: string): never => {
  process.stderr.write(`bench:parity: ${message}\n`);
  process.exit(1);
};
/** Once the user, sshd or agents exist: throw, so that the finally blocks take them down. */
const raise = (message: string): never => {
  throw new Error(`bench:parity: ${message}`);
};

if (process.getuid?.() !== 0) fail('needs root (the process connector, useradd, sshd)');
const unavailable = sshdUnavailable();
if (unavailable !== undefined) fail(`needs an ssh login over loopback: ${unavailable}`);

const defendFields = readFileSync(DEFEND_FIELDS, 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

/**
 * The README's list of the Defend fields "a host on its own cannot know": each backticked field name, `x.*`
 * and `x.{a,b}` patterns expanded, under the pattern as the README writes it. Read from the README so that a
 * field counts as unknowable only when the user contract says it is.
 */
function fieldsReadmeCallUnknowable(): { pattern: string; matches(field: string): boolean }[] {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('cannot know, and that execsentry therefore never sets:');
  if (start < 0) fail(`${README}: no list of the fields a host cannot know ("cannot know, and that execsentry therefore never sets:")`);
  // Each bullet names its fields before its first ': ', then says why.
  const bullets = (text.slice(start).split('\n\n')[1] ?? '').split(/^- /m).slice(1);
  const patterns = bullets.flatMap((bullet) => [...bullet.split(': ')[0]!.matchAll(/`([A-Za-z@][\w.]*(?:\.\*|\.\{[\w.,]+\})?)`/g)].map((match) => match[1]!));
  if (patterns.length === 0) fail(`${README}: the list of the fields a host cannot know names none`);
  return patterns.map((pattern) => {
    const braces = /^(.*)\.\{(.*)\}$/.exec(pattern);
    const names = braces === null ? [pattern] : braces[2]!.split(',').map((name) => `${braces[1]}.${name}`);
    return { pattern, matches: (field) => names.some((name) => (name.endsWith('.*') ? field.startsWith(name.slice(0, -1)) : field === name)) };
  });
}
const unknowable = fieldsReadmeCallUnknowable();

/**
 * Every dotted path that holds a value in `document` (array elements under their array's path). An empty
 * array holds none: a non-root shell's empty `process.thread.capabilities.*` count as absent.
 */
function fieldPaths(document: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(document)) for (const item of document) fieldPaths(item, prefix, out);
  else if (typeof document === 'object' && document !== null) {
    for (const [key, value] of Object.entries(document)) fieldPaths(value, prefix === '' ? key : `${prefix}.${key}`, out);
  } else if (document !== undefined && document !== null) out.add(prefix);
  return out;
}

function valueAt(document: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined), document);
}

/** What the bench read of a process in /proc while it lived, to check the agent's event against. */
interface ProcFacts {
  pid: number;
  /** Uid: and Gid: of /proc/PID/status: real, effective, saved, filesystem. */
  uids: string[];
  gids: string[];
  groups: string[];
  capEff: string;
  capPrm: string;
  /** stat's tty_nr: 0 without a controlling terminal. */
  ttyNr: number;
  cgroup: string;
}

function procFacts(pid: number): ProcFacts {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim().split(/\s+/).filter((word) => word !== '') ?? [];
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return {
    pid,
    uids: line('Uid'),
    gids: line('Gid'),
    groups: line('Groups'),
    capEff: line('CapEff')[0] ?? '?',
    capPrm: line('CapPrm')[0] ?? '?',
    ttyNr: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[4]),
    cgroup: readFileSync(`/proc/${pid}/cgroup`, 'utf8'),
  };
}

/** Where the event's ids of a process differ from /proc's (read while it lived, after the exec): stale values. */
function idMismatches(label: string, described: ProcessEvent['process'] | ProcessEvent['process']['parent'], facts: ProcFacts): string[] {
  const expected: [string, unknown, unknown][] = [
    ['user.id', described?.user?.id, facts.uids[1]],
    ['real_user.id', described?.real_user?.id, facts.uids[0]],
    ['group.id', described?.group?.id, facts.gids[1]],
    ['real_group.id', described?.real_group?.id, facts.gids[0]],
    ['supplemental_groups.id', described?.supplemental_groups?.map((group) => group.id).join(' '), facts.groups.join(' ')],
  ];
  // An absent field is counted as such above; here only values that are there.
  return expected.filter(([, got, want]) => got !== undefined && got !== want).map(([field, got, want]) => `${label}.${field} is ${JSON.stringify(got)}, /proc/${facts.pid}/status says ${JSON.stringify(want)}`);
}

interface Observation {
  configuration: Configuration;
  exec: ProcessEvent;
  end: ProcessEvent | undefined;
  shell: ProcFacts;
  parent: ProcFacts;
}

const REASONS = ['not in an exec event', 'a host cannot know (README)', 'opt-in, off in this configuration', 'not in this event on this host', 'missing'] as const;
type Reason = (typeof REASONS)[number];

/** A runtime's cgroup names (src/sensor/container.ts's, and LXC's): none in the shell's cgroup, no container. */
const CONTAINER_CGROUP = /docker|containerd|crio|libpod|kubepods|lxc/;

/**
 * Why a Defend field is absent from the exec event: the first rule whose `explains` gives a reason, checked
 * against the event, the configuration and the shell as it was; a field no rule explains is "missing".
 */
const ABSENCE_RULES: { reason: Reason; explains(field: string, seen: Observation): string | undefined }[] = [
  {
    reason: 'not in an exec event',
    // Defend's list is its process data stream's; these two are set on end events (README: fork and end events).
    explains: (field, seen) => {
      if (field !== 'process.end' && field !== 'process.exit_code') return undefined;
      if (seen.end === undefined) return 'set on end events (sensor.events has no "end" here)';
      const value = valueAt(seen.end, field);
      return value === undefined ? undefined : 'set on end events: this shell\'s end event has them';
    },
  },
  {
    reason: 'a host cannot know (README)',
    explains: (field) => unknowable.find((entry) => entry.matches(field))?.pattern,
  },
  {
    reason: 'opt-in, off in this configuration',
    explains: (field, seen) => {
      if (field === 'process.env_vars' && seen.configuration.environment.EXECSENTRY_SENSOR_ENV_VARS === undefined) return 'sensor.envVars empty';
      const algorithm = /^process\.hash\.(\w+)$/.exec(field)?.[1];
      if (algorithm !== undefined && !(seen.configuration.environment.EXECSENTRY_SENSOR_HASHES ?? '').split(',').includes(algorithm)) return 'sensor.hashes empty';
      return undefined;
    },
  },
  {
    reason: 'not in this event on this host',
    explains: (field, seen) => {
      const capabilities = /^process\.thread\.capabilities\.(effective|permitted)$/.exec(field)?.[1];
      if (capabilities !== undefined) {
        const set = capabilities === 'effective' ? seen.shell.capEff : seen.shell.capPrm;
        const value = valueAt(seen.exec, field);
        return /^0+$/.test(set) && Array.isArray(value) && value.length === 0 ? `an empty array: user ${seen.exec.user?.name} has no capabilities (/proc/${seen.shell.pid}/status CapEff ${seen.shell.capEff}, CapPrm ${seen.shell.capPrm})` : undefined;
      }
      if (field === 'container.id') return CONTAINER_CGROUP.test(seen.shell.cgroup) ? undefined : `not in a container: the shell's cgroup is ${seen.shell.cgroup.trim().replaceAll('\n', '; ')}`;
      if (field.startsWith('process.parent.tty.')) return seen.parent.ttyNr === 0 ? `the parent (${seen.exec.process.parent?.name}, the session's process) has no controlling terminal (tty_nr 0 in /proc/${seen.parent.pid}/stat)` : undefined;
      return undefined;
    },
  },
  {
    reason: 'missing',
    // Still missing: this rule only says why. Defend's package lists event.outcome for process events; its
    // sample Linux exec event (elastic/detection-rules#2367) has none, and nothing here derives one.
    explains: (field, seen) => {
      if (field === 'event.outcome') return 'execsentry sets no event.outcome (Defend\'s sample Linux exec event in detection-rules#2367 has none either)';
      if (field.startsWith('process.parent.supplemental_groups.') && seen.parent.groups.length > 0) {
        return `the parent set its groups after its last exec (/proc/${seen.parent.pid}/status Groups: ${seen.parent.groups.join(' ')}); no connector record tells of setgroups(), and the table keeps what that exec's snapshot read`;
      }
      return undefined;
    },
  },
];

function classify(seen: Observation): { present: number; absent: Map<Reason, Map<string, string[]>> } {
  const present = fieldPaths(seen.exec);
  const absent = new Map<Reason, Map<string, string[]>>(REASONS.map((reason) => [reason, new Map()]));
  let count = 0;
  for (const field of defendFields) {
    if (present.has(field)) {
      count++;
      continue;
    }
    let reason: Reason = 'missing';
    let why = 'no value in the event';
    for (const rule of ABSENCE_RULES) {
      const found = rule.explains(field, seen);
      if (found !== undefined) {
        reason = rule.reason;
        why = found;
        break;
      }
    }
    const byWhy = absent.get(reason)!;
    byWhy.set(why, [...(byWhy.get(why) ?? []), field]);
  }
  return { present: count, absent };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((done) => (child.exitCode !== null || child.signalCode !== null ? done() : child.once('exit', () => done())));
}

async function until<T>(find: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) raise(`no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface RunningAgent {
  events: ProcessEvent[];
  stop(): Promise<void>;
}

async function startAgent(configuration: Configuration): Promise<RunningAgent> {
  // Only this configuration's EXECSENTRY_* variables: none of the caller's may leak in.
  const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('EXECSENTRY_')));
  const agent = spawn(process.execPath, [CLI, 'events'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...environment, ...configuration.environment } });
  const events: ProcessEvent[] = [];
  let stderr = '';
  agent.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: agent.stdout! }).on('line', (line) => events.push(JSON.parse(line) as ProcessEvent));
  const stop = async () => {
    agent.kill('SIGINT');
    await exited(agent);
  };
  try {
    await until(() => (stderr.includes('streaming exec events') ? true : agent.exitCode !== null ? raise(`execsentry events (${configuration.label}) exited: ${stderr.trim()}`) : undefined), `start of execsentry events (${configuration.label})`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { events, stop };
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) raise(`${command} ${args.join(' ')} failed: ${result.stderr.trim()}`);
}

/** A login user of the run's own: bash, its own group plus LOGIN_GROUPS, a home; a key-only login ('*'). */
function createLoginUser(home: string): { uid: string; remove(): void } {
  if (spawnSync('getent', ['passwd', LOGIN_USER]).status === 0) {
    process.stderr.write(`bench:parity: removing ${LOGIN_USER}, left by an earlier run\n`);
    run('userdel', [LOGIN_USER]);
  }
  run('useradd', ['--create-home', '--home-dir', home, '--shell', '/bin/bash', '--user-group', '--groups', LOGIN_GROUPS.join(','), '--password', '*', LOGIN_USER]);
  const uid = spawnSync('id', ['-u', LOGIN_USER], { encoding: 'utf8' }).stdout.trim();
  return { uid, remove: () => run('userdel', [LOGIN_USER]) };
}

const scratch = mkdtempSync(join(tmpdir(), 'execsentry-parity-'));
chmodSync(scratch, 0o755);
const user = createLoginUser(join(scratch, 'home'));
const observations: Observation[] = [];
let login = '';
const failure = await (async (): Promise<unknown> => {
  const sshd = await startSshd({ acceptEnv: Object.keys(CLIENT_ENVIRONMENT) });
  try {
    const agents: RunningAgent[] = [];
    try {
      for (const configuration of CONFIGURATIONS) agents.push(await startAgent(configuration));
      const ssh = spawn(SSH, sshd.loginArguments(LOGIN_USER, { setEnv: CLIENT_ENVIRONMENT }), { stdio: ['pipe', 'ignore', 'pipe'] });
      let sshStderr = '';
      ssh.stderr!.on('data', (chunk: Buffer) => (sshStderr += chunk.toString()));
      const isLoginShell = (e: ProcessEvent) => e.event.action === 'exec' && e.process.name === 'bash' && e.process.args?.[0] === '-bash' && e.process.user?.id === user.uid;
      const execs = await Promise.all(agents.map((agent) => until(() => agent.events.find(isLoginShell) ?? (ssh.exitCode !== null ? raise(`ssh exited: ${sshStderr.trim()}`) : undefined), "the login shell's exec event")));
      const pid = execs[0]!.process.pid;
      // The shell waits at its prompt, its parent for it: what they are now is what they were at its exec.
      const shell = procFacts(pid);
      const parent = procFacts(execs[0]!.process.parent?.pid ?? raise('the login shell has no parent in its event'));
      login = `ssh -tt ${LOGIN_USER}@127.0.0.1 (uid ${user.uid}, groups ${shell.groups.join(' ')}) → ${execs[0]!.process.executable} ${JSON.stringify(execs[0]!.process.args)}, pid ${pid}, tty ${execs[0]!.process.tty?.char_device.major}:${execs[0]!.process.tty?.char_device.minor}`;
      ssh.stdin!.end('exit\n');
      await exited(ssh);
      for (const [index, agent] of agents.entries()) {
        const configuration = CONFIGURATIONS[index]!;
        const exec = execs[index]!;
        const end = configuration.environment.EXECSENTRY_SENSOR_EVENTS?.includes('end')
          ? await until(() => agent.events.find((e) => e.event.action === 'end' && e.process.entity_id === exec.process.entity_id), "the login shell's end event")
          : undefined;
        observations.push({ configuration, exec, end, shell, parent });
      }
    } finally {
      await Promise.all(agents.map((agent) => agent.stop()));
    }
  } finally {
    await sshd.stop();
  }
  return undefined;
})().catch((error: unknown) => error ?? 'failed');
user.remove();
rmSync(scratch, { recursive: true, force: true });
if (failure !== undefined) fail(failure instanceof Error ? failure.message.replace(/^bench:parity: /, '') : String(failure));

if (process.env.BENCH_PARITY_EVENTS !== undefined) {
  writeFileSync(process.env.BENCH_PARITY_EVENTS, observations.map((seen) => JSON.stringify({ configuration: seen.configuration.label, exec: seen.exec, end: seen.end })).join('\n') + '\n');
}
const lines = [`Elastic Defend parity of an interactive login shell's exec event (${defendFields.length} fields: ${DEFEND_FIELDS_PATH})`, `login: ${login}`];
for (const seen of observations) {
  const { present, absent } = classify(seen);
  lines.push('', `${seen.configuration.label}: ${present} / ${defendFields.length} fields`);
  for (const [reason, byWhy] of absent) {
    const fields = [...byWhy.values()].flat();
    if (fields.length === 0) continue;
    lines.push(`  ${reason} (${fields.length}):`);
    for (const [why, named] of byWhy) lines.push(`    ${named.join(', ')}: ${why}`);
  }
  const mismatches = [...idMismatches('process', seen.exec.process, seen.shell), ...idMismatches('process.parent', seen.exec.process.parent, seen.parent)];
  if (mismatches.length > 0) lines.push(`  present but not what /proc says (${mismatches.length}):`, ...mismatches.map((mismatch) => `    ${mismatch}`));
  const hashMissing = seen.exec.execsentry?.hash_missing;
  if (hashMissing !== undefined) lines.push(`  (execsentry.hash_missing: ${hashMissing})`);
}
process.stdout.write(`${lines.join('\n')}\n`);
