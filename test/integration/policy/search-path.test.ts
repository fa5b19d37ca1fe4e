/**
 * Unqualified relation names resolved through the session's search_path, against a real PostgreSQL: when Sluice
 * can be sure which schema the server will read, `orders` is decided exactly as if written `app.orders` or
 * `public.orders` (every entry: allow, deny, review) and the audit's `objects` names that schema; when it cannot be
 * sure (path set at run time, name not in the catalog) it falls back to the conservative match (`public.<name>` by
 * every entry, `<any schema>.<name>` by deny/review entries) and the audit says `r:?.<name>`.
 *
 * The policy is built so that the old conservative match and the resolved one give different answers: reads are not
 * allowed by class, only through entries, so `orders` is refused by the conservative match (public.orders is denied
 * under any schema) and allowed once resolved to app.orders; app.orders and public.orders hold different rows, so
 * the data shows which table the server really read. DDL-driven uncertainty: search-path-ddl.test.ts.
 */
import postgres from 'postgres';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/policy/model.js';
import {
  expectRefusal, firstError, lastAudit, pbe, query, rawThroughSluice, readReady, rejection, startPolicyEnv, summary, withPg, type PolicyEnv,
} from './helpers.js';

const RULE = 'search-path';
const POLICY: PolicyInput = {
  rules: [
    {
      name: RULE,
      match: { groups: ['test'] },
      // No `read`: a read runs only through a table entry, so how a name is resolved decides it.
      allow: ['transaction', 'session', 'utility'],
      tables: { 'app.*': 'allow', 'public.orders': 'deny', 'public.only_public': 'deny', 'pg_catalog.pg_am': 'deny' },
      functions: { set_config: 'allow' },
    },
  ],
};

const SETUP = `
  CREATE SCHEMA app AUTHORIZATION app;
  CREATE TABLE app.orders (v text); INSERT INTO app.orders VALUES ('app-row');
  CREATE TABLE public.orders (v text); INSERT INTO public.orders VALUES ('public-row');
  CREATE TABLE app.only_app (v text); INSERT INTO app.only_app VALUES ('only-app-row');
  CREATE TABLE public.only_public (v text); INSERT INTO public.only_public VALUES ('only-public-row');
  -- A name pg_catalog already has: pg_catalog is searched first unless the path lists it.
  CREATE TABLE app.pg_am (amname text); INSERT INTO app.pg_am VALUES ('app-pg_am-row');
  ALTER TABLE app.orders OWNER TO app; ALTER TABLE public.orders OWNER TO app; ALTER TABLE app.only_app OWNER TO app;
  ALTER TABLE public.only_public OWNER TO app; ALTER TABLE app.pg_am OWNER TO app;
`;

let env: PolicyEnv;
beforeAll(async () => {
  // No warm-up: the first statement of the first session waits for the target's catalog (names.ts start), so the
  // first test shows that a fresh Sluice already resolves names.
  env = await startPolicyEnv(POLICY, SETUP);
});
afterAll(async () => {
  await env?.stop();
});

const agent = <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => withPg(env.sluice.url(), fn);

const audited = (text: string) => lastAudit(env.sluice, text);

/** Runs an allowed read, returns column v (or amname) of each row, and checks it was audited as allowed on `object`. */
async function reads(c: pg.Client, sql: string, object: string, params?: unknown[]): Promise<string[]> {
  const r = await c.query(sql, params);
  expect(audited(sql)).toEqual({ decision: 'allow', rule: RULE, objects: [`r:${object}`] });
  return r.rows.map((row: Record<string, string>) => row.v ?? row.amname!);
}

/** Expects a policy refusal on `object` (as the message names it) and an audit record naming `audit`. */
async function refusedOn(c: pg.Client, sql: string, object: string, audit: string, params?: unknown[], rule = RULE): Promise<void> {
  const err = await rejection(c.query(sql, params));
  expectRefusal(err, { rule, cls: 'read', object, decision: 'deny' });
  expect(audited(sql)).toEqual({ decision: 'deny', rule, objects: [audit] });
}

