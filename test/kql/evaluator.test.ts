import { describe, expect, it } from 'vitest';
import { compileKql, getField } from '../../src/kql/index.js';

const NOW = Date.parse('2026-11-28T12:00:00.000Z');
const matches = (query: string, doc: object): boolean => {
  const compiled = compileKql(query, { now: () => NOW });
  const viaDoc = compiled.matches(doc);
  // the accessor path must always give the same answer as the document path
  const get = (field: string): unknown => (field === '' ? doc : getField(doc, field));
  expect(compiled.matchesAccessor(get)).toBe(viaDoc);
  return viaDoc;
};

describe('keyword fields', () => {
  it('match exactly and case-sensitively', () => {
    const doc = { process: { name: 'bash' } };
    expect(matches('process.name:bash', doc)).toBe(true);
    expect(matches('process.name:Bash', doc)).toBe(false);
    expect(matches('process.name:bas', doc)).toBe(false);
    expect(matches('process.name:"bash"', doc)).toBe(true);
  });

  it('match a multi-word value as one exact string', () => {
    expect(matches('process.name:Google Chrome', { process: { name: 'Google Chrome' } })).toBe(true);
    expect(matches('process.name:Google Chrome', { process: { name: 'Google' } })).toBe(false);
  });

  it('anchor wildcards at both ends and let * cross / and newlines', () => {
    const doc = { process: { executable: '/usr/bin/bash', command_line: 'bash -c "echo a\nb"' } };
    expect(matches('process.executable:/usr/*', doc)).toBe(true);
    expect(matches('process.executable:*bash', doc)).toBe(true);
    expect(matches('process.executable:*/bin/*', doc)).toBe(true);
    expect(matches('process.executable:bin*', doc)).toBe(false);
    expect(matches('process.executable:*bas', doc)).toBe(false);
    expect(matches('process.executable:/usr*bin*bash', doc)).toBe(true);
    expect(matches('process.command_line:*a*b*', doc)).toBe(true);
    expect(matches('process.executable:/usr/bin/bash*', doc)).toBe(true);
    expect(matches('process.executable:*/usr/bin/bash*', doc)).toBe(true);
    expect(matches('process.executable:/usr/bin/bash/*', doc)).toBe(false);
  });

  it('treat a quoted or escaped * as a literal star', () => {
    expect(matches('file.path:"/tmp/*"', { file: { path: '/tmp/*' } })).toBe(true);
    expect(matches('file.path:"/tmp/*"', { file: { path: '/tmp/x' } })).toBe(false);
    expect(matches('file.path:/tmp/\\*', { file: { path: '/tmp/x' } })).toBe(false);
    expect(matches('file.path:/tmp/\\*', { file: { path: '/tmp/*' } })).toBe(true);
  });

  it('do not index values longer than 1024 characters (ignore_above): no match, no existence', () => {
    const long = `/${'a'.repeat(1024)}`;
    expect(matches(`process.executable:"${long}"`, { process: { executable: long } })).toBe(false);
    expect(matches('process.executable:/*', { process: { executable: long } })).toBe(false);
    expect(matches('process.executable:*', { process: { executable: long } })).toBe(false);
    expect(matches('not process.executable:*', { process: { executable: long } })).toBe(true);
    // in an array only the long element is dropped
    expect(matches('process.args:*', { process: { args: [long, 'x'] } })).toBe(true);
    const limit = 'b'.repeat(1024);
    expect(matches(`process.executable:${limit}`, { process: { executable: limit } })).toBe(true);
  });

  it('have no length limit on wildcard-typed fields (process.command_line)', () => {
    const long = `sh -c ${'x'.repeat(5000)}`;
    expect(matches('process.command_line:sh*', { process: { command_line: long } })).toBe(true);
    expect(matches('process.command_line:*', { process: { command_line: long } })).toBe(true);
  });

  it('compare ranges in code point order', () => {
    const doc = { user: { name: 'mail' } };
    expect(matches('user.name > m', doc)).toBe(true);
    expect(matches('user.name >= mail', doc)).toBe(true);
    expect(matches('user.name < mail', doc)).toBe(false);
    expect(matches('user.name < n', doc)).toBe(true);
    expect(matches('user.name > Z', doc)).toBe(true);
    // U+FF21 (BMP, above the surrogates) sorts below U+1F600 (astral) in code point order
    expect(matches('user.name > "\uff21"', { user: { name: '\u{1F600}' } })).toBe(true);
  });

  it('match a number in the query against keyword text as JSON prints it', () => {
    expect(matches('process.title:42', { process: { title: '42' } })).toBe(true);
    expect(matches('process.title:1.0', { process: { title: '1' } })).toBe(true);
    expect(matches('process.title:007', { process: { title: '007' } })).toBe(true);
  });
});

