/**
 * One PostgreSQL, one real OpenID provider (oidc-provider on loopback) and one Sluice trusting it, for the OIDC
 * integration tests.
 */
import pg from 'pg';
import { startIssuer, AUDIENCE, CLIENTS, type TestIssuer } from '../../harness/oidc.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { startSluice, type RunningSluice } from '../../harness/sluice.js';

export const INTROSPECTION_ENV = 'SLUICE_TEST_INTROSPECTION_SECRET';
/** How often an unknown kid may refetch the JWKS in these tests. */
export const REFETCH_SECONDS = 2;

export interface OidcEnv {
  cluster: PgCluster;
  idp: TestIssuer;
  sluice: RunningSluice;
  stop(): Promise<void>;
}

export async function startOidcEnv(issuerOverrides: Record<string, unknown> = {}): Promise<OidcEnv> {
  const cluster = await startPostgres();
  const idp = await startIssuer();
  // startSluice hands process.env to the broker: the introspection secret reaches it the way an operator's would.
  process.env[INTROSPECTION_ENV] = CLIENTS.introspector.secret;
  let sluice: RunningSluice;
  try {
    sluice = await startSluice(cluster, {
      config: {
        oidc: {
          issuers: [{
            issuer: idp.issuer,
            audience: AUDIENCE,
            identityClaim: 'client_id',
            clockSkewSeconds: 1,
            jwksRefetchIntervalSeconds: REFETCH_SECONDS,
            introspection: { clientId: CLIENTS.introspector.id, clientSecret: { env: INTROSPECTION_ENV } },
            ...issuerOverrides,
          }],
        },
      },
    });
  } catch (e) {
    await idp.close();
    await cluster.stop();
    throw e;
  }
  return {
    cluster, idp, sluice,
    async stop() {
      await sluice.close();
      await idp.close();
      await cluster.stop();
    },
  };
}

/** node-postgres through Sluice with a token (or any password) for `user` on target app. */
export function client(env: OidcEnv, user: string, password: string): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: env.sluice.port, user, password, database: 'app', ssl: false });
}

/** Connects, runs `sql`, ends; resolves with the rows or rejects with the server's error. */
export async function query(env: OidcEnv, user: string, password: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = client(env, user, password);
  c.on('error', () => { /* a FATAL after connect is reported to the pending query */ });
  await c.connect();
  try {
    return (await c.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await c.end().catch(() => {});
  }
}

/** The error a login fails with (fails the test if it succeeds). */
export async function loginError(env: OidcEnv, user: string, password: string): Promise<{ code: string; message: string; hint?: string }> {
  const c = client(env, user, password);
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    const e = err as { code?: string; message: string; hint?: string };
    return { code: e.code ?? '?', message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  }
  await c.end();
  throw new Error(`login as ${user} unexpectedly succeeded`);
}

export interface SessionEnd {
  id: number;
  identity: string;
  endReason: string | null;
  startedAt: number;
  endedAt: number | null;
}

/** The last session recorded by Sluice. */
export function lastSession(env: OidcEnv): SessionEnd {
  return env.sluice.broker.db
    .prepare('SELECT id, identity, end_reason AS endReason, started_at AS startedAt, ended_at AS endedAt FROM sessions ORDER BY id DESC LIMIT 1')
    .get() as SessionEnd;
}

/** Base64url JSON, for hand-made tokens. */
export const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
