/**
 * COPY through Sluice moves the same bytes as directly: postgres.js COPY FROM STDIN / TO STDOUT streams, a
 * client CopyFail and a bad row mid-stream, psql \copy with files, and binary COPY out and back in via psql.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastSessionId, psql, scratchDir, sessionWith, sha256, SIDES, startEnv, urlOf, type Env, type ProcResult, type Side } from './util.js';

let env: Env;
beforeAll(async () => {
  env = await startEnv();
  // One source table both sides read from; each side writes to its own copy_<side>_* tables.
  await env.cluster.sql(`
    CREATE TABLE copy_src (id int8, t text, b bytea, ts timestamptz, n numeric, a int[], j jsonb);
    INSERT INTO copy_src SELECT g, 'row ' || g || E'\\t"tab" \\\\ ü ✓', decode(md5(g::text), 'hex'),
      '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute', g / 7.0, ARRAY[g, -g, NULL], jsonb_build_object('g', g)
      FROM generate_series(1, 20000) AS g;
    INSERT INTO copy_src VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    ALTER TABLE copy_src OWNER TO app;
  `, 'app');
});
afterAll(async () => {
  await env?.stop();
});

async function withSql<T>(side: Side, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(urlOf(env, side), { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Collects a COPY TO STDOUT stream in flowing mode. Not `for await`: postgres.js pauses its socket when the
 * stream's buffer is full and, if CopyDone sits in the same chunk, never resumes it; the connection then hangs
 * (porsager/postgres#499, fix proposed in #1016). Happens directly too; flowing mode never fills the buffer.
 */
function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => parts.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

/** COPY text format lines for `n` rows, with escapes, unicode and NULLs. */
function textRows(n: number): string[] {
  const lines: string[] = [];
  for (let i = 1; i <= n; i++) lines.push(`${i}\t${i % 13 === 0 ? '\\N' : `v${i} \\t tab \\\\ back ü ✓ 😀`}\t${(i * 0.25).toFixed(2)}\n`);
  return lines;
}