describe('fields ECS does not define (keyword by default)', () => {
  it('compare strings exactly and document numbers and booleans sensibly', () => {
    expect(matches('process.Ext.session:abc', { process: { Ext: { session: 'abc' } } })).toBe(true);
    expect(matches('process.Ext.depth:3', { process: { Ext: { depth: 3 } } })).toBe(true);
    expect(matches('process.Ext.depth:"3"', { process: { Ext: { depth: 3 } } })).toBe(true);
    expect(matches('process.Ext.depth > 10', { process: { Ext: { depth: 9 } } })).toBe(false);
    expect(matches('process.Ext.depth >= 9', { process: { Ext: { depth: 9 } } })).toBe(true);
    expect(matches('process.Ext.trusted:true', { process: { Ext: { trusted: true } } })).toBe(true);
    expect(matches('process.Ext.trusted:false', { process: { Ext: { trusted: true } } })).toBe(false);
    expect(matches('process.Ext.depth:abc', { process: { Ext: { depth: 3 } } })).toBe(false);
  });
});

describe('missing fields, null, arrays', () => {
  it('never match a missing field, so not field:x is true without the field', () => {
    expect(matches('process.name:bash', {})).toBe(false);
    expect(matches('not process.name:bash', {})).toBe(true);
    expect(matches('not process.name:bash', { process: {} })).toBe(true);
    expect(matches('not process.name:bash', { process: { name: 'bash' } })).toBe(false);
  });

  it('treat null and [] as missing for existence', () => {
    expect(matches('process.parent.executable:*', { process: { parent: { executable: '/bin/sh' } } })).toBe(true);
    expect(matches('process.parent.executable:*', { process: { parent: { executable: null } } })).toBe(false);
    expect(matches('process.parent.executable:*', { process: { parent: { executable: [] } } })).toBe(false);
    expect(matches('process.parent.executable:*', { process: { parent: { executable: [null] } } })).toBe(false);
    expect(matches('process.parent.executable:*', { process: { parent: {} } })).toBe(false);
    expect(matches('process.parent.executable:*', { process: { parent: { executable: '' } } })).toBe(true);
    expect(matches('not process.parent.executable:*', {})).toBe(true);
  });

  it('make an object exist when a field under it exists', () => {
    expect(matches('process.parent:*', { process: { parent: { pid: 1 } } })).toBe(true);
    expect(matches('process.parent:*', { process: { parent: {} } })).toBe(false);
    expect(matches('process.parent:*', { process: { parent: { name: null } } })).toBe(false);
  });

  it('match an array when any element matches', () => {
    const doc = { process: { args: ['bash', '-i'] }, event: { category: ['process', 'host'] } };
    expect(matches('process.args:-i', doc)).toBe(true);
    expect(matches('process.args:-c', doc)).toBe(false);
    expect(matches('event.category:host', doc)).toBe(true);
    expect(matches('process.args:-i and process.args:bash', doc)).toBe(true);
    expect(matches('not process.args:-i', doc)).toBe(false);
    expect(matches('process.args:(-c or -i)', doc)).toBe(true);
  });

  it('flatten arrays of objects and arrays of arrays', () => {
    const doc = { threat: [{ technique: { id: ['T1059'] } }, { technique: { id: [['T1564', 'T1078']] } }] };
    expect(matches('threat.technique.id:T1078', doc)).toBe(true);
    expect(getField(doc, 'threat.technique.id')).toEqual(['T1059', 'T1564', 'T1078']);
  });
});

