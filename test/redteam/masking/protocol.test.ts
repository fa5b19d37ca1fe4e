/**
 * Issue 4, the wire: Execute without Describe, binary results, portals fetched in batches, drivers that cache
 * statements (postgres.js), SQL cursors and PREPARE/EXECUTE, error-message echoes, temp tables, search_path.
 * Every byte Sluice sends goes through a recording tap; no canary may be among them, nor in the audit database.
 */
import pg from 'pg';
import { serialize } from 'pg-protocol';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDataRow } from '../../../src/masking/datarow.js';
import { parseErrorFields } from '../../../src/protocol/messages.js';
import { psql } from '../../integration/clients/util.js';
import { query, RawClient, type BackendFrame } from '../raw-client.js';
import { auditBytes, canariesIn, CANARY, expectNoCanary, startMaskEnv, type MaskEnv } from './env.js';

let env: MaskEnv;

beforeAll(async () => {
  env = await startMaskEnv(undefined, 'ALTER TABLE customers ADD CONSTRAINT short_name CHECK (length(name) < 20);');
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

async function raw(): Promise<RawClient> {
  const c = await RawClient.connect(env.tap.port);
  await c.login('agent', env.sluice.key, 'app');
  return c;
}

const codes = (frames: BackendFrame[]) => frames.map((f) => f.code).join('');
const rows = (frames: BackendFrame[]) => frames.filter((f) => f.code === 'D').map((f) => readDataRow(f.frame));

async function withPg<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: env.url() });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

describe('raw frames', () => {
  it('Execute without Describe, binary results: planned by Sluice\'s own Describe, which the client never sees', async () => {
    const c = await raw();
    c.write(Buffer.concat([
      serialize.parse({ text: 'SELECT id, email, ssn, name FROM customers ORDER BY id' }),
      serialize.bind({ binary: true }),
      serialize.execute({}),
      serialize.sync(),
    ]));
    const got = await c.readUntil('Z');
    expectNoCanary(Buffer.concat(got.map((f) => f.frame)), 'binary execute');
    // ParseComplete, BindComplete, two rows, CommandComplete, ReadyForQuery: no RowDescription or NoData added.
    expect(codes(got)).toBe('12DDCZ');
    const [first] = rows(got);
    expect(first![0]!.readInt32BE(0)).toBe(1); // int4 in binary, unmasked
    expect(first![1]!.toString()).toBe('***@example.com');
    expect(first![2]!.toString()).toMatch(/^\*+8841$/);
    c.destroy();
  });

  it('a portal fetched one row at a time (PortalSuspended) is masked in every batch', async () => {
    const c = await raw();
    c.write(Buffer.concat([
      serialize.parse({ text: 'SELECT email, upper(name) FROM customers ORDER BY id' }),
      serialize.bind({}),
      serialize.execute({ rows: 1 }),
      serialize.execute({ rows: 1 }),
      serialize.execute({ rows: 0 }),
      serialize.sync(),
    ]));
    const got = await c.readUntil('Z');
    expectNoCanary(Buffer.concat(got.map((f) => f.frame)), 'batches');
    expect(codes(got)).toBe('12DsDsCZ');
    expect(rows(got).map((r) => r[0]!.toString())).toEqual(['***@example.com', '***@example.org']);
    c.destroy();
  });

  it('the client\'s own Describe still gets its RowDescription, and a pipeline of two statements is planned per statement', async () => {
    const c = await raw();
    c.write(Buffer.concat([
      serialize.parse({ name: 's1', text: 'SELECT id, email FROM customers WHERE id = 1' }),
      serialize.describe({ type: 'S', name: 's1' }),
      serialize.bind({ statement: 's1' }),
      serialize.describe({ type: 'P', name: '' }),
      serialize.execute({}),
      serialize.parse({ text: 'SELECT id, email FROM other.customers' }),
      serialize.bind({}),
      serialize.execute({}),
      serialize.sync(),
    ]));
    const got = await c.readUntil('Z');
    expectNoCanary(Buffer.concat(got.map((f) => f.frame)), 'pipeline');
    expect(codes(got)).toBe('1tT2TDC12DCZ');
    expect(rows(got).map((r) => r[1]!.toString())).toEqual(['***@example.com', 'not-secret@example.com']);
    c.destroy();
  });

  it('a binary cursor fetched with a simple Query is masked in binary', async () => {
    const c = await raw();
    c.write(serialize.query('BEGIN; DECLARE b BINARY CURSOR FOR SELECT id, secret FROM base ORDER BY id; FETCH ALL FROM b; COMMIT'));
    const got = await c.readUntil('Z');
    expectNoCanary(Buffer.concat(got.map((f) => f.frame)), 'binary cursor');
    const r = rows(got);
    expect(r).toHaveLength(2);
    expect(r[0]![0]!.readInt32BE(0)).toBe(1);
    expect(r[0]![1]!.toString()).toMatch(/^[0-9a-f]{32}$/); // hash method, keyed
    c.destroy();
  });
});

