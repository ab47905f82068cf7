import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config.js';
import { RuntimeFailure } from '../errors.js';
import { makeDirectories } from '../io/files.js';

/** The service's name, its system user and where its files live (relative to the root). */
export const SERVICE_USER = 'execsentry';
export const UNIT_NAME = 'execsentry.service';
export const UNIT_PATH = '/etc/systemd/system/execsentry.service';
export const CONFIG_DIR = '/etc/execsentry';
export const CONFIG_PATH = '/etc/execsentry/config.json';
export const STATE_DIR = '/var/lib/execsentry';
/** Directories systemd creates for the unit (LogsDirectory=), removed by --purge only. */
const LOGS_DIR = '/var/log/execsentry';

/** The configuration a fresh install starts with: the built-in rule, alerts as NDJSON into the journal. */
export const DEFAULT_CONFIG = {
  rules: [],
  outputs: [{ url: 'stdout' }],
  logLevel: 'info',
  statsIntervalSeconds: 60,
};

export interface InstallOptions {
  /** Lay the files out under this directory instead of / (packaging, tests); no user, no systemctl. */
  root?: string;
  /** A config file to install instead of the default one (validated first). */
  configFile?: string;
  /** Where what was done goes, one line each. */
  print: (line: string) => void;
}

export interface UninstallOptions {
  root?: string;
  /** Also remove the configuration, the state (new-terms history, spool) and the system user. */
  purge?: boolean;
  print: (line: string) => void;
}

/** Owner of the files install writes: the service user's ids, or root when laying out under --root. */
interface Owner {
  uid: number;
  gid: number;
}

const ROOT_OWNER: Owner = { uid: 0, gid: 0 };

function requireRoot(action: string): void {
  if (process.geteuid?.() !== 0) {
    throw new RuntimeFailure(`${action} must run as root (it writes ${UNIT_PATH} and ${CONFIG_DIR}, and manages the ${SERVICE_USER} user); try: sudo execsentry ${action}`);
  }
}

/** sd_booted(3): systemd is the running init when /run/systemd/system exists. */
export function systemdIsRunning(): boolean {
  try {
    return lstatSync('/run/systemd/system').isDirectory();
  } catch {
    return false;
  }
}

/**
 * The packaged unit with ExecStart pointing at this node and this CLI, so the unit runs the very
 * execsentry that installed it (npm -g, a checkout, a package).
 */
export function renderUnit(): string {
  const template = readFileSync(fileURLToPath(new URL('../../systemd/execsentry.service', import.meta.url)), 'utf8');
  const cli = realpathSync(fileURLToPath(new URL('../cli.js', import.meta.url)));
  const execStart = `ExecStart=${systemdQuote(process.execPath)} ${systemdQuote(cli)} run --config ${CONFIG_PATH}`;
  const lines = template.split('\n');
  const index = lines.findIndex((line) => line.startsWith('ExecStart='));
  if (index < 0) throw new Error('systemd/execsentry.service has no ExecStart= line');
  lines[index] = execStart;
  return lines.join('\n');
}

