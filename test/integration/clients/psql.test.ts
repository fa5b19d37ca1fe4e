/**
 * psql through Sluice prints exactly what it prints directly: the same script, run both ways, gives the same
 * stdout, stderr, exit code and \copy output files. Nothing is normalised: the script avoids anything that
 * depends on the connection (backend pid, client port, temp schema names).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanEnv, lastSessionId, PSQL, psql, runProcess, scratchDir, sessionsAfter, SIDES, startEnv, statementsAfter, urlOf, waitFor, withPg,
  type Env, type ProcResult, type Side,
} from './util.js';

let env: Env;
beforeAll(async () => {
  env = await startEnv();
});
afterAll(async () => {
  await env?.stop();
});

const IN_CSV = '10,from file,10.5\n11,"quoted, comma",\n12,ünïcödé ✓,-1\n';

// Runs against a real table (dropped first, quietly) so \d output has no per-backend temp schema in it.
const SCRIPT = String.raw`SET client_min_messages = warning;
DROP TABLE IF EXISTS psql_t;
RESET client_min_messages;
SELECT 1 AS one, 'two' AS two, NULL AS three;
SELECT n, n * n AS sq FROM generate_series(1, 5) AS n;
CREATE TABLE psql_t (id int PRIMARY KEY, name text, amount numeric);
INSERT INTO psql_t VALUES (1, 'a', 1.5), (2, 'b', NULL);
SELECT * FROM psql_t ORDER BY id;
SELECT 1/0;
SELECT 'after the error' AS still_running;
SELEC typo;
DO $$ BEGIN RAISE NOTICE 'hi'; END $$;
DO $$ BEGIN RAISE WARNING 'careful' USING DETAIL = 'some detail', HINT = 'a hint'; END $$;
BEGIN;
INSERT INTO psql_t VALUES (3, 'c', 3);
SELECT count(*) FROM psql_t;
ROLLBACK;
SELECT count(*) AS after_rollback FROM psql_t;
BEGIN;
INSERT INTO psql_t VALUES (1, 'duplicate', 0);
SELECT 'ignored in an aborted transaction';
ROLLBACK;
BEGIN;
INSERT INTO psql_t VALUES (4, 'committed', 4);
COMMIT;
\copy psql_t TO 'out.csv' (FORMAT csv)
\copy psql_t FROM 'in.csv' (FORMAT csv)
\copy psql_t FROM STDIN
20	inline	20.25
21	\N	21
\.
\copy psql_t FROM 'missing-file.csv'
\copy (SELECT * FROM psql_t ORDER BY id) TO STDOUT (FORMAT csv, HEADER)
\copy psql_t TO 'out2.csv' (FORMAT text)
SELECT 1 AS a \; SELECT 2 AS b \; SELECT 3 AS c;
PREPARE twice(int) AS SELECT $1 * 2 AS doubled;
EXECUTE twice(21);
\pset tuples_only off
\pset format aligned
SELECT id, name, amount FROM psql_t ORDER BY id;
\d psql_t
\set VERBOSITY verbose
SELECT * FROM no_such_table;
\set VERBOSITY default
SELECT current_user, current_database(), session_user;
SHOW client_encoding;
SHOW standard_conforming_strings;
SHOW application_name;
SELECT E'tab\there' AS esc, 'it''s' AS quote, '\x' AS backslash, '{"k": [1, 2]}'::jsonb AS j;
SELECT md5(string_agg(g::text, ',')) AS digest, count(*) FROM generate_series(1, 100000) AS g;
SELECT 1 AS x, 'a'::text AS y, now() AS z \gdesc
SELECT 6 * 7 AS answer \gset
\echo answer is :answer
SELECT format('SELECT %s AS generated', g) FROM generate_series(1, 2) AS g \gexec
SELECT 1/0;
\errverbose
\encoding
\set ON_ERROR_ROLLBACK on
BEGIN;
INSERT INTO psql_t VALUES (30, 'kept', 30);
INSERT INTO psql_t VALUES (30, 'dup rolled back to savepoint', 0);
INSERT INTO psql_t VALUES (31, 'also kept', 31);
COMMIT;
SELECT id, name FROM psql_t WHERE id >= 30 ORDER BY id;
\echo done
`;

interface Run {
  result: ProcResult;
  outCsv: string;
  out2Csv: string;
}

async function runScript(side: Side): Promise<Run> {
  const scratch = scratchDir(`psql-${side}`);
  try {
    writeFileSync(join(scratch.dir, 'script.sql'), SCRIPT);
    writeFileSync(join(scratch.dir, 'in.csv'), IN_CSV);
    // Same relative file name both ways, so psql's "psql:script.sql:LINE:" prefixes are identical.
    const result = await psql(urlOf(env, side), ['-A', '-t', '-f', 'script.sql'], { cwd: scratch.dir });
    return {
      result,
      outCsv: readFileSync(join(scratch.dir, 'out.csv'), 'utf8'),
      out2Csv: readFileSync(join(scratch.dir, 'out2.csv'), 'utf8'),
    };
  } finally {
    scratch.remove();
  }
}

describe('psql', () => {
  it('prints the same stdout, stderr and files for a multi-statement script', async () => {
    const before = lastSessionId(env.sluice);
    // Sequential: both runs use table psql_t.
    const direct = await runScript('direct');
    const viaSluice = await runScript('sluice');

    const stdout = viaSluice.result.stdout.toString('utf8');
    expect(stdout).toBe(direct.result.stdout.toString('utf8'));
    // The one difference: Sluice refuses the unparseable statement itself and says so in a hint.
    const sluiceHint = "HINT:  Sluice parses every statement with PostgreSQL's own parser and refuses what it cannot parse; fix the syntax.\n";
    expect(viaSluice.result.stderr).toBe(direct.result.stderr.replace(/(LINE 1: SELEC typo;\n\s+\^\n)/, `$1${sluiceHint}`));
    expect(viaSluice.result.stderr).toContain(sluiceHint);
    expect(viaSluice.result.code).toBe(direct.result.code);
    expect(viaSluice.outCsv).toBe(direct.outCsv);
    expect(viaSluice.out2Csv).toBe(direct.out2Csv);

    // The comparison means something only if the script really did what it says.
    expect(direct.result.code).toBe(0);
    expect(stdout).toContain('1|two|\n');
    expect(stdout).toContain('after the error\n');
    expect(stdout).toContain('BEGIN\nINSERT 0 1\n3\nROLLBACK\n2\n'); // 3 inside the transaction, 2 after ROLLBACK
    expect(stdout).toContain('id,name,amount\n1,a,1.5\n2,b,\n4,committed,4\n10,from file,10.5\n11,"quoted, comma",\n12,ünïcödé ✓,-1\n20,inline,20.25\n21,,21\n');
    expect(stdout).toContain('42\n');
    expect(stdout).toContain('answer is 42\n');
    expect(stdout).toContain(' 30 | kept\n 31 | also kept\n');
    expect(stdout).toContain('done\n');
    expect(direct.outCsv).toBe('1,a,1.5\n2,b,\n4,committed,4\n');
    expect(direct.out2Csv).toContain('21\t\\N\t21\n');
    const stderr = direct.result.stderr;
    expect(stderr).toContain('psql:script.sql:9: ERROR:  division by zero');
    expect(stderr).toContain('ERROR:  syntax error at or near "SELEC"');
    expect(stderr).toContain('NOTICE:  hi');
    expect(stderr).toContain('WARNING:  careful\nDETAIL:  some detail\nHINT:  a hint');
    expect(stderr).toContain('ERROR:  duplicate key value violates unique constraint "psql_t_pkey"');
    expect(stderr).toContain('ERROR:  current transaction is aborted, commands ignored until end of transaction block');
    expect(stderr).toContain('missing-file.csv: No such file or directory');
    expect(stderr).toContain('ERROR:  42P01: relation "no_such_table" does not exist');

    // Through Sluice, every statement of the script was recorded, as psql sent it.
    const session = sessionsAfter(env.sluice, before).find((s) => s.identity === 'agent');
    expect(session?.applicationName).toBe('psql');
    const texts = statementsAfter(env.sluice, before).map((s) => s.text);
    const sqlLines = SCRIPT.split('\n').filter((l) => l.endsWith(';') && !l.startsWith('\\') && !l.includes('\\;'));
    expect(sqlLines.length).toBeGreaterThan(30);
    for (const line of sqlLines) expect(texts).toContain(line);
    expect(texts).toContain('SELECT 1 AS a ; SELECT 2 AS b ; SELECT 3 AS c;');
    expect(texts).toContain('DO $$ BEGIN RAISE NOTICE \'hi\'; END $$;');
    expect(texts).toContain('COPY  psql_t FROM STDIN ');
  });

  it('prints the same for -c with several statements and for an ON_ERROR_STOP abort', async () => {
    const args = (extra: string[]) => ['-A', '-t', ...extra];
    for (const extra of [
      ['-c', "SELECT 'x' AS a; SELECT 1/0; SELECT 'never'"],
      ['-v', 'ON_ERROR_STOP=1', '-c', 'SELECT 1', '-c', 'SELECT * FROM nope', '-c', 'SELECT 2'],
      ['-1', '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE TEMP TABLE x (i int)', '-c', 'INSERT INTO x VALUES (1), (NULL)', '-c', 'SELECT sum(i), count(*) FROM x'],
    ]) {
      const [d, s] = [await psql(env.direct, args(extra)), await psql(env.proxied, args(extra))];
      expect({ out: s.stdout.toString(), err: s.stderr, code: s.code }).toEqual({ out: d.stdout.toString(), err: d.stderr, code: d.code });
    }
    const aborted = await psql(env.proxied, args(['-v', 'ON_ERROR_STOP=1', '-c', 'SELECT 1', '-c', 'SELECT * FROM nope', '-c', 'SELECT 2']));
    expect(aborted.code).toBe(1);
    expect(aborted.stdout.toString()).toBe('1\n');
  });

  it('cancels a running statement on SIGINT (libpq PQcancel through Sluice) with the same output', async () => {
    const runs: Record<Side, { code: number | null; stdout: string; stderr: string }> = {} as never;
    for (const side of SIDES) {
      const marker = `psql-sigint-${side}`;
      const child = spawn(PSQL, ['-X', '-d', urlOf(env, side), '-c', `SELECT pg_sleep(10) /* ${marker} */`], { env: cleanEnv() });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      await waitFor(() => withPg(env.direct, async (c) => {
        const r = await c.query("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1", [`%${marker}%`]);
        return r.rowCount === 1 ? true : undefined;
      }), 'pg_sleep to start');
      const started = Date.now();
      child.kill('SIGINT');
      const code = await closed;
      expect(Date.now() - started).toBeLessThan(5_000);
      runs[side] = { code, stdout, stderr };
    }
    expect(runs.direct).toEqual({ code: 1, stdout: '', stderr: 'Cancel request sent\nERROR:  canceling statement due to user request\n' });
    expect(runs.sluice).toEqual(runs.direct);
  });

  it('passes PGTZ / PGDATESTYLE / PGAPPNAME (libpq sends timezone, datestyle in lower case) as directly', async () => {
    const extra = { PGTZ: 'America/St_Johns', PGDATESTYLE: 'Postgres, MDY', PGAPPNAME: 'psql via env' };
    const args = ['-X', '-A', '-t', '-c', 'SHOW TimeZone', '-c', 'SHOW DateStyle', '-c', 'SHOW application_name', '-c', "SELECT '2024-02-29 12:34:56+00'::timestamptz"];
    const [d, s] = await Promise.all(SIDES.map((side) => runProcess(PSQL, ['-d', urlOf(env, side), ...args], { env: cleanEnv(extra) })));
    expect(d!.stdout.toString()).toBe('America/St_Johns\nPostgres, MDY\npsql via env\nThu Feb 29 09:04:56 2024 NST\n');
    expect({ out: s!.stdout.toString(), err: s!.stderr, code: s!.code }).toEqual({ out: d!.stdout.toString(), err: d!.stderr, code: d!.code });
  });

  // client_encoding=auto (interactive psql) resolves to SQL_ASCII in the C locale; PGCLIENTENCODING does the same.
  it('honours client_encoding SQL_ASCII as directly (psql pads aligned output by byte for it)', async () => {
    const args = ['-X', '-c', 'SHOW client_encoding', '-c', "SELECT 'ü✓' AS x, 1 AS y", '-c', '\\encoding'];
    const [d, s] = await Promise.all(SIDES.map((side) =>
      runProcess(PSQL, ['-d', urlOf(env, side), ...args], { env: cleanEnv({ PGCLIENTENCODING: 'SQL_ASCII' }) })));
    expect(d!.stdout.toString()).toContain(' SQL_ASCII\n');
    expect({ out: s!.stdout.toString(), err: s!.stderr, code: s!.code }).toEqual({ out: d!.stdout.toString(), err: d!.stderr, code: d!.code });
  });
});
