import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigSchema, loadConfig, type Config, type LoadedConfig } from '../config.js';
import { RuntimeFailure, ValidationError } from '../errors.js';
import { makeDirectories } from '../io/files.js';
import { FILE_DEFAULTS } from '../outputs/file.js';
import { loadRuleSet } from '../rules/index.js';
import { AGENT_VERSION } from '../version.js';
import { rulePathsToLoad } from './rule-paths.js';
import { BASH_COMPLETION, MAN_PAGE } from '../docs/paths.js';

/** The service's name, its system user and where its files live (relative to the root). */
export const SERVICE_USER = 'execsentry';
export const UNIT_NAME = 'execsentry.service';
export const UNIT_PATH = '/etc/systemd/system/execsentry.service';
export const CONFIG_DIR = '/etc/execsentry';
export const CONFIG_PATH = '/etc/execsentry/config.json';
/** The admin's own rule files; the default config lists it beside the package's built-in rules. */
export const RULES_DIR = '/etc/execsentry/rules.d';
export const STATE_DIR = '/var/lib/execsentry';
/** Directories systemd creates for the unit (LogsDirectory=), removed by --purge only. */
const LOGS_DIR = '/var/log/execsentry';
export const ALERTS_FILE = '/var/log/execsentry/alerts.ndjson';
/** The package's name, and its directory under an npm prefix (`npm install -g --prefix P`). */
const PACKAGE_NAME = 'execsentry';
const NPM_PACKAGE_DIR = join('lib', 'node_modules', PACKAGE_NAME);
/** Where the shipped unit expects the package: npm's global directory under the prefix /usr (Debian's node). */
const SHIPPED_PACKAGE_DIR = join('/usr', NPM_PACKAGE_DIR);

/**
 * The configuration a fresh install starts with: the package's built-in rules and whatever is put into
 * rules.d; alerts as NDJSON into the journal (stdout) and into a rotated file, the one place the unit lets
 * the service write besides its state. The rotation is spelled out so the admin sees what to tune.
 */
export function defaultServiceConfig(packageDir: string): Record<string, unknown> {
  return {
    rules: [join(packageDir, 'rules'), RULES_DIR],
    outputs: [{ url: 'stdout' }, { url: pathToFileURL(ALERTS_FILE).href, ...FILE_DEFAULTS }],
    logLevel: 'info',
    statsIntervalSeconds: 60,
  };
}

