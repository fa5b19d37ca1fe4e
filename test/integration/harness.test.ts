import { readFileSync, existsSync } from 'node:fs';
import pg from 'pg';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPostgres, type PgCluster } from '../harness/postgres.js';

async function whoami(config: pg.ClientConfig): Promise<{ user: string; db: string; ssl: boolean }> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    const r = await client.query<{ user: string; db: string; ssl: boolean }>(
      'SELECT current_user AS user, current_database() AS db, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    return r.rows[0]!;
  } finally {
    await client.end();
  }
}

describe('throwaway PostgreSQL cluster', () => {
  let pgc: PgCluster;
  beforeAll(async () => {
    pgc = await startPostgres();
  });
  afterAll(async () => {
    await pgc?.stop();
  });

  it('authenticates app with SCRAM and app owns database app', async () => {
    const { app } = pgc.roles;
    const me = await whoami({ host: pgc.host, port: pgc.port, user: app.user, password: app.password, database: 'app' });
    expect(me).toEqual({ user: 'app', db: 'app', ssl: false });
    await pgc.sql(`CREATE TABLE t (id int)`, 'app'); // superuser helper can target another database
  });

  it('refuses a wrong SCRAM password', async () => {
    await expect(
      whoami({ host: pgc.host, port: pgc.port, user: 'app', password: 'wrong', database: 'app' }),
    ).rejects.toThrow(/password authentication failed/);
  });

  it('authenticates md5user with MD5 (stored as md5 hash)', async () => {
    const { md5user } = pgc.roles;
    const me = await whoami({ connectionString: pgc.url(md5user.user, md5user.password) });
    expect(me.user).toBe('md5user');
    const client = new pg.Client({ connectionString: pgc.url() });
    await client.connect();
    const r = await client.query(`SELECT rolpassword FROM pg_authid WHERE rolname = 'md5user'`);
    await client.end();
    expect(r.rows[0].rolpassword).toMatch(/^md5[0-9a-f]{32}$/);
  });

  it('lets trustuser in without a password', async () => {
    const me = await whoami({ host: pgc.host, port: pgc.port, user: 'trustuser', database: 'postgres' });
    expect(me.user).toBe('trustuser');
  });

  it('runs psql as superuser and reports its errors', async () => {
    await pgc.sql(`CREATE TABLE harness_check (id int); INSERT INTO harness_check VALUES (1);`);
    await expect(pgc.sql('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
  });

  it('survives restart and cleans up on stop', async () => {
    await pgc.restart();
    expect((await whoami({ connectionString: pgc.url() })).user).toBe('postgres');
  });
});

describe('throwaway PostgreSQL cluster with TLS', () => {
  let pgc: PgCluster;
  beforeAll(async () => {
    pgc = await startPostgres({ ssl: true });
  });
  afterAll(async () => {
    const dir = pgc?.socketDir;
    await pgc?.stop();
    expect(dir && existsSync(dir)).toBe(false);
  });

  it('accepts verify-full with the throwaway CA', async () => {
    const ca = readFileSync(pgc.caFile!, 'utf8');
    const { app } = pgc.roles;
    const me = await whoami({
      host: pgc.host, port: pgc.port, user: app.user, password: app.password, database: 'app',
      ssl: { ca, servername: 'localhost', rejectUnauthorized: true },
    });
    expect(me).toEqual({ user: 'app', db: 'app', ssl: true });
  });

  it('fails verification without the CA', async () => {
    const { app } = pgc.roles;
    await expect(
      whoami({
        host: pgc.host, port: pgc.port, user: app.user, password: app.password, database: 'app',
        ssl: { servername: 'localhost', rejectUnauthorized: true },
      }),
    ).rejects.toThrow(/self.signed|unable to verify|certificate/i);
  });
});
