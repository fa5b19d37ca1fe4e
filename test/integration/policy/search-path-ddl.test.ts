/**
 * When Sluice cannot be sure of its catalog, unqualified names go back to the conservative match, against a real
 * PostgreSQL: while any session has DDL or a call of a non-built-in function in an open transaction on the target
 * (and until the catalog reload after it ends), and while a temp table of that name exists. Built-in functions do
 * not cause it. After DDL through Sluice the catalog is reloaded, so a dropped table stops resolving and a statement
 * prepared before the DROP is not run against the table PostgreSQL re-resolves it to.
 *
 * As in search-path.test.ts, `read` is allowed only through table entries: `orders` resolved to app.orders runs
 * (app's row), the conservative match refuses it (public.orders is denied under any schema, audit `r:?.orders`).
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/policy/model.js';
import { sleep } from '../../redteam/raw-client.js';
import { expectRefusal, lastAudit, rejection, scalar, startPolicyEnv, withPg, type PolicyEnv } from './helpers.js';

const RULE = 'search-path';
const POLICY: PolicyInput = {
  rules: [
    {
      name: RULE,
      match: { groups: ['test'] },
      allow: ['transaction', 'session', 'utility'],
      // 'allow' entries cover every class, ddl included.
      tables: { 'app.*': 'allow', 'pg_temp.*': 'allow', 'public.orders': 'deny', 'public.gone': 'deny' },
      functions: { 'app.*': 'allow', now: 'allow' },
    },
  ],
};

const SETUP = `
  CREATE SCHEMA app AUTHORIZATION app;
  CREATE TABLE app.orders (v text); INSERT INTO app.orders VALUES ('app-row');
  CREATE TABLE public.orders (v text); INSERT INTO public.orders VALUES ('public-row');
  CREATE TABLE app.gone (v text); INSERT INTO app.gone VALUES ('app-gone');
  CREATE TABLE public.gone (v text); INSERT INTO public.gone VALUES ('public-gone');
  CREATE FUNCTION app.noop() RETURNS int LANGUAGE sql AS 'SELECT 1';
  ALTER TABLE app.orders OWNER TO app; ALTER TABLE public.orders OWNER TO app;
  ALTER TABLE app.gone OWNER TO app; ALTER TABLE public.gone OWNER TO app; ALTER FUNCTION app.noop() OWNER TO app;
`;

let env: PolicyEnv;
beforeAll(async () => {
  env = await startPolicyEnv(POLICY, SETUP);
});
afterAll(async () => {
  await env?.stop();
});

const agent = <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => withPg(env.sluice.url(), fn);
const ORDERS = 'SELECT v FROM orders';

const audited = (text: string) => lastAudit(env.sluice, text);

/** Polls `check` until it passes, for up to 5 s (the catalog reload after a transaction ends). */
async function soon<T>(check: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

/** `orders` resolved: runs, app's row, audited on app.orders. Polls (outside a transaction) while Sluice is unsure. */
async function resolvedSoon(c: pg.Client): Promise<void> {
  const rows = await soon(async () => (await c.query(ORDERS)).rows);
  expect(rows).toEqual([{ v: 'app-row' }]);
  expect(audited(ORDERS)).toEqual({ decision: 'allow', rule: RULE, objects: ['r:app.orders'] });
}

/** `orders` matched conservatively: refused on the unqualified name, nothing returned, audited as r:?.orders. */
async function conservative(c: pg.Client): Promise<void> {
  const err = await rejection(c.query(ORDERS));
  expectRefusal(err, { rule: RULE, cls: 'read', object: 'orders', decision: 'deny' });
  expect(audited(ORDERS)).toEqual({ decision: 'deny', rule: RULE, objects: ['r:?.orders'] });
}

describe('DDL and non-built-in function calls in an open transaction', () => {
  it('DDL in this session\'s open transaction: orders conservative until after ROLLBACK and the reload', async () => {
    await agent(async (c) => {
      await resolvedSoon(c);
      await c.query('BEGIN');
      await c.query('CREATE TABLE app.tmp_x (i int)');
      await conservative(c);
      await c.query('ROLLBACK');
      await resolvedSoon(c);
    });
    expect(await scalar(env, "SELECT to_regclass('app.tmp_x')")).toBeNull();
  });

  it('another session\'s open DDL transaction makes orders conservative here; its COMMIT (and reload) ends that', async () => {
    await agent((a) => agent(async (b) => {
      await resolvedSoon(a);
      await b.query('BEGIN');
      await b.query('CREATE TABLE app.tmp_y (i int)');
      await conservative(a);
      await sleep(300); // still open: still unsure, whatever reloads happen meanwhile
      await conservative(a);
      await b.query('COMMIT');
      await resolvedSoon(a);
    }));
    expect(await scalar(env, "SELECT to_regclass('app.tmp_y')::text")).toBe('app.tmp_y');
  });

  it('a call of a user-defined function makes orders conservative (it may run DDL or set_config()) until the client sets the path again', async () => {
    await agent(async (c) => {
      await resolvedSoon(c);
      await c.query('BEGIN');
      expect((await c.query('SELECT app.noop() AS n')).rows).toEqual([{ n: 1 }]);
      await conservative(c);
      await c.query('ROLLBACK');
      // The function may have changed search_path with set_config(): unknown until the client sets it.
      await conservative(c);
      await c.query('RESET search_path');
      await resolvedSoon(c);
    });
  });

  it('a built-in function call does not: BEGIN; SELECT now(); orders still resolves to app.orders', async () => {
    await agent(async (c) => {
      await resolvedSoon(c);
      await c.query('BEGIN');
      await c.query('SELECT now()');
      expect((await c.query(ORDERS)).rows).toEqual([{ v: 'app-row' }]);
      expect(audited(ORDERS).objects).toEqual(['r:app.orders']);
      await c.query('COMMIT');
    });
  });
});

describe('DDL or user code earlier in the same message', () => {
  it('DROP TABLE app.orders; SELECT v FROM orders in one Query: the SELECT is not taken for app.orders; refused whole', async () => {
    await agent(async (c) => {
      await resolvedSoon(c);
      // The server would run the SELECT after the DROP, on public.orders (denied): Sluice must not call it app.orders.
      const err = await rejection(c.query('DROP TABLE app.orders; SELECT v FROM orders'));
      expectRefusal(err, { rule: RULE, cls: 'read', object: 'orders', decision: 'deny' });
      expect(await scalar(env, "SELECT to_regclass('app.orders')::text")).toBe('app.orders');
      const fn = await rejection(c.query('SELECT app.noop(); SELECT v FROM orders'));
      expectRefusal(fn, { rule: RULE, cls: 'read', object: 'orders', decision: 'deny' });
    });
  });
});

describe('the catalog follows DDL made through Sluice', () => {
  it('after DROP TABLE app.gone, gone is never run as app.gone: refused, then resolved to public.gone', async () => {
    const sql = 'SELECT v FROM gone';
    const named = { name: 'gone', text: 'SELECT v FROM gone WHERE v <> $1', values: ['x'] };
    await agent(async (c) => {
      expect(await soon(async () => (await c.query(sql)).rows)).toEqual([{ v: 'app-gone' }]);
      expect(audited(sql).objects).toEqual(['r:app.gone']);
      expect((await c.query(named)).rows).toEqual([{ v: 'app-gone' }]);
      await c.query('DROP TABLE app.gone');
      // Right after the DROP (before or after the reload) the server reads public.gone: refused either way.
      const now = await rejection(c.query(sql));
      expect(now.code, now.message).toBe('42501');
      // PostgreSQL re-analyzes the prepared statement after the DROP: now it would read public.gone.
      const reused = await rejection(c.query(named));
      expect(reused.code, reused.message).toBe('42501');
      // Once reloaded, the name resolves to public.gone, denied by its own entry.
      await soon(async () => {
        const err = await rejection(c.query(sql));
        expectRefusal(err, { rule: RULE, cls: 'read', object: 'public.gone', decision: 'deny' });
        expect(audited(sql).objects).toEqual(['r:public.gone']);
      });
    });
  });
});

describe('temp tables', () => {
  // Last in the file: the temp table outlives the test in Sluice's catalog until the next reload.
  it('while a temp table orders exists, orders is conservative in that session and in others', async () => {
    await agent((a) => agent(async (b) => {
      await resolvedSoon(a);
      await b.query('CREATE TEMP TABLE pg_temp.orders (v text)');
      await b.query("INSERT INTO pg_temp.orders VALUES ('temp-row')");
      // In b the server reads pg_temp.orders; Sluice must not call that app.orders.
      await conservative(b);
      await conservative(a);
      await sleep(1000); // past the reload after the CREATE: the temp table is in the catalog now
      await conservative(b);
      await conservative(a);
    }));
  });
});