export interface InstallOptions {
  /** Lay the files out under this directory instead of / (packaging, tests); no user, no systemctl. */
  root?: string;
  /** The npm prefix the package is installed under on the target (`npm install -g --prefix P`). */
  prefix?: string;
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
 * The package the unit runs: `target` is where it is on the system the unit runs on (ExecStart names it),
 * `here` where it is now (install reads it), `installed` false for a checkout.
 *
 * With `--prefix P`, npm's global layout under P: P/lib/node_modules/execsentry, found under the root when
 * laying out. Without it, the package this CLI belongs to (symlinks resolved, so `npm install -g` of a
 * checkout, which links it, names the checkout); a package inside the root is named as the target sees it,
 * so a package staged with `npm install -g --prefix DIR/usr` and run from there needs no --prefix.
 */
export interface ServicePackage {
  target: string;
  here: string;
  installed: boolean;
}

export function locatePackage(root: string | undefined, prefix: string | undefined): ServicePackage {
  if (prefix !== undefined) {
    if (!isAbsolute(prefix)) throw new ValidationError(`--prefix ${prefix}: must be an absolute path (the npm prefix on the system the service runs on, e.g. /usr)`);
    const target = join(prefix, NPM_PACKAGE_DIR);
    const here = root === undefined ? target : join(root, target);
    if (!existsSync(join(here, 'dist', 'cli.js'))) {
      throw new ValidationError(
        `--prefix ${prefix}: no execsentry package at ${here}; install it there first (npm install -g --prefix ${root === undefined ? prefix : join(root, prefix)} ./${PACKAGE_NAME}-${AGENT_VERSION}.tgz)`,
      );
    }
    return { target, here, installed: true };
  }
  const here = realpathSync(fileURLToPath(new URL('../../', import.meta.url)));
  const inRoot = root === undefined ? undefined : relative(realpathSync(root), here);
  const target = inRoot === undefined || inRoot.startsWith('..') ? here : join('/', inRoot);
  return { target, here, installed: basename(dirname(here)) === 'node_modules' };
}

/**
 * The packaged unit with ExecStart running this node and the package's CLI, and Documentation= pointing
 * into the package's README instead of where the shipped unit expects it.
 */
export function renderUnit(packageDir: string): string {
  const template = readFileSync(fileURLToPath(new URL('../../systemd/execsentry.service', import.meta.url)), 'utf8');
  const lines = template.split('\n');
  const line = (key: string): number => {
    const index = lines.findIndex((text) => text.startsWith(`${key}=`));
    if (index < 0) throw new Error(`systemd/execsentry.service has no ${key}= line`);
    return index;
  };
  lines[line('ExecStart')] = `ExecStart=${systemdQuote(process.execPath)} ${systemdQuote(join(packageDir, 'dist', 'cli.js'))} run --config ${CONFIG_PATH}`;
  const documentation = line('Documentation');
  const shipped = pathToFileURL(SHIPPED_PACKAGE_DIR).href;
  if (!lines[documentation]!.includes(shipped)) throw new Error(`systemd/execsentry.service: Documentation= does not point into ${SHIPPED_PACKAGE_DIR}`);
  // Unit files expand % specifiers in Documentation= too, and an unquoted ' would open a quoted word.
  const here = pathToFileURL(packageDir).href.replace(/'/g, '%27').replace(/%/g, '%%');
  lines[documentation] = lines[documentation]!.replaceAll(shipped, here);
  return lines.join('\n');
}

/** systemd's command-line quoting: double quotes when needed, with \\ and " escaped; % doubled (specifiers). */
function systemdQuote(word: string): string {
  const escaped = word.replace(/%/g, '%%');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Installs the service (idempotent): the system user, the unit, /etc/execsentry/config.json (0600; an
 * existing one is kept), rules.d, the state directory; then daemon-reload and enable --now when systemd
 * runs, or prints what to run. Every line printed says what changed or that nothing did. Before anything is
 * touched, the config the service will run with is checked, its rules loaded from where the service will
 * find them: a service that cannot start would only restart into the same error.
 */
export async function install(options: InstallOptions): Promise<void> {
  requireRoot('install');
  const root = options.root;
  const at = (path: string): string => (root === undefined ? path : join(root, path));
  const { print } = options;
  const service = locatePackage(root, options.prefix);
  const defaultText = JSON.stringify(defaultServiceConfig(service.target), null, 2) + '\n';
  const configFile = options.configFile ?? (existsSync(at(CONFIG_PATH)) ? at(CONFIG_PATH) : undefined);
  // Secrets and credentials resolve when the service starts (LoadCredential= exists only then), and the
  // environment here is not the service's.
  const loaded = configFile === undefined ? undefined : loadConfig({ configFile, env: {}, resolveSecrets: false });
  const installedConfig = options.configFile === undefined ? undefined : loaded?.configText;
  await checkServiceConfig(loaded, defaultText, (path) => {
    // The service runs in /; the package it runs is where `service.here` is now.
    const absolute = resolve('/', path);
    const inPackage = relative(service.target, absolute);
    return inPackage.startsWith('..') || isAbsolute(inPackage) ? at(absolute) : join(service.here, inPackage);
  });

  const owner = root === undefined ? ensureSystemUser(print) : ROOT_OWNER;
  ensureDirectory(at('/etc/systemd/system'), 0o755, ROOT_OWNER, print, false);
  ensureFile(at(UNIT_PATH), renderUnit(service.target), 0o644, ROOT_OWNER, print, 'replace');
  ensureDirectory(at(CONFIG_DIR), 0o700, owner, print, true);
  ensureFile(at(CONFIG_PATH), installedConfig ?? defaultText, 0o600, owner, print, installedConfig === undefined ? 'keep' : 'replace');
  ensureDirectory(at(RULES_DIR), 0o700, owner, print, true);
  ensureDirectory(at(STATE_DIR), 0o700, owner, print, true);
  installDocumentation(service, at, print);

  if (!service.installed) {
    print(`warning: the unit runs ${service.target}, a checkout, not an installed package: the service breaks when the checkout moves (README, "Running execsentry as a service": install the package first)`);
  }
  // Only when the unit runs this very file: a package laid out under --root is read on the target.
  const cli = join(service.here, 'dist', 'cli.js');
  if (service.here === service.target && !readableByEveryone(cli)) {
    print(`warning: ${cli} is not readable by other users; the ${SERVICE_USER} user cannot run it (install execsentry under /usr or /opt)`);
  }
  if (root !== undefined) {
    printSteps(`laid out under ${root}; on the target system, as root:`, [
      ['useradd', ...useraddArguments('/usr/sbin/nologin')],
      ['chown', '-R', `${SERVICE_USER}:${SERVICE_USER}`, CONFIG_DIR, STATE_DIR],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', UNIT_NAME],
    ], print);
  } else if (systemdIsRunning()) {
    systemctl(['daemon-reload'], print);
    systemctl(['enable', '--now', UNIT_NAME], print);
  } else {
    printSteps('systemd is not running on this machine; where it runs, as root:', [
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', UNIT_NAME],
    ], print);
  }
}

/**
 * The rules of the config the service will run with (`loaded`, or the default text) load, each rules path
 * looked for where `locate` says it is now.
 */
async function checkServiceConfig(loaded: LoadedConfig | undefined, defaultText: string, locate: (path: string) => string): Promise<void> {
  const config: Config = loaded?.config ?? ConfigSchema.parse(JSON.parse(defaultText));
  const describe = (index: number): string =>
    loaded === undefined ? `default config: rules[${index}] = ${JSON.stringify(config.rules[index])}` : loaded.describeSetting(['rules', index]);
  const paths = await rulePathsToLoad(config.rules, { describe, locate, aboutToCreate: [RULES_DIR] });
  await loadRuleSet(paths.load, { skipUnsupported: config.skipUnsupported });
}

/**
 * Commands for the admin to run, one per line and shell-quoted, under a comment line: the block runs as it
 * is when pasted.
 */
function printSteps(heading: string, commands: string[][], print: (line: string) => void): void {
  print(`# ${heading}`);
  for (const command of commands) print(command.map(shellQuote).join(' '));
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
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
    else if (root === undefined) {
      printSteps('systemd is not running on this machine; where it runs, as root:', [
        ['systemctl', 'disable', '--now', UNIT_NAME],
        ['systemctl', 'daemon-reload'],
      ], print);
    }
  } else {
    print(`unchanged ${unitPath} (not installed)`);
  }
  removeDocumentation(at, root, print);
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
  run('useradd', useraddArguments(nologin));
  const created = lookUpUser(SERVICE_USER);
  if (created === undefined) throw new RuntimeFailure(`useradd reported success but user ${SERVICE_USER} does not exist`);
  print(`created system user ${SERVICE_USER} (uid ${created.uid})`);
  return created;
}

function useraddArguments(shell: string): string[] {
  return ['--system', '--user-group', '--no-create-home', '--home-dir', STATE_DIR, '--shell', shell, '--comment', 'execsentry agent', SERVICE_USER];
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

// ─── The man page and the bash completion (generated into the package by `npm run docs:man`) ───

/** Where a checkout's go: /usr/local, the administrator's own part of /usr (man-db and bash-completion look there). */
const CHECKOUT_DOCUMENTATION_PREFIX = '/usr/local';

/**
 * Where they go on the host: beside the package, under the npm prefix P it is installed in
 * (P/lib/node_modules/execsentry → P/share, where npm puts a package's man pages, and where man-db and
 * bash-completion look for P = /usr or /usr/local: a package staged with `--prefix /usr` keeps them out of
 * /usr/local); for a checkout, under CHECKOUT_DOCUMENTATION_PREFIX.
 */
function documentationPrefix(packageTarget: string): string {
  const suffix = `/${NPM_PACKAGE_DIR}`;
  return packageTarget.endsWith(suffix) ? packageTarget.slice(0, -suffix.length) || '/' : CHECKOUT_DOCUMENTATION_PREFIX;
}

function installedDocumentation(prefix: string): { source: string; path: string }[] {
  return [
    { source: MAN_PAGE, path: join(prefix, 'share/man/man1/execsentry.1') },
    { source: BASH_COMPLETION, path: join(prefix, 'share/bash-completion/completions/execsentry') },
  ];
}

/** Copies the package's man page and completion script into place (0644, root's), or says they are unchanged. */
function installDocumentation(service: ServicePackage, at: (path: string) => string, print: (line: string) => void): void {
  const packageDir = service.here;
  for (const { source, path } of installedDocumentation(documentationPrefix(service.target))) {
    const shipped = join(packageDir, source);
    // documentation is no reason to fail the service's install: a package without it is said so
    if (!existsSync(shipped)) {
      print(`warning: ${shipped} is missing from the package; ${path} not installed`);
      continue;
    }
    ensureDirectory(at(dirname(path)), 0o755, ROOT_OWNER, print, false);
    ensureFile(at(path), readFileSync(shipped, 'utf8'), 0o644, ROOT_OWNER, print, 'replace');
  }
}

/** Removes them from where install put them for this CLI's package, and from /usr/local (a checkout's). */
function removeDocumentation(at: (path: string) => string, root: string | undefined, print: (line: string) => void): void {
  const prefixes = new Set([documentationPrefix(locatePackage(root, undefined).target), CHECKOUT_DOCUMENTATION_PREFIX]);
  for (const { path } of [...prefixes].flatMap(installedDocumentation)) {
    if (!existsSync(at(path))) continue;
    rmSync(at(path), { force: true });
    print(`removed ${at(path)}`);
  }
}
