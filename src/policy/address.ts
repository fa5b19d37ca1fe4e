/**
 * IPv4/IPv6 addresses and CIDR blocks for `match.addresses`. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`,
 * what a dual-stack Node socket reports for an IPv4 client) is the IPv4 address it carries, so `127.0.0.0/8`
 * matches it; a mapped CIDR block (`::ffff:10.0.0.0/104`) is likewise the IPv4 block.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

export interface CidrBlock {
  family: 4 | 6;
  base: bigint;
  prefix: number;
}

const MAPPED_PREFIX = 0xffffn << 32n;

export function parseIp(text: string): IpAddress | null {
  const s = text.replace(/%[^%]*$/, ''); // a zone id (fe80::1%eth0) names an interface, not an address
  if (isIPv4(s)) return { family: 4, value: parseV4(s) };
  if (!isIPv6(s)) return null;
  const value = parseV6(s);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

function parseV4(s: string): bigint {
  return s.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

/** `s` has already passed isIPv6. */
function parseV6(s: string): bigint {
  let text = s;
  const tail = text.slice(text.lastIndexOf(':') + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    text = `${text.slice(0, text.length - tail.length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export type CidrParse = { ok: true; block: CidrBlock } | { ok: false; reason: string };

/** `10.0.0.0/8`, `::1/128`, or a bare address (a block of one). Host bits must be zero. */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addrText);
  if (ip === null || addrText.includes('%')) return { ok: false, reason: `"${addrText}" is not an IPv4 or IPv6 address` };
  const mapped = ip.family === 4 && isIPv6(addrText);
  const width = ip.family === 4 && !mapped ? 32 : 128;
  let prefix = width;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > width) return { ok: false, reason: `prefix length must be 0..${width}` };
    prefix = Number(p);
  }
  if (mapped) {
    // An IPv6 block inside ::ffff:0:0/96 is an IPv4 block; a wider one also covers non-mapped IPv6 addresses.
    if (prefix < 96) {
      const full = MAPPED_PREFIX | ip.value;
      const base = full & mask(128, prefix);
      if (base !== full) return { ok: false, reason: `host bits are set; did you mean ${formatIp({ family: 6, value: base })}/${prefix}?` };
      return { ok: true, block: { family: 6, base, prefix } };
    }
    prefix -= 96;
  }
  const bits = ip.family === 4 ? 32 : 128;
  const base = ip.value & mask(bits, prefix);
  if (base !== ip.value) {
    return { ok: false, reason: `host bits are set; did you mean ${formatIp({ family: ip.family, value: base })}/${mapped ? prefix + 96 : prefix}?` };
  }
  return { ok: true, block: { family: ip.family, base, prefix } };
}

function mask(bits: number, prefix: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return all ^ ((1n << BigInt(bits - prefix)) - 1n);
}

export function cidrContains(block: CidrBlock, ip: IpAddress): boolean {
  if (block.family === 6 && ip.family === 4) {
    // Only a block wider than /96 (kept as IPv6) can hold a mapped IPv4 address.
    return ((MAPPED_PREFIX | ip.value) & mask(128, block.prefix)) === block.base;
  }
  if (block.family !== ip.family) return false;
  return (ip.value & mask(block.family === 4 ? 32 : 128, block.prefix)) === block.base;
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((ip.value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // RFC 5952: the longest run (two or more) of zero groups becomes '::'.
  let best = { start: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { start: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.start < 0) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.len).join(':')}`;
}

/**
 * The addresses a client address string can stand for. Accepts what sockets and logs write: a bare address,
 * `v4:port`, `[v6]:port`, and a mapped `::ffff:a.b.c.d:port`. An unbracketed IPv6 address followed by `:port`
 * (`::1:5555`) is ambiguous, since it is itself a valid address: both readings are returned and a rule whose
 * `addresses` match only one of them counts as an uncertain match (see evaluate.ts). Pass the bare
 * `socket.remoteAddress` to avoid that. An unparseable string yields no candidates.
 */
export function clientAddressCandidates(text: string): IpAddress[] {
  const out: IpAddress[] = [];
  const add = (ip: IpAddress | null) => {
    if (ip !== null && !out.some((o) => o.family === ip.family && o.value === ip.value)) out.push(ip);
  };
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(text);
  if (bracketed) {
    add(parseIp(bracketed[1] ?? ''));
    return out;
  }
  add(parseIp(text));
  const withPort = /^(.+):\d{1,5}$/.exec(text);
  if (withPort) add(parseIp(withPort[1] ?? ''));
  return out;
}
