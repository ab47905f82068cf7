import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeAsRoot } from '../helpers/privilege.js';
import { stagedPackage, stagedPath } from '../helpers/staged.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const CHECKOUT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
/** systemd's command-line quoting: a path with a space (a checkout under "My Projects") in double quotes. */
const quoted = (path: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(path) ? path : `"${path}"`);
/** The follow-up commands `install --root` prints, one per line, under a comment. */
const TARGET_STEPS = [
  "useradd --system --user-group --no-create-home --home-dir /var/lib/execsentry --shell /usr/sbin/nologin --comment 'execsentry agent' execsentry",
  'chown -R execsentry:execsentry /etc/execsentry /var/lib/execsentry',
  'systemctl daemon-reload',
  'systemctl enable --now execsentry.service',
].join('\n');

/** The anchor GitHub gives a README heading: lower case, punctuation dropped, spaces as hyphens. */
function headingAnchors(markdown: string): string[] {
  return [...markdown.matchAll(/^#+ (.*)$/gm)].map((match) => match[1]!.toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-'));
}

function unitSetting(unit: string, key: string): string | undefined {
  return new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];
}

/** Runs the CLI; with a `prefix` (setpriv as another user), the staged copy that user can reach. */
function execsentry(args: string[], prefix: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const [command, ...rest] = prefix.length > 0 ? [...prefix, process.execPath, stagedPath('dist/cli.js'), ...args] : [process.execPath, CLI, ...args];
  const run = spawnSync(command!, rest, { encoding: 'utf8', timeout: 20_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Every file and directory under `root`: path → mode, owner, content (files). */
function tree(root: string): Map<string, { mode: string; uid: number; gid: number; mtimeMs: number; content?: string }> {
  const result = new Map<string, { mode: string; uid: number; gid: number; mtimeMs: number; content?: string }>();
  const listing = spawnSync('find', [root, '-mindepth', '1'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
  for (const path of listing.sort()) {
    const stat = statSync(path);
    result.set(path.slice(root.length), {
      mode: (stat.mode & 0o7777).toString(8),
      uid: stat.uid,
      gid: stat.gid,
      mtimeMs: stat.mtimeMs,
      ...(stat.isFile() ? { content: readFileSync(path, 'utf8') } : {}),
    });
  }
  return result;
}

describeAsRoot('execsentry install --root / uninstall --root', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'execsentry-install-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('lays out every file with its mode and owner', () => {
    const run = execsentry(['install', '--root', root]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const files = tree(root);
    const expected: Record<string, string> = {
      '/etc': '755',
      '/etc/systemd': '755',
      '/etc/systemd/system': '755',
      '/etc/systemd/system/execsentry.service': '644',
      '/etc/execsentry': '700',
      '/etc/execsentry/config.json': '600',
      '/etc/execsentry/rules.d': '700',
      '/var': '755',
      '/var/lib': '755',
      '/var/lib/execsentry': '700',
      '/usr': '755',
      '/usr/local': '755',
      '/usr/local/share': '755',
      '/usr/local/share/man': '755',
      '/usr/local/share/man/man1': '755',
      '/usr/local/share/man/man1/execsentry.1': '644',
      '/usr/local/share/bash-completion': '755',
      '/usr/local/share/bash-completion/completions': '755',
      '/usr/local/share/bash-completion/completions/execsentry': '644',
    };
    expect([...files.keys()]).toEqual(Object.keys(expected).sort());
    // the man page and the completion are the package's generated ones
    expect(files.get('/usr/local/share/man/man1/execsentry.1')!.content).toBe(readFileSync(fileURLToPath(new URL('../../share/man/man1/execsentry.1', import.meta.url)), 'utf8'));
    expect(files.get('/usr/local/share/bash-completion/completions/execsentry')!.content).toContain('complete -F _execsentry execsentry\n');
    for (const [path, mode] of Object.entries(expected)) {
      expect({ path, mode: files.get(path)!.mode, uid: files.get(path)!.uid, gid: files.get(path)!.gid }).toEqual({ path, mode, uid: 0, gid: 0 });
    }
    const unit = files.get('/etc/systemd/system/execsentry.service')!.content!;
    // From a checkout the unit runs the checkout, and says so.
    expect(unit).toContain(`ExecStart=${quoted(process.execPath)} ${quoted(CLI)} run --config /etc/execsentry/config.json\n`);
    expect(run.stdout).toContain(`warning: the unit runs ${CHECKOUT.replace(/\/$/, '')}, a checkout, not an installed package`);
    expect(unit).toContain('Type=notify\n');
    // a configuration or rule error (exit 2) leaves the unit failed instead of restarting it in a loop
    expect(unit).toContain('Restart=on-failure\n');
    expect(unit).toContain('RestartPreventExitStatus=2\n');
    const config = JSON.parse(files.get('/etc/execsentry/config.json')!.content!) as Record<string, unknown>;
    expect(config['rules']).toEqual([join(CHECKOUT, 'rules'), '/etc/execsentry/rules.d']);
    expect(config['outputs']).toEqual([{ url: 'stdout' }, { url: 'file:///var/log/execsentry/alerts.ndjson', rotateBytes: 104857600, rotateKeep: 5 }]);
    expect(run.stdout).toContain(`\n# laid out under ${root}; on the target system, as root:\n${TARGET_STEPS}\n`);
    expect(run.stdout.endsWith(`${TARGET_STEPS}\n`)).toBe(true);
  });

  it('names the installed package in the unit and the config, not where install runs from, and the unit verifies', () => {
    // What `npm install -g --prefix ROOT/usr ./execsentry-*.tgz` lays out for a package build.
    const packageDir = join(root, 'usr/lib/node_modules/execsentry');
    mkdirSync(dirname(packageDir), { recursive: true });
    cpSync(stagedPackage(), packageDir, { recursive: true });
    cpSync(join(CHECKOUT, 'README.md'), join(packageDir, 'README.md'));
    const fromPackage = spawnSync(process.execPath, [join(packageDir, 'dist/cli.js'), 'install', '--root', root], { encoding: 'utf8' });
    expect(fromPackage.stderr).toBe('');
    expect(fromPackage.status).toBe(0);
    expect(fromPackage.stdout).not.toContain('warning');
    const unitPath = join(root, 'etc/systemd/system/execsentry.service');
    const unit = readFileSync(unitPath, 'utf8');
    expect(unitSetting(unit, 'ExecStart')).toBe(`${quoted(process.execPath)} /usr/lib/node_modules/execsentry/dist/cli.js run --config /etc/execsentry/config.json`);
    expect(unitSetting(unit, 'Documentation')).toBe('file:///usr/lib/node_modules/execsentry/README.md#running-execsentry-as-a-service man:systemd.exec(5)');
    const config = readFileSync(join(root, 'etc/execsentry/config.json'), 'utf8');
    expect((JSON.parse(config) as { rules: string[] }).rules).toEqual(['/usr/lib/node_modules/execsentry/rules', '/etc/execsentry/rules.d']);
    const verify = spawnSync('systemd-analyze', ['verify', '--man=no', unitPath], { encoding: 'utf8' });
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
    // The man page and the completion go beside the package, under its npm prefix (/usr), not /usr/local.
    const documentation = ['usr/share/man/man1/execsentry.1', 'usr/share/bash-completion/completions/execsentry'];
    for (const path of documentation) expect(existsSync(join(root, path)), path).toBe(true);
    expect(existsSync(join(root, 'usr/local'))).toBe(false);

    // The same package named by its npm prefix, from anywhere: the same files.
    rmSync(join(root, 'etc'), { recursive: true });
    const byPrefix = execsentry(['install', '--root', root, '--prefix', '/usr']);
    expect(byPrefix.status).toBe(0);
    expect(byPrefix.stdout).not.toContain('warning');
    expect(readFileSync(unitPath, 'utf8')).toBe(unit);
    expect(readFileSync(join(root, 'etc/execsentry/config.json'), 'utf8')).toBe(config);

    for (const path of documentation) expect(existsSync(join(root, path)), path).toBe(true);
    expect(existsSync(join(root, 'usr/local'))).toBe(false);
    // and the package's uninstall takes them away again
    const removed = spawnSync(process.execPath, [join(packageDir, 'dist/cli.js'), 'uninstall', '--root', root], { encoding: 'utf8' });
    expect(removed.status).toBe(0);
    for (const path of documentation) expect(existsSync(join(root, path)), path).toBe(false);

    const nowhere = execsentry(['install', '--root', root, '--prefix', '/opt']);
    expect(nowhere.status).toBe(2);
    expect(nowhere.stderr).toBe(
      `execsentry: --prefix /opt: no execsentry package at ${join(root, 'opt/lib/node_modules/execsentry')}; install it there first (npm install -g --prefix ${join(root, 'opt')} ./execsentry-0.1.0.tgz)\n`,
    );
  });

  it('running it twice changes nothing, and says so', () => {
    expect(execsentry(['install', '--root', root]).status).toBe(0);
    const before = tree(root);
    const again = execsentry(['install', '--root', root]);
    expect(again.status).toBe(0);
    expect(again.stdout).not.toMatch(/^(created|updated|fixed)/m);
    expect(again.stdout).toMatch(/^unchanged .*execsentry\.service$/m);
    expect(tree(root)).toEqual(before);
  });

  it('keeps an edited config, and repairs a loosened mode', () => {
    expect(execsentry(['install', '--root', root]).status).toBe(0);
    const configPath = join(root, 'etc/execsentry/config.json');
    writeFileSync(configPath, '{"logLevel":"debug"}\n');
    chmodSync(configPath, 0o644);
    const again = execsentry(['install', '--root', root]);
    expect(again.stdout).toContain(`updated ${configPath}`);
    expect(readFileSync(configPath, 'utf8')).toBe('{"logLevel":"debug"}\n');
    expect(statSync(configPath).mode & 0o777).toBe(0o600);
  });

  it('--config installs a validated file, and refuses a bad one before touching anything', () => {
    const good = join(root, '..', `${root.split('/').pop()}-good.json`);
    writeFileSync(good, JSON.stringify({ logLevel: 'warn' }));
    try {
      const bad = join(root, '..', `${root.split('/').pop()}-bad.json`);
      writeFileSync(bad, JSON.stringify({ logLevel: 'loud' }));
      const refused = execsentry(['install', '--root', root, '--config', bad]);
      rmSync(bad);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toBe(`execsentry: config ${bad}: logLevel = "loud": expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent"\n`);
      expect(tree(root).size).toBe(0);
      expect(execsentry(['install', '--root', root, '--config', good]).status).toBe(0);
      expect(readFileSync(join(root, 'etc/execsentry/config.json'), 'utf8')).toBe(readFileSync(good, 'utf8'));
    } finally {
      rmSync(good, { force: true });
    }
  });

  it('--config naming a rules path that does not exist is refused before touching anything, as is a kept one', () => {
    const missing = join(root, '..', `${root.split('/').pop()}-missing.json`);
    writeFileSync(missing, JSON.stringify({ rules: ['/etc/execsentry/rules.d', '/etc/execsentry/rulez'] }));
    try {
      const refused = execsentry(['install', '--root', root, '--config', missing]);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toBe(
        `execsentry: config ${missing}: rules[1] = "/etc/execsentry/rulez": ${join(root, 'etc/execsentry/rulez')}: no such file or directory (ENOENT)\n`,
      );
      expect(tree(root).size).toBe(0);
      // rules.d alone is created empty: the service would have no rule to run.
      writeFileSync(missing, JSON.stringify({ rules: ['/etc/execsentry/rules.d'] }));
      expect(execsentry(['install', '--root', root, '--config', missing]).stderr).toBe(
        `execsentry: config ${missing}: rules[0] = "/etc/execsentry/rules.d": an empty directory, and no other rules path holds anything: no rule to run\n`,
      );
      expect(tree(root).size).toBe(0);
    } finally {
      rmSync(missing, { force: true });
    }
    expect(execsentry(['install', '--root', root]).status).toBe(0);
    const kept = join(root, 'etc/execsentry/config.json');
    writeFileSync(kept, JSON.stringify({ rules: ['/srv/rules'] }));
    const again = execsentry(['install', '--root', root]);
    expect(again.status).toBe(2);
    expect(again.stderr).toBe(`execsentry: config ${kept}: rules[0] = "/srv/rules": ${join(root, 'srv/rules')}: no such file or directory (ENOENT)\n`);
  });

  it('uninstall removes the unit and keeps config and state; again is a no-op; --purge removes them', () => {
    expect(execsentry(['install', '--root', root]).status).toBe(0);
    writeFileSync(join(root, 'var/lib/execsentry/history.log'), 'remembered');
    const removed = execsentry(['uninstall', '--root', root]);
    expect(removed.status).toBe(0);
    expect(existsSync(join(root, 'etc/systemd/system/execsentry.service'))).toBe(false);
    expect(existsSync(join(root, 'usr/local/share/man/man1/execsentry.1'))).toBe(false);
    expect(existsSync(join(root, 'usr/local/share/bash-completion/completions/execsentry'))).toBe(false);
    expect(removed.stdout).toContain(`removed ${join(root, 'usr/local/share/man/man1/execsentry.1')}\n`);
    expect(readFileSync(join(root, 'var/lib/execsentry/history.log'), 'utf8')).toBe('remembered');
    expect(existsSync(join(root, 'etc/execsentry/config.json'))).toBe(true);
    expect(removed.stdout).toContain('use --purge');

    const before = tree(root);
    const again = execsentry(['uninstall', '--root', root]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('not installed');
    expect(tree(root)).toEqual(before);

    const purged = execsentry(['uninstall', '--root', root, '--purge']);
    expect(purged.status).toBe(0);
    expect(existsSync(join(root, 'var/lib/execsentry'))).toBe(false);
    expect(existsSync(join(root, 'etc/execsentry'))).toBe(false);
    expect(execsentry(['uninstall', '--root', root, '--purge']).status).toBe(0);
  });

  it('both refuse clearly when not root', () => {
    chmodSync(root, 0o755);
    const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
    for (const command of ['install', 'uninstall']) {
      const run = execsentry([command, '--root', root], asNobody);
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`^execsentry: ${command} must run as root .*try: sudo execsentry ${command}\\n$`));
    }
    expect(tree(root).size).toBe(0);
  });
});

describe('systemd/execsentry.service', () => {
  const unitSource = readFileSync(fileURLToPath(new URL('../../systemd/execsentry.service', import.meta.url)), 'utf8');
  const settings = new Map<string, string[]>();
  for (const line of unitSource.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) settings.set(match[1]!, [...(settings.get(match[1]!) ?? []), match[2]!]);
  }
  const value = (key: string): string | undefined => settings.get(key)?.at(-1);

  it('has what the issue asks for', () => {
    expect(value('Type')).toBe('notify');
    expect(value('WatchdogSec')).toMatch(/^\d+s$/);
    expect(value('User')).toBe('execsentry');
    expect(value('Restart')).toBe('on-failure');
    expect(value('StartLimitBurst')).toMatch(/^\d+$/);
    expect(value('MemoryMax')).toBeDefined();
    for (const key of [
      'NoNewPrivileges', 'PrivateTmp', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups',
      'ProtectClock', 'ProtectHostname', 'RestrictNamespaces', 'RestrictSUIDSGID', 'LockPersonality',
    ]) {
      expect({ key, value: value(key) }).toEqual({ key, value: 'yes' });
    }
    expect(value('ProtectSystem')).toBe('strict');
    expect(value('ProtectHome')).toBe('read-only');
    expect(value('SystemCallArchitectures')).toBe('native');
    expect(value('RestrictAddressFamilies')).toBe('AF_NETLINK AF_UNIX AF_INET AF_INET6');
    for (const kind of ['State', 'Configuration', 'Runtime']) {
      expect(value(`${kind}Directory`)).toBe('execsentry');
      expect(value(`${kind}DirectoryMode`)).toBe('0700');
    }
    expect(value('AmbientCapabilities')).toBe('CAP_NET_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH');
    expect(value('CapabilityBoundingSet')).toBe(value('AmbientCapabilities'));
    // The reader thread's SCHED_FIFO 1 without CAP_SYS_NICE: RLIMIT_RTPRIO 1, and real-time not forbidden.
    expect(value('LimitRTPRIO')).toBe('1');
    expect(value('RestrictRealtime')).toBe('no');
    // Where the limit is not honoured the reader stays at the agent's nice value: the unit starts it raised.
    expect(value('Nice')).toBe('-10');
    // V8 needs W+X memory and the sensor all of /proc: these must stay off.
    expect(settings.has('MemoryDenyWriteExecute')).toBe(false);
    expect(settings.has('ProtectProc')).toBe(false);
  });

  it('points its documentation to a README section that exists', () => {
    const readme = /^file:\/\/\/usr\/lib\/node_modules\/execsentry\/README\.md#([a-z-]+) /.exec(value('Documentation') ?? '');
    expect(readme, value('Documentation')).not.toBeNull();
    expect(headingAnchors(README)).toContain(readme![1]);
  });

  it('passes systemd-analyze verify, as shipped and as installed', () => {
    const root = mkdtempSync(join(tmpdir(), 'execsentry-unit-'));
    try {
      const shipped = spawnSync('systemd-analyze', ['verify', '--man=no', fileURLToPath(new URL('../../systemd/execsentry.service', import.meta.url))], {
        encoding: 'utf8',
      });
      // As shipped, ExecStart names /usr/bin/node, which need not be where node lives here: only that may be reported.
      const shippedProblems = shipped.stderr.split('\n').filter((line) => line !== '' && !/^execsentry\.service: Command \/usr\/bin\/node is not executable/.test(line));
      expect(shippedProblems).toEqual([]);
      expect(execsentry(['install', '--root', root]).status).toBe(0);
      const installed = join(root, 'etc/systemd/system/execsentry.service');
      const verify = spawnSync('systemd-analyze', ['verify', '--man=no', installed], { encoding: 'utf8' });
      expect(verify.stderr).toBe('');
      expect(verify.status).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('keeps the offline exposure score of systemd-analyze security at or below 4.1', () => {
    const run = spawnSync('systemd-analyze', ['security', '--offline=true', '--threshold=41', fileURLToPath(new URL('../../systemd/execsentry.service', import.meta.url))], {
      encoding: 'utf8',
    });
    const score = /Overall exposure level for execsentry\.service: (\d+\.\d)/.exec(run.stdout);
    expect(score, run.stdout + run.stderr).not.toBeNull();
    expect(Number(score![1])).toBeLessThanOrEqual(4.1);
    expect(run.status).toBe(0);
  });
});

/** True when this machine already has an execsentry installation the test must not touch. */
function realInstallationPresent(): boolean {
  return (
    spawnSync('getent', ['passwd', 'execsentry']).status === 0 ||
    existsSync('/etc/execsentry') ||
    existsSync('/etc/systemd/system/execsentry.service') ||
    existsSync('/var/lib/execsentry')
  );
}

describeAsRoot('execsentry install / uninstall on this machine (no --root)', () => {
  const present = realInstallationPresent();
  const systemdRuns = existsSync('/run/systemd/system');
  if (present || systemdRuns) {
    process.stderr.write(`SKIPPED: install on this machine (${present ? 'an execsentry installation exists and is not ours to remove' : 'systemd runs here and would start the service'})\n`);
  }
  it.skipIf(present || systemdRuns)('creates the system user, owns config and state by it, prints what to run; uninstall --purge removes all', () => {
    try {
      const first = execsentry(['install']);
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      const user = spawnSync('getent', ['passwd', 'execsentry'], { encoding: 'utf8' }).stdout.trim().split(':');
      expect(user[0]).toBe('execsentry');
      const uid = Number(user[2]);
      expect(uid).toBeLessThan(1000);
      expect(user[6]).toMatch(/nologin|false$/);
      expect(first.stdout).toContain(`created system user execsentry (uid ${uid})`);
      expect(first.stdout).toContain('\n# systemd is not running on this machine; where it runs, as root:\nsystemctl daemon-reload\nsystemctl enable --now execsentry.service\n');
      const owned = (path: string): { mode: string; uid: number } => ({ mode: (statSync(path).mode & 0o7777).toString(8), uid: statSync(path).uid });
      expect(owned('/etc/systemd/system/execsentry.service')).toEqual({ mode: '644', uid: 0 });
      expect(owned('/etc/execsentry')).toEqual({ mode: '700', uid });
      expect(owned('/etc/execsentry/config.json')).toEqual({ mode: '600', uid });
      expect(owned('/etc/execsentry/rules.d')).toEqual({ mode: '700', uid });
      expect(owned('/var/lib/execsentry')).toEqual({ mode: '700', uid });

      const second = execsentry(['install']);
      expect(second.status).toBe(0);
      expect(second.stdout).toContain(`unchanged user execsentry (uid ${uid})`);
      expect(second.stdout).not.toMatch(/^(created|updated|fixed)/m);

      expect(execsentry(['uninstall']).status).toBe(0);
      expect(existsSync('/etc/systemd/system/execsentry.service')).toBe(false);
      expect(existsSync('/var/lib/execsentry')).toBe(true);
      expect(spawnSync('getent', ['passwd', 'execsentry']).status).toBe(0);

      const purge = execsentry(['uninstall', '--purge']);
      expect(purge.status).toBe(0);
      expect(purge.stdout).toContain('removed user execsentry');
      expect(realInstallationPresent()).toBe(false);
    } finally {
      // Whatever failed above, leave the machine as it was.
      if (realInstallationPresent()) execsentry(['uninstall', '--purge']);
    }
  });
});
