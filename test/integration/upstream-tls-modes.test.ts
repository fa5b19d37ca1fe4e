/**
 * Upstream TLS cases upstream-tls.test.ts does not cover: a server without TLS under `prefer` (plaintext
 * fallback) and `require` (clear refusal, Sluice unharmed), and `verify-full` against a certificate from the
 * right CA that does not name the host Sluice connected to.
 *
 * The harness certificate names DNS:localhost and IP:127.0.0.1 only. The TLS cluster also listens on
 * 127.0.0.2 (loopback; Linux routes all of 127/8 to lo), so a target with host 127.0.0.2 reaches the same
 * server with the same certificate, under an address the certificate does not name. Its connections still
 * come from 127.0.0.1, so the harness's pg_hba lines apply unchanged.
 *
 * Sluice's modes are disable, prefer, require and verify-full; there is no verify-ca, so `require` (TLS with
 * no verification) is the mode that must still work against the mismatched name.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';
import { internals, sendCancelRequest, waitFor } from './clients/util.js';

const OTHER_LOOPBACK = '127.0.0.2';

let plain: PgCluster;
let plainSluice: RunningSluice;
let secure: PgCluster;
let secureSluice: RunningSluice;

beforeAll(async () => {
  plain = await startPostgres();
  const base = { host: plain.host, port: plain.port, database: 'app', user: 'app', password: { env: 'APP_PG_PASSWORD' } };
  plainSluice = await startSluice(plain, {
    config: {
      targets: [
        { ...base, name: 'disable', tls: { mode: 'disable' } },
        { ...base, name: 'prefer', tls: { mode: 'prefer' } },
        { ...base, name: 'require', tls: { mode: 'require' } },
      ],
      // Below the 15 s client give-up, so an upstream step that stalls surfaces as Sluice's own timeout error.
      limits: { connectTimeoutMs: 5_000 },
    },
  });

  secure = await startPostgres({ ssl: true, settings: { listen_addresses: `127.0.0.1,${OTHER_LOOPBACK}` } });
  // startSluice hands only the first cluster's password to its broker through env; this one goes by file.
  const pwFile = join(secure.socketDir, 'sluice-app-password');
  writeFileSync(pwFile, `${secure.roles.app.password}\n`, { mode: 0o600 });
  const sbase = { port: secure.port, database: 'app', user: 'app', password: { file: pwFile } };
  secureSluice = await startSluice(secure, {
    config: {
      targets: [
        { ...sbase, name: 'by-name', host: 'localhost', tls: { mode: 'verify-full', ca: secure.caFile! } },
        { ...sbase, name: 'by-ip', host: '127.0.0.1', tls: { mode: 'verify-full', ca: secure.caFile! } },
        { ...sbase, name: 'mismatch', host: OTHER_LOOPBACK, tls: { mode: 'verify-full', ca: secure.caFile! } },
        { ...sbase, name: 'mismatch-require', host: OTHER_LOOPBACK, tls: { mode: 'require' } },
      ],
    },
  });
}, 120_000);
afterAll(async () => {
  await plainSluice?.close();
  await secureSluice?.close();
  await plain?.stop();
  await secure?.stop();
});

/** A node-postgres client through `s`; connecting gives up after 15 s so a hang fails as such, not as a test timeout. */
const client = (s: RunningSluice, target: string) => new pg.Client({ connectionString: s.url({ target }), connectionTimeoutMillis: 15_000 });

/** Connects, asks the server whether this backend's connection is TLS and who it is, and disconnects. */
async function upstreamView(s: RunningSluice, target: string) {
  const c = client(s, target);
  await c.connect();
  try {
    const r = await c.query(`SELECT s.ssl, current_user AS who, inet_server_addr()::text AS server_addr
      FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()`);
    return r.rows[0] as { ssl: boolean; who: string; server_addr: string };
  } finally {
    await c.end();
  }
}

