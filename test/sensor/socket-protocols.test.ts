import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stdStreamFields } from '../../src/sensor/stdio.js';

/**
 * Two lists of the same kernel protocol names that nothing but this test keeps in step: the sockets whose ends
 * native/procfs.cc reads (IsIpProtocol: getsockname/getpeername give an IP address and a port) and the
 * protocols src/sensor/stdio.ts names a family and transport for (SOCKET_PROTOCOLS). Both are read from the
 * source text, so a name added to one list only fails here.
 */

const source = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The names IsIpProtocol compares against (`protocol == "TCP" || …`). */
function nativeIpProtocols(): string[] {
  const body = /bool IsIpProtocol\(const std::string& protocol\) \{([\s\S]*?)\n\}/.exec(source('native/procfs.cc'))?.[1];
  if (body === undefined) throw new Error('native/procfs.cc: IsIpProtocol not found');
  const names = [...body.matchAll(/protocol == "([^"]+)"/g)].map((match) => match[1] as string);
  // every comparison is one of a name: nothing else decides (no prefix test, no other variable)
  expect(body.replace(/protocol == "[^"]+"/g, '').replace(/return|\|\||;|\s/g, '')).toBe('');
  return names;
}

/** SOCKET_PROTOCOLS's keys (`TCP: {`, `'UDP-Lite': {`). */
function tableProtocols(): string[] {
  const body = /const SOCKET_PROTOCOLS[^=]*= \{([\s\S]*?)\n\};/.exec(source('src/sensor/stdio.ts'))?.[1];
  if (body === undefined) throw new Error('src/sensor/stdio.ts: SOCKET_PROTOCOLS not found');
  return [...body.matchAll(/^\s*'?([A-Za-z0-9_-]+)'?: \{/gm)].map((match) => match[1] as string);
}

const familyOf = (protocol: string) => stdStreamFields({ type: 'socket', protocol }, undefined).socket;

/** IP sockets without ports: their ends are not read (a raw socket's has none, a ping socket's "port" is the ICMP id). */
const IP_WITHOUT_PORTS = ['RAW', 'RAWv6', 'PING', 'PINGv6'];

describe('the IP protocols native/procfs.cc reads the ends of, and those stdio.ts names', () => {
  it('are read from both sources (what was parsed is what stdio.ts uses)', () => {
    const table = tableProtocols();
    expect(table.length).toBeGreaterThan(10);
    for (const protocol of table) expect(familyOf(protocol)?.family, protocol).toBeDefined();
    expect(familyOf('NO-SUCH-PROTOCOL')?.family).toBeUndefined();
    expect(nativeIpProtocols().length).toBeGreaterThan(5);
  });

  it('every protocol whose ends the snapshot reads is an IP protocol with a transport in stdio.ts', () => {
    for (const protocol of nativeIpProtocols()) {
      const fields = familyOf(protocol);
      expect(['inet', 'inet6'], `${protocol}: its family in SOCKET_PROTOCOLS`).toContain(fields?.family);
      expect(fields?.transport, `${protocol}: its transport in SOCKET_PROTOCOLS`).toBeDefined();
    }
  });

  it('every IP protocol of stdio.ts has its ends read, but those without ports', () => {
    const native = new Set(nativeIpProtocols());
    const ip = tableProtocols().filter((protocol) => ['inet', 'inet6'].includes(familyOf(protocol)?.family ?? ''));
    expect(ip.filter((protocol) => !native.has(protocol) && !IP_WITHOUT_PORTS.includes(protocol))).toEqual([]);
    expect(ip.filter((protocol) => native.has(protocol) && IP_WITHOUT_PORTS.includes(protocol))).toEqual([]);
  });
});
