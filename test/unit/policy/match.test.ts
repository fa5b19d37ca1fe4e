import { describe, expect, it } from 'vitest';
import { bindPolicy, evaluate } from '../../../src/policy/evaluate.js';
import { globMatch } from '../../../src/policy/glob.js';
import type { PolicyMatch } from '../../../src/policy/model.js';
import { ctx, policy, read, write } from './helpers.js';

/** A policy with one rule that allows reads and writes when `match` matches. */
const withMatch = (match: Partial<PolicyMatch>) => policy({ rules: [{ name: 'r', match, allow: ['read', 'write'] }] });
const decision = (match: Partial<PolicyMatch>, c = ctx()) => evaluate(withMatch(match), c, [read('public.orders')]).decision;

describe('globs', () => {
  it('* matches any run, ? one character, the rest literally and case-sensitively', () => {
    expect(globMatch('ci-*', 'ci-bot')).toBe(true);
    expect(globMatch('ci-*', 'ci-')).toBe(true);
    expect(globMatch('ci-*', 'xci-bot')).toBe(false);
    expect(globMatch('bot-?', 'bot-1')).toBe(true);
    expect(globMatch('bot-?', 'bot-12')).toBe(false);
    expect(globMatch('a.b', 'axb')).toBe(false);
    expect(globMatch('(x)+[y]', '(x)+[y]')).toBe(true);
    expect(globMatch('CI', 'ci')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
  });
});

describe('rule matching', () => {
  it('an empty match applies to every session', () => {
    expect(decision({})).toBe('allow');
  });

  it('matches identities by glob', () => {
    expect(decision({ identities: ['ci-*'] })).toBe('allow');
    expect(decision({ identities: ['alice', 'bob'] })).toBe('deny');
  });

  it('matches groups: any group of the identity against any glob', () => {
    expect(decision({ groups: ['c?'] }, ctx({ groups: ['ops', 'ci'] }))).toBe('allow');
    expect(decision({ groups: ['ops'] }, ctx({ groups: [] }))).toBe('deny');
  });

  it('identities and groups together match an identity named OR in a group', () => {
    const m = { identities: ['alice'], groups: ['ci'] };
    expect(decision(m, ctx({ name: 'alice', groups: [] }))).toBe('allow');
    expect(decision(m, ctx({ name: 'ci-bot', groups: ['ci'] }))).toBe('allow');
    expect(decision(m, ctx({ name: 'mallory', groups: ['ops'] }))).toBe('deny');
  });

  it('targets, applications and addresses must match as well (AND)', () => {
    expect(decision({ groups: ['ci'], targets: ['shop'] })).toBe('allow');
    expect(decision({ groups: ['ci'], targets: ['shop-*'] })).toBe('deny');
    expect(decision({ groups: ['ci'], applications: ['psql'] })).toBe('allow');
    expect(decision({ groups: ['ci'], applications: ['ci-runner-*'] })).toBe('deny');
    expect(decision({ groups: ['ci'], addresses: ['10.0.0.0/8'] })).toBe('deny');
  });

  it('a client without application_name matches no applications list', () => {
    expect(decision({ applications: ['*'] }, ctx({ applicationName: null }))).toBe('deny');
    expect(decision({}, ctx({ applicationName: null }))).toBe('allow');
  });

  it('matches client addresses by CIDR: IPv4 with port, IPv6, and IPv4-mapped IPv6', () => {
    const loop = { addresses: ['127.0.0.0/8', '::1/128'] };
    expect(decision(loop, ctx({ clientAddr: '127.0.0.1:5555' }))).toBe('allow');
    expect(decision(loop, ctx({ clientAddr: '::ffff:127.0.0.1' }))).toBe('allow');
    expect(decision(loop, ctx({ clientAddr: '::ffff:127.0.0.1:5555' }))).toBe('allow');
    expect(decision(loop, ctx({ clientAddr: '::1' }))).toBe('allow');
    expect(decision(loop, ctx({ clientAddr: '[::1]:5555' }))).toBe('allow');
    expect(decision(loop, ctx({ clientAddr: '192.168.1.9' }))).toBe('deny');
    expect(decision({ addresses: ['fd00::/8'] }, ctx({ clientAddr: 'fd00::5' }))).toBe('allow');
    expect(decision({ addresses: ['fd00::/8'] }, ctx({ clientAddr: '127.0.0.1' }))).toBe('deny');
  });

  it('an address it cannot read for sure lets a rule restrict but never allow', () => {
    // '::1:5555' is both the address ::1:5555 and ::1 with a port; '?' is unreadable.
    expect(decision({ addresses: ['::1/128'] }, ctx({ clientAddr: '::1:5555' }))).toBe('deny');
    const denyFromLoopback = policy({
      rules: [
        { name: 'all', allow: ['read'] },
        { name: 'no-loopback', match: { addresses: ['::1/128'] }, deny: ['read'] },
      ],
    });
    for (const clientAddr of ['::1:5555', '?:?']) {
      const d = evaluate(denyFromLoopback, ctx({ clientAddr }), [read('t')]);
      expect(d).toMatchObject({ decision: 'deny', rule: 'no-loopback' });
    }
    expect(bindPolicy(denyFromLoopback, ctx({ clientAddr: '?:?' })).matchedRules).toEqual([
      { name: 'all', certain: true },
      { name: 'no-loopback', certain: false },
    ]);
  });

  it('a rule that does not match gives no verdict: writes fall to default deny', () => {
    const p = policy({ rules: [{ name: 'ops-write', match: { groups: ['ops'] }, allow: ['write'] }] });
    expect(evaluate(p, ctx(), [write('public.orders')])).toMatchObject({ decision: 'deny', rule: 'default-deny' });
  });
});