describe('postgres.js (named prepared statements, cached: later executions skip Describe)', () => {
  it('masks the first and the cached executions alike', async () => {
    const sql = postgres(env.url(), { max: 1, onnotice: () => {} });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await sql`SELECT id, email, upper(ssn) AS s FROM customers WHERE id = ${1}`;
        expect(r[0]).toEqual({ id: 1, email: '***@example.com', s: '***' });
      }
      const viaView = await sql`SELECT contact FROM v_contacts`;
      expect(viaView.map((x) => String(x.contact)).sort()).toEqual(['***@example.com', '***@example.org']);
      const batches: string[] = [];
      await sql`SELECT email FROM customers ORDER BY id`.cursor(1, (rs) => { batches.push(...rs.map((x) => String(x.email))); });
      expect(batches).toEqual(['***@example.com', '***@example.org']);
      const e = await sql`SELECT email::int FROM customers`.catch((x: Error & { code?: string }) => x);
      expect((e as { code?: string }).code).toBe('42501');
    } finally {
      await sql.end();
    }
    expectNoCanary(env.tap.bytes(), 'postgres.js');
  });
});

describe('node-postgres: cursors, PREPARE/EXECUTE, echoes, temp tables, search_path', () => {
  it('SQL cursors are masked at every FETCH', () => withPg(async (c) => {
    await c.query('BEGIN');
    await c.query('DECLARE cur CURSOR FOR SELECT id, email, row_to_json(x) AS j FROM customers x ORDER BY id');
    const a = await c.query('FETCH 1 FROM cur');
    const b = await c.query('FETCH ALL FROM cur');
    await c.query('COMMIT');
    expect([...a.rows, ...b.rows].map((r) => r.email)).toEqual(['***@example.com', '***@example.org']);
    expect(a.rows[0].id).toBe(1);
    expect(canariesIn(Buffer.from(JSON.stringify([a.rows, b.rows])))).toEqual([]);
  }));

  it('PREPARE/EXECUTE (simple and extended) is masked', () => withPg(async (c) => {
    await c.query('PREPARE p(int) AS SELECT id, email, upper(name) AS n FROM customers WHERE id = $1');
    const r = await c.query('EXECUTE p(1)');
    expect(r.rows).toEqual([{ id: 1, email: '***@example.com', n: '***' }]);
    const r2 = await c.query({ text: 'EXECUTE p(2)', values: [] , queryMode: 'extended' } as pg.QueryConfig);
    expect(r2.rows[0].email).toBe('***@example.org');
    const named = await c.query({ name: 'cached', text: 'SELECT email FROM customers WHERE id = $1', values: [1] });
    const again = await c.query({ name: 'cached', text: 'SELECT email FROM customers WHERE id = $1', values: [2] });
    expect([named.rows[0].email, again.rows[0].email]).toEqual(['***@example.com', '***@example.org']);
  }));

  it('an integrity error does not echo the failing row (masked columns in it)', () => withPg(async (c) => {
    const e = await c.query("UPDATE customers SET name = repeat('x', 30) WHERE id = 1").catch((x: pg.DatabaseError) => x);
    expect((e as pg.DatabaseError).code).toBe('23514');
    expect((e as pg.DatabaseError).detail ?? '').not.toContain('Failing row');
    expect(canariesIn(Buffer.from(JSON.stringify(e)))).toEqual([]);
  }));

  it('a temp table made in the session is readable (catalog reloaded for its OID); joined with a masked one, masked', () => withPg(async (c) => {
    await c.query('CREATE TEMP TABLE mine (v text)');
    await c.query("INSERT INTO mine VALUES ('ok')");
    expect((await c.query('SELECT v FROM mine')).rows).toEqual([{ v: 'ok' }]);
    const j = await c.query('SELECT m.v, c.email FROM mine m, customers c ORDER BY c.id');
    expect(j.rows.map((r) => [r.v, r.email])).toEqual([['ok', '***@example.com'], ['ok', '***@example.org']]);
  }));

  it('search_path is followed: other.customers is not masked, public.customers is', () => withPg(async (c) => {
    await c.query('SET search_path = other');
    expect((await c.query('SELECT email, upper(email) AS u FROM customers')).rows).toEqual([{ email: 'not-secret@example.com', u: 'NOT-SECRET@EXAMPLE.COM' }]);
    await c.query('SET search_path = public');
    expect((await c.query('SELECT upper(email) AS u FROM customers ORDER BY id')).rows).toEqual([{ u: '***' }, { u: '***' }]);
    // A path known only at run time: any schema may be meant, so what could be masked is.
    await c.query({ text: "SELECT set_config('search_path', $1, false)", values: ['other'] });
    expect((await c.query('SELECT upper(email) AS u FROM customers')).rows).toEqual([{ u: '***' }]);
  }));

  it('a statement prepared under another search_path is checked again at Bind: a predicate on a masked column is refused', async () => {
    const c = await raw();
    try {
      c.write(query('SET search_path = other'));
      await c.readUntil('Z');
      // other.orders is not masked: the predicate is fine at Parse.
      c.write(Buffer.concat([serialize.parse({ name: 'guess', text: 'SELECT id FROM orders WHERE card LIKE $1' }), serialize.sync()]));
      expect(codes(await c.readUntil('Z'))).toBe('1Z');
      const run = () => c.write(Buffer.concat([serialize.bind({ statement: 'guess', values: ['%'] }), serialize.execute({}), serialize.sync()]));
      run();
      expect(codes(await c.readUntil('Z'))).toBe('2DCZ');
      // Now the server resolves `orders` to public.orders, whose card rule denies predicates: one guess at a time
      // would reveal it. The Bind is refused; nothing ran.
      c.write(query('SET search_path = public'));
      await c.readUntil('Z');
      run();
      const got = await c.readUntil('E');
      expect(codes(got)).toBe('E');
      expect(codes(await c.readUntil('Z'))).toBe('Z');
      const e = parseErrorFields(got[0]!.frame);
      expect(e.C).toBe('42501');
      expect(e.M).toMatch(/masked column public\.orders\.card .*decided again at Bind/);
      c.write(query('SET search_path = other'));
      await c.readUntil('Z');
      run();
      expect(codes(await c.readUntil('Z'))).toBe('2DCZ');
    } finally {
      c.destroy();
    }
  });

  it('INSERT ... RETURNING of a masked column is masked', () => withPg(async (c) => {
    await c.query('BEGIN');
    const r = await c.query("INSERT INTO customers (id, email, name) VALUES (3, 'carol@example.net', 'Carol') RETURNING id, email");
    await c.query('ROLLBACK');
    expect(r.rows).toEqual([{ id: 3, email: '***@example.net' }]);
  }));

  it('psql: COPY of an unmasked table works, NOTIFY without masked data works', async () => {
    const r = await psql(env.url(), ['-c', 'COPY other.customers TO STDOUT', '-c', "LISTEN n; NOTIFY n, 'plain'"]);
    expect(r.stdout.toString()).toContain('not-secret@example.com');
    expect(r.stderr).toBe('');
  });
});

describe('afterwards', () => {
  it('no canary in any byte sent to any client, nor in the audit database', async () => {
    expect(env.tap.bytes().length).toBeGreaterThan(1000);
    expectNoCanary(env.tap.bytes(), 'all traffic');
    // The audit store batches its writes (within 100 ms).
    await new Promise((r) => setTimeout(r, 400));
    const audit = auditBytes(env.sluice);
    expect(audit.toString('latin1')).toContain('FETCH 1 FROM cur');
    expect(canariesIn(audit)).toEqual([]);
    expect(CANARY.email1).toContain('canary');
  });
});
