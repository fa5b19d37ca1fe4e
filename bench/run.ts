/**
 * `npm run bench`: pgbench -S against PostgreSQL directly, through PgBouncer (session mode), through a no-op
 * Node.js socket pipe and through Sluice, in interleaved rounds so drift (thermal, noisy neighbours) hits every
 * target alike. Prints median TPS, ratios to PgBouncer and proxy CPU per statement; writes bench/results/latest.json.
 *
 *   node dist/bench/run.js [--seconds 10] [--rounds 3] [--scale 10] [--pg postgres://user:pw@host:port/db]
 *                          [--only direct,pgbouncer,pipe,sluice] [--modes simple,prepared,extended]
 */
import { execFileSync } from 'node:child_process';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/harness/net.js';
import { ownerForChildren, startPostgres } from '../test/harness/postgres.js';
import { pgbenchInit, pgbenchRun, type Conn } from './pgbench.js';
import { PGBOUNCER_BIN, startPgbouncer } from './pgbouncer.js';
import { cpuSeconds, killRunningCommands, startDaemon } from './proc.js';
import { renderTables, summarize, TARGETS, type RunRecord, type Scenario, type TargetName } from './report.js';
import { startSluice } from './sluice.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench when compiled
const repoRoot = resolve(here, '..', '..');

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    scale: { type: 'string', default: '10' },
    pg: { type: 'string' },
    // For quick iterations: e.g. --only pgbouncer,sluice --modes prepared
    only: { type: 'string' },
    modes: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const scale = Number(args.scale);
/** Fewer than 3 rounds, or a subset of targets or modes: an iteration aid, kept apart from the bench's results. */
const quick = rounds < 3 || Boolean(args.only) || Boolean(args.modes);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer (got ${args.rounds})`);

const SCENARIOS: Scenario[] = [
  { mode: 'simple', clients: 16, threads: 2 },
  { mode: 'prepared', clients: 16, threads: 2 },
  { mode: 'extended', clients: 1, threads: 1 },
].filter((s) => !args.modes || args.modes.split(',').includes(s.mode)) as Scenario[];
const only = args.only?.split(',');

// Everything started is registered here and torn down in reverse order, on success, error or interrupt.
const cleanups: Array<() => Promise<unknown>> = [];
let shuttingDown: Promise<void> | undefined;
let interrupted = false;
function shutdown(): Promise<void> {
  shuttingDown ??= (async () => {
    for (const fn of cleanups.reverse()) await fn().catch((e: unknown) => console.error(`cleanup: ${String(e)}`));
  })();
  return shuttingDown;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: shutting down`);
    interrupted = true; // the run loop stops instead of benchmarking processes that are going away
    killRunningCommands();
    void shutdown().finally(() => process.exit(130));
  });
}

const log = (msg: string): void => console.log(msg);

function connFromUrl(url: string): Conn {
  const u = new URL(url);
  const user = decodeURIComponent(u.username) || 'postgres';
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user,
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)) || user,
  };
}