describe('the default path ("$user", public: schema app first)', () => {
  it('allows SELECT FROM orders as app.orders and returns app\'s row (conservatively, public.orders deny would refuse it)', async () => {
    await agent(async (c) => expect(await reads(c, 'SELECT v FROM orders', 'app.orders')).toEqual(['app-row']));
  });

  it('resolves a name found only in a later schema there: only_public is denied, only_app allowed', async () => {
    await agent(async (c) => {
      await refusedOn(c, 'SELECT v FROM only_public', 'public.only_public', 'r:public.only_public');
      expect(await reads(c, 'SELECT v FROM only_app', 'app.only_app')).toEqual(['only-app-row']);
    });
  });

  it('leaves a name the catalog does not have on the conservative match (r:?.name)', async () => {
    await agent((c) => refusedOn(c, 'SELECT v FROM nowhere', 'nowhere', 'r:?.nowhere', undefined, 'default-deny'));
  });
});

describe('SET / RESET search_path in the session', () => {
  it('SET search_path = public: orders is public.orders and refused; RESET and SET app bring app.orders back', async () => {
    await agent(async (c) => {
      await c.query('SET search_path = public');
      await refusedOn(c, 'SELECT v FROM orders', 'public.orders', 'r:public.orders');
      // only_app is not on the path: not resolvable, so conservative (no read by class: default deny).
      await refusedOn(c, 'SELECT v FROM only_app', 'only_app', 'r:?.only_app', undefined, 'default-deny');
      await c.query('RESET search_path');
      expect(await reads(c, 'SELECT v FROM orders', 'app.orders')).toEqual(['app-row']);
      await c.query('SET search_path = public');
      await c.query('SET search_path TO app, public');
      expect(await reads(c, 'SELECT v FROM orders', 'app.orders')).toEqual(['app-row']);
    });
  });

  it('a SET earlier in the same Query message to public: the message is refused whole and changes nothing', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(query('SET search_path = public; SELECT v FROM orders'));
      const frames = await readReady(c);
      expect(summary(frames)).toEqual(['E:42501', 'Z:I']);
      expect(audited('SET search_path = public; SELECT v FROM orders').decision).toBe('deny');
      // The SET did not run: still app first.
      c.write(query('SELECT v FROM orders'));
      expect(summary(await readReady(c))).toEqual(['T', 'D:app-row', 'C:SELECT 1', 'Z:I']);
    } finally {
      c.destroy();
    }
  });

  it('a SET earlier in the same Query message to app counts for the SELECT after it: app.orders runs', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(query('SET search_path = public'));
      await readReady(c);
      const sql = 'SET search_path = app; SELECT v FROM orders';
      c.write(query(sql));
      expect(summary(await readReady(c))).toEqual(['C:SET', 'T', 'D:app-row', 'C:SELECT 1', 'Z:I']);
      expect(audited(sql)).toEqual({ decision: 'allow', rule: RULE, objects: ['r:app.orders'] });
    } finally {
      c.destroy();
    }
  });

  it('set_config(\'search_path\', literal) is followed like SET', async () => {
    await agent(async (c) => {
      await c.query("SELECT set_config('search_path', 'public', false)");
      await refusedOn(c, 'SELECT v FROM orders', 'public.orders', 'r:public.orders');
    });
  });

  it('set_config(\'search_path\', $1) with a run-time value: path unknown, orders conservative (refused) until a SET', async () => {
    await agent(async (c) => {
      const r = await c.query("SELECT set_config('search_path', $1, false) AS p", ['public']);
      expect(r.rows).toEqual([{ p: 'public' }]);
      await refusedOn(c, 'SELECT v FROM orders', 'orders', 'r:?.orders');
      await c.query('SET search_path = app');
      expect(await reads(c, 'SELECT v FROM orders', 'app.orders')).toEqual(['app-row']);
    });
  });

  it('a startup parameter search_path=public (postgres.js) makes orders public.orders: refused', async () => {
    const sql = postgres(env.sluice.url(), { max: 1, fetch_types: false, onnotice: () => {}, connection: { search_path: 'public' } });
    try {
      const err = (await sql`SELECT v FROM orders`.then(() => null, (e: unknown) => e)) as { code: string; message: string; hint?: string } | null;
      expect(err, 'SELECT FROM orders ran').not.toBeNull();
      expectRefusal(err!, { rule: RULE, cls: 'read', object: 'public.orders', decision: 'deny' });
      expect(audited('SELECT v FROM orders')).toEqual({ decision: 'deny', rule: RULE, objects: ['r:public.orders'] });
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});

describe('transactions scope and undo path changes (the server\'s path, not the last SET seen)', () => {
  it('SET LOCAL search_path = public holds until the end of the transaction only', async () => {
    await agent(async (c) => {
      await c.query('BEGIN');
      await c.query('SET LOCAL search_path = public');
      const err = await rejection(c.query('SELECT v FROM orders'));
      expect(err.code, err.message).toBe('42501');
      expect(audited('SELECT v FROM orders').objects).not.toContain('r:app.orders');
      await c.query('ROLLBACK');
      expect(await reads(c, 'SELECT v FROM orders', 'app.orders')).toEqual(['app-row']);
    });
  });

  it('a SET inside a rolled-back transaction is undone: the path is public again, orders refused', async () => {
    await agent(async (c) => {
      await c.query('SET search_path = public');
      await c.query('BEGIN');
      await c.query('SET search_path = app');
      await c.query('ROLLBACK');
      const err = await rejection(c.query('SELECT v FROM orders'));
      expect(err.code, err.message).toBe('42501');
      expect(audited('SELECT v FROM orders').objects).not.toContain('r:app.orders');
    });
  });

  it('a SET in a Query message whose implicit transaction fails is undone too', async () => {
    await agent(async (c) => {
      await c.query('SET search_path = public');
      // Qualified, so the failing statement is allowed however Sluice treats the SET before it.
      const err = await rejection(c.query('SET search_path = app; SELECT v FROM app.orders WHERE 1 / 0 = 1'));
      expect(err.code, err.message).toBe('22012');
      const again = await rejection(c.query('SELECT v FROM orders'));
      expect(again.code, again.message).toBe('42501');
    });
  });
});

describe('extended protocol', () => {
  it('node-postgres parameterized queries follow the path like simple ones', async () => {
    const sql = 'SELECT v FROM orders WHERE v <> $1';
    await agent(async (c) => {
      expect(await reads(c, sql, 'app.orders', ['x'])).toEqual(['app-row']);
      await c.query('SET search_path = public');
      await refusedOn(c, sql, 'public.orders', 'r:public.orders', ['x']);
    });
  });

  it('a SET pipelined before a Parse in the same Sync counts for it', async () => {
    const c = await rawThroughSluice(env.sluice);
    try {
      c.write(Buffer.concat([pbe('SET search_path = public', { sync: false }), pbe('SELECT v FROM orders')]));
      const frames = await readReady(c);
      expect(summary(frames)).toContain('E:42501');
      expect(summary(frames)).not.toContain('D:public-row');
      expect(firstError(frames).M).toMatch(/ on (public\.)?orders /);
    } finally {
      c.destroy();
    }
  });

  // PostgreSQL re-analyzes a prepared statement under the new search_path when the path changed since it was parsed.
  it('a statement prepared under app is not run against public.orders after SET search_path = public', async () => {
    await agent(async (c) => {
      const q = { name: 'ord', text: 'SELECT v FROM orders WHERE v <> $1', values: ['x'] };
      expect((await c.query(q)).rows).toEqual([{ v: 'app-row' }]);
      await c.query('SET search_path = public');
      const err = await rejection(c.query(q)); // Bind + Execute only: node-postgres reuses the named statement
      expect(err.code, err.message).toBe('42501');
    });
  });

  it('SQL PREPARE under app, EXECUTE after SET search_path = public: refused', async () => {
    await agent(async (c) => {
      await c.query('PREPARE p AS SELECT v FROM orders');
      expect((await c.query('EXECUTE p')).rows).toEqual([{ v: 'app-row' }]);
      await c.query('SET search_path = public');
      const err = await rejection(c.query('EXECUTE p'));
      expect(err.code, err.message).toBe('42501');
    });
  });
});

describe('pg_catalog is searched first unless the path lists it', () => {
  it('pg_am is pg_catalog.pg_am (denied by its entry), not app.pg_am', async () => {
    await agent((c) => refusedOn(c, 'SELECT amname FROM pg_am', 'pg_catalog.pg_am', 'r:pg_catalog.pg_am'));
  });

  it('with search_path = app, pg_catalog, pg_am is app.pg_am: allowed, app\'s row', async () => {
    await agent(async (c) => {
      await c.query('SET search_path = app, pg_catalog');
      expect(await reads(c, 'SELECT amname FROM pg_am', 'app.pg_am')).toEqual(['app-pg_am-row']);
    });
  });
});