describe('pathological documents', () => {
  it('answer (never overflow the stack) for documents nested far deeper than Elasticsearch accepts', () => {
    const deepArrays = JSON.parse(`{"a":${'['.repeat(100_000)}1${']'.repeat(100_000)},"x":"y"}`) as object;
    expect(matches('a:1', deepArrays)).toBe(false);
    expect(matches('1', deepArrays)).toBe(false);
    expect(matches('x:y and not a:*', deepArrays)).toBe(true);
    const deepObjects = JSON.parse(`{"b":${'{"c":'.repeat(5000)}1${'}'.repeat(5000)}}`) as object;
    expect(matches('b:*', deepObjects)).toBe(false);
    expect(matches('*:1', deepObjects)).toBe(false);
  });

  it('read documents nested within the limit completely', () => {
    expect(matches('a:1', JSON.parse(`{"a":${'['.repeat(500)}1${']'.repeat(500)}}`) as object)).toBe(true);
  });
});

describe('dotted keys and nested objects', () => {
  it('read the same field from nested objects, dotted keys or a mix', () => {
    for (const doc of [
      { process: { parent: { name: 'sshd' } } },
      { 'process.parent.name': 'sshd' },
      { process: { 'parent.name': 'sshd' } },
      { 'process.parent': { name: 'sshd' } },
    ]) {
      expect(matches('process.parent.name:sshd', doc)).toBe(true);
      expect(matches('process.parent.name:*', doc)).toBe(true);
      expect(getField(doc, 'process.parent.name')).toEqual(['sshd']);
    }
  });

  it('collect values from both forms when a document has both', () => {
    const doc = { process: { name: 'a' }, 'process.name': 'b' };
    expect(getField(doc, 'process.name').sort()).toEqual(['a', 'b']);
    expect(matches('process.name:b', doc)).toBe(true);
  });

  it('never read inherited members of Object.prototype', () => {
    expect(matches('constructor:*', {})).toBe(false);
    expect(matches('a.toString:*', { a: {} })).toBe(false);
    expect(matches('a.__proto__:*', { a: {} })).toBe(false);
    expect(matches('a.__proto__:x', JSON.parse('{"a":{"__proto__":"x"}}') as object)).toBe(true);
    expect(matches('constructor:x', JSON.parse('{"constructor":"x"}') as object)).toBe(true);
  });
});

describe('boolean fields', () => {
  it('match true/false and the strings "true"/"false"', () => {
    expect(matches('process.interactive:true', { process: { interactive: true } })).toBe(true);
    expect(matches('process.interactive:true', { process: { interactive: 'true' } })).toBe(true);
    expect(matches('process.interactive:"true"', { process: { interactive: true } })).toBe(true);
    expect(matches('process.interactive:false', { process: { interactive: false } })).toBe(true);
    expect(matches('process.interactive:false', { process: { interactive: 'false' } })).toBe(true);
    expect(matches('process.interactive:true', { process: { interactive: false } })).toBe(false);
    expect(matches('process.interactive:false', {})).toBe(false);
  });

  it('match nothing for values that are not booleans', () => {
    expect(matches('process.interactive:yes', { process: { interactive: true } })).toBe(false);
    expect(matches('process.interactive:1', { process: { interactive: true } })).toBe(false);
    expect(matches('process.interactive:TRUE', { process: { interactive: true } })).toBe(false);
    expect(matches('process.interactive:*', { process: { interactive: 'maybe' } })).toBe(false);
    expect(matches('process.interactive:t*', { process: { interactive: true } })).toBe(false);
  });
});

