/**
 * pgbench's TPC-B-like script through Sluice leaves the database in exactly the state the same run leaves it
 * in directly. Two databases cloned from one `pgbench -i -s 1`; the same invocation (fixed --random-seed,
 * fixed -t) runs straight against A and through Sluice against B; then both are read directly and compared.
 *
 * Why the comparison is meaningful: pgbench 15 gives every client its own random state, seeded from
 * --random-seed in client order, so with -t fixed each client draws the same (aid, tid, bid, delta) sequence
 * on every run. Balances are sums of deltas and history is a multiset of rows, so the end state does not
 * depend on how the 4 clients interleave. Checked empirically before writing this: two direct runs with the
 * same seed gave identical state with -j 1, 2 and 4 alike; -j 1 is kept anyway as the simplest case. The
 * control test below re-checks that (same seed: equal, other seed: different) so a silent loss of
 * determinism fails here instead of making the comparison vacuous.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { startSluice, type RunningSluice } from '../../harness/sluice.js';
import { cleanEnv, PGBENCH, runProcess, withPg, type ProcResult } from './util.js';

const MODES = ['simple', 'extended', 'prepared'] as const;
type Mode = (typeof MODES)[number];
const CLIENTS = 4;
const TX_PER_CLIENT = 200;
const TX = CLIENTS * TX_PER_CLIENT;
const SEED = 20240611;

let cluster: PgCluster;
let sluice: RunningSluice;

beforeAll(async () => {
  cluster = await startPostgres();
  const { app } = cluster.roles;
  const init = await runProcess(PGBENCH, ['-i', '-s', '1', '-q', '-h', cluster.host, '-p', String(cluster.port), '-U', app.user, 'app'], {
    env: cleanEnv({ PGPASSWORD: app.password, PGSSLMODE: 'disable' }),
  });
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  // Clones of the initialised database: byte-for-byte the same starting state for every run.
  const dbs = [...MODES.flatMap((m) => [`direct_${m}`, `sluice_${m}`]), 'control_a', 'control_b', 'control_other'];
  await cluster.sql(dbs.map((db) => `CREATE DATABASE ${db} OWNER app TEMPLATE app;`).join('\n'));
  const base = { host: cluster.host, port: cluster.port, user: 'app', password: { env: 'APP_PG_PASSWORD' }, tls: { mode: 'disable' as const } };
  sluice = await startSluice(cluster, {
    config: {
      targets: MODES.map((m) => ({ ...base, name: `bench_${m}`, database: `sluice_${m}` })),
      // Just what the TPC-B-like script and pgbench's startup lookups need, nothing more.
      policy: { rules: [{ name: 'pgbench-tpcb', match: { identities: ['agent'] }, allow: ['read', 'write', 'transaction'] }] },
    },
  });
}, 120_000);
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

/** The built-in tpcb-like script (no -f, no -S/-N), 4 clients on one thread, fixed seed and transaction count. */
function pgbench(mode: Mode, to: { direct: string } | { target: string }, seed = SEED): Promise<ProcResult> {
  const conn = 'direct' in to
    ? { host: cluster.host, port: cluster.port, user: 'app', password: cluster.roles.app.password, db: to.direct }
    : { host: sluice.host, port: sluice.port, user: 'agent', password: sluice.key, db: to.target };
  return runProcess(PGBENCH, [
    '-n', '-t', String(TX_PER_CLIENT), '-c', String(CLIENTS), '-j', '1', '-M', mode, `--random-seed=${seed}`,
    '-h', conn.host, '-p', String(conn.port), '-U', conn.user, conn.db,
  ], { env: cleanEnv({ PGPASSWORD: conn.password, PGSSLMODE: 'disable' }), timeoutMs: 180_000 });
}

/** What the run changed, read directly from `db`: balances that moved, and the history as count, sum and multiset. */
function stateOf(db: string) {
  return withPg(`${cluster.url('app', cluster.roles.app.password, db)}?sslmode=disable`, async (c) => {
    const rows = async (sql: string) => (await c.query(sql)).rows as Record<string, string | number>[];
    return {
      accounts: await rows('SELECT aid, abalance FROM pgbench_accounts WHERE abalance <> 0 ORDER BY aid'),
      tellers: await rows('SELECT tid, tbalance FROM pgbench_tellers WHERE tbalance <> 0 ORDER BY tid'),
      branches: await rows('SELECT bid, bbalance FROM pgbench_branches WHERE bbalance <> 0 ORDER BY bid'),
      history: (await rows(`SELECT count(*)::int AS n, sum(delta)::bigint AS delta_sum,
        md5(string_agg(concat_ws(':', tid, bid, aid, delta), ',' ORDER BY tid, bid, aid, delta)) AS multiset FROM pgbench_history`))[0]!,
    };
  });
}

/** pgbench's summary line, e.g. "800/800". */
function processed(res: ProcResult): string | undefined {
  return /number of transactions actually processed: (\d+\/\d+)/.exec(res.stdout.toString())?.[1];
}

function expectClean(res: ProcResult, mode: Mode, seed = SEED): void {
  // With --random-seed pgbench says so on stderr; anything else there is a problem.
  expect(res.stderr).toBe(`pgbench: setting random seed to ${seed}\n`);
  expect(res.code).toBe(0);
  const out = res.stdout.toString();
  expect(out).toContain(`query mode: ${mode}`);
  expect(out).toContain('number of failed transactions: 0 (0.000%)');
}

describe('pgbench through Sluice gives the same database state as direct', () => {
  it('control: a fixed seed makes two direct runs end in the same state, another seed does not', async () => {
    const [a, b, other] = [await pgbench('prepared', { direct: 'control_a' }), await pgbench('prepared', { direct: 'control_b' }),
      await pgbench('prepared', { direct: 'control_other' }, SEED + 1)];
    expectClean(a, 'prepared');
    expectClean(b, 'prepared');
    expectClean(other, 'prepared', SEED + 1);
    const sa = await stateOf('control_a');
    expect(sa.history).toMatchObject({ n: TX });
    expect(sa.accounts.length).toBeGreaterThan(TX / 2); // aids are drawn from 100000: nearly all distinct
    expect(await stateOf('control_b')).toEqual(sa);
    const so = await stateOf('control_other');
    expect(so.history.n).toBe(TX);
    expect(so.accounts).not.toEqual(sa.accounts);
    expect(so.history.multiset).not.toBe(sa.history.multiset);
  }, 120_000);

  for (const mode of MODES) {
    it(`-M ${mode}: same transactions processed, same balances, same history`, async () => {
      const direct = await pgbench(mode, { direct: `direct_${mode}` });
      const proxied = await pgbench(mode, { target: `bench_${mode}` });
      expectClean(direct, mode);
      expectClean(proxied, mode);
      expect(processed(direct)).toBe(`${TX}/${TX}`);
      expect(processed(proxied)).toBe(processed(direct));

      const a = await stateOf(`direct_${mode}`);
      const b = await stateOf(`sluice_${mode}`);
      expect(a.history.n).toBe(TX);
      expect(a.branches).toHaveLength(1); // -s 1: one branch, whose balance is the sum of every delta
      expect(String(a.branches[0]!.bbalance)).toBe(String(a.history.delta_sum));
      expect(b.accounts).toEqual(a.accounts);
      expect(b.tellers).toEqual(a.tellers);
      expect(b.branches).toEqual(a.branches);
      expect(b.history).toEqual(a.history);
    }, 180_000);
  }
});
