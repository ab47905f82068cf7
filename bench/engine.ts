/**
 * `npm run bench:engine`: the detection engine with the built-in rule, as the agent runs it (dist/).
 *
 * 1. Throughput: recorded exec events (bench/engine-events.ndjson: 1,000 events sampled in order from 4,691
 *    that `execsentry events` recorded on the development VM while six engineers' builds and tests ran,
 *    plus a workload of user and service commands, root and user terminals and a few system-user shells —
 *    mostly non-matching, as on a real host) evaluated in a loop on one core, with the new-terms history on
 *    disk in a temporary state directory.
 * 2. A generated rule set of 250 rules written the way Elastic's Linux rules are (`event.type`, `process.name`,
 *    `process.args`, parent and wildcard clauses, exclusions): KQL query rules, EQL event rules and some EQL
 *    sequences, written to a temporary directory as TOML and loaded with loadRuleSet as a user's rules are,
 *    then the first 10, the first 50 and all 250 over the same recorded events (their times moved forward
 *    pass after pass, so that sequences see time advance as live), best of a few rounds each.
 * 3. Latency: `execsentry run` as a child process (the built-in rule with max_signals raised so the cap does
 *    not interfere), then 200 interactive shells as the system user daemon, each in its own pseudo-terminal
 *    and each from a never-seen executable (copies of /bin/bash at 200 temporary paths), so each must alert.
 *    Latency = the alert line read on the agent's stdout minus the exec time the sensor stamped
 *    (@timestamp). Needs root (connector, runuser); skipped otherwise.
 *
 * Prints a markdown table. Numbers from a machine busy with other work are only indicative.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type { Alert, ProcessEvent } from '../src/ecs/types.js';
import type * as EngineModule from '../src/engine/index.js';
import type * as RulesModule from '../src/rules/index.js';
import type * as StoreModule from '../src/store/index.js';

const EVALUATIONS = Number(process.env.BENCH_ENGINE_EVENTS ?? 2_000_000);
const SHELLS = Number(process.env.BENCH_ENGINE_SHELLS ?? 200);
const THROUGHPUT_TARGET = 200_000;
const RULE_SET_SIZES = [10, 50, 250] as const;
const RULE_SET_ROUNDS = 3;
const RULE_SET_PASSES = Number(process.env.BENCH_ENGINE_RULESET_PASSES ?? 100);
const RULE_SET_TARGET = 100_000;
const P99_TARGET_MS = 50;

// npm runs scripts from the package root, where dist/ is.
const importDist = async <T>(path: string): Promise<T> => (await import(pathToFileURL(resolve('dist', path)).href)) as T;
const { DetectionEngine } = await importDist<typeof EngineModule>('engine/index.js');
const { loadRuleSet } = await importDist<typeof RulesModule>('rules/index.js');
const { openHistoryStore } = await importDist<typeof StoreModule>('store/index.js');
const logger = pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true }));
const quietLogger = pino({ level: 'error' }, pino.destination({ fd: 2, sync: true }));

interface Row {
  measurement: string;
  result: string;
  target: string;
}

function recordedEvents(): ProcessEvent[] {
  return readFileSync(resolve('bench/engine-events.ndjson'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ProcessEvent);
}

async function throughput(): Promise<Row[]> {
  const events = recordedEvents();
  const { rules } = await loadRuleSet([], { skipUnsupported: false });
  const stateDir = mkdtempSync(join(tmpdir(), 'execsentry-bench-engine-'));
  const store = await openHistoryStore({ stateDir, maxTuplesPerRule: 1_000_000, logger });
  let alerts = 0;
  const engine = new DetectionEngine(rules, { store, logger, emit: () => void (alerts += 1) });
  const builtin = rules[0]!.compiled;
  if (builtin.kind !== 'event') throw new Error('the built-in rule is expected to be an event query');
  const matching = events.filter((event) => builtin.matches(event)).length;
  try {
    const baseMs = Date.parse(events[0]!['@timestamp']);
    // Warm-up, then the measured loop; "now" advances 1 ms per event as it would live.
    for (let i = 0; i < 200_000; i++) engine.evaluate(events[i % events.length]!, baseMs + i);
    const started = performance.now();
    for (let i = 0; i < EVALUATIONS; i++) engine.evaluate(events[i % events.length]!, baseMs + 200_000 + i);
    const seconds = (performance.now() - started) / 1000;
    await engine.drain();
    const perSecond = Math.round(EVALUATIONS / seconds);
    return [
      {
        measurement: `engine + built-in rule, ${events.length} recorded events (${matching} matching) × ${EVALUATIONS / events.length | 0}, one core`,
        result: `${perSecond.toLocaleString('en-US')} events/s`,
        target: `≥ ${THROUGHPUT_TARGET.toLocaleString('en-US')} events/s ${perSecond >= THROUGHPUT_TARGET ? '✅' : '❌'}`,
      },
      { measurement: 'alerts during the throughput run', result: String(alerts), target: 'one per new executable' },
    ];
  } finally {
    await store.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

// ---- the generated rule set ------------------------------------------------------------------------------------

/** mulberry32: the same rule set on every run, so that runs compare. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Theme {
  tactic: { id: string; name: string };
  names: readonly string[];
  /** Argument values; with `*` they are patterns. */
  args: readonly string[];
}