describe('numeric fields', () => {
  it('compare numerically, coercing numeric strings', () => {
    expect(matches('process.pid:42', { process: { pid: 42 } })).toBe(true);
    expect(matches('process.pid:"42"', { process: { pid: 42 } })).toBe(true);
    expect(matches('process.pid:42', { process: { pid: '42' } })).toBe(true);
    expect(matches('process.pid:042', { process: { pid: 42 } })).toBe(true);
    expect(matches('process.pid:43', { process: { pid: 42 } })).toBe(false);
    expect(matches('process.args_count >= 2', { process: { args_count: 2 } })).toBe(true);
    expect(matches('process.args_count > 2', { process: { args_count: 2 } })).toBe(false);
    expect(matches('process.args_count < 10', { process: { args_count: 9 } })).toBe(true);
    expect(matches('process.args_count <= 8', { process: { args_count: 9 } })).toBe(false);
    // numeric, not lexicographic: 9 < 10
    expect(matches('process.pid < 10', { process: { pid: 9 } })).toBe(true);
  });

  it('truncate long fields like Elasticsearch and never match a fractional term on them', () => {
    expect(matches('process.pid:42', { process: { pid: 42.9 } })).toBe(true);
    expect(matches('process.pid:42.5', { process: { pid: 42 } })).toBe(false);
    expect(matches('process.pid > 41.5', { process: { pid: 42 } })).toBe(true);
  });

  it('match nothing (never throw) for values that do not convert', () => {
    expect(matches('process.pid:abc', { process: { pid: 42 } })).toBe(false);
    expect(matches('process.pid > abc', { process: { pid: 42 } })).toBe(false);
    expect(matches('process.pid:4*', { process: { pid: 42 } })).toBe(false);
    expect(matches('process.pid:42', { process: { pid: 'forty-two' } })).toBe(false);
    expect(matches('process.pid:*', { process: { pid: 'forty-two' } })).toBe(false);
    expect(matches('process.pid:null', { process: { pid: 42 } })).toBe(false);
    expect(matches('not process.pid:abc', { process: { pid: 42 } })).toBe(true);
  });

  it('compare float fields in single precision', () => {
    expect(matches('host.cpu.usage:0.1', { host: { cpu: { usage: 0.1 } } })).toBe(true);
    expect(matches('process.tty.char_device.major:136', { process: { tty: { char_device: { major: 136 } } } })).toBe(true);
  });
});

