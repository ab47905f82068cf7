import { describe, expect, it } from 'vitest';
import { compileEql } from '../../src/eql/index.js';
import { compileKql } from '../../src/kql/index.js';

/**
 * execsentry's typed fields (src/ecs/execsentry-fields.ts) compare as their mapping types would: socket
 * addresses as ip (CIDR, IPv6 forms), ports as numbers, system_account as boolean.
 */
const event = {
  event: { category: ['process'] },
  execsentry: {
    user: { system_account: true },
    stdio: { stdin: { type: 'socket', socket: { protocol: 'TCPv6', family: 'inet6', transport: 'tcp', local: { ip: '2001:db8::1', port: 22 }, remote: { ip: '10.1.2.3', port: 4444 } } } },
  },
};
const kql = (query: string) => compileKql(query).matches(event);
const eql = (query: string) => {
  const compiled = compileEql(query);
  if (compiled.kind !== 'event') throw new Error(`not an event query: ${query}`);
  return compiled.matches(event);
};

describe("execsentry's typed fields in rules", () => {
  it('KQL: CIDR and IPv6 forms on addresses, ranges on ports, booleans', () => {
    expect(kql('execsentry.stdio.stdin.socket.remote.ip:10.0.0.0/8')).toBe(true);
    expect(kql('execsentry.stdio.stdin.socket.remote.ip:11.0.0.0/8')).toBe(false);
    expect(kql('execsentry.stdio.stdin.socket.local.ip:"2001:0db8:0:0:0:0:0:1"')).toBe(true);
    expect(kql('execsentry.stdio.stdin.socket.remote.port >= 1024 and execsentry.stdio.stdin.socket.remote.port < 5000')).toBe(true);
    // Numbers compare as numbers, not as keywords ("4444" > "10000" as text).
    expect(kql('execsentry.stdio.stdin.socket.remote.port > 10000')).toBe(false);
    expect(kql('execsentry.user.system_account:true and execsentry.stdio.stdin.socket.family:inet6')).toBe(true);
  });

  it('EQL: cidrMatch, numeric comparisons, booleans', () => {
    expect(eql('process where cidrMatch(execsentry.stdio.stdin.socket.remote.ip, "10.0.0.0/8")')).toBe(true);
    expect(eql('process where execsentry.stdio.stdin.socket.remote.port > 10000')).toBe(false);
    expect(eql('process where execsentry.stdio.stdin.socket.remote.port == 4444 and execsentry.user.system_account == true')).toBe(true);
  });
});
