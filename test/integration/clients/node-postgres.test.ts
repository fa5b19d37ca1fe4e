/**
 * node-postgres through Sluice behaves as it does directly: every scenario runs both ways and the observations
 * (rows, field descriptions, command tags, errors, notices, notifications) must be equal.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorShape, internals, outcome, pgQuery, sendCancelRequest, sha256, SIDES, startEnv, urlOf, waitFor, withPg, type Env, type Side } from './util.js';

let env: Env;
beforeAll(async () => {
  env = await startEnv();
});
afterAll(async () => {
  await env?.stop();
});

/** Runs `scenario` directly and through Sluice; returns both observations. */
async function bothWays<T>(scenario: (url: string, side: Side) => Promise<T>): Promise<{ direct: T; sluice: T }> {
  return { direct: await scenario(env.direct, 'direct'), sluice: await scenario(env.proxied, 'sluice') };
}

/** Waits until backend `pid` is running a pg_sleep (seen from a direct connection). */
async function sleeping(pid: number): Promise<void> {
  await waitFor(async () => withPg(env.direct, async (d) => {
    const r = await d.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'", [pid]);
    return r.rowCount === 1 ? true : undefined;
  }), `backend ${pid} to start pg_sleep`);
}

const shape = (r: pg.QueryResult) => ({
  command: r.command,
  rowCount: r.rowCount,
  fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID, format: f.format, dataTypeSize: f.dataTypeSize, dataTypeModifier: f.dataTypeModifier })),
  rows: r.rows as unknown[],
});

const TYPES_SQL = String.raw`SELECT 9007199254740993::int8 AS big, (-1)::int8 AS neg, 2147483647::int4 AS i4, 32767::int2 AS i2,
  123456789012345678901234567890.123456789::numeric AS num, 'NaN'::numeric AS nan, 1.5::float8 AS f8, '-Infinity'::float4 AS f4,
  '\xdeadbeef00ff'::bytea AS bytes, ''::bytea AS empty_bytes,
  '{"a": [1, 2, {"b": null}], "u": "ü ✓"}'::json AS j, '{"z": 1, "a": 2}'::jsonb AS jb,
  ARRAY[1, 2, NULL]::int[] AS ints, ARRAY['a', 'b c', NULL, '"q"', '{x}']::text[] AS texts, '{{1,2},{3,4}}'::int[][] AS matrix,
  ARRAY[]::int8[] AS empty_arr, '2024-02-29 12:34:56.789123+05:30'::timestamptz AS ts, 'infinity'::timestamptz AS ts_inf,
  '2024-02-29'::date AS d, '1 day 02:03:04.5'::interval AS iv, NULL::int AS null_int, NULL::text AS null_text, NULL::bytea AS null_bytes,
  true AS t, false AS f, 'ü ✓ 😀 ''quoted'' \ backslash'::text AS txt, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id,
  '10.1.2.3/24'::inet AS addr, '(1.5,2)'::point AS pt, 'x'::char(3) AS ch, 'abc'::varchar(5) AS vc`;

