/**
 * COPY through Sluice under policy, against a real PostgreSQL: COPY TO STDOUT runs only for a rule allowing
 * copy_out, COPY FROM STDIN is refused where copy_in is denied (no rows added, the client's pipelined CopyData is
 * ignored as the server ignores it after an error), and COPY ... PROGRAM / server files are refused by the builtins
 * even for a rule that allows copy_out and lists every hidden-SQL construct in allowHidden.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/policy/model.js';
import { HIDDEN_SQL_KINDS } from '../../../src/policy/model.js';
import { psql } from '../clients/util.js';
import {
  count, expectAudit, expectRefusal, query, rawDirect, rawThroughSluice, readReady, refused, rejection, serialize, startPolicyEnv, summary, withPg, type PolicyEnv,
} from './helpers.js';

const POLICY: PolicyInput = {
  rules: [
    {
      name: 'copier',
      match: { groups: ['test'] },
      allow: ['read', 'copy_out', 'transaction', 'session'],
      deny: ['copy_in'],
      tables: { 'public.secrets': 'deny' },
      allowHidden: [...HIDDEN_SQL_KINDS],
    },
    { name: 'reader', match: { groups: ['readers'] }, allow: ['read'] },
    { name: 'loader', match: { groups: ['loaders'] }, allow: ['read', 'copy_in'] },
  ],
};

const SETUP = `
  -- Directly, app could use server files and programs: every refusal below is Sluice's.
  GRANT pg_read_server_files, pg_write_server_files, pg_execute_server_program TO app;
  CREATE TABLE t (id int, s text); INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');
  CREATE TABLE inbox (id int, s text);
  CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('top secret');
  ALTER TABLE t OWNER TO app; ALTER TABLE inbox OWNER TO app; ALTER TABLE secrets OWNER TO app;
  GRANT ALL ON t TO trustuser;
`;
const T_TEXT = '1\ta\n2\tb\n3\tc\n';

let env: PolicyEnv;
let readerUrl: string;
let loaderUrl: string;
beforeAll(async () => {
  env = await startPolicyEnv(POLICY, SETUP);
  readerUrl = env.sluice.url({ user: 'reader-bot', password: env.sluice.broker.keys.add('reader-bot', { groups: ['readers'] }).secret });
  loaderUrl = env.sluice.url({ user: 'loader-bot', password: env.sluice.broker.keys.add('loader-bot', { groups: ['loaders'] }).secret });
});
afterAll(async () => {
  await env?.stop();
});

async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function readAll(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => parts.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    stream.on('error', reject);
  });
}

/** A path the server (running as its own OS user) can write, and the test can look at. */
const serverPath = (name: string): string => join(env.cluster.socketDir, name);

describe('COPY TO STDOUT', () => {
  it('runs for a rule allowing copy_out (postgres.js and psql), audited as allowed', async () => {
    const out = await withSql(env.sluice.url(), async (sql) => readAll(await sql.unsafe('COPY t TO STDOUT').readable()));
    expect(out).toBe(T_TEXT);
    expectAudit(env.sluice, 'COPY t TO STDOUT', 'allow', 'copier');
    const r = await psql(env.sluice.url(), ['-c', 'COPY (SELECT id, s FROM t ORDER BY id) TO STDOUT']);
    expect([r.code, r.stdout.toString('utf8'), r.stderr]).toEqual([0, T_TEXT, '']);
  });

  it('is refused (default deny) for an identity whose rule allows only read', async () => {
    await withPg(readerUrl, async (c) => {
      expect((await c.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 3 }]);
      await refused(env.sluice, c, 'COPY t TO STDOUT', { rule: 'default-deny', cls: 'copy_out', object: 't' });
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    });
    const r = await psql(readerUrl, ['-c', 'COPY t TO STDOUT']);
    expect(r.stdout.toString('utf8')).toBe('');
    expect(r.stderr).toMatch(/ERROR: {2}Sluice policy refuses copy_out on public.t for identity "reader-bot" \(rule "default-deny"\)/);
    expect(r.stderr).toMatch(/HINT: {2}.*allow copy_out/);
  });

  it('copy_out of a denied table or of a write is refused even for the copier', async () => {
    await withPg(env.sluice.url(), async (c) => {
      await refused(env.sluice, c, 'COPY (SELECT s FROM secrets) TO STDOUT', { rule: 'copier', cls: 'copy_out', object: 'secrets' });
      await refused(env.sluice, c, 'COPY (DELETE FROM t RETURNING *) TO STDOUT', { rule: 'default-deny', cls: 'write', object: 't' });
    });
    expect(await count(env, 't')).toBe(3);
  });
});

