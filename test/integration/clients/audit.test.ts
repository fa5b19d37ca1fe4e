/**
 * What real clients leave in the audit store: the application_name they sent, every statement text exactly as
 * received (simple, extended, named, pipelined), and how each session ended.
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { internals, lastSessionId, pgQuery, psql, sessionsAfter, startEnv, waitFor, withPg, type Env } from './util.js';

let env: Env;
beforeAll(async () => {
  env = await startEnv();
});
afterAll(async () => {
  await env?.stop();
});

const session = (id: number) => env.sluice.broker.audit.listSessions(10_000).find((s) => s.id === id);
const statements = (id: number) => env.sluice.broker.audit.listStatements(id).map((s) => ({ protocol: s.protocol, name: s.name, text: s.text }));

/** The only session opened after `before`, once it has ended. */
async function endedSession(before: number) {
  return waitFor(() => {
    const s = sessionsAfter(env.sluice, before);
    return s.length === 1 && s[0]!.endedAt !== null ? s[0] : undefined;
  }, 'the session to end');
}

describe('audit through real clients', () => {
  it('records application_name as each client sent it (or null)', async () => {
    const before = lastSessionId(env.sluice);
    await withPg(env.proxied, (c) => c.query('SELECT 1'), { application_name: 'np app ✓' });
    await withPg(env.proxied, (c) => c.query('SELECT 1'));
    const sql = postgres(env.proxied, { max: 1, connection: { application_name: 'pj-app' } });
    const [shown] = await sql`SHOW application_name`;
    await sql.end();
    const p = await psql(`${env.proxied}&application_name=from-psql`, ['-A', '-t', '-c', 'SHOW application_name']);
    expect(p.stdout.toString()).toBe('from-psql\n');
    expect(shown).toEqual({ application_name: 'pj-app' }); // and the server got it too
    const names = sessionsAfter(env.sluice, before).map((s) => s.applicationName);
    expect(names).toEqual(['np app ✓', null, 'pj-app', 'from-psql']);
  });

  it('records simple, extended and named statement texts exactly as received, in order, failures included', async () => {
    const before = lastSessionId(env.sluice);
    const simple = "SELECT 'ü ✓ 😀' AS u, E'a\\tb' AS esc; /* block */ -- line comment\n  SELECT $q$ it's ; dollar $q$  ;  ";
    const extended = 'SELECT $1::text AS p -- trailing comment';
    await withPg(env.proxied, async (c) => {
      await c.query(simple);
      await c.query(extended, ['x']);
      await c.query({ name: 'audit_named', text: 'SELECT $1::int * 2 AS d', values: [1] });
      await c.query({ name: 'audit_named', text: 'SELECT $1::int * 2 AS d', values: [2] });
      await c.query('PREPARE sqlprep AS SELECT 7; EXECUTE sqlprep');
      await expect(c.query('SELECT 1/0 AS boom')).rejects.toMatchObject({ code: '22012' });
      await expect(pgQuery(c, { text: 'SELEC broken', queryMode: 'extended' })).rejects.toMatchObject({ code: '42601' });
    });
    const s = await endedSession(before);
    expect(statements(s.id)).toEqual([
      { protocol: 'simple', name: null, text: simple },
      { protocol: 'parse', name: '', text: extended },
      { protocol: 'execute', name: '', text: extended },
      { protocol: 'parse', name: 'audit_named', text: 'SELECT $1::int * 2 AS d' },
      { protocol: 'execute', name: '', text: 'SELECT $1::int * 2 AS d' },
      { protocol: 'execute', name: '', text: 'SELECT $1::int * 2 AS d' }, // node-postgres parses a named statement once
      { protocol: 'simple', name: null, text: 'PREPARE sqlprep AS SELECT 7; EXECUTE sqlprep' },
      { protocol: 'simple', name: null, text: 'SELECT 1/0 AS boom' },
      // Refused at Parse by Sluice (unparseable): the Bind/Execute after it are discarded up to Sync, never forwarded.
      { protocol: 'parse', name: '', text: 'SELEC broken' },
    ]);
    expect(env.sluice.broker.audit.listStatements(s.id).at(-1)).toMatchObject({ decision: 'deny', rule: 'parser' });
    const rows = env.sluice.broker.audit.listStatements(s.id);
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    expect(rows.every((r, i) => i === 0 || r.receivedAt >= rows[i - 1]!.receivedAt)).toBe(true);
  });

  it('records pipelined postgres.js queries in the order they were sent', async () => {
    const before = lastSessionId(env.sluice);
    const sql = postgres(env.proxied, { max: 1 });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sql.unsafe(`SELECT ${i} AS i /* pipelined */`, [], { prepare: false, simple: false } as postgres.UnsafeQueryOptions)));
    await sql.end();
    expect(results.map((r) => r[0])).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
    const s = await endedSession(before);
    const mine = statements(s.id).filter((x) => x.text.includes('pipelined'));
    const expected = Array.from({ length: 20 }, (_, i) => [`parse:SELECT ${i} AS i /* pipelined */`, `execute:SELECT ${i} AS i /* pipelined */`]).flat();
    expect(mine.map((x) => `${x.protocol}:${x.text}`)).toEqual(expected);
  });

  it("ends a session with 'client terminated' after a clean close and 'client disconnected' after a socket destroy", async () => {
    let before = lastSessionId(env.sluice);
    await withPg(env.proxied, (c) => c.query('SELECT 1'));
    let s = await endedSession(before);
    expect(s.endReason).toBe('client terminated');
    expect(s.endedAt).toBeGreaterThanOrEqual(s.startedAt);

    before = lastSessionId(env.sluice);
    const c = new pg.Client({ connectionString: env.proxied });
    c.on('error', () => { /* the destroyed socket */ });
    await c.connect();
    await c.query('BEGIN; SELECT 1');
    internals(c).connection.stream.destroy();
    s = await endedSession(before);
    expect(s.endReason).toBe('client disconnected');

    before = lastSessionId(env.sluice);
    const r = await psql(env.proxied, ['-c', 'SELECT 1']);
    expect(r.code).toBe(0);
    expect((await endedSession(before)).endReason).toBe('client terminated');
    // Nothing of those sessions is left in the broker.
    await waitFor(() => (env.sluice.broker.connectionCount() === 0 ? true : undefined), 'no client connection left');
  });

  it('passes a server-side termination to the client as directly, and records it as the end reason', async () => {
    const observed: Record<string, unknown> = {};
    for (const [side, url] of [['direct', env.direct], ['sluice', env.proxied]] as const) {
      const before = lastSessionId(env.sluice);
      const c = new pg.Client({ connectionString: url });
      const lost = new Promise<unknown>((resolve) => c.on('error', resolve));
      await c.connect();
      const pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
      await withPg(env.cluster.url(), (admin) => admin.query('SELECT pg_terminate_backend($1)', [pid]));
      const err = (await lost) as { code?: string; message?: string };
      observed[side] = { code: err.code, message: err.message };
      if (side === 'sluice') {
        const s = await endedSession(before);
        expect(s.endReason).toBe('server: 57P01 terminating connection due to administrator command');
      }
    }
    expect(observed['direct']).toEqual({ code: '57P01', message: 'terminating connection due to administrator command' });
    expect(observed['sluice']).toEqual(observed['direct']);
  });

  // Sluice pins client_encoding=UTF8 in the startup packet and decodes statements as UTF8; a SQL-level
  // SET client_encoding would change how the server reads the same bytes: Sluice refuses it (it is read with the
  // real parser), and refuses bytes that are not UTF-8 rather than guess what they mean.
  it('refuses SET client_encoding and non-UTF-8 statements, records both as denied, and runs neither', async () => {
    const before = lastSessionId(env.sluice);
    const script = Buffer.concat([
      Buffer.from("SET client_encoding = 'LATIN1';\nSELECT '", 'latin1'),
      Buffer.from([0xe9]), // é in LATIN1: on its own, not valid UTF-8
      Buffer.from("' AS e /* latin1-marker */;\nSHOW client_encoding;\n", 'latin1'),
    ]);
    const r = await psql(env.proxied, ['-A', '-t', '-f', '-'], { input: script });
    const s = await endedSession(before);
    expect(r.stderr).toContain('ERROR:  Sluice policy refuses session on SET client_encoding');
    expect(r.stderr).toContain('ERROR:  invalid byte sequence for encoding "UTF8"');
    expect(r.stdout.toString('utf8')).toBe('UTF8\n'); // the session goes on, still in UTF-8
    const rows = env.sluice.broker.audit.listStatements(s.id);
    expect(rows.map((x) => [x.decision, x.rule])).toEqual([['deny', 'builtin:pinned-settings'], ['deny', 'encoding'], ['allow', 'tests-allow-all']]);
    expect(s.endReason).toBe('client terminated');
  });
});
