import { describe, expect, it } from 'vitest';
import { compileKql, getField } from '../../src/kql/index.js';
import { DEFAULT_RULE_QUERY, matchingEvent, nonMatchingEvent } from '../../bench/kql-fixtures.js';

/**
 * The built-in rule's query ("Unusual Interactive Shell Launched from System User", v1) on realistic exec
 * events: the positive case, each required clause failing, and each branch of the exclusion list.
 */
type Doc = Record<string, any>;
const rule = compileKql(DEFAULT_RULE_QUERY);
const answer = (doc: Doc): boolean => {
  const viaDoc = rule.matches(doc);
  expect(rule.matchesAccessor((field) => getField(doc, field))).toBe(viaDoc);
  return viaDoc;
};
/** The matching event with some changes applied to a fresh copy. */
const variant = (change: (doc: Doc) => void): Doc => {
  const doc = matchingEvent() as Doc;
  change(doc);
  return doc;
};

describe('default rule: the shells it must catch', () => {
  it('matches an interactive bash run by daemon', () => {
    expect(answer(matchingEvent())).toBe(true);
  });

  it.each(['daemon', 'bin', 'sys', 'mail', 'proxy', '_apt', 'Debian-exim', 'systemd-timesync', 'gnome-initial-setup', 'chrony', 'libstoreagemgmt'])(
    'matches for the system user %s',
    (name) => {
      expect(answer(variant((doc) => (doc.user.name = name)))).toBe(true);
    },
  );

  it('matches dash and sh as well as bash, and a dotted-key event', () => {
    expect(answer(variant((doc) => Object.assign(doc.process, { executable: '/usr/bin/dash', name: 'dash', args: ['dash'] })))).toBe(true);
    const flat: Doc = {};
    for (const field of rule.fields) flat[field] = getField(matchingEvent(), field);
    expect(answer(flat)).toBe(true);
  });
});

describe('default rule: each required clause', () => {
  it.each<[string, (doc: Doc) => void]>([
    ['a user outside the list (root)', (doc) => (doc.user.name = 'root')],
    ['a regular user', (doc) => (doc.user.name = 'alice')],
    ['a user name differing only in case', (doc) => (doc.user.name = 'Daemon')],
    ['no user name', (doc) => delete doc.user],
    ['a non-interactive process', (doc) => (doc.process.interactive = false)],
    ['an unknown interactivity (field absent)', (doc) => delete doc.process.interactive],
    ['no parent executable', (doc) => delete doc.process.parent.executable],
    ['a null parent executable', (doc) => (doc.process.parent.executable = null)],
    ['another event category', (doc) => (doc.event.category = ['network'])],
    ['another event type (end)', (doc) => (doc.event.type = ['end'])],
    ['another action (fork)', (doc) => (doc.event.action = 'fork')],
    ['another OS', (doc) => (doc.host.os.type = 'windows')],
  ])('does not match with %s', (_name, change) => {
    expect(answer(variant(change))).toBe(false);
  });

  it('does not match the ordinary root event', () => {
    expect(answer(nonMatchingEvent())).toBe(false);
  });
});

describe('default rule: each exclusion branch', () => {
  it.each(['apt-key', 'apt-config', 'gpgv', 'gpgconf', 'man-db.postinst', 'sendmail', 'rpm', 'nullmailer-inject'])(
    'excludes a parent named %s',
    (parent) => {
      expect(answer(variant((doc) => (doc.process.parent.name = parent)))).toBe(false);
    },
  );

  it('excludes apt-key style arguments (wildcards over paths)', () => {
    expect(answer(variant((doc) => (doc.process.args = ['gpg', '--keyring', '/etc/apt/trusted.gpg.d/debian-archive.gpg'])))).toBe(false);
    expect(answer(variant((doc) => (doc.process.args = ['gpgv', '/tmp/apt-key-gpghome.Xa3/pubring.gpg'])))).toBe(false);
    // one argument matching is enough (arrays match when any element does)
    expect(answer(variant((doc) => (doc.process.args = ['bash', '-i', '/tmp/apt-key-gpg'])))).toBe(false);
    // near misses stay alerts: the pattern is anchored
    expect(answer(variant((doc) => (doc.process.args = ['cat', '/root/etc/apt/trusted.gpg.d/x'])))).toBe(true);
    expect(answer(variant((doc) => (doc.process.args = ['cat', '/tmp/apt-key'])))).toBe(true);
  });

  it.each(['awk', 'apt-config', 'dpkg', 'grep', 'gpgv', 'sed'])('excludes the process name %s', (name) => {
    expect(answer(variant((doc) => (doc.process.name = name)))).toBe(false);
  });

  it('excludes at only for daemon', () => {
    expect(answer(variant((doc) => (doc.process.name = 'at')))).toBe(false);
    expect(answer(variant((doc) => Object.assign(doc, { user: { name: 'bin' } }, { process: { ...doc.process, name: 'at' } })))).toBe(true);
  });

  it('does not exclude names that only resemble the list', () => {
    expect(answer(variant((doc) => (doc.process.name = 'gawk')))).toBe(true);
    expect(answer(variant((doc) => (doc.process.parent.name = 'rpmbuild')))).toBe(true);
    expect(answer(variant((doc) => (doc.process.name = 'SED')))).toBe(true);
  });
});

describe('default rule: fields', () => {
  it('reads exactly the fields of the rule', () => {
    expect([...rule.fields].sort()).toEqual(
      ['event.action', 'event.category', 'event.type', 'host.os.type', 'process.args', 'process.interactive', 'process.name', 'process.parent.executable', 'process.parent.name', 'user.name'].sort(),
    );
  });
});