describe('COPY FROM STDIN', () => {
  it('is refused where copy_in is denied; no rows are added (postgres.js)', async () => {
    await withSql(env.sluice.url(), async (sql) => {
      const err = await rejection((async () => {
        await pipeline(Readable.from(['9\tz\n']), await sql.unsafe('COPY t FROM STDIN').writable());
      })());
      expectRefusal(err as never, { rule: 'copier', cls: 'copy_in', object: 't' });
      expect(await sql`SELECT count(*)::int AS n FROM t`).toEqual([{ n: 3 }]);
    });
    expectAudit(env.sluice, 'COPY t FROM STDIN', 'deny', 'copier');
    expect(await count(env, 't')).toBe(3);
  });

  it('CopyData pipelined behind the refused COPY is ignored, as the server ignores it after a failed COPY', async () => {
    const msgs = Buffer.concat([query('COPY t FROM STDIN'), serialize.copyData(Buffer.from('8\ty\n')), serialize.copyDone(), query('SELECT 4')]);
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(msgs);
      expect(summary(await readReady(c, 2))).toEqual(['E:42501', 'Z:I', 'T', 'D:4', 'C:SELECT 1', 'Z:I']);
    } finally {
      c.destroy();
    }
    // Directly, a COPY that fails at once (no such table) is followed by the same: the copy data goes nowhere.
    const d = await rawDirect(env.cluster);
    try {
      d.write(Buffer.concat([query('COPY no_such_table FROM STDIN'), serialize.copyData(Buffer.from('8\ty\n')), serialize.copyDone(), query('SELECT 4')]));
      expect(summary(await readReady(d, 2))).toEqual(['E:42P01', 'Z:I', 'T', 'D:4', 'C:SELECT 1', 'Z:I']);
    } finally {
      d.destroy();
    }
    expect(await count(env, 't')).toBe(3);
  });

  it('runs for a rule allowing copy_in', async () => {
    await withSql(loaderUrl, async (sql) => {
      await pipeline(Readable.from(['1\tx\n', '2\ty\n']), await sql.unsafe('COPY inbox FROM STDIN').writable());
    });
    expectAudit(env.sluice, 'COPY inbox FROM STDIN', 'allow', 'loader');
    expect(await count(env, 'inbox')).toBe(2);
  });
});

describe('COPY with programs and server files', () => {
  it('the role itself could write a server file directly', async () => {
    const path = serverPath('direct-out');
    await withPg(env.cluster.url('app', env.cluster.roles.app.password, 'app'), (c) => c.query(`COPY t TO '${path}'`));
    expect(existsSync(path)).toBe(true);
  });

  it('refuses COPY ... TO PROGRAM and FROM PROGRAM (builtin:copy-program); the program never runs', async () => {
    const marker = serverPath('program-ran');
    await withPg(env.sluice.url(), async (c) => {
      await refused(env.sluice, c, `COPY t TO PROGRAM 'cat > ${marker}'`, { rule: 'builtin:copy-program', cls: 'copy_out', object: 'COPY PROGRAM' });
      await refused(env.sluice, c, `COPY (SELECT 1) TO PROGRAM 'touch ${marker}'`, { rule: 'builtin:copy-program', cls: 'copy_out', object: 'COPY PROGRAM' });
      await refused(env.sluice, c, `COPY t FROM PROGRAM 'touch ${marker}; echo 7'`, { rule: 'builtin:copy-program', cls: 'copy_in', object: 'COPY PROGRAM' });
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    });
    expect(existsSync(marker)).toBe(false);
    expect(await count(env, 't')).toBe(3);
  });

  it('refuses COPY to and from a server file (builtin:copy-server-files); no file is written', async () => {
    const out = serverPath('file-out');
    await withPg(env.sluice.url(), async (c) => {
      await refused(env.sluice, c, `COPY t TO '${out}'`, { rule: 'builtin:copy-server-files', cls: 'copy_out', object: 'COPY with a server file' });
      await refused(env.sluice, c, `COPY (SELECT * FROM t) TO '${out}' WITH (FORMAT csv)`, { rule: 'builtin:copy-server-files', cls: 'copy_out', object: 'COPY with a server file' });
      await refused(env.sluice, c, "COPY t FROM '/etc/hostname'", { rule: 'builtin:copy-server-files', cls: 'copy_in', object: 'COPY with a server file' });
    });
    expect(existsSync(out)).toBe(false);
    expect(await count(env, 't')).toBe(3);
  });
});
