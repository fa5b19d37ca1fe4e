/**
 * The authenticator without an issuer configured: agent keys behave exactly as before, token-shaped passwords get a
 * clear refusal, and every successful login is listed in the identity store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataStore, type DataStore } from '../../../src/audit/db.js';
import { AgentKeyStore } from '../../../src/identity/agent-keys.js';
import { Authenticator } from '../../../src/identity/authenticator.js';
import { IdentityStore } from '../../../src/identity/identity-store.js';
import { OidcVerifier } from '../../../src/identity/oidc-verifier.js';

let dir: string;
let db: DataStore;
let keys: AgentKeyStore;
let identities: IdentityStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-auth-'));
  db = openDataStore(dir);
  keys = new AgentKeyStore(db);
  identities = new IdentityStore(db);
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const JWT = `${b64({ alg: 'RS256', kid: 'k' })}.${b64({ iss: 'https://idp.example.com', sub: 'x', exp: 9999999999 })}.c2ln`;

describe('Authenticator', () => {
  it('accepts an agent key for its own name and records the identity as kind key', async () => {
    const { secret } = keys.add('ci-bot', { groups: ['ci'] });
    const auth = new Authenticator({ keys, identities });
    expect(await auth.authenticate('ci-bot', secret, 1000)).toEqual({ ok: true, identity: { name: 'ci-bot', groups: ['ci'] }, kind: 'key', detail: { kind: 'key' }, endsAt: null, expiresAt: null });
    await auth.authenticate('ci-bot', secret, 5000);
    expect(identities.list()).toEqual([{ name: 'ci-bot', kind: 'key', issuer: null, subject: null, groups: ['ci'], firstSeen: 1000, lastSeen: 5000 }]);
  });

  it('refuses a wrong key with the same message and hint as before OIDC existed, and records nothing', async () => {
    keys.add('ci-bot', { groups: [] });
    const auth = new Authenticator({ keys, identities });
    expect(await auth.authenticate('ci-bot', 'wrong')).toEqual({
      ok: false, code: '28P01', message: 'password authentication failed for user "ci-bot"',
      hint: 'Use a Sluice agent key (sk_...) as the password; create one with `sluice key add NAME`.', auditReason: 'authentication failed: malformed',
    });
    expect(identities.list()).toEqual([]);
  });

  it('refuses a JWT when no issuer is configured, saying so', async () => {
    const r = await new Authenticator({ keys, identities }).authenticate('x', JWT);
    expect(r).toMatchObject({ ok: false, code: '28P01', message: expect.stringMatching(/OIDC tokens are not accepted here: no issuer is configured/) });
  });

  it('refuses a JWT from an issuer that is not configured without contacting anything', async () => {
    const oidc = new OidcVerifier({ issuers: [{ issuer: 'https://other.example.com', audience: 'a', identityClaim: 'sub', groupsClaim: 'groups', groups: [], algorithms: ['RS256'], clockSkewSeconds: 0, expiryGraceSeconds: 0, jwksRefetchIntervalSeconds: 30 }] });
    const r = await new Authenticator({ keys, oidc, identities }).authenticate('x', JWT);
    expect(r).toMatchObject({ ok: false, code: '28P01', message: 'password authentication failed for user "x": token issuer "https://idp.example.com" is not trusted by Sluice' });
    // With OIDC on, a wrong agent key's hint names both kinds of password.
    expect(await new Authenticator({ keys, oidc }).authenticate('x', 'nope')).toMatchObject({ hint: expect.stringMatching(/agent key .* or a token/) });
  });
});

describe('IdentityStore', () => {
  it('keeps one row per kind, issuer and name; groups follow the last login, first_seen stays', () => {
    identities.seen({ kind: 'oidc', name: 'ci', issuer: 'https://a', subject: 'c1', groups: ['x'] }, 10);
    identities.seen({ kind: 'oidc', name: 'ci', issuer: 'https://b', subject: 'c1', groups: [] }, 20);
    identities.seen({ kind: 'key', name: 'ci', issuer: null, subject: null, groups: [] }, 30);
    identities.seen({ kind: 'oidc', name: 'ci', issuer: 'https://a', subject: 'c2', groups: ['y'] }, 40);
    expect(identities.list()).toEqual([
      { name: 'ci', kind: 'key', issuer: null, subject: null, groups: [], firstSeen: 30, lastSeen: 30 },
      { name: 'ci', kind: 'oidc', issuer: 'https://a', subject: 'c2', groups: ['y'], firstSeen: 10, lastSeen: 40 },
      { name: 'ci', kind: 'oidc', issuer: 'https://b', subject: 'c1', groups: [], firstSeen: 20, lastSeen: 20 },
    ]);
  });
});
