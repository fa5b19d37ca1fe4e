/**
 * `sluice serve` killed with SIGKILL mid-traffic (statements flowing, one waiting for approval) and started again:
 * sessions left open are marked aborted, the pending approval gets a recorded outcome, the audit store is intact
 * (integrity_check, hash chain), every row the database holds has its audit record, and clients reconnect.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAudit } from '../../src/audit/verify.js';
import { main as cli } from '../../src/cli.js';
import { ensureBuilt } from '../harness/build.js';
import { spawnServe } from '../harness/serve-process.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { waitFor } from '../integration/clients/util.js';

let cluster: PgCluster;
let dir: string;
let cfg: string;
let secret = '';
const children: ChildProcess[] = [];

beforeAll(async () => {
  await ensureBuilt(); // bin/sluice.js runs dist/
  cluster = await startPostgres();
  await cluster.sql('CREATE TABLE k (v int); CREATE TABLE held (v int); ALTER TABLE k OWNER TO app; ALTER TABLE held OWNER TO app;', 'app');
  dir = mkdtempSync(join(tmpdir(), 'sluice-sigkill-'));
  cfg = join(dir, 'sluice.yaml');
  writeFileSync(cfg, [
    'listen: { host: 127.0.0.1, port: 0 }',
    'ui: { port: 0 }',
    `dataDir: ${join(dir, 'data')}`,
    'targets:',
    `  - { name: app, host: 127.0.0.1, port: ${cluster.port}, database: app, user: app, password: { env: KILL_PG_PASSWORD }, tls: { mode: disable } }`,
    'policy:',
    '  rules:',
    '    - name: agents',
    '      match: { groups: [agents] }',
    '      allow: [read, write, transaction, session]',
    '      tables: { public.held: { review: [write] } }',
    '',
  ].join('\n'));
  const out: string[] = [];
  const code = await cli(['key', 'add', 'agent', '--groups', 'agents', '--config', cfg], { log: (s: string) => out.push(s), error: () => {} } as never);
  expect(code).toBe(0);
  secret = out.join('').split('\n').find((l) => l.startsWith('sk_'))!.trim();
}, 180_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function serve(): Promise<{ proc: ChildProcess; port: number }> {
  const s = spawnServe(['--config', cfg], { cwd: dir, env: { ...process.env, KILL_PG_PASSWORD: cluster.roles.app.password } });
  children.push(s.proc);
  const port = Number((await s.waitForOutput(/listening on 127\.0\.0\.1:(\d+)/, 'sluice serve to listen'))[1]);
  return { proc: s.proc, port };
}

const url = (port: number) => `postgres://agent:${encodeURIComponent(secret)}@127.0.0.1:${port}/app?sslmode=disable`;

describe('SIGKILL mid-traffic', () => {
  it('restarts clean: sessions aborted, the waiting approval voided, chain intact, every row audited, clients reconnect', async () => {
    const first = await serve();
    let next = 0;
    let stop = false;
    const writers = Array.from({ length: 6 }, async () => {
      const c = new pg.Client({ connectionString: url(first.port) });
      c.on('error', () => {});
      await c.connect();
      while (!stop) {
        const v = next++;
        if (await c.query(`INSERT INTO k VALUES (${v})`).then(() => false, () => true)) break;
      }
    });
    const waiter = new pg.Client({ connectionString: url(first.port) });
    waiter.on('error', () => {});
    await waiter.connect();
    const held = waiter.query('INSERT INTO held VALUES (1)').then(() => 'ran', () => 'failed');
    await waitFor(async () => (next > 400 ? true : undefined), 'traffic to flow'); // at most 6 of them in flight
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    stop = true;
    await Promise.all(writers);
    expect(await held).toBe('failed');

    const second = await serve();
    // Clients reconnect and work.
    const c = new pg.Client({ connectionString: url(second.port) });
    await c.connect();
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
    second.proc.kill('SIGTERM');
    await new Promise((r) => second.proc.once('exit', r));

    const db = new Database(join(dir, 'data', 'sluice.db'), { readonly: true, fileMustExist: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(verifyAudit(db)).toMatchObject({ ok: true });
      const open = db.prepare('SELECT count(*) AS n FROM sessions WHERE ended_at IS NULL').get() as { n: number };
      expect(open.n).toBe(0);
      const aborted = db.prepare("SELECT count(*) AS n FROM sessions WHERE end_reason = 'Sluice stopped while the session was open'").get() as { n: number };
      expect(aborted.n).toBeGreaterThanOrEqual(7);
      const outcome = db.prepare(`SELECT json_extract(detail, '$.resolution') AS r FROM audit_events WHERE kind = 'approval_resolved'`).all();
      expect(outcome).toEqual([{ r: 'voided' }]);
      // Audit before forward: every row in the database has its statement record (some records may not have run).
      const audited = new Set((db.prepare(`SELECT text FROM statements WHERE text LIKE 'INSERT INTO k VALUES (%'`).all() as { text: string }[]).map((r) => r.text));
      const admin = new pg.Client({ connectionString: cluster.url('postgres', cluster.password, 'app') });
      await admin.connect();
      const values = (await admin.query('SELECT v FROM k')).rows.map((r) => r.v as number);
      const heldRows = (await admin.query('SELECT count(*)::int AS n FROM held')).rows[0].n as number;
      await admin.end();
      expect(values.length).toBeGreaterThan(300);
      for (const v of values) expect(audited.has(`INSERT INTO k VALUES (${v})`), `row ${v} has an audit record`).toBe(true);
      expect(heldRows).toBe(0);
    } finally {
      db.close();
    }
  });
});
