/**
 * A session lives no longer than its token: at expiry (+ clock skew + configured grace) Sluice cancels what is
 * running, sends a FATAL error and records the reason as the session's end.
 */
import { decodeJwt } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENTS } from '../../harness/oidc.js';
import { client, lastSession, sleep, startOidcEnv, type OidcEnv } from './helpers.js';

const SKEW = 1;
const GRACE = 1;

let env: OidcEnv;
beforeAll(async () => {
  env = await startOidcEnv({ clockSkewSeconds: SKEW, expiryGraceSeconds: GRACE });
});
afterAll(async () => {
  await env?.stop();
});

/** Waits until Sluice has recorded the end of session `id`. */
async function endOf(id: number) {
  for (let i = 0; i < 200; i++) {
    const s = env.sluice.broker.db.prepare('SELECT end_reason AS endReason, ended_at AS endedAt FROM sessions WHERE id = ?').get(id) as { endReason: string | null; endedAt: number | null };
    if (s.endedAt !== null) return s;
    await sleep(50);
  }
  throw new Error(`session ${id} did not end`);
}

describe('a token that expires during the session', () => {
  it('ends an idle session with FATAL 28000 after expiry + skew + grace, recorded as the end reason', async () => {
    const token = await env.idp.token(CLIENTS.short); // 3 s lifetime
    const exp = decodeJwt(token).exp! * 1000;
    const c = client(env, 'short', token);
    const ended = new Promise<Error & { code?: string; severity?: string }>((resolve) => c.on('error', resolve));
    await c.connect();
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    const session = lastSession(env);
    expect(session).toMatchObject({ identity: 'short', endReason: null });

    const err = await ended;
    expect(err).toMatchObject({ code: '28000', severity: 'FATAL' });
    expect(err.message).toBe(`terminating connection because the OIDC token of "short" expired at ${new Date(exp).toISOString()}`);
    const end = await endOf(session.id);
    expect(end.endReason).toBe(`token expired at ${new Date(exp).toISOString()}`);
    // Not before the token (with its tolerance and grace) ran out.
    expect(end.endedAt!).toBeGreaterThanOrEqual(exp + (SKEW + GRACE) * 1000);
    await c.end().catch(() => {});
  });

  it('cancels a statement still running at expiry: nothing keeps working for an expired identity', async () => {
    const token = await env.idp.token(CLIENTS.short);
    const c = client(env, 'short', token);
    c.on('error', () => {});
    await c.connect();
    const running = c.query("SELECT pg_sleep(60), 'expiry-canary' AS tag");
    await expect(running).rejects.toMatchObject({ code: '28000', message: expect.stringMatching(/token of "short" expired/) });
    // The upstream backend that ran it is gone (cancelled and terminated), not left sleeping.
    const direct = new pg.Client({ connectionString: env.cluster.url() });
    await direct.connect();
    try {
      let left = -1;
      for (let i = 0; i < 100 && left !== 0; i++) {
        const r = await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%expiry-canary%' AND pid <> pg_backend_pid()");
        left = (r.rows[0] as { n: number }).n;
        if (left !== 0) await sleep(50);
      }
      expect(left).toBe(0);
    } finally {
      await direct.end();
    }
    await c.end().catch(() => {});
  });
});