const THEMES: readonly Theme[] = [
  {
    tactic: { id: 'TA0007', name: 'Discovery' },
    names: ['whoami', 'id', 'uname', 'hostname', 'hostnamectl', 'lscpu', 'lsmod', 'lsblk', 'getent', 'last', 'lastlog', 'w', 'who', 'ps', 'pstree', 'netstat', 'ss', 'ip', 'ifconfig', 'arp', 'route', 'df', 'mount', 'printenv', 'cat', 'find', 'grep'],
    args: ['-a', '-r', '-n', '-e', 'aux', '-tulpn', '-anp', 'neigh', 'addr', '/etc/passwd', '/etc/shadow', '/etc/group', '/etc/sudoers', '/proc/*/environ', '*/.ssh/*', '*/.aws/credentials', '*/.bash_history', '-perm', '-4000', '-name', '*.pem', '*.key', 'id_rsa*'],
  },
  {
    tactic: { id: 'TA0003', name: 'Persistence' },
    names: ['crontab', 'systemctl', 'chmod', 'chown', 'chattr', 'install', 'useradd', 'usermod', 'groupadd', 'passwd', 'chpasswd', 'update-rc.d', 'chkconfig', 'ln', 'cp', 'tee'],
    args: ['-e', '-l', '-r', 'enable', 'start', 'daemon-reload', '+x*', '+i', '777', '4755', 'u+s', '/etc/cron*', '/etc/systemd/system/*', '/etc/init.d/*', '/etc/rc.local', '/etc/profile.d/*', '*/.bashrc', '*/.profile', '/etc/ld.so.preload', '/etc/sudoers*', '/etc/pam.d/*', '*/authorized_keys', '-G', 'sudo', 'wheel'],
  },
  {
    tactic: { id: 'TA0005', name: 'Defense Evasion' },
    names: ['base64', 'base32', 'xxd', 'openssl', 'rm', 'shred', 'unlink', 'truncate', 'touch', 'kill', 'pkill', 'killall', 'iptables', 'ufw', 'setenforce', 'auditctl', 'chattr', 'mv', 'dmesg', 'journalctl'],
    args: ['-d', '--decode', 'enc', '-rf', '-u', '-z', '-s', '0', '-F', '-X', 'disable', 'stop', '-D', '-c', '-C', '--clear', '--vacuum-time=*', '--rotate', '/var/log/*', '*/.bash_history', '/var/log/wtmp', '-9', 'auditd', 'apparmor', '-i'],
  },
  {
    tactic: { id: 'TA0011', name: 'Command and Control' },
    names: ['curl', 'wget', 'nc', 'ncat', 'netcat', 'socat', 'telnet', 'ssh', 'scp', 'tftp', 'ftp', 'chisel', 'ngrok', 'frpc', 'gost', 'iodine', 'proxychains', 'proxychains4', 'nohup', 'setsid', 'screen', 'tmux', 'busybox'],
    args: ['-e', '-c', '--exec', '/bin/sh', '/bin/bash', '-O', '-o', '-k', '--insecure', 'http*', 'ftp*', 'tcp:*', 'udp:*', 'exec:*', '-R', '-L', '-D', '-N', 'client', 'server', '--proxy', '-x', 'socks5*', '/dev/tcp/*', '-dm', 'new-session'],
  },
];

