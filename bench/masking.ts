/**
 * Masking throughput (issue 4): a 100k-row SELECT with two masked text columns, read in text format
 * by node-postgres, direct and through Sluice in the same run, alternating, median of several
 * runs. Target: Sluice ≤ 1.5× direct. The broker runs in its own process (masking-broker.ts), as Sluice does in
 * production. Prints numbers; asserts nothing.
 *
 *   npm run build && node dist/bench/masking.js [--rows 100000] [--runs 5]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startPostgres } from '../test/harness/postgres.js';

const { values: args } = parseArgs({ options: { rows: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' } } });
const ROWS = Number(args.rows);
const RUNS = Number(args.runs);
const SQL = 'SELECT id, email, ssn, note FROM people';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The same shape without a masked column: what Sluice costs before masking. */
const PLAIN_SQL = 'SELECT id, note AS email, note AS ssn, note FROM people';

async function timeQuery(config: pg.ClientConfig, text = SQL): Promise<{ ms: number; sample: Record<string, unknown> }> {
  const c = new pg.Client(config);
  await c.connect();
  try {
    const t0 = performance.now();
    const r = await c.query({ text, rowMode: 'array' });
    const ms = performance.now() - t0;
    if (r.rows.length !== ROWS) throw new Error(`expected ${ROWS} rows, got ${r.rows.length}`);
    return { ms, sample: { row: r.rows[0] } };
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const cluster = await startPostgres({ settings: { shared_buffers: '256MB' } });
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-bench-masking-'));
  await cluster.sql(`
    CREATE TABLE people (id int, email text, ssn text, note text);
    INSERT INTO people SELECT i, 'person' || i || '@example.com', lpad(i::text, 9, '0'), 'note ' || i FROM generate_series(1, ${ROWS}) i;
    ALTER TABLE people OWNER TO app;`, 'app');
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    dataDir,
    targets: [{ name: 'bench', host: cluster.host, port: cluster.port, database: 'app', user: 'app', password: { env: 'BENCH_PG_PASSWORD' }, tls: { mode: 'disable' } }],
    policy: { rules: [{ name: 'bench', match: { groups: ['bench'] }, allow: ['read'] }] },
    masking: { rules: [
      { name: 'email', columns: ['public.people.email'], method: 'email' },
      { name: 'ssn', columns: ['public.people.ssn'], method: { kind: 'partial', first: 0, last: 4 } },
    ] },
  };
  // SLUICE_BENCH_NODE_ARGS passes Node flags to the broker process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.SLUICE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(dirname(fileURLToPath(import.meta.url)), 'masking-broker.js')], {
    env: { ...process.env, BENCH_PG_PASSWORD: cluster.roles.app.password, SLUICE_BENCH_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const [port, secret] = await new Promise<[number, string]>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ready (\d+) (\S+)/.exec(out);
        if (m) resolve([Number(m[1]), m[2]!]);
      });
      child.once('exit', (code) => reject(new Error(`the bench broker exited (${code})`)));
    });
    const direct = { host: cluster.host, port: cluster.port, user: 'app', password: cluster.roles.app.password, database: 'app' };
    const sluice = { host: '127.0.0.1', port, user: 'bench', password: secret, database: 'bench' };
    await timeQuery(direct); // warm the table and the JIT
    const warm = await timeQuery(sluice);
    const d: number[] = [];
    const s: number[] = [];
    const p: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      d.push((await timeQuery(direct)).ms);
      s.push((await timeQuery(sluice)).ms);
      p.push((await timeQuery(sluice, PLAIN_SQL)).ms);
    }
    const ratio = median(s) / median(d);
    console.log(`\nmasking: ${ROWS} rows, 2 masked text columns (email, partial), ${RUNS} runs each, alternating\n`);
    console.log(`  sample row through Sluice: ${JSON.stringify(warm.sample.row)}`);
    console.log(`  direct  median ${median(d).toFixed(1).padStart(8)} ms   (${d.map((x) => x.toFixed(0)).join(', ')})`);
    console.log(`  sluice  median ${median(s).toFixed(1).padStart(8)} ms   (${s.map((x) => x.toFixed(0)).join(', ')})`);
    console.log(`  sluice, no masked column  median ${median(p).toFixed(1)} ms (${(median(p) / median(d)).toFixed(2)}× direct)`);
    console.log(`  ratio   ${ratio.toFixed(2)}×   target ≤ 1.5×: ${ratio <= 1.5 ? 'met' : 'MISSED'}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