function version(cmd: string): string {
  try {
    return execFileSync(cmd, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const owner = ownerForChildren();
  const work = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  if (owner) await chown(work, owner.uid, owner.gid); // PgBouncer, run as postgres, must reach its subdir
  cleanups.push(() => rm(work, { recursive: true, force: true }));

  let upstream: Conn;
  if (args.pg) {
    upstream = connFromUrl(args.pg);
    log(`using PostgreSQL at ${upstream.host}:${upstream.port}/${upstream.database} as ${upstream.user}`);
  } else {
    log('starting a throwaway PostgreSQL 15 cluster');
    // Scale 10 is ~160 MB: let it fit in shared_buffers so every target reads from memory alike.
    const cluster = await startPostgres({ settings: { shared_buffers: '256MB' } });
    cleanups.push(() => cluster.stop());
    await cluster.sql('CREATE DATABASE bench OWNER app');
    const { app } = cluster.roles;
    upstream = { host: cluster.host, port: cluster.port, user: app.user, password: app.password, database: 'bench' };
  }
  log(`pgbench -i -s ${scale}`);
  const t0 = Date.now();
  await pgbenchInit(upstream, scale);
  log(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const targets = new Map<TargetName, { conn: Conn; pid?: number }>();
  targets.set('direct', { conn: upstream });

  const bouncerDir = join(work, 'pgbouncer');
  await mkdir(bouncerDir);
  if (owner) await chown(bouncerDir, owner.uid, owner.gid);
  const bouncer = await startPgbouncer(bouncerDir, upstream, owner);
  cleanups.push(() => bouncer.stop());
  targets.set('pgbouncer', { conn: { ...upstream, port: bouncer.port }, pid: bouncer.pid });

  const pipePort = await freePort();
  const pipe = await startDaemon('pipe', process.execPath, [join(here, 'pipe.js'), String(pipePort), upstream.host, String(upstream.port)], {
    ready: /listening on/,
  });
  cleanups.push(() => pipe.stop());
  targets.set('pipe', { conn: { ...upstream, port: pipePort }, pid: pipe.pid });

  let sluiceSkipped: string | undefined;
  try {
    const sluice = await startSluice(repoRoot, join(work, 'sluice'), upstream);
    if ('skipped' in sluice) sluiceSkipped = sluice.skipped;
    else {
      cleanups.push(() => sluice.daemon.stop());
      targets.set('sluice', { conn: sluice.conn, pid: sluice.daemon.pid });
    }
  } catch (e) {
    sluiceSkipped = `failed to start: ${(e as Error).message}`;
  }
  if (sluiceSkipped) log(`\n*** Sluice column skipped: ${sluiceSkipped}\n`);

  const runs: RunRecord[] = [];
  const order = TARGETS.filter((t) => targets.has(t) && (!only || only.includes(t)));
  for (let round = 1; round <= rounds; round++) {
    for (const sc of SCENARIOS) {
      // Rotate the order each round so no target always runs first (cold) or right after a heavy one.
      const rotated = order.map((_, i) => order[(i + round - 1) % order.length]!);
      for (const name of rotated) {
        if (interrupted) throw new Error('interrupted');
        const t = targets.get(name)!;
        const rec: RunRecord = { round, mode: sc.mode, clients: sc.clients, target: name };
        try {
          if (interrupted) throw new Error('interrupted');
          const cpu0 = t.pid ? cpuSeconds(t.pid) : 0;
          const r = await pgbenchRun(t.conn, sc.mode, sc.clients, sc.threads, seconds);
          rec.tps = r.tps;
          rec.statements = r.transactions;
          if (t.pid) rec.cpuUsPerStatement = ((cpuSeconds(t.pid) - cpu0) * 1e6) / r.transactions;
        } catch (e) {
          rec.error = (e as Error).message;
        }
        runs.push(rec);
        const cpu = rec.cpuUsPerStatement === undefined ? '' : `  ${rec.cpuUsPerStatement.toFixed(1)} µs/stmt`;
        const what = rec.error ? `ERROR ${rec.error}` : `${rec.tps!.toFixed(0)} TPS${cpu}`;
        log(`round ${round}/${rounds}  ${sc.mode.padEnd(8)} c=${String(sc.clients).padEnd(2)}  ${name.padEnd(9)}  ${what}`);
      }
    }
  }

  const summaries = summarize(SCENARIOS, runs);
  log(`\npgbench -S, ${rounds} round(s) of ${seconds} s, scale ${scale}, sslmode=disable, ${cpus().length} CPUs\n`);
  log(renderTables(summaries));
  if (sluiceSkipped) log(`\n(Sluice skipped: ${sluiceSkipped})`);

  // latest.json is always a full run (every target and mode, at least 3 interleaved rounds); quick runs go beside it.
  if (quick) log('\nA quick run (fewer than 3 rounds, or --only/--modes): not a bench result; written to quick.json.');
  const out = join(repoRoot, 'bench', 'results', quick ? 'quick.json' : 'latest.json');
  await mkdir(dirname(out), { recursive: true });
  const report = {
    date: new Date().toISOString(),
    options: { seconds, rounds, scale, externalPg: Boolean(args.pg), quick, only: args.only ?? null, modes: args.modes ?? null },
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, pgbench: version('pgbench'), pgbouncer: version(PGBOUNCER_BIN) },
    sluiceSkipped: sluiceSkipped ?? null,
    summaries,
    runs,
  };
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  log(`\nwrote ${out}`);
}

main().then(
  () => shutdown(),
  async (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
    await shutdown();
  },
);