/** The error a connect attempt ends with, or null when it connected (then it is closed again). */
async function connectError(s: RunningSluice, target: string): Promise<{ code?: string; message: string; hint?: string } | null> {
  const c = client(s, target);
  return c.connect().then(async () => { await c.end(); return null; }, (e: { code?: string; message: string; hint?: string }) => e);
}

describe('upstream TLS against a server without TLS', () => {
  it('prefer falls back to plaintext and the session works', async () => {
    expect(await upstreamView(plainSluice, 'prefer')).toEqual({ ssl: false, who: 'app', server_addr: '127.0.0.1/32' });
    expect(await upstreamView(plainSluice, 'disable')).toMatchObject({ ssl: false });
  });

  it('prefer: a cancel reaches the server over the plaintext fallback too', async () => {
    const c = client(plainSluice, 'prefer');
    await c.connect();
    const watcher = new pg.Client({ connectionString: plain.url() });
    await watcher.connect();
    try {
      const sleeping = c.query('SELECT pg_sleep(30)').then(() => null, (e: { code?: string }) => e);
      const asleep = async () => (await watcher.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")).rows[0].n as number;
      await waitFor(async () => ((await asleep()) > 0 ? true : undefined), 'the sleep to start');
      await sendCancelRequest(plainSluice.port, internals(c).processID, internals(c).secretKey);
      // Cancelled (57014), well before the 30 s sleep could end.
      expect(await sleeping).toMatchObject({ code: '57014' });
    } finally {
      await watcher.end();
      await c.end();
    }
  });

  it('require is refused with 08006 and a message naming the mode; Sluice keeps serving', async () => {
    // A session already relaying when the refusals happen, and new sessions after them.
    const open = client(plainSluice, 'disable');
    await open.connect();
    try {
      const errors = await Promise.all(Array.from({ length: 5 }, () => connectError(plainSluice, 'require')));
      for (const err of errors) {
        expect(err).toMatchObject({ code: '08006' });
        expect(err!.message).toBe('Sluice could not connect to target "require": server refused TLS but the target requires it (tls.mode require)');
      }
      expect((await open.query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
      expect(await upstreamView(plainSluice, 'disable')).toMatchObject({ ssl: false, who: 'app' });
    } finally {
      await open.end();
    }
    const refused = plainSluice.broker.audit.listSessions().filter((s) => s.target === 'require');
    expect(refused.map((s) => s.endReason)).toEqual(
      Array(5).fill('upstream connect failed: server refused TLS but the target requires it (tls.mode require)'),
    );
    // No refused session is left behind holding a client connection.
    await waitFor(() => (plainSluice.broker.connectionCount() === 0 ? true : undefined), 'every client connection to close');
  });
});

describe('verify-full against a certificate that does not name the host', () => {
  it('control: verify-full accepts the certificate under the name and the address it does name', async () => {
    expect(await upstreamView(secureSluice, 'by-name')).toMatchObject({ ssl: true, who: 'app' });
    expect(await upstreamView(secureSluice, 'by-ip')).toMatchObject({ ssl: true, who: 'app', server_addr: '127.0.0.1/32' });
  });

  it('refuses the same CA-valid certificate reached as 127.0.0.2, with 08006 and the reason', async () => {
    const err = await connectError(secureSluice, 'mismatch');
    expect(err).toMatchObject({ code: '08006' });
    expect(err!.message).toBe(
      'Sluice could not connect to target "mismatch": TLS handshake with server failed: ' +
      `Hostname/IP does not match certificate's altnames: IP: ${OTHER_LOOPBACK} is not in the cert's list: 127.0.0.1`,
    );
    const ended = secureSluice.broker.audit.listSessions().filter((s) => s.target === 'mismatch');
    expect(ended.map((s) => s.endReason)).toEqual([expect.stringContaining('upstream connect failed: TLS handshake with server failed: Hostname/IP does not match')]);
  });

  it('require (TLS without verification) to the same address still connects over TLS', async () => {
    expect(await upstreamView(secureSluice, 'mismatch-require')).toEqual({ ssl: true, who: 'app', server_addr: `${OTHER_LOOPBACK}/32` });
  });
});
