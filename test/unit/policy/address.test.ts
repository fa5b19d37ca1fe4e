import { describe, expect, it } from 'vitest';
import { cidrContains, clientAddressCandidates, formatIp, parseCidr, parseIp } from '../../../src/policy/address.js';

function block(text: string) {
  const p = parseCidr(text);
  if (!p.ok) throw new Error(p.reason);
  return p.block;
}
const contains = (cidr: string, addr: string) => cidrContains(block(cidr), parseIp(addr)!);

describe('CIDR blocks', () => {
  it('contains IPv4 addresses by prefix', () => {
    expect(contains('127.0.0.0/8', '127.1.2.3')).toBe(true);
    expect(contains('127.0.0.0/8', '128.0.0.1')).toBe(false);
    expect(contains('10.1.2.3', '10.1.2.3')).toBe(true);
    expect(contains('10.1.2.3', '10.1.2.4')).toBe(false);
    expect(contains('0.0.0.0/0', '203.0.113.9')).toBe(true);
  });

  it('contains IPv6 addresses by prefix, and never mixes families', () => {
    expect(contains('::1/128', '::1')).toBe(true);
    expect(contains('fd00::/8', 'fd12:3456::1')).toBe(true);
    expect(contains('fd00::/8', 'fe80::1')).toBe(false);
    expect(contains('2001:db8::/32', '2001:db8:0:0:0:0:0:ff')).toBe(true);
    expect(contains('0.0.0.0/0', '::1')).toBe(false);
    expect(contains('::/0', '2001:db8::1')).toBe(true);
  });

  it('reads an IPv4-mapped IPv6 address as the IPv4 address it carries', () => {
    expect(contains('127.0.0.0/8', '::ffff:127.0.0.1')).toBe(true);
    expect(contains('::ffff:10.0.0.0/104', '10.9.8.7')).toBe(true);
    expect(contains('::ffff:10.0.0.0/104', '11.0.0.1')).toBe(false);
    expect(contains('::/0', '127.0.0.1')).toBe(true);
    expect(contains('::1/128', '::ffff:127.0.0.1')).toBe(false);
  });

  it('refuses malformed blocks with a reason, and host bits with a suggestion', () => {
    expect(parseCidr('10.0.0.0/33')).toEqual({ ok: false, reason: 'prefix length must be 0..32' });
    expect(parseCidr('fd00::/129')).toEqual({ ok: false, reason: 'prefix length must be 0..128' });
    expect(parseCidr('example.com/8')).toMatchObject({ ok: false, reason: expect.stringMatching(/not an IPv4 or IPv6 address/) });
    expect(parseCidr('10.1.0.0/8')).toEqual({ ok: false, reason: 'host bits are set; did you mean 10.0.0.0/8?' });
    expect(parseCidr('fd00::1/8')).toEqual({ ok: false, reason: 'host bits are set; did you mean fd00::/8?' });
    expect(parseCidr('10.0.0.0/x').ok).toBe(false);
  });

  it('formats IPv6 with the longest zero run compressed', () => {
    expect(formatIp(parseIp('2001:db8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('::')!)).toBe('::');
    expect(formatIp(parseIp('fe80::')!)).toBe('fe80::');
  });
});

describe('client address strings', () => {
  const read = (s: string) => clientAddressCandidates(s).map(formatIp);

  it('accepts bare addresses, v4:port, [v6]:port and mapped:port', () => {
    expect(read('127.0.0.1')).toEqual(['127.0.0.1']);
    expect(read('127.0.0.1:5555')).toEqual(['127.0.0.1']);
    expect(read('::ffff:127.0.0.1')).toEqual(['127.0.0.1']);
    expect(read('::ffff:127.0.0.1:5555')).toEqual(['127.0.0.1']);
    expect(read('[::1]:5555')).toEqual(['::1']);
    expect(read('::1')).toEqual(['::1']);
    expect(read('fe80::1%eth0')).toEqual(['fe80::1']);
  });

  it('returns both readings of an ambiguous v6:port and none for garbage', () => {
    expect(read('::1:5555')).toEqual(['::1:5555', '::1']);
    expect(read('?:?')).toEqual([]);
    expect(read('')).toEqual([]);
  });
});
