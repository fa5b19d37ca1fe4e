/**
 * Masking at the session level: a session masking applies to is refused when its catalog or key cannot be had
 * (fail closed), and the masking section is editable live (the next statement uses the edit).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type Broker } from '../../../src/broker.js';
import { loadConfig } from '../../../src/config/load.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { startSluice } from '../../harness/sluice.js';
import { CANARY, MASKING, SETUP_SQL } from './fixture.js';

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await startPostgres();
  await cluster.sql(SETUP_SQL, 'app');
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

async function firstEmail(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return String((await c.query('SELECT email FROM customers WHERE id = 1')).rows[0].email);
  } finally {
    await c.end().catch(() => {});
  }
}

describe('fail closed', () => {
  it('a session is refused with FATAL 57P03 when the masking key cannot be read; one without masking still works', async () => {
    const sluice = await startSluice(cluster, { config: { masking: { rules: [{ name: 'e', columns: ['public.customers.email'], method: 'redact', except: { identities: ['exempt'] } }] } } });
    try {
      // A key file others can read is refused, like an SSH private key.
      writeFileSync(join(sluice.dataDir, 'masking.key'), Buffer.alloc(32, 7), { mode: 0o644 });
      const err = await firstEmail(sluice.url()).then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('57P03');
      expect(err?.message).toMatch(/masking/);
      expect(err?.message).toMatch(/masking\.key/);
      const { secret } = sluice.broker.keys.add('exempt', { groups: ['test'] });
      expect(await firstEmail(sluice.url({ user: 'exempt', password: secret }))).toBe(CANARY.email1);
    } finally {
      await sluice.close();
    }
  });

  it('a session is refused when the target catalog cannot be loaded', async () => {
    // The catalog is read over Sluice's own side connection with the target's credential.
    const sluice = await startSluice(cluster, { config: { masking: MASKING } });
    try {
      await cluster.sql("ALTER ROLE app CONNECTION LIMIT 1", 'postgres');
      const err = await firstEmail(sluice.url()).then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('57P03');
      expect(err?.message).toMatch(/cannot load the column catalog/);
    } finally {
      await cluster.sql('ALTER ROLE app CONNECTION LIMIT -1', 'postgres');
      await sluice.close();
    }
  });
});

describe('live edits', () => {
  let dir: string;
  let broker: Broker;
  let url: string;
  const write = (method: string) => writeFileSync(join(dir, 'sluice.yaml'), [
    'listen: { host: 127.0.0.1, port: 0 }',
    'dataDir: ./data',
    'targets:',
    `  - { name: app, host: 127.0.0.1, port: ${cluster.port}, database: app, user: app, password: { env: LIVE_PG_PASSWORD }, tls: { mode: disable } }`,
    'policy: { rules: [ { name: all, match: { groups: [test] }, allow: [read, session, transaction] } ] }',
    `masking: { rules: [ { name: e, columns: [public.customers.email], method: ${method} } ] }`,
    '',
  ].join('\n'));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-mask-live-'));
    write('redact');
    const path = join(dir, 'sluice.yaml');
    broker = createBroker(loadConfig(path), { configPath: path, env: { ...process.env, LIVE_PG_PASSWORD: cluster.roles.app.password }, log: () => {} });
    const { port } = await broker.listen();
    const { secret } = broker.keys.add('agent', { groups: ['test'] });
    url = `postgres://agent:${encodeURIComponent(secret)}@127.0.0.1:${port}/app?sslmode=disable`;
  });
  afterAll(async () => {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a new method applies to the next statement of an open session', async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const q = async () => String((await c.query('SELECT email FROM customers WHERE id = 1')).rows[0].email);
      expect(await q()).toBe('***');
      write('email');
      expect(broker.reloadConfig()).toBe(true);
      expect(await q()).toBe('***@example.com');
    } finally {
      await c.end();
    }
  });
});

describe('audit', () => {
  it('records how many result columns were masked with the statement\'s completion (the feed and replay show it)', async () => {
    const sluice = await startSluice(cluster, { config: { masking: { rules: [{ name: 'e', columns: ['public.customers.email'], method: 'redact' }] } } });
    try {
      const c = new pg.Client({ connectionString: sluice.url() });
      await c.connect();
      await c.query('SELECT id, email, upper(email) AS shout FROM customers WHERE id = 1');
      await c.query('SELECT id FROM customers WHERE id = 1');
      await c.end();
      await new Promise((r) => setTimeout(r, 250)); // completions are committed within 100 ms
      const rows = sluice.broker.db.prepare(`SELECT s.text, r.masked_fields AS masked FROM statements s JOIN statement_results r ON r.statement_id = s.id
        WHERE s.text LIKE 'SELECT id%customers%' ORDER BY s.id`).all();
      expect(rows).toEqual([
        { text: 'SELECT id, email, upper(email) AS shout FROM customers WHERE id = 1', masked: 2 },
        { text: 'SELECT id FROM customers WHERE id = 1', masked: null },
      ]);
    } finally {
      await sluice.close();
    }
  });
});
