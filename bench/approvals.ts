/**
 * Approval latency, with 16 other sessions busy (pgbench -S through the same Sluice): from the moment a client
 * sends a review statement to the approval_requested event, and from the operator's approve to the first row
 * reaching the client. Targets (issue: approvals): p99 ≤ 10 ms and ≤ 50 ms. The broker runs in this process, as
 * it does in the desktop app's main process. Prints numbers; asserts nothing.
 *
 *   npm run build && node dist/bench/approvals.js [--statements 300] [--seconds 20]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createBroker } from '../src/broker.js';
import { ConfigSchema } from '../src/config/model.js';
import { startPostgres } from '../test/harness/postgres.js';
import { pgbenchInit, pgbenchRun } from './pgbench.js';

const { values: args } = parseArgs({ options: { statements: { type: 'string', default: '300' }, seconds: { type: 'string', default: '20' } } });
const STATEMENTS = Number(args.statements);
const SECONDS = Number(args.seconds);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const cluster = await startPostgres({ settings: { shared_buffers: '256MB' } });
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-bench-approvals-'));
  const broker = createBroker(ConfigSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    dataDir,
    targets: [{ name: 'bench', host: cluster.host, port: cluster.port, database: 'app', user: 'app', password: { env: 'BENCH_PG_PASSWORD' }, tls: { mode: 'disable' } }],
    policy: { rules: [{ name: 'bench', match: { groups: ['bench'] }, allow: ['read', 'transaction', 'session'], review: ['write'] }] },
  }), { env: { ...process.env, BENCH_PG_PASSWORD: cluster.roles.app.password }, log: () => {} });
  try {
    const { port } = await broker.listen();
    const { secret } = broker.keys.add('bench', { groups: ['bench'] });
    const direct = { host: cluster.host, port: cluster.port, user: 'app', password: cluster.roles.app.password, database: 'app' };
    await pgbenchInit(direct, 10);
    await cluster.sql('CREATE TABLE approvals_bench (i int); ALTER TABLE approvals_bench OWNER TO app;', 'app');

    // The operator: approves each request as soon as it is seen, and notes when that was.
    const requested = new Map<string, number>();
    const approvedAt = new Map<string, number>();
    broker.events.on((e) => {
      if (e.type !== 'approval_requested') return;
      const now = performance.now();
      requested.set(e.approval.statement, now);
      approvedAt.set(e.approval.statement, now);
      broker.approvals.decide(e.approval.id, { decision: 'approve_once' }, 'bench');
    });

    const busy = pgbenchRun({ host: '127.0.0.1', port, user: 'bench', password: secret, database: 'bench' }, 'prepared', 16, 2, SECONDS);
    await new Promise((r) => setTimeout(r, 1000)); // let the 16 sessions get going
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'bench', password: secret, database: 'bench' });
    await c.connect();
    const toEvent: number[] = [];
    const toRow: number[] = [];
    const deadline = Date.now() + (SECONDS - 2) * 1000;
    for (let i = 0; i < STATEMENTS && Date.now() < deadline; i++) {
      const text = `INSERT INTO approvals_bench VALUES (${i}) RETURNING i`;
      const t0 = performance.now();
      const r = await c.query(text);
      const t2 = performance.now();
      if (r.rows[0]?.i !== i) throw new Error(`statement ${i} did not return its row`);
      toEvent.push(requested.get(text)! - t0);
      toRow.push(t2 - approvedAt.get(text)!);
    }
    await c.end();
    const tps = (await busy).tps;
    toEvent.sort((a, b) => a - b);
    toRow.sort((a, b) => a - b);
    const row = (name: string, xs: number[], target: number) =>
      `${name.padEnd(34)} ${percentile(xs, 50).toFixed(2).padStart(7)} ${percentile(xs, 99).toFixed(2).padStart(7)} ${xs.at(-1)!.toFixed(2).padStart(7)}   ≤ ${target} ms p99: ${percentile(xs, 99) <= target ? 'met' : 'MISSED'}`;
    console.log(`\napprovals: ${toEvent.length} review statements, 16 busy sessions alongside (pgbench -S -M prepared, ${tps.toFixed(0)} TPS)\n`);
    console.log(`${''.padEnd(34)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'max ms'.padStart(7)}`);
    console.log(row('statement sent -> approval event', toEvent, 10));
    console.log(row('approve -> first row at the client', toRow, 50));
  } finally {
    await broker.close();
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