describe('date fields', () => {
  const doc = { '@timestamp': '2024-03-15T10:30:00.000Z' };

  it('match a date without time as that whole day (missing month/day are 01, as in Elasticsearch)', () => {
    expect(matches('@timestamp:2024-03-15', doc)).toBe(true);
    expect(matches('@timestamp:2024-03', doc)).toBe(false);
    expect(matches('@timestamp:2024-03', { '@timestamp': '2024-03-01T18:00:00Z' })).toBe(true);
    expect(matches('@timestamp:2024', { '@timestamp': '2024-01-01T23:59:59.999Z' })).toBe(true);
    expect(matches('@timestamp:"2024-03-15T10"', doc)).toBe(true);
    expect(matches('@timestamp:"2024-03-15T11"', doc)).toBe(false);
    expect(matches('@timestamp:2024-03-16', doc)).toBe(false);
    expect(matches('@timestamp:"2024-03-15T10:30:00Z"', doc)).toBe(true);
    expect(matches('@timestamp:"2024-03-15T12:30:00+02:00"', doc)).toBe(true);
  });

  it('round range bounds as Elasticsearch does', () => {
    expect(matches('@timestamp >= 2024-03-15', doc)).toBe(true);
    expect(matches('@timestamp <= 2024-03-15', doc)).toBe(true);
    expect(matches('@timestamp > 2024-03-15', doc)).toBe(false);
    expect(matches('@timestamp < 2024-03-15', doc)).toBe(false);
    expect(matches('@timestamp > 2024-03-14', doc)).toBe(true);
    expect(matches('@timestamp < 2024-03-16', doc)).toBe(true);
    expect(matches('@timestamp < "2024-03-15T10:30:00.001Z"', doc)).toBe(true);
  });

  it('accept epoch milliseconds on both sides', () => {
    const ms = Date.parse('2024-03-15T10:30:00.000Z');
    expect(matches(`@timestamp:${ms}`, doc)).toBe(true);
    expect(matches('@timestamp >= "2024-03-15T00:00:00Z"', { '@timestamp': ms })).toBe(true);
  });

  it('evaluate date math against the supplied now', () => {
    const recent = { '@timestamp': '2026-11-28T06:00:00.000Z' };
    expect(matches('@timestamp > now-1d', recent)).toBe(true);
    expect(matches('@timestamp > now-1h', recent)).toBe(false);
    expect(matches('@timestamp >= now/d', recent)).toBe(true);
    expect(matches('@timestamp < now-1d/d', recent)).toBe(false);
    expect(matches('@timestamp >= "2026-11-01||+1M-3d"', recent)).toBe(true);
  });

  it('match nothing for text that is not a date', () => {
    expect(matches('@timestamp:yesterday', doc)).toBe(false);
    expect(matches('@timestamp > yesterday', doc)).toBe(false);
    expect(matches('@timestamp:2024-13-01', doc)).toBe(false);
    expect(matches('@timestamp:*', { '@timestamp': 'not a date' })).toBe(false);
  });
});

describe('ip fields', () => {
  it('match addresses and CIDR blocks, IPv4 and IPv6', () => {
    const doc = { host: { ip: ['10.20.0.7', 'fe80::5054:ff:fe12:3456'] } };
    expect(matches('host.ip:10.20.0.7', doc)).toBe(true);
    expect(matches('host.ip:"10.0.0.0/8"', doc)).toBe(true);
    expect(matches('host.ip:10.0.0.0/8', doc)).toBe(true);
    expect(matches('host.ip:192.168.0.0/16', doc)).toBe(false);
    expect(matches('host.ip:"fe80::/10"', doc)).toBe(true);
    expect(matches('host.ip:"fe80:0:0:0:5054:ff:fe12:3456"', doc)).toBe(true);
    expect(matches('host.ip:"2001:db8::/32"', doc)).toBe(false);
    expect(matches('source.ip:"::ffff:10.1.2.3"', { source: { ip: '10.1.2.3' } })).toBe(true);
    expect(matches('source.ip:"0.0.0.0/0"', { source: { ip: '10.1.2.3' } })).toBe(true);
    expect(matches('source.ip:"::/0"', { source: { ip: '2001:db8::1' } })).toBe(true);
  });

  it('compare ranges numerically and reject what is not an address', () => {
    expect(matches('source.ip > 10.0.0.9', { source: { ip: '10.0.0.10' } })).toBe(true);
    expect(matches('source.ip:banana', { source: { ip: '10.0.0.10' } })).toBe(false);
    expect(matches('source.ip:10.0.*', { source: { ip: '10.0.0.10' } })).toBe(false);
    expect(matches('source.ip:*', { source: { ip: 'not-an-ip' } })).toBe(false);
    expect(matches('source.ip:"10.0.0.0/33"', { source: { ip: '10.0.0.10' } })).toBe(false);
  });
});

describe('match_only_text fields (message)', () => {
  const doc = { message: 'Interactive shell launched by daemon' };

  it('match any analyzed term of an unquoted value', () => {
    expect(matches('message:shell', doc)).toBe(true);
    expect(matches('message:SHELL', doc)).toBe(true);
    expect(matches('message:shell launched', doc)).toBe(true);
    expect(matches('message:ghost cat', doc)).toBe(false);
  });

  it('match a quoted value as a phrase', () => {
    expect(matches('message:"shell launched"', doc)).toBe(true);
    expect(matches('message:"launched shell"', doc)).toBe(false);
    expect(matches('message:"Interactive   SHELL"', doc)).toBe(true);
  });

  it('match wildcards against single terms', () => {
    expect(matches('message:laun*', doc)).toBe(true);
    expect(matches('message:*ell', doc)).toBe(true);
    expect(matches('message:shell*daemon', doc)).toBe(false);
  });
});

