/**
 * postgres.js through Sluice behaves as it does directly: simple queries (sql.unsafe), prepared statements
 * (the default), transactions, errors, a 50k-row result, cursors and cancel, each compared with the direct run.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countBy, lastSessionId, sessionWith, sha256, startEnv, urlOf, waitFor, withPg, type Env, type Side } from './util.js';

let env: Env;
beforeAll(async () => {
  env = await startEnv();
});
afterAll(async () => {
  await env?.stop();
});

type Sql = postgres.Sql<Record<string, never>>;

/** One connection (max: 1) so prepared statements and sessions are deterministic; notices are collected. */
async function withSql<T>(side: Side, fn: (sql: Sql, notices: unknown[]) => Promise<T>): Promise<T> {
  const notices: unknown[] = [];
  const sql = postgres(urlOf(env, side), { max: 1, onnotice: (n) => notices.push({ severity: n.severity, code: n.code, message: n.message }) }) as Sql;
  try {
    return await fn(sql, notices);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function bothWays<T>(fn: (sql: Sql, notices: unknown[], side: Side) => Promise<T>): Promise<{ direct: T; sluice: T }> {
  return {
    direct: await withSql('direct', (sql, n) => fn(sql, n, 'direct')),
    sluice: await withSql('sluice', (sql, n) => fn(sql, n, 'sluice')),
  };
}

/** A postgres.js result without `state` (it carries the BackendKeyData, which differs by design). */
const shape = (r: postgres.RowList<postgres.Row[]>) => ({
  command: r.command,
  count: r.count,
  columns: r.columns?.map((c) => ({ name: c.name, type: c.type })),
  rows: [...r],
});

/** Everything a PostgresError carries, except the JS stack. */
function pgError(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { thrown: String(e) };
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  for (const [k, v] of Object.entries(e)) if (k !== 'stack') out[k] = v;
  return out;
}

async function caught(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return pgError(e);
  }
  throw new Error('expected the query to fail');
}

const TYPES = String.raw`SELECT 9007199254740993::int8 AS big, 12345678901234567890.5::numeric AS num, '\x00ff10'::bytea AS bytes,
  '{"a": [1, null]}'::json AS j, '{"b": true}'::jsonb AS jb, ARRAY[1, NULL, 3]::int[] AS ints, ARRAY['x', NULL, 'y z']::text[] AS texts,
  '2024-02-29 12:34:56.789+00'::timestamptz AS ts, '2024-02-29'::date AS d, NULL::int AS nothing, true AS yes, 'ü ✓ 😀'::text AS txt,
  1.25::float8 AS f8, '1 day 02:00:00'::interval AS iv`;

describe('postgres.js', () => {
  it('runs simple (sql.unsafe) and prepared queries with the same results', async () => {
    const { direct, sluice } = await bothWays(async (sql) => {
      const multi = (await sql.unsafe('SELECT 1 AS a; SELECT \'two\' AS b; CREATE TEMP TABLE pj (i int); INSERT INTO pj VALUES (1), (2)')) as unknown as postgres.RowList<postgres.Row[]>[];
      return {
        simple: shape(await sql.unsafe(TYPES)),
        multi: multi.map(shape),
        unnamed: shape(await sql.unsafe('SELECT $1::int + $2::int AS s, $3::text AS t', [40, 2, null])),
        prepared: shape(await sql`${sql.unsafe(TYPES)}`),
        params: shape(await sql`SELECT ${'ü ✓'}::text AS t, ${42}::int AS i, ${Buffer.from([1, 2, 3])}::bytea AS b,
          ${sql.json({ k: [1, 'v'] })}::jsonb AS j, ${new Date('2024-01-02T03:04:05.678Z')}::timestamptz AS ts, ${null}::int AS n, ${[1, 2, 3]}::int[] AS a`),
        again: await Promise.all([1, 2, 3].map(async (i) => shape(await sql`SELECT ${i}::int * 10 AS tens`))),
        temp: shape(await sql`SELECT i FROM pj ORDER BY i`),
      };
    });
    expect(direct.simple.rows[0]).toMatchObject({ big: '9007199254740993', num: '12345678901234567890.5', bytes: Buffer.from([0, 0xff, 0x10]), j: { a: [1, null] }, jb: { b: true }, nothing: null });
    expect((direct.simple.rows[0] as { ints: number[] }).ints).toEqual([1, NaN, 3]); // postgres.js's own array parser: NULL int element -> NaN (text: 'NULL')
    expect(direct.params.rows[0]).toMatchObject({ t: 'ü ✓', i: 42, b: Buffer.from([1, 2, 3]), j: { k: [1, 'v'] }, n: null, a: [1, 2, 3] });
    expect(direct.again.map((r) => r.rows[0])).toEqual([{ tens: 10 }, { tens: 20 }, { tens: 30 }]);
    expect(direct.multi.flatMap((m) => m.rows)).toEqual([{ a: 1 }, { b: 'two' }]);
    expect(sluice).toEqual(direct);
  });

  it('records one Parse and one Execute per run of a reused prepared statement, with its text', async () => {
    const before = lastSessionId(env.sluice);
    await withSql('sluice', async (sql) => {
      for (const i of [1, 2, 3]) await sql`SELECT ${i}::int AS reused /* pj-marker */`;
    });
    const session = sessionWith(env.sluice, before, 'pj-marker');
    const mine = env.sluice.broker.audit.listStatements(session.id).filter((s) => s.text.includes('pj-marker'));
    const text = 'SELECT $1::int AS reused /* pj-marker */';
    expect(countBy(mine, (s) => `${s.protocol}:${s.text}`)).toEqual({ [`parse:${text}`]: 1, [`execute:${text}`]: 3 });
    const parse = mine.find((s) => s.protocol === 'parse')!;
    expect(parse.name).not.toBe(''); // a named statement, bound again for each run
    expect(session.applicationName).toBe('postgres.js');
  });

  it('commits, rolls back and uses savepoints in sql.begin the same way', async () => {
    const { direct, sluice } = await bothWays(async (sql, _n, side) => {
      const t = `pj_tx_${side}`;
      await sql.unsafe(`CREATE TABLE ${t} (i int PRIMARY KEY)`);
      try {
        const committed = await sql.begin(async (tx) => {
          await tx.unsafe(`INSERT INTO ${t} VALUES (1)`);
          await tx.savepoint(async (sp) => {
            await sp.unsafe(`INSERT INTO ${t} VALUES (2)`);
            throw new Error('undo the savepoint');
          }).catch((e: Error) => e.message);
          return (await tx.unsafe(`SELECT count(*)::int AS n FROM ${t}`))[0];
        });
        const rolledBack = await caught(sql.begin(async (tx) => {
          await tx.unsafe(`INSERT INTO ${t} VALUES (3)`);
          await tx.unsafe(`INSERT INTO ${t} VALUES (3)`); // duplicate key: the whole transaction rolls back
        }));
        const thrown = await sql.begin(async (tx) => {
          await tx.unsafe(`INSERT INTO ${t} VALUES (4)`);
          throw new Error('client-side abort');
        }).catch((e: Error) => e.message);
        const rows = [...(await sql.unsafe(`SELECT i FROM ${t} ORDER BY i`))];
        return { committed, rolledBack, thrown, rows };
      } finally {
        await sql.unsafe(`DROP TABLE ${t}`);
      }
    });
    expect(direct.rows).toEqual([{ i: 1 }]);
    expect(direct.rolledBack).toMatchObject({ code: '23505', constraint_name: 'pj_tx_direct_pkey' });
    // The constraint and table name carry the per-side table name; the rest must match exactly.
    const strip = (o: typeof direct) => JSON.parse(JSON.stringify(o).replaceAll('pj_tx_sluice', 'pj_tx_direct')) as typeof direct;
    expect(strip(sluice)).toEqual(direct);
  });

  it('reports errors with the same fields and keeps the connection usable', async () => {
    const { direct, sluice } = await bothWays(async (sql, notices) => {
      const errors = [
        await caught(sql`SELEC 1`),
        await caught(sql.unsafe('SELECT 1/0')),
        await caught(sql`SELECT ${'abc'}::int`),
        await caught(sql.unsafe("DO $$ BEGIN RAISE EXCEPTION 'custom' USING ERRCODE = 'P0001', DETAIL = 'd', HINT = 'h'; END $$")),
        await caught(sql`SELECT * FROM no_such_table WHERE x = ${1}`),
      ];
      await sql.unsafe("DO $$ BEGIN RAISE NOTICE 'notice %', 1; RAISE WARNING 'warn'; END $$");
      const after = shape(await sql`SELECT ${'still fine'}::text AS ok`);
      return { errors, notices, after };
    });
    expect(direct.errors.map((e) => e['code'])).toEqual(['42601', '22012', '22P02', 'P0001', '42P01']);
    expect(direct.notices).toEqual([{ severity: 'NOTICE', code: '00000', message: 'notice 1' }, { severity: 'WARNING', code: '01000', message: 'warn' }]);
    // The syntax error is Sluice's refusal (parser message, code and position, plus a hint); the server-internal
    // file/line/routine fields are not reproduced. Everything else is the server's own answer.
    const [refused, ...rest] = sluice.errors;
    const [parserError, ...restDirect] = direct.errors;
    expect(refused).toEqual({ ...parserError, file: undefined, line: undefined, routine: undefined, hint: expect.stringContaining("PostgreSQL's own parser") });
    expect({ ...sluice, errors: rest }).toEqual({ ...direct, errors: restDirect });
  });

  it('returns a 50k-row result and cursor batches identical to direct', async () => {
    const { direct, sluice } = await bothWays(async (sql) => {
      const big = await sql`SELECT g, md5(g::text) AS h, g::numeric / 3 AS x FROM generate_series(1, ${50_000}::int) AS g`;
      const batches: number[] = [];
      const cursorRows: unknown[] = [];
      for await (const rows of sql`SELECT g, repeat('c', g % 7) AS s FROM generate_series(1, 1234) AS g`.cursor(100)) {
        batches.push(rows.length);
        cursorRows.push(...rows);
      }
      // Leaving a cursor early closes its portal; the connection must keep working.
      let seen = 0;
      for await (const rows of sql`SELECT g FROM generate_series(1, 1000) AS g`.cursor(10)) {
        seen += rows.length;
        if (seen >= 30) break;
      }
      const after = [...(await sql`SELECT ${seen}::int AS seen`)];
      return { count: big.count, digest: sha256(JSON.stringify([...big])), batches, cursor: sha256(JSON.stringify(cursorRows)), n: cursorRows.length, after };
    });
    expect(direct.count).toBe(50_000);
    expect(direct.batches).toEqual([...Array<number>(12).fill(100), 34]);
    expect(direct.n).toBe(1234);
    expect(direct.after).toEqual([{ seen: 30 }]);
    expect(sluice).toEqual(direct);
  });

  it('cancels a running query with query.cancel() and keeps the connection', async () => {
    const { direct, sluice } = await bothWays(async (sql) => {
      const pid = (await sql`SELECT pg_backend_pid() AS p`)[0]!['p'] as number;
      const q = sql`SELECT pg_sleep(10)`;
      const settled = q.then(() => 'finished', (e: unknown) => pgError(e));
      await waitFor(async () => withPg(env.direct, async (d) => {
        const r = await d.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'", [pid]);
        return r.rowCount === 1 ? true : undefined;
      }), 'pg_sleep to start');
      const started = Date.now();
      q.cancel();
      const err = await settled;
      const fast = Date.now() - started < 5_000;
      const after = [...(await sql`SELECT pg_backend_pid() = ${pid} AS same_backend`)];
      return { err: typeof err === 'string' ? err : { code: err['code'], message: err['message'] }, fast, after };
    });
    expect(direct).toEqual({ err: { code: '57014', message: 'canceling statement due to user request' }, fast: true, after: [{ same_backend: true }] });
    expect(sluice).toEqual(direct);
  });

  /** SHOW of the settings a startup packet may carry, plus values formatted by them, for `connection` params. */
  async function startupObservations(side: Side, connection: Record<string, string>) {
    const sql = postgres(urlOf(env, side), { max: 1, connection: connection as postgres.Options<Record<string, never>>['connection'] });
    try {
      const [shown] = await sql.unsafe(`SELECT current_setting('TimeZone') AS tz, current_setting('DateStyle') AS ds,
        current_setting('IntervalStyle') AS ivs, current_setting('search_path') AS sp, current_setting('statement_timeout') AS st,
        current_setting('extra_float_digits') AS efd, '2024-02-29 12:34:56+00'::timestamptz::text AS ts, '1 day 2 hours'::interval::text AS iv,
        0.1::float8::text AS f`);
      const timeout = await sql`SELECT pg_sleep(2)`.then(() => 'no timeout', (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message }));
      return { shown, timeout };
    } catch (e) {
      return { refused: pgError(e) };
    } finally {
      await sql.end({ timeout: 5 });
    }
  }

  it('passes allowed startup parameters (TimeZone, DateStyle, ..., statement_timeout) as directly', async () => {
    const params = { TimeZone: 'Asia/Tokyo', DateStyle: 'SQL, DMY', IntervalStyle: 'iso_8601', search_path: 'pg_catalog, public', statement_timeout: '200', extra_float_digits: '0' };
    const direct = await startupObservations('direct', params);
    expect(direct).toEqual({
      shown: { tz: 'Asia/Tokyo', ds: 'SQL, DMY', ivs: 'iso_8601', sp: 'pg_catalog, public', st: '200ms', efd: '0', ts: '29/02/2024 21:34:56 JST', iv: 'P1DT2H', f: '0.1' },
      timeout: { code: '57014', message: 'canceling statement due to statement timeout' },
    });
    expect(await startupObservations('sluice', params)).toEqual(direct);
  });

  // PostgreSQL matches setting names case-insensitively, also in the startup packet (libpq sends `datestyle` and
  // `timezone`; Go's pgx passes DSN keys through verbatim).
  it('accepts allowed startup parameters whatever their case, as PostgreSQL does', async () => {
    const params = { timezone: 'Asia/Tokyo', datestyle: 'SQL, DMY', Statement_Timeout: '200' };
    const direct = await startupObservations('direct', params);
    expect(direct).toMatchObject({ shown: { tz: 'Asia/Tokyo', ds: 'SQL, DMY', st: '200ms' }, timeout: { code: '57014' } });
    expect(await startupObservations('sluice', params)).toEqual(direct);
  });
});