const SHELL_NAMES = ['bash', 'dash', 'sh', 'tcsh', 'csh', 'zsh', 'ksh', 'fish', 'busybox'];
const INTERPRETER_PATTERNS = ['python*', 'perl*', 'ruby*', 'php*', 'lua*', 'node', 'java'];
const WEB_SERVERS = ['nginx', 'apache2', 'httpd', 'lighttpd', 'php-fpm*', 'caddy', 'tomcat*', 'gunicorn', 'uwsgi'];
const WRITABLE_DIRS = ['/tmp/*', '/var/tmp/*', '/dev/shm/*', '/run/user/*', '/var/www/*', '/home/*/.cache/*', '/root/*', '/boot/*'];
const SYSTEM_DIRS = ['/usr/bin/*', '/usr/sbin/*', '/bin/*', '/sbin/*', '/usr/local/bin/*', '/usr/libexec/*', '/usr/lib/*', '/opt/*', '/snap/*', '/var/lib/dpkg/info/*', '/usr/share/*'];
const MANAGERS = ['apt', 'apt-get', 'dpkg', 'rpm', 'yum', 'dnf', 'zypper', 'snapd', 'packagekitd', 'puppet', 'chef-client', 'salt-minion', 'cloud-init', 'systemd', 'cron', 'anacron', 'containerd-shim', 'dockerd', 'ansible*'];
const BUILD_DIRS = ['/var/lib/dpkg*', '/opt/*', '/nix/store/*', '/var/lib/jenkins/*', '/builds/*', '/home/*/actions-runner/*'];
const BENIGN_ARGS = ['--version', '--help', '-h', '-V', 'status', 'list'];
const SERVICE_USERS = ['nagios', 'zabbix', 'prometheus', 'telegraf', 'datadog*', 'splunk*'];
const MANAGER_COMMANDS = ['*ansible*', '*puppet*', '*/usr/lib/venv-salt-minion/*', '*/opt/chef/*'];

/**
 * A condition in the two languages' common ground: a field with values (equality or patterns, each side's
 * case rules as the rules' authors write them), existence, a number range, or EQL alone (functions, regex).
 */
type Clause =
  | { kind: 'values'; field: string; values: readonly string[]; negated: boolean; caseless: boolean }
  | { kind: 'exists'; field: string }
  | { kind: 'atLeast'; field: string; value: number }
  | { kind: 'notRoot' }
  | { kind: 'eql'; text: string };

const hasWildcard = (value: string): boolean => value.includes('*');

