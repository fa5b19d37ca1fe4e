/**
 * Soak: pgbench and agent-like sessions (reads of a masked column, writes, writes that wait for an operator who
 * approves them), masking on for every session, through
 * one Sluice for a while (10 s under `npm test`, 10 minutes under `npm run test:stress`). Sluice's RSS is sampled
 * every second (no growth trend in the long form), and statements executed are counted on both sides: what the
 * clients saw succeed equals what the audit store recorded as completed.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL_POLICY, startSluice, type RunningSluice } from '../harness/sluice.js';
import { startPostgres, type PgCluster } from '../harness/postgres.js';
import { PGBENCH, runProcess, cleanEnv } from '../integration/clients/util.js';
import { pick, report, rssMb, STRESS } from './metrics.js';

const SECONDS = pick(10, 600);
const PGBENCH_SELECT = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;';
let cluster: PgCluster;
let sluice: RunningSluice;
beforeAll(async () => {
  cluster = await startPostgres();
  const direct = { PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'app', PGPASSWORD: cluster.roles.app.password, PGDATABASE: 'app' };
  const init = await runProcess(PGBENCH, ['-i', '-q', '-s', String(pick(1, 10))], { env: cleanEnv(direct) });
  expect(init.code, init.stderr).toBe(0);
  await cluster.sql(`CREATE TABLE soak_log (id bigserial, v int); CREATE TABLE soak_reviewed (v int);
    CREATE TABLE soak_people AS SELECT g AS id, 'person' || g || '@example.com' AS email FROM generate_series(0, 99) g;
    ALTER TABLE soak_log OWNER TO app; ALTER TABLE soak_reviewed OWNER TO app; ALTER TABLE soak_people OWNER TO app;`, 'app');
  const rule = ALLOW_ALL_POLICY.rules[0]!;
  sluice = await startSluice(cluster, {
    config: {
      policy: { rules: [{ ...rule, tables: { 'public.soak_reviewed': { review: ['write'] } } }] },
      // Masking is on for every session of the soak (pgbench's too: their results are planned, nothing is masked).
      masking: { rules: [{ name: 'emails', columns: ['public.soak_people.email'], method: 'email' }] },
    },
  });
  // The operator: approves every request a little later, as a person at the inbox would.
  sluice.broker.events.on((e) => {
    if (e.type === 'approval_requested') setTimeout(() => sluice.broker.approvals.decide(e.approval.id, { decision: 'approve_once' }, 'soak-operator'), 5);
  });
}, 300_000);
afterAll(async () => {
  await sluice?.close();
  await cluster?.stop();
});

/** Least-squares slope of RSS over time, in MB per minute. */
function slopeMbPerMin(samples: { t: number; mb: number }[]): number {
  const n = samples.length;
  const mt = samples.reduce((s, x) => s + x.t, 0) / n;
  const mm = samples.reduce((s, x) => s + x.mb, 0) / n;
  const num = samples.reduce((s, x) => s + (x.t - mt) * (x.mb - mm), 0);
  const den = samples.reduce((s, x) => s + (x.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60_000;
}

describe('soak', () => {
  it(`${SECONDS} s of pgbench and agents with approvals and masking: RSS steady, audited = executed`, async () => {
    const samples: { t: number; mb: number }[] = [];
    const t0 = Date.now();
    const sampler = setInterval(() => samples.push({ t: Date.now() - t0, mb: rssMb() }), 1000);
    const viaSluice = { PGHOST: '127.0.0.1', PGPORT: String(sluice.port), PGUSER: 'agent', PGPASSWORD: sluice.key, PGDATABASE: 'app', PGAPPNAME: 'soak-pgbench', PGSSLMODE: 'disable' };
    const bench = runProcess(PGBENCH, ['-n', '-S', '-M', 'prepared', '-c', '8', '-j', '2', '-T', String(SECONDS)], { env: cleanEnv(viaSluice), timeoutMs: (SECONDS + 120) * 1000 });

    const deadline = Date.now() + SECONDS * 1000;
    const agentOk: Record<string, number> = {};
    const agents = Array.from({ length: 4 }, async (_, a) => {
      const c = new pg.Client({ connectionString: sluice.url(), application_name: `soak-agent-${a}` });
      await c.connect();
      let i = 0;
      while (Date.now() < deadline) {
        const sql = i % 10 === 9 ? `INSERT INTO soak_reviewed VALUES (${i})` : i % 3 === 0 ? `INSERT INTO soak_log (v) VALUES (${i})`
          : i % 3 === 1 ? `SELECT id, email FROM soak_people WHERE id = ${i % 100}` : 'SELECT count(*) FROM soak_log';
        const r = await c.query(sql);
        if (sql.includes('soak_people') && r.rows[0]?.email !== '***@example.com') throw new Error(`unmasked email: ${String(r.rows[0]?.email)}`);
        agentOk[`soak-agent-${a}`] = (agentOk[`soak-agent-${a}`] ?? 0) + 1;
        i++;
      }
      await c.end();
    });
    await Promise.all(agents);
    const b = await bench;
    clearInterval(sampler);
    expect(b.code, b.stderr).toBe(0);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(b.stdout.toString())?.[1]);
    await new Promise((r) => setTimeout(r, 300)); // completions are committed within 100 ms

    const db = sluice.broker.db;
    const completed = (app: string, extra = '') => (db.prepare(
      `SELECT count(*) AS n FROM statements s JOIN sessions x ON x.id = s.session_id JOIN statement_results r ON r.statement_id = s.id
        WHERE x.application_name = ? AND r.error_code IS NULL AND s.protocol IN ('simple', 'execute') ${extra}`,
    ).get(app) as { n: number }).n;
    const pgbenchAudited = completed('soak-pgbench', `AND s.text = '${PGBENCH_SELECT}'`);
    for (const [app, ok] of Object.entries(agentOk)) expect(completed(app), app).toBe(ok);
    // pgbench counts a transaction when its result arrives; the audit counts it when the server completes it.
    expect(pgbenchAudited).toBeGreaterThanOrEqual(processed);
    expect(pgbenchAudited - processed).toBeLessThanOrEqual(8);

    const first = samples.slice(0, Math.max(1, Math.floor(samples.length / 5)));
    const last = samples.slice(-Math.max(1, Math.floor(samples.length / 5)));
    const avg = (xs: { mb: number }[]) => Math.round(xs.reduce((s, x) => s + x.mb, 0) / xs.length);
    const slope = slopeMbPerMin(samples.slice(Math.floor(samples.length / 5))); // after warm-up
    report('soak', {
      seconds: SECONDS, pgbenchTransactions: processed, pgbenchAudited, agentStatements: Object.values(agentOk).reduce((s, n) => s + n, 0),
      approvals: Object.values(agentOk).length ? (db.prepare(`SELECT count(*) AS n FROM audit_events WHERE kind = 'approval_resolved'`).get() as { n: number }).n : 0,
      rssFirstFifthMb: avg(first), rssLastFifthMb: avg(last), rssMaxMb: Math.max(...samples.map((s) => s.mb)), rssSlopeMbPerMin: Math.round(slope * 10) / 10,
    });
    if (STRESS) expect(slope, 'RSS grows steadily').toBeLessThan(5);
  }, (SECONDS + 300) * 1000);
});
