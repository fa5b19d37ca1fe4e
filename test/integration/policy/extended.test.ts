/**
 * The extended protocol and SQL-level wrappers through Sluice against a real PostgreSQL: decisions at Parse,
 * pipelines with a refusal in the middle, implicit transaction segments, statement-name reuse, Describe + Flush
 * without Sync, PREPARE/EXECUTE, DECLARE/FETCH and FunctionCall. Where it matters the same bytes are also sent
 * straight to PostgreSQL to show the client sees what the server itself would have sent.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/policy/model.js';
import { sleep, typedMessage } from '../../redteam/raw-client.js';
import {
  backendAlive, count, expectAudit, expectRefusal, firstError, pbe, query, rawDirect, rawThroughSluice, readReady, refused, rejection, scalar,
  serialize, startPolicyEnv, summary, withPg, type PolicyEnv,
} from './helpers.js';

const POLICY: PolicyInput = {
  rules: [
    {
      name: 'test-rules',
      match: { groups: ['test'] },
      allow: ['read', 'transaction', 'session', 'utility'],
      // Writes are denied, not reviewed: these tests are about refusals at Parse (review waits at Bind: approvals/).
      deny: ['ddl', 'write'],
      tables: { 'public.secrets': 'deny', 'public.log': { allow: ['write'] } },
      functions: { pg_sleep: 'deny' },
    },
  ],
};

const SETUP = `
  GRANT pg_signal_backend TO app;
  CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);
  CREATE TABLE log (v int);
  CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('top secret');
  -- A server-side function that opens a cursor Sluice never sees declared.
  CREATE FUNCTION open_secrets(c refcursor) RETURNS refcursor LANGUAGE plpgsql AS $$BEGIN OPEN c FOR SELECT s FROM secrets; RETURN c; END$$;
  ALTER TABLE t OWNER TO app; ALTER TABLE log OWNER TO app; ALTER TABLE secrets OWNER TO app; ALTER FUNCTION open_secrets(refcursor) OWNER TO app;
  GRANT ALL ON t, log, secrets TO trustuser;
`;

let env: PolicyEnv;
beforeAll(async () => {
  env = await startPolicyEnv(POLICY, SETUP);
});
afterAll(async () => {
  await env?.stop();
});

const agent = <T>(fn: (c: import('pg').Client) => Promise<T>): Promise<T> => withPg(env.sluice.url(), fn);
const logged = async (v: number): Promise<boolean> => Number(await scalar(env, 'SELECT count(*) FROM log WHERE v = $1', [v])) > 0;

/** Runs `fn` with a raw client through Sluice and checks nothing is left unread (no stray ReadyForQuery). */
async function raw(fn: (c: Awaited<ReturnType<typeof rawThroughSluice>>) => Promise<void>): Promise<void> {
  const c = await rawThroughSluice(env.sluice);
  try {
    await fn(c);
    await sleep(100);
    expect(c.pending.length, 'bytes left unread').toBe(0);
  } finally {
    c.destroy();
  }
}

describe('node-postgres parameterized queries (Parse/Bind/Describe/Execute/Sync)', () => {
  it('decides at Parse: allowed ones run, refused ones do not, the connection goes on', async () => {
    await agent(async (c) => {
      expect((await c.query('SELECT id FROM t WHERE id = $1', [2])).rows).toEqual([{ id: 2 }]);
      expectAudit(env.sluice, 'SELECT id FROM t WHERE id = $1', 'allow', 'test-rules');
      await c.query('INSERT INTO log VALUES ($1)', [7]);
      expectAudit(env.sluice, 'INSERT INTO log VALUES ($1)', 'allow', 'test-rules');
      const del = await rejection(c.query('DELETE FROM t WHERE id = $1', [1]));
      expectRefusal(del, { rule: 'test-rules', cls: 'write', object: 't', decision: 'deny' });
      expectAudit(env.sluice, 'DELETE FROM t WHERE id = $1', 'deny', 'test-rules', del.message);
      const sec = await rejection(c.query({ name: 'sec', text: 'SELECT s FROM secrets WHERE s <> $1', values: ['x'] }));
      expectRefusal(sec, { rule: 'test-rules', cls: 'read', object: 'secrets' });
      expect((await c.query('SELECT $1::int + 1 AS x', [4])).rows).toEqual([{ x: 5 }]);
    });
    expect(await logged(7)).toBe(true);
    expect(await count(env, 't')).toBe(3);
  });
});