describe('flattened and object fields', () => {
  const doc = { log: { syslog: { structured_data: { origin: { ip: '10.0.0.1', software: 'rsyslogd' } } } }, labels: { env: 'prod' } };

  it('match a flattened field against any of its leaves, and a leaf by its key', () => {
    expect(matches('log.syslog.structured_data:rsyslogd', doc)).toBe(true);
    expect(matches('log.syslog.structured_data:rsys*', doc)).toBe(true);
    expect(matches('log.syslog.structured_data:syslogd', doc)).toBe(false);
    expect(matches('log.syslog.structured_data.origin.software:rsyslogd', doc)).toBe(true);
    expect(matches('log.syslog.structured_data:*', doc)).toBe(true);
  });

  it('never match a value on an object field, but let it exist through its subfields', () => {
    expect(matches('labels:prod', doc)).toBe(false);
    expect(matches('labels:*', doc)).toBe(true);
    expect(matches('labels.env:prod', doc)).toBe(true);
  });
});

describe('multi-fields (indexed from their parent field, never in the document)', () => {
  const doc = {
    process: { name: 'Bash', executable: '/USR/bin/bash', command_line: '/bin/bash -c "Echo Hello-World"', args: ['/bin/bash', '-c'] },
    user: { name: 'daemon' },
  };

  it('match caseless fields through the lowercase normalizer: terms, lists, wildcards, ranges', () => {
    expect(matches('process.name.caseless:bash', doc)).toBe(true);
    expect(matches('process.name.caseless:BASH', doc)).toBe(true);
    expect(matches('process.name:bash', doc)).toBe(false);
    expect(matches('process.name.caseless:(zsh or BASH)', doc)).toBe(true);
    expect(matches('process.name.caseless:(zsh or dash)', doc)).toBe(false);
    expect(matches('process.executable.caseless:*/BIN/BASH', doc)).toBe(true);
    expect(matches('process.executable.caseless:/usr/*', doc)).toBe(true);
    expect(matches('process.executable:/usr/*', doc)).toBe(false);
    // 'Bash' < 'BASI' only once both are lowercased; 'Bash' >= 'b' only once the document's value is
    expect(matches('process.name.caseless < BASI', doc)).toBe(true);
    expect(matches('process.name.caseless >= b', doc)).toBe(true);
    expect(matches('process.name < BASI', doc)).toBe(false);
    expect(matches('process.name.caseless > bash', doc)).toBe(false);
    expect(matches('process.name.caseless:*', doc)).toBe(true);
    // ignore_above counts the value as written
    const long = 'A'.repeat(1025);
    expect(matches('process.name.caseless:*', { process: { name: long } })).toBe(false);
    expect(matches(`process.name.caseless:${long}`, { process: { name: long } })).toBe(false);
  });

  it('lowercase code point by code point, as Lucene does', () => {
    expect(matches('process.name.caseless:i', { process: { name: '\u0130' } })).toBe(true);
    expect(matches('process.name.caseless:οδοσ', { process: { name: 'ΟΔΟΣ' } })).toBe(true);
    expect(matches('process.command_line.text:οδοσ', { process: { command_line: 'ΟΔΟΣ' } })).toBe(true);
  });

  it('analyze text fields, also past the parent keyword\'s ignore_above', () => {
    expect(matches('process.command_line.text:hello', doc)).toBe(true);
    expect(matches('process.command_line.text:"echo hello"', doc)).toBe(true);
    expect(matches('process.command_line.text:"hello echo"', doc)).toBe(false);
    expect(matches('process.command_line.text:hel*', doc)).toBe(true);
    expect(matches('process.name.text:BASH', doc)).toBe(true);
    expect(matches('user.name.text:daemon', doc)).toBe(true);
    expect(matches('process.executable.text:*', doc)).toBe(true);
    const long = `x ${'a'.repeat(1100)} needle`;
    expect(matches('process.executable.text:needle', { process: { executable: long } })).toBe(true);
    expect(matches('process.executable:*needle', { process: { executable: long } })).toBe(false);
  });

  it('include ECS\'s text multi-fields beyond the process event', () => {
    expect(matches('file.path.text:passwd', { file: { path: '/etc/passwd' } })).toBe(true);
    // UAX #29 keeps a dotted name together, as Lucene's standard tokenizer does
    expect(matches('url.original.text:example.com', { url: { original: 'https://example.com/x' } })).toBe(true);
    expect(matches('url.original.text:example', { url: { original: 'https://example.com/x' } })).toBe(false);
    expect(matches('user.effective.name.text:ROOT', { user: { effective: { name: 'root' } } })).toBe(true);
    expect(matches('file.path.caseless:/etc/passwd', { file: { path: '/etc/passwd' } })).toBe(false);
  });

  it('exist only where the mapping has them', () => {
    expect(matches('user.name.caseless:daemon', doc)).toBe(false);
    expect(matches('process.args.text:bash', doc)).toBe(false);
    expect(matches('process.args.caseless:*', doc)).toBe(false);
  });

  it('are covered by field patterns and by values with no field', () => {
    expect(matches('process.*:hello', doc)).toBe(true);
    expect(matches('process.command_line*:hello', doc)).toBe(true);
    expect(matches('process.command_line:hello', doc)).toBe(false);
    expect(matches('process.*.caseless:BASH', doc)).toBe(true);
    expect(matches('process.*.caseless:HELLO', doc)).toBe(false);
    expect(matches('user.*:DAEMON', doc)).toBe(true);
    // a value with no field searches the default fields, which on Defend's indices hold no multi-field
    expect(matches('Bash', doc)).toBe(true);
    expect(matches('bash', doc)).toBe(false);
    expect(matches('hello', doc)).toBe(false);
    expect(matches('nothere', doc)).toBe(false);
  });

  it('leave a real field named text alone (process.io.text is a wildcard field, not a multi-field)', () => {
    const io = { process: { io: { text: 'Hello World' } } };
    expect(matches('process.io.text:Hello*', io)).toBe(true);
    expect(matches('process.io.text:hello*', io)).toBe(false);
    expect(matches('process.io.text:Hello', io)).toBe(false);
    expect(matches('process.io.*:Hello World', io)).toBe(true);
    expect(compileKql('process.io.text:x').fields).toEqual(['process.io.text']);
  });

  it('read inside nested queries relative to the nested path', () => {
    expect(matches('process:{ name.caseless:BASH and command_line.text:world }', doc)).toBe(true);
    expect(matches('process:{ name.caseless:ZSH }', doc)).toBe(false);
  });

  it('are listed as the parent field they are read from', () => {
    expect(compileKql('process.name.caseless:x and process.command_line.text:(a or b) and process:{ executable.caseless:y }').fields).toEqual([
      'process.name',
      'process.command_line',
      'process',
      'process.executable',
    ]);
  });
});

