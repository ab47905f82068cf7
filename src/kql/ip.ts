/**
 * IP addresses as Elasticsearch's ip type stores them: 128-bit numbers, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so `10.0.0.1` and `::ffff:10.0.0.1` are the same address.
 */
const V4_MAPPED = 0xffffn << 32n;
const ALL_ONES = (1n << 128n) - 1n;

function parseIpv4(text: string): bigint | null {
  const octets = text.split('.');
  if (octets.length !== 4) return null;
  let value = 0n;
  for (const octet of octets) {
    if (!/^\d{1,3}$/.test(octet)) return null;
    const n = Number(octet);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

/** An IPv4 or IPv6 address as a 128-bit number, or null when `text` is not one. */
export function parseIp(text: string): bigint | null {
  if (!text.includes(':')) {
    const v4 = parseIpv4(text);
    return v4 === null ? null : V4_MAPPED | v4;
  }
  let v6 = text;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // an embedded IPv4 tail (::ffff:1.2.3.4) is two 16-bit groups
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === null) return null;
    v6 = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = v6.split('::');
  if (halves.length > 2) return null;
  const head = parseGroups(halves[0]!);
  const rest = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (head === null || rest === null) return null;
  let groups: bigint[];
  if (halves.length === 2) {
    const filler = 8 - head.length - rest.length;
    if (filler < 1) return null;
    groups = [...head, ...new Array<bigint>(filler).fill(0n), ...rest];
  } else {
    if (head.length !== 8) return null;
    groups = head;
  }
  let value = 0n;
  for (const group of groups) value = (value << 16n) | group;
  return value;
}

function parseGroups(part: string): bigint[] | null {
  if (part === '') return [];
  const groups: bigint[] = [];
  for (const group of part.split(':')) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    groups.push(BigInt(parseInt(group, 16)));
  }
  return groups;
}

/** An address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`) as an inclusive range; null if neither. */
export function parseIpOrCidr(text: string): { low: bigint; high: bigint } | null {
  const slash = text.indexOf('/');
  if (slash < 0) {
    const ip = parseIp(text);
    return ip === null ? null : { low: ip, high: ip };
  }
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const ip = parseIp(address);
  if (ip === null || !/^\d{1,3}$/.test(prefixText)) return null;
  const isV4 = !address.includes(':');
  const prefix = Number(prefixText) + (isV4 ? 96 : 0);
  if (prefix > 128) return null;
  const hostBits = 128n - BigInt(prefix);
  const hostMask = (1n << hostBits) - 1n;
  const low = ip & (ALL_ONES ^ hostMask);
  return { low, high: low | hostMask };
}