describe('pipelines', () => {
  it('Parse/Bind/Execute/Sync x3 with the middle one refused: first and third run, one ReadyForQuery per Sync', async () => {
    await raw(async (c) => {
      c.write(Buffer.concat([pbe('INSERT INTO log VALUES (101)'), pbe('DELETE FROM t'), pbe('INSERT INTO log VALUES (103)')]));
      const frames = await readReady(c, 3);
      expect(summary(frames)).toEqual(['1', '2', 'C:INSERT 0 1', 'Z:I', 'E:42501', 'Z:I', '1', '2', 'C:INSERT 0 1', 'Z:I']);
      expect(firstError(frames).M).toContain('(rule "test-rules")');
    });
    expect([await logged(101), await logged(103), await count(env, 't')]).toEqual([true, true, 3]);
  });

  it('postgres.js pipelining three queries on one connection: only the middle one fails', async () => {
    const sql = postgres(env.sluice.url(), { max: 1, onnotice: () => {} });
    try {
      const [a, b, d] = await Promise.allSettled([sql`INSERT INTO log VALUES (${201})`, sql`DELETE FROM t WHERE id > ${0}`, sql`INSERT INTO log VALUES (${203})`]);
      expect([a.status, b.status, d.status]).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expectRefusal((b as PromiseRejectedResult).reason as Error & { code: string }, { rule: 'test-rules', cls: 'write', decision: 'deny' });
      expect(await sql`SELECT 1 AS ok`).toEqual([{ ok: 1 }]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    expect([await logged(201), await logged(203), await count(env, 't')]).toEqual([true, true, 3]);
  });

  it('a refusal in an implicit transaction segment rolls back the segment, as an error there does directly', async () => {
    const segment = (v: number, second: string) => Buffer.concat([pbe(`INSERT INTO log VALUES (${v})`, { sync: false }), pbe(second, { sync: false }), serialize.sync()]);
    await raw(async (c) => {
      c.write(segment(301, 'DELETE FROM t'));
      expect(summary(await readReady(c))).toEqual(['1', '2', 'C:INSERT 0 1', 'E:42501', 'Z:I']);
    });
    const direct = await rawDirect(env.cluster);
    try {
      direct.write(segment(302, 'SELEC broken'));
      expect(summary(await readReady(direct))).toEqual(['1', '2', 'C:INSERT 0 1', 'E:42601', 'Z:I']);
    } finally {
      direct.destroy();
    }
    expect([await logged(301), await logged(302), await count(env, 't')]).toEqual([false, false, 3]);
  });

  it('a refused Parse after an error in the same segment is skipped like the server skips it', async () => {
    const segment = (second: string) => Buffer.concat([pbe('SELECT 1/0', { sync: false }), pbe(second, { sync: false }), serialize.sync(), query('SELECT 5')]);
    const direct = await rawDirect(env.cluster);
    const expected = await (async () => {
      direct.write(segment('SELECT 2'));
      return summary(await readReady(direct, 2));
    })().finally(() => direct.destroy());
    expect(expected).toEqual(['1', 'E:22012', 'Z:I', 'T', 'D:5', 'C:SELECT 1', 'Z:I']);
    await raw(async (c) => {
      c.write(segment('DELETE FROM t'));
      expect(summary(await readReady(c, 2))).toEqual(expected);
    });
    expect(await count(env, 't')).toBe(3);
  });

  // In an aborted transaction the server answers the refusal's DO block with 25P02 instead of Sluice's own error;
  // the client must still get exactly one ReadyForQuery for its one Sync, as it does directly.
  it('a refused Parse inside an aborted transaction block gets one ReadyForQuery, as directly', async () => {
    const steps = async (c: Awaited<ReturnType<typeof rawDirect>>): Promise<string[][]> => {
      const out: string[][] = [];
      for (const msg of [query('BEGIN'), query('SELECT 1/0'), pbe('DELETE FROM t'), query('ROLLBACK')]) {
        c.write(msg);
        out.push(summary(await readReady(c)));
      }
      await sleep(100);
      out.push([`unread:${c.pending.length}`]);
      return out;
    };
    const direct = await rawDirect(env.cluster);
    const expected = await steps(direct).finally(() => direct.destroy());
    expect(expected).toEqual([['C:BEGIN', 'Z:T'], ['E:22012', 'Z:E'], ['E:25P02', 'Z:E'], ['C:ROLLBACK', 'Z:I'], ['unread:0']]);
    const c = await rawThroughSluice(env.sluice);
    try {
      expect(await steps(c)).toEqual(expected);
    } finally {
      c.destroy();
    }
    expect(await count(env, 't')).toBe(3);
  });
});

describe('statement names', () => {
  it('Parse "s1" refused after an allowed "s1": Bind "s1" never runs the refused text', async () => {
    await raw(async (c) => {
      c.write(Buffer.concat([serialize.parse({ name: 's1', text: 'SELECT 11' }), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['1', 'Z:I']);
      c.write(pbe('DELETE FROM t', { name: 's1' }));
      expect(summary(await readReady(c))).toEqual(['E:42501', 'Z:I']);
      c.write(Buffer.concat([serialize.bind({ statement: 's1' }), serialize.execute({}), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['2', 'D:11', 'C:SELECT 1', 'Z:I']);
      // Closed first: the name is free, the refused Parse does not take it.
      c.write(Buffer.concat([serialize.close({ type: 'S', name: 's1' }), pbe('DELETE FROM t', { name: 's1' })]));
      expect(summary(await readReady(c))).toEqual(['3', 'E:42501', 'Z:I']);
      c.write(Buffer.concat([serialize.bind({ statement: 's1' }), serialize.execute({}), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['E:26000', 'Z:I']);
    });
    expect(await count(env, 't')).toBe(3);
    expectAudit(env.sluice, 'DELETE FROM t', 'deny', 'test-rules');
  });

  it('pipelined cycles: a ReadyForQuery takes back only its own cycle\'s unanswered messages, not the next cycle\'s', async () => {
    await raw(async (c) => {
      // Both cycles are sent before any answer: the first ReadyForQuery arrives while "p2" still awaits its ParseComplete.
      c.write(Buffer.concat([
        serialize.parse({ name: 'p1', text: 'SELECT 31' }), serialize.sync(),
        serialize.parse({ name: 'p2', text: 'SELECT 32' }), serialize.bind({ statement: 'p2', portal: 'q2' }), serialize.sync(),
      ]));
      expect(summary(await readReady(c, 2))).toEqual(['1', 'Z:I', '1', '2', 'Z:I']);
      c.write(Buffer.concat([serialize.bind({ statement: 'p2' }), serialize.execute({}), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['2', 'D:32', 'C:SELECT 1', 'Z:I']);
      c.write(query('EXECUTE p2'));
      expect(summary(await readReady(c))).toEqual(['T', 'D:32', 'C:SELECT 1', 'Z:I']);
      // A simple Query's cycle, then a Parse in the same write: the Query's ReadyForQuery leaves "p3" alone.
      c.write(Buffer.concat([query('SELECT 33'), serialize.parse({ name: 'p3', text: 'SELECT 34' }), serialize.sync()]));
      expect(summary(await readReady(c, 2))).toEqual(['T', 'D:33', 'C:SELECT 1', 'Z:I', '1', 'Z:I']);
      c.write(query('EXECUTE p3'));
      expect(summary(await readReady(c))).toEqual(['T', 'D:34', 'C:SELECT 1', 'Z:I']);
    });
  });

  it('a Parse the server refuses (name in use) does not replace what Sluice records for that name', async () => {
    const lastExecute = () => env.sluice.broker.db.prepare(`SELECT text FROM statements WHERE protocol = 'execute' ORDER BY id DESC LIMIT 1`).get();
    await raw(async (c) => {
      c.write(Buffer.concat([serialize.parse({ name: 'inuse', text: 'SELECT 21' }), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['1', 'Z:I']);
      c.write(Buffer.concat([serialize.parse({ name: 'inuse', text: 'SELECT id FROM t' }), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['E:42P05', 'Z:I']);
      c.write(Buffer.concat([serialize.bind({ statement: 'inuse' }), serialize.execute({}), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['2', 'D:21', 'C:SELECT 1', 'Z:I']);
      expect(lastExecute()).toEqual({ text: 'SELECT 21' });
      // SQL EXECUTE is decided on what the server really holds.
      c.write(query('EXECUTE inuse'));
      expect(summary(await readReady(c))).toEqual(['T', 'D:21', 'C:SELECT 1', 'Z:I']);
    });
    const row = env.sluice.broker.db.prepare(`SELECT objects FROM statements WHERE text = 'EXECUTE inuse'`).get() as { objects: string };
    expect(JSON.parse(row.objects)).not.toContain('r:public.t');
  });

  it('a Parse or Close the server skipped after an earlier error in its segment did not happen', async () => {
    await raw(async (c) => {
      c.write(Buffer.concat([serialize.parse({ name: 'kept', text: 'SELECT 41' }), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['1', 'Z:I']);
      c.write(Buffer.concat([
        pbe('SELECT 1/0', { sync: false }),
        serialize.parse({ name: 'skipped', text: 'SELECT 31' }),
        serialize.close({ type: 'S', name: 'kept' }),
        serialize.sync(),
      ]));
      expect(summary(await readReady(c))).toEqual(['1', 'E:22012', 'Z:I']); // 1/0 fails when planned, at Bind
      // "skipped" never existed: SQL EXECUTE of it is refused by Sluice itself (it cannot be attributed).
      c.write(query('EXECUTE skipped'));
      const frames = await readReady(c);
      expect(summary(frames)).toEqual(['E:26000', 'Z:I']);
      expect(firstError(frames).M).toContain('was not created through Sluice');
      // "kept" was not closed: it still runs, and is recorded as what it is.
      c.write(Buffer.concat([serialize.bind({ statement: 'kept' }), serialize.execute({}), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['2', 'D:41', 'C:SELECT 1', 'Z:I']);
    });
    const last = env.sluice.broker.db.prepare(`SELECT text FROM statements WHERE protocol = 'execute' ORDER BY id DESC LIMIT 1`).get();
    expect(last).toEqual({ text: 'SELECT 41' });
  });

  it('PREPARE of a name in use fails on the server and leaves the name untrusted (EXECUTE refused)', async () => {
    await agent(async (c) => {
      await c.query('PREPARE twice AS SELECT 1 AS one');
      expect((await rejection(c.query('PREPARE twice AS SELECT id FROM t'))).code).toBe('42P05');
      const err = await rejection(c.query('EXECUTE twice'));
      expect([err.code, err.message]).toEqual(['26000', expect.stringContaining('was not created through Sluice')]);
      await c.query('DEALLOCATE twice');
      await c.query('PREPARE twice AS SELECT 2 AS two');
      expect((await c.query('EXECUTE twice')).rows).toEqual([{ two: 2 }]);
    });
  });

  it('the unnamed statement after a refusal: the refused text never runs, a new unnamed Parse works', async () => {
    await raw(async (c) => {
      c.write(pbe('SELECT 12'));
      expect(summary(await readReady(c))).toEqual(['1', '2', 'D:12', 'C:SELECT 1', 'Z:I']);
      c.write(pbe('DELETE FROM t WHERE id = 3'));
      expect(summary(await readReady(c))).toEqual(['E:42501', 'Z:I']);
      // Directly, the failed Parse would have dropped the unnamed statement (26000 here); through Sluice the unnamed
      // statement is now the refusal itself, so running it refuses again (and is audited as refused). The DELETE never runs.
      c.write(Buffer.concat([serialize.bind({}), serialize.execute({}), serialize.sync()]));
      const again = summary(await readReady(c));
      expect(again).toContain('E:42501');
      expect(again).not.toContain('C:DELETE 1');
      c.write(pbe('SELECT 13'));
      expect(summary(await readReady(c))).toEqual(['1', '2', 'D:13', 'C:SELECT 1', 'Z:I']);
    });
    expect(await count(env, 't')).toBe(3);
    const lone = env.sluice.broker.db.prepare(
      `SELECT decision FROM statements WHERE protocol = 'execute' AND text = 'DELETE FROM t WHERE id = 3' ORDER BY id DESC LIMIT 1`,
    ).get() as { decision: string } | undefined;
    expect(lone).toEqual({ decision: 'deny' });
  });

  it('Parse + Describe + Flush (no Sync, like pgjdbc) gets its answer at once; Sync then gets ReadyForQuery', async () => {
    await raw(async (c) => {
      c.write(Buffer.concat([serialize.parse({ text: 'SELECT id FROM t WHERE id = $1' }), serialize.describe({ type: 'S' }), serialize.flush()]));
      expect(summary([await c.frame(), await c.frame(), await c.frame()])).toEqual(['1', 't', 'T']);
      c.write(Buffer.concat([serialize.bind({ values: ['1'] }), serialize.execute({}), serialize.sync()]));
      expect(summary(await readReady(c))).toEqual(['2', 'D:1', 'C:SELECT 1', 'Z:I']);

      c.write(Buffer.concat([serialize.parse({ text: 'DELETE FROM t' }), serialize.describe({ type: 'S' }), serialize.flush()]));
      const err = await c.frame();
      expect(summary([err])).toEqual(['E:42501']);
      await sleep(150);
      expect(c.pending.length, 'nothing after the error before Sync').toBe(0);
      c.write(serialize.sync());
      expect(summary(await readReady(c))).toEqual(['Z:I']);
    });
    expect(await count(env, 't')).toBe(3);
  });
});

describe('SQL-level PREPARE / EXECUTE', () => {
  it('refuses PREPARE of a write and EXECUTE of a name Sluice never saw prepared (26000)', async () => {
    await agent(async (c) => {
      await refused(env.sluice, c, 'PREPARE del AS DELETE FROM t', { rule: 'test-rules', cls: 'write', object: 't', decision: 'deny' });
      const err = await rejection(c.query('EXECUTE del'));
      expect([err.code, err.message]).toEqual(['26000', expect.stringContaining('prepared statement "del" was not created through Sluice')]);
      expectAudit(env.sluice, 'EXECUTE del', 'deny', 'unattributable');
      expect((await rejection(c.query('EXECUTE nope(1)'))).code).toBe('26000');
    });
    expect(await count(env, 't')).toBe(3);
  });

  it('runs EXECUTE of an allowed PREPARE, with and without parameters, and of a protocol-level statement', async () => {
    await agent(async (c) => {
      await c.query('PREPARE byid(int) AS SELECT id FROM t WHERE id = $1');
      expect((await c.query('EXECUTE byid(2)')).rows).toEqual([{ id: 2 }]);
      expectAudit(env.sluice, 'EXECUTE byid(2)', 'allow', 'test-rules');
      await c.query('PREPARE total AS SELECT count(*)::int AS n FROM t');
      expect((await c.query('EXECUTE total')).rows).toEqual([{ n: 3 }]);
      expectAudit(env.sluice, 'EXECUTE total', 'allow', 'test-rules');
      await c.query({ name: 'proto_sel', text: 'SELECT 42 AS x' });
      expect((await c.query('EXECUTE proto_sel')).rows).toEqual([{ x: 42 }]);
    });
  });

  it('EXECUTE is also decided on its own parameters and on what wraps it', async () => {
    await withPg(env.cluster.url('app', env.cluster.roles.app.password, 'app'), async (victim) => {
      const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await agent(async (c) => {
        await c.query('PREPARE echo(text) AS SELECT $1 AS v');
        await refused(env.sluice, c, 'EXECUTE echo(pg_sleep(0)::text)', { rule: 'test-rules', cls: 'utility', object: 'pg_sleep()' });
        await refused(env.sluice, c, `EXECUTE echo(pg_terminate_backend(${pid})::text)`, { rule: 'builtin:backend-signals', object: 'pg_terminate_backend()' });
        // CREATE TABLE AS is a write that creates a table (both denied here; write is named first) whatever the prepared statement is.
        await refused(env.sluice, c, "CREATE TABLE stolen AS EXECUTE echo('x')", { rule: 'test-rules', cls: 'write' });
      });
      expect(await backendAlive(env, pid)).toBe(true);
    });
    expect(await scalar(env, "SELECT to_regclass('public.stolen')")).toBeNull();
  });
});

describe('cursors', () => {
  it('DECLARE then FETCH runs and is audited as allowed; DECLARE over a denied table is refused', async () => {
    await agent(async (c) => {
      await c.query('BEGIN');
      await c.query('DECLARE c1 CURSOR FOR SELECT id FROM t ORDER BY id');
      expect((await c.query('FETCH 2 FROM c1')).rows).toEqual([{ id: 1 }, { id: 2 }]);
      expectAudit(env.sluice, 'FETCH 2 FROM c1', 'allow', 'test-rules');
      await c.query('CLOSE c1');
      await refused(env.sluice, c, 'DECLARE c2 CURSOR FOR SELECT s FROM secrets', { rule: 'test-rules', cls: 'read', object: 'secrets' });
      await c.query('ROLLBACK');
    });
  });

  it('refuses FETCH from a cursor Sluice never saw declared (34000), even one that exists on the server', async () => {
    await agent(async (c) => {
      const ghost = await rejection(c.query('FETCH ALL FROM ghost'));
      expect([ghost.code, ghost.message]).toEqual(['34000', expect.stringContaining('cursor "ghost" was not created through Sluice')]);
      expectAudit(env.sluice, 'FETCH ALL FROM ghost', 'deny', 'unattributable');
      await c.query('BEGIN');
      await c.query("SELECT open_secrets('sc')");
      expect((await rejection(c.query('FETCH ALL FROM sc'))).code).toBe('34000');
      await c.query('ROLLBACK');
    });
  });

  it('after CLOSE, the name no longer stands for the closed cursor\'s query', async () => {
    await agent(async (c) => {
      await c.query('BEGIN');
      await c.query('DECLARE sc CURSOR FOR SELECT 1 AS harmless');
      await c.query('CLOSE sc');
      await c.query("SELECT open_secrets('sc')");
      // Sluice must not attribute this FETCH to `SELECT 1`: it reads secrets.
      const err = await rejection(c.query('FETCH ALL FROM sc'));
      expect(err.code).toBe('34000');
      await c.query('ROLLBACK');
    });
  });

  // A cursor without HOLD ends with its transaction, and a DECLARE the server refused never existed: in neither
  // case may the name keep standing for the old query once the server has no such cursor.
  const fetchAfter = async (c: import('pg').Client, name: string): Promise<unknown> => {
    await c.query('BEGIN');
    await c.query(`SELECT open_secrets('${name}')`);
    const r = await c.query(`FETCH ALL FROM ${name}`).then((x) => x.rows, (e: { code: string }) => e.code);
    await c.query('ROLLBACK');
    return r;
  };

  it('a cursor name does not outlive its transaction (no HOLD: closed at COMMIT)', async () => {
    await agent(async (c) => {
      await c.query('BEGIN');
      await c.query('DECLARE gone CURSOR FOR SELECT 1 AS harmless');
      await c.query('COMMIT');
      expect(await fetchAfter(c, 'gone')).toBe('34000');
    });
  });

  it('a DECLARE the server refused does not make the name known', async () => {
    await agent(async (c) => {
      // Outside a transaction block the server refuses DECLARE (25P01): no cursor `never` exists.
      expect((await rejection(c.query('DECLARE never CURSOR FOR SELECT 2 AS harmless'))).code).toBe('25P01');
      expect(await fetchAfter(c, 'never')).toBe('34000');
    });
  });

  it('a WITH HOLD cursor survives COMMIT and FETCH from it stays allowed', async () => {
    await agent(async (c) => {
      await c.query('BEGIN');
      await c.query('DECLARE kept CURSOR WITH HOLD FOR SELECT id FROM t ORDER BY id');
      await c.query('COMMIT');
      expect((await c.query('FETCH 1 FROM kept')).rows).toEqual([{ id: 1 }]);
      await c.query('CLOSE kept');
    });
  });
});

describe('FunctionCall', () => {
  it('is refused with 0A000 (nothing runs) and the connection stays usable', async () => {
    await withPg(env.cluster.url('app', env.cluster.roles.app.password, 'app'), async (victim) => {
      const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const oid = Number(await scalar(env, "SELECT 'pg_terminate_backend'::regproc::oid"));
      const arg = Buffer.from(String(pid));
      const body = Buffer.alloc(4 + 2 + 2 + 4 + arg.length + 2);
      let o = body.writeInt32BE(oid, 0);
      o = body.writeInt16BE(0, o); // no argument format codes: text
      o = body.writeInt16BE(1, o); // one argument
      o = body.writeInt32BE(arg.length, o);
      o += arg.copy(body, o);
      body.writeInt16BE(0, o); // text result
      await raw(async (c) => {
        c.write(typedMessage('F', body));
        const frames = await readReady(c);
        expect(summary(frames)).toEqual(['E:0A000', 'Z:I']);
        expect(firstError(frames).M).toContain('FunctionCall');
        c.write(query('SELECT 6'));
        expect(summary(await readReady(c))).toEqual(['T', 'D:6', 'C:SELECT 1', 'Z:I']);
      });
      expect(await backendAlive(env, pid)).toBe(true);
      expectAudit(env.sluice, `-- FunctionCall message (function OID ${oid})`, 'deny', 'protocol');
    });
  });
});