describe('values with no field and wildcard field names', () => {
  const doc = { process: { name: 'bash', parent: { name: 'sshd', pid: 7 } }, user: { name: 'daemon' }, message: 'hello world' };

  it('match a value against every leaf of the document', () => {
    expect(matches('bash', doc)).toBe(true);
    expect(matches('sshd', doc)).toBe(true);
    expect(matches('zsh', doc)).toBe(false);
    expect(matches('*emon', doc)).toBe(true);
    expect(matches('7', doc)).toBe(true);
    expect(matches('world', doc)).toBe(true);
    expect(matches('not zsh', doc)).toBe(true);
  });

  it('match field name patterns against every field they cover', () => {
    expect(matches('process.*:sshd', doc)).toBe(true);
    expect(matches('process.*:daemon', doc)).toBe(false);
    expect(matches('*.name:daemon', doc)).toBe(true);
    expect(matches('process.parent.*:*', doc)).toBe(true);
    expect(matches('process.child.*:*', doc)).toBe(false);
    expect(matches('process.*.pid >= 7', doc)).toBe(true);
  });

  it('type each field a pattern covers by its own mapping', () => {
    // process.pid is long: 42.0 as text matches numerically there; user.name is keyword
    expect(matches('*:42', { process: { pid: 42 } })).toBe(true);
    expect(matches('process.*:true', { process: { interactive: true } })).toBe(true);
  });
});