/** systemd's command-line quoting: double quotes when needed, with \\ and " escaped; % doubled (specifiers). */
function systemdQuote(word: string): string {
  const escaped = word.replace(/%/g, '%%');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Installs the service (idempotent): the system user, the unit, /etc/execsentry/config.json (0600; an
 * existing one is kept), the state directory; then daemon-reload and enable --now when systemd runs,
 * or prints what to run. Every line printed says what changed or that nothing did.
 */
export function install(options: InstallOptions): void {
  requireRoot('install');
  const root = options.root;
  const at = (path: string): string => (root === undefined ? path : join(root, path));
  const { print } = options;
  let installedConfig: string | undefined;
  if (options.configFile !== undefined) {
    // Refuse a broken file before anything is touched. Secrets and credentials resolve when the service
    // starts (LoadCredential= exists only then), and the environment here is not the service's.
    installedConfig = loadConfig({ configFile: options.configFile, env: {}, resolveSecrets: false }).configText;
  }

  const owner = root === undefined ? ensureSystemUser(print) : ROOT_OWNER;
  ensureDirectory(at('/etc/systemd/system'), 0o755, ROOT_OWNER, print, false);
  ensureFile(at(UNIT_PATH), renderUnit(), 0o644, ROOT_OWNER, print, 'replace');
  ensureDirectory(at(CONFIG_DIR), 0o700, owner, print, true);
  const defaultText = JSON.stringify(DEFAULT_CONFIG, null, 2) + '\n';
  ensureFile(at(CONFIG_PATH), installedConfig ?? defaultText, 0o600, owner, print, installedConfig === undefined ? 'keep' : 'replace');
  ensureDirectory(at(STATE_DIR), 0o700, owner, print, true);

  const cli = realpathSync(fileURLToPath(new URL('../cli.js', import.meta.url)));
  if (!readableByEveryone(cli)) {
    print(`warning: ${cli} is not readable by other users; the ${SERVICE_USER} user cannot run it (install execsentry under /usr or /opt)`);
  }
  if (root !== undefined) {
    print(`laid out under ${root}; on the target system: useradd --system --user-group --home-dir ${STATE_DIR} --shell /usr/sbin/nologin ${SERVICE_USER}, chown -R ${SERVICE_USER}: ${CONFIG_DIR} ${STATE_DIR}, then systemctl daemon-reload && systemctl enable --now ${UNIT_NAME}`);
  } else if (systemdIsRunning()) {
    systemctl(['daemon-reload'], print);
    systemctl(['enable', '--now', UNIT_NAME], print);
  } else {
    print(`systemd is not running on this machine; to start the service where it runs: systemctl daemon-reload && systemctl enable --now ${UNIT_NAME}`);
  }
}

/**
 * Removes the service (idempotent): stops and disables it, removes the unit. The configuration, the state
 * and the system user stay unless `purge` (they hold the new-terms history and undelivered alerts).
 */
export function uninstall(options: UninstallOptions): void {
  requireRoot('uninstall');
  const root = options.root;
  const at = (path: string): string => (root === undefined ? path : join(root, path));
  const { print } = options;
  const live = root === undefined && systemdIsRunning();
  const unitPath = at(UNIT_PATH);
  if (existsSync(unitPath)) {
    if (live) systemctl(['disable', '--now', UNIT_NAME], print);
    rmSync(unitPath, { force: true });
    print(`removed ${unitPath}`);
    if (live) systemctl(['daemon-reload'], print);
    else if (root === undefined) print(`systemd is not running on this machine; where it runs: systemctl disable --now ${UNIT_NAME} && systemctl daemon-reload`);
  } else {
    print(`unchanged ${unitPath} (not installed)`);
  }
  const kept = [at(CONFIG_DIR), at(STATE_DIR), at(LOGS_DIR)].filter((path) => existsSync(path));
  if (!options.purge) {
    if (kept.length > 0) print(`kept ${kept.join(', ')} (use --purge to remove the configuration, the new-terms history and the spool)`);
    return;
  }
  for (const path of kept) {
    rmSync(path, { recursive: true, force: true });
    print(`removed ${path}`);
  }
  if (root === undefined) removeSystemUser(print);
}

function ensureSystemUser(print: (line: string) => void): Owner {
  const existing = lookUpUser(SERVICE_USER);
  if (existing !== undefined) {
    print(`unchanged user ${SERVICE_USER} (uid ${existing.uid})`);
    return existing;
  }
  const nologin = ['/usr/sbin/nologin', '/sbin/nologin'].find((path) => existsSync(path)) ?? '/bin/false';
  run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', STATE_DIR, '--shell', nologin, '--comment', 'execsentry agent', SERVICE_USER]);
  const created = lookUpUser(SERVICE_USER);
  if (created === undefined) throw new RuntimeFailure(`useradd reported success but user ${SERVICE_USER} does not exist`);
  print(`created system user ${SERVICE_USER} (uid ${created.uid})`);
  return created;
}

function removeSystemUser(print: (line: string) => void): void {
  if (lookUpUser(SERVICE_USER) === undefined) return;
  run('userdel', [SERVICE_USER]);
  print(`removed user ${SERVICE_USER}`);
}

function lookUpUser(name: string): Owner | undefined {
  const result = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  const fields = result.stdout.trim().split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error !== undefined) throw new RuntimeFailure(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new RuntimeFailure(`${command} ${args.join(' ')} failed (exit ${result.status}): ${(result.stderr || result.stdout).trim().split('\n')[0] ?? ''}`);
  }
  return result.stdout;
}

function systemctl(args: string[], print: (line: string) => void): void {
  run('systemctl', args);
  print(`ran systemctl ${args.join(' ')}`);
}

/**
 * A directory with this mode and owner, created or corrected; `ownIt` false leaves an existing
 * directory's owner alone (/etc/systemd/system is not ours).
 */
function ensureDirectory(path: string, mode: number, owner: Owner, print: (line: string) => void, ownIt: boolean): void {
  if (!existsSync(path)) {
    // Parents get the usual 0755 (they are /etc, /var/lib…); only the leaf gets the restrictive mode.
    makeDirectories(dirname(path), 0o755);
    mkdirSync(path, { mode });
    chmodSync(path, mode);
    chownSync(path, owner.uid, owner.gid);
    print(`created ${path}`);
    return;
  }
  if (!ownIt) return;
  if (fixModeAndOwner(path, mode, owner)) print(`fixed mode/owner of ${path}`);
  else print(`unchanged ${path}`);
}

/** `keep`: an existing file's content is the admin's and stays; `replace`: it is ours and is updated. */
function ensureFile(path: string, content: string, mode: number, owner: Owner, print: (line: string) => void, existing: 'keep' | 'replace'): void {
  makeDirectories(dirname(path), 0o777);
  if (!existsSync(path)) {
    writeFileSync(path, content, { mode });
    chmodSync(path, mode);
    chownSync(path, owner.uid, owner.gid);
    print(`created ${path}`);
    return;
  }
  let changed = false;
  if (existing === 'replace' && readFileSync(path, 'utf8') !== content) {
    writeFileSync(path, content);
    changed = true;
  }
  changed = fixModeAndOwner(path, mode, owner) || changed;
  print(`${changed ? 'updated' : 'unchanged'} ${path}`);
}

function fixModeAndOwner(path: string, mode: number, owner: Owner): boolean {
  const stat = statSync(path);
  let changed = false;
  if ((stat.mode & 0o7777) !== mode) {
    chmodSync(path, mode);
    changed = true;
  }
  if (stat.uid !== owner.uid || stat.gid !== owner.gid) {
    chownSync(path, owner.uid, owner.gid);
    changed = true;
  }
  return changed;
}

/** True when the file and every directory above it let other users read (and traverse) them. */
function readableByEveryone(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    for (let current = path; ; current = dirname(current)) {
      const mode = statSync(current).mode;
      if ((mode & (current === path ? 0o004 : 0o001)) === 0) return false;
      if (current === dirname(current)) return true;
    }
  } catch {
    return false;
  }
}
