import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCertificates } from '../harness/certs.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { startSluice, type RunningSluice } from '../harness/sluice.js';

let cluster: PgCluster;
let sluice: RunningSluice;
let otherCaDir: string;

beforeAll(async () => {
  cluster = await startPostgres({ ssl: true });
  otherCaDir = mkdtempSync(join(tmpdir(), 'sluice-other-ca-'));
  const other = await makeCertificates(otherCaDir);
  const base = { host: cluster.host, port: cluster.port, database: 'app', user: 'app', password: { env: 'APP_PG_PASSWORD' } };
  sluice = await startSluice(cluster, {
    config: {
      targets: [
        { ...base, name: 'disable', tls: { mode: 'disable' } },
        { ...base, name: 'prefer', tls: { mode: 'prefer' } },
        { ...base, name: 'require', tls: { mode: 'require' } },
        { ...base, name: 'verify', tls: { mode: 'verify-full', ca: cluster.caFile! } },
        { ...base, name: 'wrongca', tls: { mode: 'verify-full', ca: other.caFile } },
      ],
    },
  });
});
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
  rmSync(otherCaDir, { recursive: true, force: true });
});

async function upstreamSsl(target: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: sluice.url({ target }) });
  await c.connect();
  try {
    const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return r.rows[0].ssl as boolean;
  } finally {
    await c.end();
  }
}

describe('upstream TLS modes', () => {
  it('uses TLS to the server exactly when the target mode says so', async () => {
    expect(await upstreamSsl('disable')).toBe(false);
    expect(await upstreamSsl('prefer')).toBe(true);
    expect(await upstreamSsl('require')).toBe(true);
    expect(await upstreamSsl('verify')).toBe(true);
  });

  it('verify-full refuses a certificate from another CA with 08006, and records why', async () => {
    for (const target of ['wrongca']) {
      const c = new pg.Client({ connectionString: sluice.url({ target }) });
      const err = await c.connect().then(() => null, (e: { code?: string; message: string }) => e);
      expect(err, target).toMatchObject({ code: '08006' });
      expect(err!.message).toMatch(/TLS handshake with server failed: unable to verify/);
    }
    const ended = sluice.broker.audit.listSessions().filter((s) => s.target === 'wrongca');
    expect(ended.map((s) => s.endReason)).toEqual([expect.stringContaining('upstream connect failed: TLS handshake')]);
  });
});
