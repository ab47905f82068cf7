/**
 * Shared by bench/kql.ts and test/kql: the built-in rule's query (Elastic's "Unusual Interactive Shell
 * Launched from System User", version 1, copied exactly from the detection issue) and realistic exec events
 * shaped as Elastic Defend / execsentry emit them.
 */
export const DEFAULT_RULE_QUERY = `event.category:process and host.os.type:linux and event.type:start and event.action:exec and user.name:(
   daemon or bin or sys or sync or games or man or mail or news or uucp or proxy or backup or list or irc
   or gnats or _apt or Debian-exim or systemd-timesync or messagebus or uuidd or _chrony or sshd or
   gamer or shutdown or halt or dbus or polkitd or rtkit or pipewire or tcpdump or clevis or
   libstoreagemgmt or geoclue or tss or sssd or gnome-initial-setup or pesign or dnsmasq or chrony
) and process.interactive:true and process.parent.executable:* and not (
  process.parent.name:(
    apt-key or apt-config or gpgv or gpgconf or man-db.postinst or sendmail or rpm or nullmailer-inject
  ) or
  process.args:(/etc/apt/trusted.gpg.d/* or /tmp/apt-key-gpg*) or
  process.name:(awk or apt-config or dpkg or grep or gpgv or sed) or
  (user.name:daemon and process.name:at)
)`;

/** A 40-line query mixing every construct, for the parse+compile measurement. */
export const FORTY_LINE_QUERY = `${DEFAULT_RULE_QUERY}
or (
  event.category:process and event.type:start and
  process.name:(bash or dash or sh or zsh or ksh or fish or tcsh or csh) and
  process.args:("-i" or "-c") and
  process.parent.name:(nc or ncat or netcat or socat or python* or perl* or ruby or php* or node) and
  not process.working_directory:(/usr/lib/* or /opt/* or "/var/lib/dpkg") and
  process.args_count >= 2 and process.args_count <= 64 and
  @timestamp >= "2024-01-01T00:00:00Z" and
  not user.id:0
) or (
  event.category:process and event.action:exec and
  process.executable:(/tmp/* or /dev/shm/* or /var/tmp/* or /run/user/*) and
  not process.executable:(*/.cache/* or */node_modules/*) and
  host.ip:(10.0.0.0/8 or 172.16.0.0/12 or 192.168.0.0/16 or "fd00::/8") and
  process.parent.args:{ * } and
  message:"interactive shell" and
  process.command_line:*base64* and
  process.*:*curl* and
  process.tty.char_device.major > 0 and process.tty.char_device.minor < 4096 and
  process.Ext.relative_file_creation_time < 60 and
  process.env_vars:(LD_PRELOAD* or LD_LIBRARY_PATH*) and
  not process.parent.executable:"/usr/bin/sudo" and
  not (process.name:\\(weird\\)\\:name or process.title:"quoted \\"title\\"") and
  not process.parent.name:(
    systemd or cron or anacron or atd
  )
)`;

type Doc = Record<string, unknown>;

/** The event common part: what every exec on this host carries. */
function baseEvent(): Doc {
  return {
    '@timestamp': '2026-11-28T05:20:01.123Z',
    agent: { type: 'execsentry', version: '0.1.0', id: '6f1c2d2e-6a47-4b1a-9e53-6f1b6c7d8e9f' },
    ecs: { version: '8.17.0' },
    event: {
      kind: 'event',
      category: ['process'],
      type: ['start'],
      action: 'exec',
      id: 'MzQ1Njc4OTAxMjM0NTY3ODkw',
      created: '2026-11-28T05:20:01.125Z',
      module: 'execsentry',
      dataset: 'execsentry.process',
    },
    host: {
      id: '4b1f6f5d0c9b4f7e8a3d2c1b0a998877',
      name: 'build-07',
      hostname: 'build-07',
      architecture: 'x86_64',
      ip: ['10.20.0.7', 'fe80::5054:ff:fe12:3456'],
      os: { type: 'linux', family: 'debian', name: 'Debian GNU/Linux', version: '12', kernel: '6.1.0-26-amd64', platform: 'debian' },
    },
  };
}

function processFields(overrides: {
  pid: number;
  executable: string;
  args: string[];
  user: { id: string; name: string };
  interactive: boolean;
  parent: { executable: string; name: string; args: string[]; pid: number };
  workingDirectory: string;
}): Doc {
  const name = overrides.executable.slice(overrides.executable.lastIndexOf('/') + 1);
  return {
    pid: overrides.pid,
    entity_id: `ZXhlY3NlbnRyeS0${overrides.pid}`,
    executable: overrides.executable,
    name,
    args: overrides.args,
    args_count: overrides.args.length,
    command_line: overrides.args.join(' '),
    working_directory: overrides.workingDirectory,
    start: '2026-11-28T05:20:01.120Z',
    interactive: overrides.interactive,
    ...(overrides.interactive ? { tty: { char_device: { major: 136, minor: 3 } } } : {}),
    session_leader: { pid: overrides.parent.pid },
    group_leader: { pid: overrides.pid },
    user: overrides.user,
    real_user: overrides.user,
    saved_user: overrides.user,
    group: { id: overrides.user.id, name: overrides.user.name },
    real_group: { id: overrides.user.id, name: overrides.user.name },
    thread: { capabilities: { effective: [], permitted: [] } },
    parent: {
      pid: overrides.parent.pid,
      entity_id: `ZXhlY3NlbnRyeS0${overrides.parent.pid}`,
      executable: overrides.parent.executable,
      name: overrides.parent.name,
      args: overrides.parent.args,
      args_count: overrides.parent.args.length,
      command_line: overrides.parent.args.join(' '),
      working_directory: overrides.workingDirectory,
      start: '2026-11-28T04:00:00.000Z',
      interactive: overrides.interactive,
      user: { id: overrides.user.id },
      group: { id: overrides.user.id },
    },
  };
}

/** An ordinary exec on a busy host: root's interactive shell runs `ls -la /var/log`. Does not match. */
export function nonMatchingEvent(): Doc {
  const user = { id: '0', name: 'root' };
  return {
    ...baseEvent(),
    user: { ...user, effective: user },
    group: { id: '0', name: 'root' },
    process: processFields({
      pid: 41877,
      executable: '/usr/bin/ls',
      args: ['ls', '-la', '--color=auto', '/var/log'],
      user,
      interactive: true,
      parent: { executable: '/usr/bin/bash', name: 'bash', args: ['-bash'], pid: 40110 },
      workingDirectory: '/root',
    }),
  };
}

/** The attack the rule exists for: an interactive bash as the system user `daemon`. Matches. */
export function matchingEvent(): Doc {
  const user = { id: '1', name: 'daemon' };
  return {
    ...baseEvent(),
    user: { ...user, effective: user },
    group: { id: '1', name: 'daemon' },
    process: processFields({
      pid: 52011,
      executable: '/usr/bin/bash',
      args: ['bash', '-i'],
      user,
      interactive: true,
      parent: { executable: '/usr/bin/python3.11', name: 'python3.11', args: ['python3', '-c', 'import pty;pty.spawn("/bin/bash")'], pid: 52002 },
      workingDirectory: '/var/www',
    }),
  };
}