describe('COPY', () => {
  it('postgres.js: COPY FROM STDIN then COPY TO STDOUT round-trips the same bytes both ways', async () => {
    const lines = textRows(30_000);
    const results: Record<Side, { count: number; out: Buffer; agg: unknown }> = {} as never;
    for (const side of SIDES) {
      results[side] = await withSql(side, async (sql) => {
        const t = `copy_${side}_pj`;
        await sql.unsafe(`CREATE TABLE ${t} (id int, s text, x numeric)`);
        // Many small writes: CopyData frames of uneven size, some split across TCP reads.
        const chunks = lines.map((l, i) => (i % 3 === 0 ? l : Buffer.from(l)));
        await pipeline(Readable.from(chunks), await sql.unsafe(`COPY ${t} FROM STDIN`).writable());
        const out = await readAll(await sql.unsafe(`COPY (SELECT * FROM ${t} ORDER BY id) TO STDOUT`).readable());
        const [agg] = await sql.unsafe(`SELECT count(*)::int AS n, count(s)::int AS s, sum(x) AS x, md5(string_agg(s, '|' ORDER BY id)) AS h FROM ${t}`);
        return { count: (agg as unknown as { n: number }).n, out, agg };
      });
    }
    expect(results.direct.count).toBe(30_000);
    expect(results.direct.out.toString('utf8')).toBe(lines.join(''));
    expect(results.sluice.agg).toEqual(results.direct.agg);
    expect(results.sluice.out.equals(results.direct.out)).toBe(true);
  });

  it('postgres.js: COPY TO STDOUT of a 20k-row table is byte-identical, text and csv', async () => {
    const outs: Record<Side, Buffer[]> = { direct: [], sluice: [] };
    for (const side of SIDES) {
      await withSql(side, async (sql) => {
        for (const opts of ['', '(FORMAT csv, HEADER, FORCE_QUOTE *)']) {
          outs[side].push(await readAll(await sql.unsafe(`COPY (SELECT * FROM copy_src ORDER BY id NULLS LAST) TO STDOUT ${opts}`).readable()));
        }
      });
    }
    expect(outs.direct[0]!.toString().split('\n')).toHaveLength(20_002);
    expect(outs.direct[1]!.toString()).toMatch(/^id,t,b,ts,n,a,j\n"1","row 1\t""tab"" \\ ü ✓","\\x/);
    expect(outs.sluice.map(sha256)).toEqual(outs.direct.map(sha256));
  });

  it('postgres.js: a client CopyFail ends the COPY the same way, nothing written, connection usable', async () => {
    const observed: Record<Side, unknown> = {} as never;
    for (const side of SIDES) {
      observed[side] = await withSql(side, async (sql) => {
        const t = `copy_${side}_fail`;
        await sql.unsafe(`CREATE TABLE ${t} (id int, s text)`);
        const [{ pid }] = (await sql.unsafe('SELECT pg_backend_pid() AS pid')) as unknown as [{ pid: number }];
        const w = await sql.unsafe(`COPY ${t} FROM STDIN`).writable();
        const failed = new Promise((resolve) => w.on('error', (e: Error) => resolve(e.message)));
        w.write('1\tpartial\n');
        w.destroy(new Error('client gave up')); // postgres.js sends CopyFail with this message
        const clientError = await failed;
        // Same backend afterwards: the COPY ended with CopyFail, not with a dropped connection (postgres.js reconnects silently).
        const [after] = await sql.unsafe(`SELECT count(*)::int AS n, pg_backend_pid() = ${pid} AS same_backend FROM ${t}`);
        return { clientError, after };
      });
    }
    expect(observed.direct).toEqual({ clientError: 'client gave up', after: { n: 0, same_backend: true } });
    expect(observed.sluice).toEqual(observed.direct);
  });

  it('psql: a bad row in the middle of a long \\copy FROM STDIN fails the same way, nothing written', async () => {
    const good = (from: number) => Array.from({ length: 5000 }, (_, i) => `${from + i}\tok ${from + i}\n`).join('');
    const script = 'CREATE TABLE copy_bad (id int, s text);\n\\copy copy_bad FROM STDIN\n' + good(1) + 'three\tbad\n' + good(5001) +
      '\\.\nSELECT count(*) FROM copy_bad;\nDROP TABLE copy_bad;\n';
    const runs: ProcResult[] = [];
    for (const side of SIDES) runs.push(await psql(urlOf(env, side), ['-A', '-t', '-f', '-'], { input: script }));
    const [d, s] = runs as [ProcResult, ProcResult];
    expect(d.stdout.toString()).toBe('CREATE TABLE\n0\nDROP TABLE\n');
    expect(d.stderr).toBe('psql:<stdin>:10004: ERROR:  invalid input syntax for type integer: "three"\nCONTEXT:  COPY copy_bad, line 5001, column id: "three"\n');
    expect({ out: s.stdout.toString(), err: s.stderr, code: s.code }).toEqual({ out: d.stdout.toString(), err: d.stderr, code: d.code });
  });

  it('psql: \\copy a 100k-row CSV file in and out gives the same files and output', async () => {
    const csv = Array.from({ length: 100_000 }, (_, i) => `${i},"name ${i}, with comma",${i % 7 === 0 ? '' : `"q""uote ${i}"`}\n`).join('');
    const runs: Record<Side, { res: ProcResult; out: Buffer }> = {} as never;
    for (const side of SIDES) {
      const scratch = scratchDir(`copy-${side}`);
      try {
        writeFileSync(join(scratch.dir, 'in.csv'), csv);
        const t = `copy_${side}_psql`;
        const script = [
          `CREATE TABLE ${t} (id int, name text, q text);`,
          `\\copy ${t} FROM 'in.csv' (FORMAT csv)`,
          `\\copy ${t} FROM 'in.csv' (FORMAT csv, FORCE_NOT_NULL (q))`,
          `\\copy (SELECT * FROM ${t} ORDER BY id, q NULLS FIRST) TO 'out.csv' (FORMAT csv)`,
          `SELECT count(*), count(q), md5(string_agg(name || coalesce(q, '~'), '' ORDER BY id, q NULLS FIRST)) FROM ${t};`,
          `\\copy ${t} FROM 'in.csv' (FORMAT text)`,
          `DROP TABLE ${t};`,
        ].join('\n');
        const res = await psql(urlOf(env, side), ['-A', '-t', '-f', '-'], { cwd: scratch.dir, input: script });
        runs[side] = { res, out: readFileSync(join(scratch.dir, 'out.csv')) };
      } finally {
        scratch.remove();
      }
    }
    const d = runs.direct.res;
    expect(d.code).toBe(0);
    expect(d.stdout.toString()).toMatch(/^CREATE TABLE\nCOPY 100000\nCOPY 100000\nCOPY 200000\n200000\|185714\|[0-9a-f]{32}\nDROP TABLE\n$/);
    expect(d.stderr).toMatch(/^psql:<stdin>:6: ERROR: {2}invalid input syntax for type integer: "0,"name 0, with comma","\nCONTEXT: {2}COPY copy_direct_psql, line 1, column id: /);
    expect(runs.direct.out.length).toBeGreaterThan(4_000_000);
    const s = runs.sluice.res;
    expect(s.stdout.toString()).toBe(d.stdout.toString());
    expect(s.stderr).toBe(d.stderr.replaceAll('copy_direct_psql', 'copy_sluice_psql'));
    expect(s.code).toBe(d.code);
    expect(runs.sluice.out.equals(runs.direct.out)).toBe(true);
  });

  it('psql: binary COPY TO STDOUT is byte-identical and loads back through Sluice', async () => {
    const sql = 'COPY (SELECT * FROM copy_src ORDER BY id NULLS LAST) TO STDOUT (FORMAT binary)';
    const [direct, viaSluice] = await Promise.all(SIDES.map((side) => psql(urlOf(env, side), ['-c', sql]))) as [ProcResult, ProcResult];
    expect(direct.code).toBe(0);
    expect(direct.stderr).toBe('');
    expect(direct.stdout.subarray(0, 11)).toEqual(Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'));
    expect(direct.stdout.length).toBeGreaterThan(1_000_000);
    expect(viaSluice.code).toBe(0);
    expect(viaSluice.stderr).toBe('');
    expect(viaSluice.stdout.equals(direct.stdout)).toBe(true);

    // And back in: binary COPY FROM STDIN through Sluice, then the two tables hold the same rows.
    const scratch = scratchDir('copy-bin');
    const before = lastSessionId(env.sluice);
    try {
      writeFileSync(join(scratch.dir, 'data.bin'), direct.stdout);
      const load = await psql(env.proxied, ['-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', '-'], {
        cwd: scratch.dir,
        input: `CREATE TABLE copy_sluice_bin (LIKE copy_src);\n\\copy copy_sluice_bin FROM 'data.bin' (FORMAT binary)\n` +
          'SELECT count(*) FROM ((TABLE copy_src EXCEPT ALL TABLE copy_sluice_bin) UNION ALL (TABLE copy_sluice_bin EXCEPT ALL TABLE copy_src)) AS diff;\n' +
          'SELECT count(*) /* copy-bin-marker */ FROM copy_sluice_bin;\n',
      });
      expect({ code: load.code, stderr: load.stderr, stdout: load.stdout.toString() }).toEqual({ code: 0, stderr: '', stdout: 'CREATE TABLE\nCOPY 20001\n0\n20001\n' });
    } finally {
      scratch.remove();
    }
    // The COPY statement was recorded as psql sent it (its data is not a statement).
    const session = sessionWith(env.sluice, before, 'copy-bin-marker');
    const texts = env.sluice.broker.audit.listStatements(session.id).map((s) => `${s.protocol}:${s.text}`);
    expect(texts).toContain("simple:COPY  copy_sluice_bin FROM STDIN (FORMAT binary)");
    expect(texts).toHaveLength(4);
  });
});