function kqlValue(value: string): string {
  // Quoted KQL values are exact, so patterns stay bare with KQL's special characters escaped.
  return hasWildcard(value) ? value.replace(/[\\():<>"{}\s]/g, '\\$&') : JSON.stringify(value);
}

function kqlClause(clause: Clause): string {
  switch (clause.kind) {
    case 'values': {
      const values = clause.values.map(kqlValue);
      const test = `${clause.field}:${values.length === 1 ? values[0]! : `(${values.join(' or ')})`}`;
      return clause.negated ? `not ${test}` : test;
    }
    case 'exists':
      return `${clause.field}:*`;
    case 'atLeast':
      return `${clause.field} >= ${clause.value}`;
    case 'notRoot':
      return 'not user.id:0';
    case 'eql':
      throw new Error('an EQL-only clause in a KQL rule');
  }
}

function eqlClause(clause: Clause): string {
  switch (clause.kind) {
    case 'values': {
      const list = (values: readonly string[]): string => (values.length === 1 ? JSON.stringify(values[0]) : `(${values.map((v) => JSON.stringify(v)).join(', ')})`);
      const patterns = clause.values.some(hasWildcard);
      const test =
        clause.caseless ? `${clause.field} : ${list(clause.values)}` : patterns ? `${clause.field} like ${list(clause.values)}` : clause.values.length === 1 ? `${clause.field} == ${list(clause.values)}` : `${clause.field} in ${list(clause.values)}`;
      return clause.negated ? `not ${test}` : test;
    }
    case 'exists':
      return `${clause.field} != null`;
    case 'atLeast':
      return `${clause.field} >= ${clause.value}`;
    case 'notRoot':
      return 'user.id != "0"';
    case 'eql':
      return clause.text;
  }
}

interface GeneratedRule {
  kind: 'kql' | 'eql' | 'sequence';
  name: string;
  tactic: Theme['tactic'];
  query: string;
}

class RuleWriter {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = random(seed);
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  private some<T>(items: readonly T[], min: number, max: number): T[] {
    const count = Math.min(items.length, min + Math.floor(this.next() * (max - min + 1)));
    const pool = [...items];
    const chosen: T[] = [];
    while (chosen.length < count) chosen.push(pool.splice(Math.floor(this.next() * pool.length), 1)[0]!);
    return chosen;
  }

  private values(field: string, pool: readonly string[], min: number, max: number, negated = false): Clause {
    return { kind: 'values', field, values: this.some(pool, min, max), negated, caseless: this.next() < 0.25 };
  }

  /** What the rule is about: the programs, usually with arguments, sometimes a parent or a location. */
  private subject(theme: Theme, eql: boolean): Clause[] {
    const clauses = [this.values('process.name', theme.names, 1, 6)];
    if (this.next() < 0.75) clauses.push(this.values('process.args', theme.args, 1, 5));
    const context = this.next();
    if (context < 0.25) clauses.push(this.values('process.parent.name', SHELL_NAMES, 3, 9));
    else if (context < 0.4) clauses.push(this.values('process.parent.name', INTERPRETER_PATTERNS, 2, 7));
    else if (context < 0.5) clauses.push(this.values('process.parent.name', WEB_SERVERS, 3, 9));
    else if (context < 0.6) clauses.push(this.values('process.parent.executable', WRITABLE_DIRS, 2, 8));
    else if (context < 0.7) clauses.push(this.values('process.executable', WRITABLE_DIRS, 2, 8));
    if (this.next() < 0.3) clauses.push({ kind: 'exists', field: 'process.parent.executable' });
    if (this.next() < 0.15) clauses.push({ kind: 'atLeast', field: 'process.args_count', value: 2 + Math.floor(this.next() * 3) });
    if (this.next() < 0.15) clauses.push({ kind: 'notRoot' });
    if (eql && this.next() < 0.2) {
      clauses.push(
        this.pick<Clause>([
          { kind: 'eql', text: 'length(process.command_line) > 64' },
          { kind: 'eql', text: 'stringContains~(process.command_line, "base64")' },
          { kind: 'eql', text: 'process.command_line regex~ """.*/dev/(tcp|udp)/[0-9]{1,3}[.][0-9]{1,3}[.].*"""' },
          { kind: 'eql', text: 'not startsWith(process.working_directory, "/usr/")' },
          { kind: 'eql', text: '?process.parent.command_line != null' },
        ]),
      );
    }
    return clauses;
  }

  /** The exceptions real rules grow: package managers, build directories, monitoring users. */
  private exclusions(): Clause[] {
    const candidates: (() => Clause)[] = [
      () => this.values('process.parent.executable', SYSTEM_DIRS, 2, 6, true),
      () => this.values('process.parent.name', MANAGERS, 3, 10, true),
      () => this.values('process.working_directory', BUILD_DIRS, 2, 5, true),
      () => this.values('process.args', BENIGN_ARGS, 1, 4, true),
      () => this.values('user.name', SERVICE_USERS, 2, 5, true),
      () => this.values('process.parent.command_line', MANAGER_COMMANDS, 1, 3, true),
    ];
    return this.some(candidates, 0, 3).map((make) => make());
  }

  private eqlFilter(theme: Theme, extra: readonly Clause[] = []): string {
    const header = 'process where host.os.type == "linux" and event.type == "start" and\nevent.action in ("exec", "exec_event", "start", "ProcessRollup2", "executed", "process_started")';
    return [header, ...[...this.subject(theme, true), ...extra].map(eqlClause)].join(' and\n');
  }

  rule(index: number, kind: GeneratedRule['kind']): GeneratedRule {
    const theme = this.pick(THEMES);
    const subject = `${theme.tactic.name.toLowerCase()} ${String(index).padStart(3, '0')}`;
    if (kind === 'kql') {
      const header = 'host.os.type:linux and event.category:process and event.type:start and\nevent.action:(exec or exec_event or executed or process_started)';
      const query = [header, ...[...this.subject(theme, false), ...this.exclusions()].map(kqlClause)].join(' and\n');
      return { kind, name: `Synthetic KQL rule: ${subject}`, tactic: theme.tactic, query };
    }
    if (kind === 'eql') return { kind, name: `Synthetic EQL rule: ${subject}`, tactic: theme.tactic, query: this.eqlFilter(theme, this.exclusions()) };
    const by = this.pick(['host.id, process.parent.entity_id', 'process.parent.entity_id', 'host.id, user.id', 'host.id, process.parent.entity_id, process.working_directory']);
    const maxspan = this.pick(['1s', '3s', '5s', '30s', '1m', '5m']);
    const stages = Array.from({ length: this.next() < 0.25 ? 3 : 2 }, (_, stage) => `  [${this.eqlFilter(stage === 0 ? theme : this.pick(THEMES), stage === 0 ? [] : this.exclusions()).replaceAll('\n', '\n   ')}]`);
    return { kind, name: `Synthetic EQL sequence: ${subject}`, tactic: theme.tactic, query: `sequence by ${by} with maxspan=${maxspan}\n${stages.join('\n')}` };
  }
}

/** Each prefix of the set (10, 50, 250) has the same mix: 4 in 10 KQL query rules, 5 in 10 EQL event rules, 1 in 10 sequences. */
function generateRules(count: number): GeneratedRule[] {
  const writer = new RuleWriter(20_261_128);
  return Array.from({ length: count }, (_, index) => writer.rule(index, index % 10 === 5 ? 'sequence' : index % 2 === 0 ? 'eql' : 'kql'));
}

function ruleToml(rule: GeneratedRule, index: number): string {
  if (rule.query.includes("'''")) throw new Error(`${rule.name}: the query cannot be a TOML literal string`);
  const ruleId = `0be4c4a1-5e1c-4d7a-9b1e-${index.toString(16).padStart(12, '0')}`;
  return `[metadata]
creation_date = "2026/11/28"
integration = ["endpoint"]
maturity = "production"

[rule]
author = ["execsentry bench"]
description = "Generated by bench/engine.ts to load the engine as a set of Elastic-style Linux rules would."
from = "now-9m"
index = ["logs-endpoint.events.process*"]
language = "${rule.kind === 'kql' ? 'kuery' : 'eql'}"
name = ${JSON.stringify(rule.name)}
risk_score = 47
rule_id = "${ruleId}"
severity = "medium"
tags = ["Domain: Endpoint", "OS: Linux", "Use Case: Threat Detection", "Tactic: ${rule.tactic.name}", "Data Source: Elastic Defend"]
type = "${rule.kind === 'kql' ? 'query' : 'eql'}"
query = '''
${rule.query}
'''

[[rule.threat]]
framework = "MITRE ATT&CK"

[rule.threat.tactic]
id = "${rule.tactic.id}"
name = "${rule.tactic.name}"
reference = "https://attack.mitre.org/tactics/${rule.tactic.id}/"
`;
}

async function ruleSetThroughput(): Promise<Row[]> {
  const events = recordedEvents();
  const generated = generateRules(RULE_SET_SIZES[RULE_SET_SIZES.length - 1]!);
  const dir = mkdtempSync(join(tmpdir(), 'execsentry-bench-rules-'));
  const stateDir = join(dir, 'state');
  mkdirSync(join(dir, 'rules'));
  generated.forEach((rule, index) => writeFileSync(join(dir, 'rules', `rule-${String(index).padStart(3, '0')}.toml`), ruleToml(rule, index)));
  // loadRuleSet refuses the whole set on any problem; unsupported rules must not be skipped either.
  const { rules, skipped, warnings } = await loadRuleSet([join(dir, 'rules')], { skipUnsupported: false });
  if (rules.length !== generated.length || skipped.length !== 0 || warnings.length !== 0) {
    throw new Error(`${rules.length} of ${generated.length} generated rules loaded, ${skipped.length} skipped, warnings: ${warnings.join('; ')}`);
  }
  rules.forEach((rule, index) => {
    if (rule.name !== generated[index]!.name || (rule.compiled.kind === 'sequence') !== (generated[index]!.kind === 'sequence')) throw new Error(`rule ${index} is not the one written`);
  });

  // Pass p replays the recording p spans later, so time only moves forward across passes.
  const recordedMs = events.map((event) => Date.parse(event['@timestamp']));
  const spanMs = recordedMs[recordedMs.length - 1]! - recordedMs[0]! + 1000;
  const passes = RULE_SET_PASSES * (RULE_SET_ROUNDS + 1);
  const stampMs = Array.from({ length: passes }, (_, pass) => recordedMs.map((ms) => ms + pass * spanMs));
  const stamps = stampMs.map((pass) => pass.map((ms) => new Date(ms).toISOString()));

  const store = await openHistoryStore({ stateDir, maxTuplesPerRule: 1_000_000, logger });
  const rows: Row[] = [
    {
      measurement: `generated rule set: TOML files loaded with loadRuleSet (${generated.filter((r) => r.kind === 'kql').length} KQL query, ${generated.filter((r) => r.kind === 'eql').length} EQL event, ${generated.filter((r) => r.kind === 'sequence').length} EQL sequence rules)`,
      result: `${rules.length} loaded, ${skipped.length} skipped, 0 problems, ${warnings.length} warnings`,
      target: `all ${generated.length} ✅`,
    },
  ];
  try {
    for (const size of RULE_SET_SIZES) {
      const subset = rules.slice(0, size);
      const alerting = new Set<string>();
      let sequenceAlerts = 0;
      const engine = new DetectionEngine(subset, {
        store,
        // max_signals warnings are counted in the stats; what is logged at error is a failed evaluation.
        logger: quietLogger,
        emit: (alert) => {
          alerting.add(alert.rule.id);
          if (alert.execsentry.sequence !== undefined) sequenceAlerts += 1;
        },
      });
      let best = 0;
      // The first RULE_SET_PASSES passes warm up; then the rounds.
      for (let round = 0; round <= RULE_SET_ROUNDS; round++) {
        const started = performance.now();
        for (let pass = round * RULE_SET_PASSES, end = pass + RULE_SET_PASSES; pass < end; pass++) {
          const passStamps = stamps[pass]!;
          const passMs = stampMs[pass]!;
          for (let i = 0; i < events.length; i++) {
            const event = events[i]!;
            event['@timestamp'] = passStamps[i]!;
            engine.evaluate(event, passMs[i]!);
          }
        }
        const seconds = (performance.now() - started) / 1000;
        if (round > 0) best = Math.max(best, (RULE_SET_PASSES * events.length) / seconds);
        await engine.drain(stampMs[round * RULE_SET_PASSES + RULE_SET_PASSES - 1]![events.length - 1]!);
      }
      const stats = engine.stats();
      if (stats.evaluationErrors !== 0) throw new Error(`${stats.evaluationErrors} rule evaluations failed with ${size} rules`);
      const kinds = `${subset.filter((r) => r.type === 'query').length} KQL, ${subset.filter((r) => r.type === 'eql' && r.compiled.kind === 'event').length} EQL event, ${subset.filter((r) => r.compiled.kind === 'sequence').length} sequence`;
      const perSecond = Math.round(best);
      rows.push({
        measurement: `engine + ${size} generated rules (${kinds}), ${events.length} recorded events × ${RULE_SET_PASSES}, best of ${RULE_SET_ROUNDS} rounds, one core`,
        result: `${perSecond.toLocaleString('en-US')} events/s`,
        target: size === RULE_SET_SIZES[RULE_SET_SIZES.length - 1] ? `≥ ${RULE_SET_TARGET.toLocaleString('en-US')} events/s ${perSecond >= RULE_SET_TARGET ? '✅' : '❌'}` : '',
      });
      rows.push({
        measurement: `… what the ${size} rules found in those ${stats.events.toLocaleString('en-US')} events (warm-up included)`,
        result: `${stats.matches.toLocaleString('en-US')} matches: ${stats.alerts.toLocaleString('en-US')} alerts, ${stats.suppressed.toLocaleString('en-US')} over max_signals; ${alerting.size} of ${size} rules alerted, ${sequenceAlerts} of the alerts sequences`,
        target: '',
      });
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

function interactiveShellAsDaemon(shell: string): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn('script', ['-qec', `runuser -u daemon -- ${shell} -i`, '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const typing = setTimeout(() => child.stdin.end('exit\n'), 300);
    child.once('error', fail);
    child.once('close', () => {
      clearTimeout(typing);
      done();
    });
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function latency(): Promise<Row[]> {
  if (process.getuid?.() !== 0) return [{ measurement: 'exec → alert latency in `run`', result: 'skipped (needs root)', target: `p99 < ${P99_TARGET_MS} ms` }];
  const dir = mkdtempSync(join(tmpdir(), 'execsentry-bench-shells-'));
  chmodSync(dir, 0o755);
  // The built-in rule with max_signals raised: 200 alerts in a minute are over its 100 per 5 minutes, and
  // the cap is not what is measured. Everything else (query, new terms, history on disk) is unchanged.
  const rulesDir = join(dir, 'rules');
  const { BUILTIN_RULES_PATH } = await importDist<typeof RulesModule>('rules/index.js');
  const builtinFile = join(BUILTIN_RULES_PATH, 'linux', readdirSync(join(BUILTIN_RULES_PATH, 'linux'))[0]!);
  const ruleText = readFileSync(builtinFile, 'utf8');
  if (!ruleText.includes('\nmax_signals = 100\n')) throw new Error(`${builtinFile}: max_signals = 100 not found`);
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'builtin-uncapped.toml'), ruleText.replace('\nmax_signals = 100\n', '\nmax_signals = 100000\n'));
  const agent = spawn(process.execPath, [resolve('dist/cli.js'), 'run', '--rules', rulesDir, '--state-dir', join(dir, 'state'), '--format', 'json', '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const arrivals = new Map<string, { alert: Alert; atMs: number }>();
  let wake: (() => void) | undefined;
  createInterface({ input: agent.stdout }).on('line', (line) => {
    const atMs = Date.now();
    const alert = JSON.parse(line) as Alert;
    if (alert.process.executable !== undefined) arrivals.set(alert.process.executable, { alert, atMs });
    wake?.();
  });
  const running = new Promise<void>((ready, fail) => {
    createInterface({ input: agent.stderr }).on('line', (line) => {
      const record = JSON.parse(line) as { level: number; msg: string };
      if (record.msg.startsWith('execsentry running')) ready();
      else if (record.level >= 40) process.stderr.write(line + '\n');
    });
    agent.once('exit', (code) => fail(new Error(`execsentry run exited with ${code} before running`)));
  });
  const waitFor = (executable: string, timeoutMs: number): Promise<{ alert: Alert; atMs: number } | undefined> =>
    new Promise((done) => {
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const check = (): void => {
        const found = arrivals.get(executable);
        if (found !== undefined) {
          clearTimeout(timer);
          done(found);
        }
      };
      wake = check;
      check();
    });
  try {
    await running;
    const latencies: number[] = [];
    let missed = 0;
    for (let i = 0; i < SHELLS; i++) {
      const shell = join(dir, `bash-${i}`);
      copyFileSync('/bin/bash', shell);
      chmodSync(shell, 0o755);
      // Asynchronously, so that this process reads the alert line the moment it comes; the shell gets its
      // "exit" only after a moment, as a person's would (a shell gone before its /proc snapshot is partial).
      const [arrival] = await Promise.all([waitFor(shell, 5000), interactiveShellAsDaemon(shell)]);
      if (arrival === undefined) missed += 1;
      else latencies.push(arrival.atMs - Date.parse(arrival.alert['@timestamp']));
    }
    latencies.sort((a, b) => a - b);
    const p99 = percentile(latencies, 99);
    return [
      { measurement: `exec → alert line in \`run\`, p50 (${latencies.length} interactive shells as daemon in ptys, new executables; built-in rule, max_signals raised)`, result: `${percentile(latencies, 50)} ms`, target: '' },
      { measurement: 'exec → alert line in `run`, p99', result: `${p99} ms`, target: `< ${P99_TARGET_MS} ms ${p99 < P99_TARGET_MS ? '✅' : '❌'}` },
      { measurement: 'exec → alert line in `run`, max', result: `${latencies[latencies.length - 1]} ms`, target: '' },
      { measurement: 'shells without an alert within 5 s', result: String(missed), target: '0' },
    ];
  } finally {
    agent.kill('SIGTERM');
    await new Promise((done) => agent.once('exit', done));
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [...(await throughput()), ...(await ruleSetThroughput()), ...(await latency())];
process.stdout.write('| measurement | result | target |\n|---|---|---|\n');
for (const row of rows) process.stdout.write(`| ${row.measurement} | ${row.result} | ${row.target} |\n`);
