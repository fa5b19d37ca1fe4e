import { describe, expect, it } from 'vitest';
import { claimAt, mapClaims } from '../../../src/identity/claims.js';

const rules = (over: Partial<Parameters<typeof mapClaims>[1]> = {}) => ({
  identityClaim: 'sub' as const, identityMap: undefined, groupsClaim: 'groups', groups: [] as string[], ...over,
});

describe('mapClaims: the identity', () => {
  it('takes the configured claim: sub, client_id or azp', () => {
    const claims = { sub: 'user-1', client_id: 'deployer', azp: 'web-app' };
    expect(mapClaims(claims, rules())).toMatchObject({ ok: true, name: 'user-1', subject: 'user-1' });
    expect(mapClaims(claims, rules({ identityClaim: 'client_id' }))).toMatchObject({ ok: true, name: 'deployer' });
    expect(mapClaims(claims, rules({ identityClaim: 'azp' }))).toMatchObject({ ok: true, name: 'web-app' });
  });

  it('refuses a token without the claim, or with a non-string one', () => {
    expect(mapClaims({ sub: 'x' }, rules({ identityClaim: 'client_id' }))).toEqual({ ok: false, reason: 'the token has no "client_id" claim (the issuer\'s identityClaim)' });
    expect(mapClaims({ sub: 42 }, rules())).toMatchObject({ ok: false });
    expect(mapClaims({ sub: '' }, rules())).toMatchObject({ ok: false });
  });

  it('maps through identityMap, and refuses a subject the map does not list', () => {
    const map = { '0oa1b2c3': 'ci-deployer', 'svc-x': 'reporting' };
    expect(mapClaims({ sub: '0oa1b2c3' }, rules({ identityMap: map }))).toMatchObject({ ok: true, name: 'ci-deployer', subject: '0oa1b2c3' });
    expect(mapClaims({ sub: 'someone-else' }, rules({ identityMap: map }))).toEqual({ ok: false, reason: '"sub" "someone-else" is not in the issuer\'s identityMap' });
    // Inherited object keys are not entries of the table.
    expect(mapClaims({ sub: 'constructor' }, rules({ identityMap: map }))).toMatchObject({ ok: false });
    expect(mapClaims({ sub: '__proto__' }, rules({ identityMap: map }))).toMatchObject({ ok: false });
  });

  it('refuses an unmapped value too long to be a PostgreSQL user name', () => {
    expect(mapClaims({ sub: 'x'.repeat(63) }, rules())).toMatchObject({ ok: true });
    expect(mapClaims({ sub: 'x'.repeat(64) }, rules())).toMatchObject({ ok: false, reason: expect.stringMatching(/over 63 bytes\); map it with identityMap/) });
    expect(mapClaims({ sub: 'é'.repeat(32) }, rules())).toMatchObject({ ok: false }); // 64 bytes in UTF-8
  });
});

describe('mapClaims: groups', () => {
  it('reads a list, or a space-separated string (scope), and adds the issuer\'s static groups once', () => {
    expect(mapClaims({ sub: 'a', groups: ['ci', 'readers'] }, rules({ groups: ['idp-x', 'ci'] }))).toMatchObject({ groups: ['ci', 'readers', 'idp-x'] });
    expect(mapClaims({ sub: 'a', scope: 'db:read  db:write' }, rules({ groupsClaim: 'scope' }))).toMatchObject({ groups: ['db:read', 'db:write'] });
    expect(mapClaims({ sub: 'a' }, rules())).toMatchObject({ ok: true, groups: [] });
  });

  it('follows a dotted path into nested claims (Keycloak realm_access.roles)', () => {
    const claims = { sub: 'a', realm_access: { roles: ['admin'] } };
    expect(mapClaims(claims, rules({ groupsClaim: 'realm_access.roles' }))).toMatchObject({ groups: ['admin'] });
    expect(claimAt({ 'https://example.com/groups': ['x'] }, 'https://example.com/groups')).toEqual(['x']);
    expect(claimAt({ a: ['not', 'an', 'object'] }, 'a.length')).toBeUndefined();
  });

  it('refuses a groups claim of the wrong shape instead of dropping it (a deny rule may name a group)', () => {
    for (const groups of [{ admin: true }, ['ok', 7], 42, ['']]) {
      expect(mapClaims({ sub: 'a', groups }, rules())).toEqual({ ok: false, reason: 'the groups claim "groups" is not a list of strings' });
    }
    expect(mapClaims({ sub: 'a', groups: Array.from({ length: 257 }, (_, i) => `g${i}`) }, rules())).toMatchObject({ ok: false, reason: expect.stringMatching(/too large/) });
  });
});
