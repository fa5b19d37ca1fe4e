/**
 * OIDC tokens as the database password, against a real issuer (oidc-provider on loopback): what is accepted, what
 * is refused and with which SQLSTATE and message, and what the audit store keeps of it (never the token).
 */
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE, CLIENTS, OPAQUE_RESOURCE, startIssuer, type TestIssuer } from '../../harness/oidc.js';
import { cleanEnv, PSQL, runProcess } from '../clients/util.js';
import { b64, lastSession, loginError, query, startOidcEnv, type OidcEnv } from './helpers.js';

let env: OidcEnv;
let other: TestIssuer;
beforeAll(async () => {
  env = await startOidcEnv();
  other = await startIssuer();
});
afterAll(async () => {
  await other?.close();
  await env?.stop();
});

const now = () => Math.floor(Date.now() / 1000);

describe('a valid token', () => {
  it('logs in with node-postgres; the session is the identity the token names, with its issuer recorded', async () => {
    const token = await env.idp.token(CLIENTS.ci);
    const rows = await query(env, 'ci', token, 'SELECT current_user AS role, 1 AS one');
    expect(rows).toEqual([{ role: 'app', one: 1 }]); // upstream it is the target's role; Sluice holds that credential
    const s = lastSession(env);
    expect(s).toMatchObject({ identity: 'ci', endReason: 'client terminated' });
    const event = env.sluice.broker.db.prepare("SELECT detail FROM audit_events WHERE kind = 'session_identity' AND session_id = ?").pluck().get(s.id) as string;
    expect(JSON.parse(event)).toMatchObject({ kind: 'oidc', issuer: env.idp.issuer, via: 'jwt', subject: 'ci', groups: ['test'] });
  });

  it('logs in with psql (PGPASSWORD holds the token)', async () => {
    const token = await env.idp.token(CLIENTS.ci);
    const url = `postgres://ci@127.0.0.1:${env.sluice.port}/app?sslmode=disable`;
    const without = await psqlWithPassword(url, 'not-a-token', ['-tA', '-c', 'SELECT 40 + 2']);
    expect(without).toMatchObject({ code: 2, stdout: '' });
    const ok = await psqlWithPassword(url, token, ['-tA', '-c', 'SELECT 40 + 2']);
    expect(ok).toMatchObject({ code: 0, stdout: '42\n' });
  });

  it('group claims drive policy: the same issuer, a client without an allowed group, is denied by default', async () => {
    const token = await env.idp.token(CLIENTS.outsider);
    await expect(query(env, 'outsider', token, 'SELECT 1')).rejects.toMatchObject({ code: '42501' });
    await expect(query(env, 'ci', await env.idp.token(CLIENTS.ci), 'CREATE TEMP TABLE t (x int)')).resolves.toEqual([]);
  });

  it('an opaque token is checked at the introspection endpoint', async () => {
    const token = await env.idp.token(CLIENTS.ci, { resource: OPAQUE_RESOURCE });
    expect(token.split('.')).toHaveLength(1); // really opaque
    const before = env.idp.requests('/token/introspection');
    expect(await query(env, 'ci', token, 'SELECT 7 AS n')).toEqual([{ n: 7 }]);
    expect(env.idp.requests('/token/introspection')).toBe(before + 1);
    const made = 'x'.repeat(43);
    expect(await loginError(env, 'ci', made)).toMatchObject({ code: '28P01', message: expect.stringMatching(/not active/) });
  });

  it('agent keys keep working next to tokens', async () => {
    expect(await query(env, 'agent', env.sluice.key, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('each identity is listed with its kind, issuer, groups and first/last login', async () => {
    const list = env.sluice.broker.identities.list();
    expect(list.find((i) => i.name === 'ci' && i.kind === 'oidc')).toMatchObject({ issuer: env.idp.issuer, subject: 'ci', groups: ['test'] });
    expect(list.find((i) => i.name === 'agent')).toMatchObject({ kind: 'key', issuer: null, groups: ['test'] });
    const ci = list.find((i) => i.name === 'ci')!;
    expect(ci.lastSeen).toBeGreaterThan(ci.firstSeen); // several logins above
    // The operator contract (UI, WebSocket) serves the same list.
    expect(await env.sluice.broker.contract.listIdentities({}, { operator: 'test' })).toEqual(list);
  });
});

describe('refused tokens: each with its SQLSTATE and a message that says why', () => {
  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ['expired', () => env.idp.sign({ exp: now() - 120, iat: now() - 420 }), /token expired at /],
    ['not yet valid', () => env.idp.sign({ nbf: now() + 120 }), /not valid yet/],
    ['for another audience', () => env.idp.sign({ aud: 'urn:some-other-api' }), /audience "urn:some-other-api" is not urn:sluice/],
    ['without an expiry', () => env.idp.sign({ exp: undefined }), /no expiry|"exp" claim/],
    ['from an issuer Sluice does not trust', () => other.token(CLIENTS.ci), /issuer "http:\/\/127\.0\.0\.1:\d+" is not trusted/],
    ['claiming this issuer, signed by another issuer\'s key', async () => {
      const t = await other.sign({ iss: env.idp.issuer }, { kid: env.idp.currentKid() });
      return t;
    }, /signature is invalid/],
    ['tampered (payload changed, signature kept)', async () => {
      const [h, , s] = (await env.idp.token(CLIENTS.outsider)).split('.');
      return `${h}.${b64({ client_id: 'ci', sub: 'ci', groups: ['test'], iss: env.idp.issuer, aud: AUDIENCE, exp: now() + 300 })}.${s}`;
    }, /signature is invalid/],
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ client_id: 'ci', iss: env.idp.issuer, aud: AUDIENCE, exp: now() + 300 })}.`, /algorithm "none" is not allowed/],
    ['HS256 signed with the issuer\'s public key as the secret', async () => {
      const secret = new TextEncoder().encode(await env.idp.publicKeyPem());
      return new SignJWT({ client_id: 'ci', iss: env.idp.issuer, aud: AUDIENCE, exp: now() + 300 })
        .setProtectedHeader({ alg: 'HS256', kid: env.idp.currentKid() }).sign(secret);
    }, /algorithm "HS256" is not allowed/],
  ];

  it.each(cases)('%s: 28P01', async (_name, make, message) => {
    const token = await make();
    const err = await loginError(env, 'ci', token);
    expect(err.code).toBe('28P01');
    expect(err.message).toMatch(/^password authentication failed for user "ci": /);
    expect(err.message).toMatch(message);
    expect(err.hint).toMatch(/token/);
    // The refused login is recorded with the reason, never with the token.
    const s = lastSession(env);
    expect(s.endReason).toMatch(/^authentication failed: oidc /);
    expect(s.endReason).toMatch(message);
    expect(s.endReason).not.toContain(token.split('.')[2] || token);
  });

  it('a valid token for another identity than the startup user: 28000, naming both', async () => {
    const err = await loginError(env, 'agent', await env.idp.token(CLIENTS.ci));
    expect(err).toMatchObject({ code: '28000', message: 'token for identity "ci" cannot log in as user "agent"' });
    expect(err.hint).toMatch(/user=ci/);
    expect(lastSession(env).endReason).toMatch(/names identity "ci", not "agent"/);
  });

  it('psql shows the refusal on stderr', async () => {
    const url = `postgres://ci@127.0.0.1:${env.sluice.port}/app?sslmode=disable`;
    const r = await psqlWithPassword(url, await env.idp.sign({ exp: now() - 120 }), ['-c', 'SELECT 1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/FATAL: {2}password authentication failed for user "ci": token expired at/);
  });
});

describe('key rotation and unknown key ids', () => {
  it('a token from a rotated key is accepted after one JWKS refetch', async () => {
    await query(env, 'ci', await env.idp.token(CLIENTS.ci), 'SELECT 1'); // keys cached
    await env.idp.rotate();
    const token = await env.idp.token(CLIENTS.ci);
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid).toBe(env.idp.currentKid());
    // Within the refetch interval of the last fetch the new kid may be refused; wait it out, then it must work.
    await waitForRefetchWindow(env);
    const before = env.idp.requests('/jwks');
    expect(await query(env, 'ci', token, 'SELECT 2 AS two')).toEqual([{ two: 2 }]);
    expect(env.idp.requests('/jwks')).toBe(before + 1);
  });

  it('forged key ids are refused without hammering the JWKS endpoint (one refetch per interval at most)', async () => {
    const attacker = await generateKeyPair('RS256');
    await waitForRefetchWindow(env);
    const before = env.idp.requests('/jwks');
    const started = Date.now();
    const attempts = 8;
    for (let i = 0; i < attempts; i++) {
      const forged = await new SignJWT({ client_id: 'ci', iss: env.idp.issuer, aud: AUDIENCE, exp: now() + 300 })
        .setProtectedHeader({ alg: 'RS256', kid: `forged-${i}` }).sign(attacker.privateKey);
      const err = await loginError(env, 'ci', forged);
      expect(err).toMatchObject({ code: '28P01', message: expect.stringMatching(/no key in the issuer's JWKS matches the token \(kid "forged-\d"/) });
    }
    const fetches = env.idp.requests('/jwks') - before;
    const windows = Math.floor((Date.now() - started) / (2 * 1000)) + 1;
    expect(fetches).toBeGreaterThanOrEqual(1); // the first unknown kid after the interval does refetch
    expect(fetches).toBeLessThanOrEqual(windows);
    expect(fetches).toBeLessThan(attempts);
  });
});

/** Sleeps past the JWKS refetch interval (2 s in these tests) so the next unknown kid may refetch. */
async function waitForRefetchWindow(_env: OidcEnv): Promise<void> {
  await new Promise((r) => setTimeout(r, 2_100));
}

async function psqlWithPassword(url: string, password: string, args: string[]) {
  const r = await runProcess(PSQL, ['-X', '-w', '-d', url, ...args], { env: cleanEnv({ PGPASSWORD: password }) });
  return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
}