describe('nested queries', () => {
  const doc = {
    threat: {
      enrichments: [
        { indicator: { ip: '10.0.0.1', type: 'ipv4-addr' }, matched: { field: 'source.ip' } },
        { indicator: { ip: '10.0.0.2', type: 'domain-name' }, matched: { field: 'destination.ip' } },
      ],
    },
  };

  it('require the whole subquery to hold within one element', () => {
    expect(matches('threat.enrichments:{ indicator.ip:10.0.0.1 and matched.field:source.ip }', doc)).toBe(true);
    expect(matches('threat.enrichments:{ indicator.ip:10.0.0.1 and matched.field:destination.ip }', doc)).toBe(false);
    // the same without nesting matches across elements, as object arrays do in Elasticsearch
    expect(matches('threat.enrichments.indicator.ip:10.0.0.1 and threat.enrichments.matched.field:destination.ip', doc)).toBe(true);
  });

  it('type inner fields by their full path (indicator.ip is an ip field)', () => {
    expect(matches('threat.enrichments:{ indicator.ip:"10.0.0.0/30" }', doc)).toBe(true);
  });

  it('work over a single object, with not inside and outside', () => {
    expect(matches('process.parent:{ name:sshd and not pid:1 }', { process: { parent: { name: 'sshd', pid: 7 } } })).toBe(true);
    expect(matches('not threat.enrichments:{ indicator.type:url }', doc)).toBe(true);
    expect(matches('threat.enrichments:{ not indicator.type:domain-name }', doc)).toBe(true);
    expect(matches('threat.enrichments:{ x:1 }', {})).toBe(false);
  });

  it('nest inside nested', () => {
    const deep = { a: [{ b: [{ c: 1, d: 2 }, { c: 3, d: 4 }] }] };
    expect(matches('a:{ b:{ c:1 and d:2 } }', deep)).toBe(true);
    expect(matches('a:{ b:{ c:1 and d:4 } }', deep)).toBe(false);
  });
});

describe('compiled query', () => {
  it('lists the fields it reads, nested paths in full', () => {
    expect(compileKql('a:1 and (b:2 or not c:*) and d > 3 and n:{ x:1 } and p.*:q and free').fields).toEqual(['a', 'b', 'c', 'd', 'n', 'n.x', 'p.*', '*']);
  });

  it('reads dotted names through the accessor, once per field for value lists', () => {
    const calls: string[] = [];
    const compiled = compileKql('user.name:(daemon or bin or sys) and process.interactive:true');
    const answer = compiled.matchesAccessor((field) => {
      calls.push(field);
      return field === 'user.name' ? 'bin' : field === 'process.interactive' ? true : undefined;
    });
    expect(answer).toBe(true);
    expect(calls.sort()).toEqual(['process.interactive', 'user.name']);
  });

  it('matches everything for the empty query and match-all', () => {
    expect(compileKql('').matches({})).toBe(true);
    expect(compileKql('*').matches({ a: 1 })).toBe(true);
    expect(compileKql('not *').matches({ a: 1 })).toBe(false);
  });
});