describe('node-postgres', () => {
  it('returns the same rows and field descriptions for simple, multi-statement and extended queries', async () => {
    const { direct, sluice } = await bothWays((url) => withPg(url, async (c) => {
      const multi = (await c.query('SELECT 1 AS a; SELECT \'two\' AS b, NULL AS c; CREATE TEMP TABLE tt (i int); INSERT INTO tt VALUES (1), (2)')) as unknown as pg.QueryResult[];
      return {
        simple: shape(await c.query(TYPES_SQL)),
        multi: multi.map(shape),
        extended: shape(await c.query(`${TYPES_SQL}, $1::int8 AS p1, $2::bytea AS p2, $3::jsonb AS p3, $4::int[] AS p4, $5::timestamptz AS p5, $6::text AS p6, $7::numeric AS p7`, [
          '9007199254740993', Buffer.from([0, 1, 2, 255]), { k: ['v', 1, null] }, [1, null, 3], new Date('2024-01-02T03:04:05.678Z'), null, '-0.000000001',
        ])),
        named: [shape(await c.query({ name: 'np_named', text: 'SELECT $1::text || $2::text AS s', values: ['a', 'b'] })),
          shape(await c.query({ name: 'np_named', text: 'SELECT $1::text || $2::text AS s', values: ['c', 'd'] }))],
        arrayMode: shape(await pgQuery(c, { text: 'SELECT 1 AS x, 1 AS x, NULL AS y', rowMode: 'array' })),
        binary: shape(await pgQuery(c, { text: 'SELECT 42::int4 AS i, 9007199254740993::int8 AS b, \'bin\'::text AS t, \'\\x0001\'::bytea AS y, NULL::int AS n, $1::text AS p', values: ['param'], binary: true })),
        extendedNoParams: shape(await pgQuery(c, { text: TYPES_SQL, queryMode: 'extended' })),
        empty: shape(await c.query('SELECT 1 WHERE false')),
        tt: shape(await c.query('SELECT * FROM tt ORDER BY i')),
      };
    }));
    expect(sluice).toEqual(direct);
    // Sanity: the values really went through the type parsers.
    const row = direct.extended.rows[0] as Record<string, unknown>;
    expect(row['big']).toBe('9007199254740993');
    expect(row['num']).toBe('123456789012345678901234567890.123456789');
    expect(row['bytes']).toEqual(Buffer.from('deadbeef00ff', 'hex'));
    expect(row['p2']).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(row['p3']).toEqual({ k: ['v', 1, null] });
    expect(row['p4']).toEqual([1, null, 3]);
    expect((row['p5'] as Date).toISOString()).toBe('2024-01-02T03:04:05.678Z');
    expect(row['texts']).toEqual(['a', 'b c', null, '"q"', '{x}']);
    expect(row['null_bytes']).toBeNull();
    expect(direct.multi.map((m) => m.command)).toEqual(['SELECT', 'SELECT', 'CREATE', 'INSERT']);
    expect(direct.binary.fields.every((f) => f.format === 'binary')).toBe(true);
  });

  it('delivers a 200k-row result identical to the direct one', async () => {
    const sql = 'SELECT g, md5(g::text) AS h, g * 1.5 AS x, CASE WHEN g % 10 = 0 THEN NULL ELSE repeat(\'y\', g % 50) END AS pad FROM generate_series(1, $1::int) AS g';
    const { direct, sluice } = await bothWays((url) => withPg(url, async (c) => {
      const r = await c.query({ text: sql, values: [200_000], rowMode: 'array' });
      return { count: r.rowCount, rows: r.rows.length, digest: sha256(JSON.stringify(r.rows)), last: r.rows.at(-1) as unknown };
    }));
    expect(direct.count).toBe(200_000);
    expect(direct.rows).toBe(200_000);
    expect(direct.last).toEqual([200000, createHash('md5').update('200000').digest('hex'), '300000.0', null]);
    expect(sluice).toEqual(direct);
  });

  it('commits, rolls back and rolls back to a savepoint the same way', async () => {
    const { direct, sluice } = await bothWays((url, side) => withPg(url, async (c) => {
      const t = `np_tx_${side}`;
      const tags: string[] = [];
      const q = async (s: string) => tags.push((await c.query(s)).command);
      await q(`CREATE TABLE ${t} (i int PRIMARY KEY)`);
      for (const s of ['BEGIN', `INSERT INTO ${t} VALUES (1)`, 'COMMIT', 'BEGIN', `INSERT INTO ${t} VALUES (2)`, 'ROLLBACK',
        'BEGIN', `INSERT INTO ${t} VALUES (3)`, 'SAVEPOINT s', `INSERT INTO ${t} VALUES (4)`, 'ROLLBACK TO SAVEPOINT s', 'COMMIT']) await q(s);
      const rows = (await c.query(`SELECT i FROM ${t} ORDER BY i`)).rows.map((r: { i: number }) => r.i);
      await q(`DROP TABLE ${t}`);
      return { tags, rows };
    }));
    expect(direct.rows).toEqual([1, 3]);
    expect(sluice).toEqual(direct);
  });

  it('reports an error inside a transaction, then "current transaction is aborted", then ROLLBACK works', async () => {
    const { direct, sluice } = await bothWays((url) => withPg(url, async (c) => {
      const steps: unknown[] = [];
      for (const [text, values] of [
        ['BEGIN', undefined], ['SELECT 1/0', undefined], ['SELECT 1', undefined], ['SELECT $1::int', [1]], ['ROLLBACK', undefined],
        ['SELECT $1::int + 1 AS n', [1]], ['SELECT * FROM missing_table', undefined], ['SELECT $1::int', ['not a number']],
        ['INSERT INTO pg_class DEFAULT VALUES', undefined], ['SELEC 1', undefined],
      ] as const) {
        steps.push(await outcome(async () => shape(await c.query(text, values ? [...values] : undefined))));
      }
      return steps;
    }));
    const codes = direct.map((s) => ('error' in (s as object) ? (s as { error: { code: string } }).error.code : 'ok'));
    expect(codes).toEqual(['ok', '22012', '25P02', '25P02', 'ok', 'ok', '42P01', '22P02', '42501', '42601']);
    expect((direct[2] as { error: { message: string } }).error.message).toBe('current transaction is aborted, commands ignored until end of transaction block');
    // A statement PostgreSQL's parser rejects never reaches the server: Sluice refuses it with the parser's own
    // message, code and position, plus a hint; the server-internal routine name is the only field not reproduced.
    const last = (sluice[9] as { error: Record<string, string> }).error;
    const lastDirect = (direct[9] as { error: Record<string, string> }).error;
    expect(last).toEqual({ ...lastDirect, routine: undefined, hint: expect.stringContaining("PostgreSQL's own parser") });
    expect(sluice.slice(0, 9)).toEqual(direct.slice(0, 9));
  });

  it('delivers NOTICE, WARNING and INFO messages the same way', async () => {
    const { direct, sluice } = await bothWays((url) => withPg(url, async (c) => {
      const notices: unknown[] = [];
      c.on('notice', (n) => notices.push({ ...errorShape(n), severity: n.severity, where: n.where }));
      await c.query("DO $$ BEGIN RAISE NOTICE 'hi'; RAISE WARNING 'w %', 1 USING DETAIL = 'd', HINT = 'h'; RAISE INFO 'info'; END $$");
      await c.query("CREATE FUNCTION pg_temp.shout(t text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'got %', t; RETURN length(t); END $$");
      const r = await c.query('SELECT pg_temp.shout($1) AS n FROM generate_series(1, 3)', ['ü ✓']);
      await c.query('SET client_min_messages = warning');
      await c.query("DO $$ BEGIN RAISE NOTICE 'suppressed'; END $$");
      return { notices, rows: r.rows as unknown[] };
    }));
    expect((direct.notices as { message: string }[]).map((n) => n.message)).toEqual(['hi', 'w 1', 'info', 'got ü ✓', 'got ü ✓', 'got ü ✓']);
    expect(sluice).toEqual(direct);
  });

  it('relays LISTEN/NOTIFY between two connections', async () => {
    const { direct, sluice } = await bothWays(async (url) => {
      const listener = new pg.Client({ connectionString: url });
      const notifier = new pg.Client({ connectionString: url });
      await listener.connect();
      await notifier.connect();
      try {
        const got: pg.Notification[] = [];
        let selfMatchesKey: boolean | undefined;
        listener.on('notification', (n) => got.push(n));
        await listener.query('LISTEN np_a; LISTEN "np B"');
        // A client knows its own backend by the BackendKeyData pid (node-postgres: processID; libpq: PQbackendPID).
        const notifierPid = internals(notifier).processID;
        const listenerPid = internals(listener).processID;
        await notifier.query("NOTIFY np_a, 'one'");
        await notifier.query("SELECT pg_notify('np B', $1)", ['two ✓']);
        await notifier.query("BEGIN; NOTIFY np_a, 'rolled back'; ROLLBACK");
        await notifier.query("BEGIN; NOTIFY np_a, 'committed'; NOTIFY np_a, 'committed'; COMMIT");
        await listener.query("NOTIFY np_a, 'to myself'");
        await waitFor(() => (got.some((n) => n.payload === 'to myself') ? true : undefined), 'the self notification');
        // NotificationResponse names the sender by the pid its client was given: through Sluice that is Sluice's own
        // BackendKeyData pid, so "ignore my own notifications by processID" works as it does direct.
        const self = got.find((n) => n.payload === 'to myself')!;
        selfMatchesKey = self.processId === internals(listener).processID;
        await listener.query('UNLISTEN np_a');
        await notifier.query("NOTIFY np_a, 'after unlisten'; NOTIFY \"np B\", 'sentinel'");
        await waitFor(() => (got.some((n) => n.payload === 'sentinel') ? true : undefined), 'the sentinel notification');
        return { selfMatchesKey, got: got.map((n) => ({ channel: n.channel, payload: n.payload, from: n.processId === notifierPid ? 'notifier' : n.processId === listenerPid ? 'listener' : n.processId })) };
      } finally {
        await listener.end();
        await notifier.end();
      }
    });
    expect(direct.selfMatchesKey).toBe(true);
    expect(sluice.selfMatchesKey).toBe(true);
    expect(direct.got).toEqual([
      { channel: 'np_a', payload: 'one', from: 'notifier' },
      { channel: 'np B', payload: 'two ✓', from: 'notifier' },
      { channel: 'np_a', payload: 'committed', from: 'notifier' },
      { channel: 'np_a', payload: 'to myself', from: 'listener' },
      { channel: 'np B', payload: 'sentinel', from: 'notifier' },
    ]);
    expect(sluice.got).toEqual(direct.got);
  });

  it('applies statement_timeout from the startup packet and answers an empty query the same way', async () => {
    const { direct, sluice } = await bothWays((url) => withPg(url, async (c) => ({
      shown: (await c.query('SHOW statement_timeout')).rows as unknown,
      timedOut: await outcome(async () => shape(await c.query('SELECT pg_sleep(2)'))),
      empty: await outcome(async () => shape(await c.query('  '))),
      emptyExtended: await outcome(async () => shape(await pgQuery(c, { text: '', queryMode: 'extended' }))),
      after: (await c.query('SELECT 1 AS one')).rows as unknown,
    }), { statement_timeout: 150 }));
    expect(direct).toMatchObject({
      shown: [{ statement_timeout: '150ms' }],
      timedOut: { error: { code: '57014', message: 'canceling statement due to statement timeout' } },
      after: [{ one: 1 }],
    });
    expect(sluice).toEqual(direct);
  });

  it('hands out its own BackendKeyData and cancels pg_sleep through pg.Client#cancel', async () => {
    for (const side of SIDES) {
      const url = urlOf(env, side);
      await withPg(url, async (c) => {
        const backendPid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
        if (side === 'direct') expect(internals(c).processID).toBe(backendPid);
        else expect(internals(c).processID).not.toBe(backendPid); // the upstream key never reaches the client

        const query = new pg.Query('SELECT pg_sleep(10)');
        const settled = new Promise<unknown>((resolve) => {
          query.on('error', resolve);
          query.on('end', () => resolve(null));
        });
        const started = Date.now();
        c.query(query);
        await sleeping(backendPid);
        internals(new pg.Client({ connectionString: url })).cancel(c, query);
        const err = await settled;
        expect(errorShape(err)).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
        expect(Date.now() - started).toBeLessThan(5_000);
        // The session survives the cancel and still talks to the same backend.
        expect((await c.query('SELECT pg_backend_pid() AS p, 1 AS one')).rows[0]).toEqual({ p: backendPid, one: 1 });
      });
    }
  });

  it('ignores a CancelRequest with the wrong secret and honours a raw one with the right key', async () => {
    await withPg(env.proxied, async (c) => {
      const { processID: pid, secretKey: secret } = internals(c);
      const backendPid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
      const slow = c.query('SELECT pg_sleep(1.5) AS slept');
      await sleeping(backendPid);
      await sendCancelRequest(env.sluice.port, pid, secret ^ 1);
      await sendCancelRequest(env.sluice.port, pid + 1, secret);
      const r = await outcome(() => slow);
      expect(r).toMatchObject({ ok: { rows: [{ slept: '' }] } });

      const slow2 = outcome(() => c.query('SELECT pg_sleep(10)'));
      await sleeping(backendPid);
      await sendCancelRequest(env.sluice.port, pid, secret);
      expect(await slow2).toMatchObject({ error: { code: '57014' } });
      expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    });
  });

  it('closes the CancelRequest connection only after the server took the cancel, so the next query is safe', async () => {
    // libpq waits for the cancel connection to close before it sends anything else; a proxy that closed it
    // first would let a late cancel hit the client's next query. A stopped postmaster holds the cancel.
    await withPg(env.proxied, async (c) => {
      const { processID: pid, secretKey: secret } = internals(c);
      const backendPid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
      const slow = outcome(() => c.query('SELECT pg_sleep(10)'));
      await sleeping(backendPid);
      const postmaster = Number((await readFile(join(env.cluster.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
      let closed = false;
      let cancel: Promise<void>;
      process.kill(postmaster, 'SIGSTOP');
      try {
        cancel = sendCancelRequest(env.sluice.port, pid, secret).then(() => { closed = true; });
        await new Promise((r) => setTimeout(r, 300));
        expect(closed).toBe(false);
      } finally {
        process.kill(postmaster, 'SIGCONT');
      }
      await cancel;
      expect(await slow).toMatchObject({ error: { code: '57014' } });
      expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    });
  });
});
