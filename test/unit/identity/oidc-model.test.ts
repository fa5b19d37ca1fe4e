import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { ASYMMETRIC_ALGS, insecureUrlProblem } from '../../../src/identity/oidc-model.js';

const FILE = '/etc/sluice/sluice.yaml';
const TARGETS = ['targets:', '  - { name: shop, host: db.internal, database: shop, user: app }'];
const withIssuers = (...issuer: string[]) => [...TARGETS, 'oidc:', '  issuers:', ...issuer, ''].join('\n');

function problems(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.line}: ${p.reason}`);
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('oidc config', () => {
  it('applies the defaults: sub, groups claim, asymmetric algorithms only, 30 s skew and refetch interval', () => {
    const c = parseConfig(withIssuers('    - { issuer: "https://idp.example.com", audience: sluice }'), FILE);
    expect(c.oidc?.issuers[0]).toEqual({
      issuer: 'https://idp.example.com', audience: 'sluice', identityClaim: 'sub', groupsClaim: 'groups', groups: [],
      algorithms: [...ASYMMETRIC_ALGS], clockSkewSeconds: 30, expiryGraceSeconds: 0, jwksRefetchIntervalSeconds: 30,
    });
    expect((ASYMMETRIC_ALGS as readonly string[]).some((a) => a === 'none' || a.startsWith('HS'))).toBe(false);
  });

  it('keeps a full issuer and resolves a relative introspection secret file against the config file', () => {
    const c = parseConfig(withIssuers(
      '    - issuer: https://idp.example.com/realms/ci',
      '      name: ci-idp',
      '      audience: [sluice, urn:sluice]',
      '      identityClaim: client_id',
      '      identityMap: { "0oa1": ci-deployer }',
      '      groupsClaim: realm_access.roles',
      '      groups: [ci]',
      '      algorithms: [ES256]',
      '      clockSkewSeconds: 5',
      '      expiryGraceSeconds: 60',
      '      jwksRefetchIntervalSeconds: 10',
      '      introspection: { clientId: sluice, clientSecret: { file: secrets/introspection } }',
    ), FILE);
    expect(c.oidc?.issuers[0]).toMatchObject({
      name: 'ci-idp', audience: ['sluice', 'urn:sluice'], identityMap: { '0oa1': 'ci-deployer' }, algorithms: ['ES256'],
      introspection: { clientId: 'sluice', clientSecret: { file: '/etc/sluice/secrets/introspection' } },
    });
  });

  it.each([
    ['http on a non-loopback host', '    - { issuer: "http://idp.example.com", audience: a }', /http on a non-loopback host \(idp\.example\.com\).*use https/],
    ['a non-URL issuer', '    - { issuer: idp, audience: a }', /issuer must be an absolute URL/],
    ['alg none', '    - { issuer: "https://i", audience: a, algorithms: [none] }', /none and HS\* are never accepted/],
    ['HS256 (key-type confusion)', '    - { issuer: "https://i", audience: a, algorithms: [RS256, HS256] }', /none and HS\* are never accepted/],
    ['an identity claim outside sub/client_id/azp', '    - { issuer: "https://i", audience: a, identityClaim: email }', /must be one of sub, client_id, azp/],
    ['a literal introspection secret (not echoed)', '    - { issuer: "https://i", audience: a, introspection: { clientId: s, clientSecret: hunter2 } }', /literal secret is refused/],
    ['no audience', '    - { issuer: "https://i" }', /required key is missing/],
    ['a mapped name too long for PostgreSQL', `    - { issuer: "https://i", audience: a, identityMap: { x: ${'n'.repeat(64)} } }`, /at most 63 bytes/],
    ['a refetch interval of 0 (forged kids could hammer the issuer)', '    - { issuer: "https://i", audience: a, jwksRefetchIntervalSeconds: 0 }', /must be >= 1/],
    ['an unknown key', '    - { issuer: "https://i", audience: a, audiance: b }', /unknown key "audiance"; did you mean "audience"\?/],
  ])('refuses %s', (_name, line, message) => {
    const p = problems(withIssuers(line));
    expect(p.join('\n')).toMatch(message);
    expect(p.join('\n')).not.toContain('hunter2');
  });

  it('refuses duplicate issuers and names, and introspection on more than one issuer', () => {
    const p = problems(withIssuers(
      '    - { issuer: "https://idp.example.com", name: a, audience: x, introspection: { clientId: s, clientSecret: { env: A } } }',
      '    - { issuer: "https://idp.example.com/", name: a, audience: x, introspection: { clientId: s, clientSecret: { env: B } } }',
    ));
    expect(p).toEqual(expect.arrayContaining([
      expect.stringMatching(/^6: .*duplicate issuer \(already issuers\[0\]\)/),
      expect.stringMatching(/^6: .*duplicate issuer name "a"/),
      expect.stringMatching(/^6: .*only one issuer may have introspection/),
    ]));
  });
});

describe('insecureUrlProblem', () => {
  it('allows https anywhere and http only on loopback', () => {
    for (const ok of ['https://idp.example.com', 'http://127.0.0.1:8080', 'http://127.1.2.3', 'http://[::1]:9000/x', 'http://localhost:3000']) {
      expect(insecureUrlProblem(ok, 'issuer')).toBeNull();
    }
    for (const bad of ['http://10.0.0.1', 'http://127.0.0.1.example.com', 'http://localhost.evil.com', 'ftp://127.0.0.1', 'file:///etc/passwd']) {
      expect(insecureUrlProblem(bad, 'issuer')).not.toBeNull();
    }
  });
});
