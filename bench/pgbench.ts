/** pgbench invocation and output parsing. */
import { runCommand } from './proc.js';

export interface Conn {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export type QueryMode = 'simple' | 'prepared' | 'extended';

export interface PgbenchResult {
  tps: number;
  /** "number of transactions actually processed"; with -S each transaction is exactly one statement. */
  transactions: number;
}

/** Connection through libpq environment variables, so the password never appears in `ps`. */
function env(conn: Conn): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  return {
    ...base,
    PGHOST: conn.host,
    PGPORT: String(conn.port),
    PGUSER: conn.user,
    PGPASSWORD: conn.password,
    PGDATABASE: conn.database,
    // The comparison is of proxies, not of TLS stacks.
    PGSSLMODE: 'disable',
  };
}

export async function pgbenchInit(conn: Conn, scale: number): Promise<void> {
  const r = await runCommand('pgbench', ['-i', '-q', '-s', String(scale)], { env: env(conn) });
  if (r.code !== 0) throw new Error(`pgbench -i failed: ${r.stderr.trim()}`);
}

export async function pgbenchRun(
  conn: Conn,
  mode: QueryMode,
  clients: number,
  threads: number,
  seconds: number,
): Promise<PgbenchResult> {
  // -n: no VACUUM before the run (it would go through the proxy under test, and a policy may refuse it).
  const args = ['-n', '-S', '-M', mode, '-c', String(clients), '-j', String(threads), '-T', String(seconds)];
  const r = await runCommand('pgbench', args, { env: env(conn), timeoutMs: (seconds + 60) * 1000 });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  const tx = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  if (r.code !== 0 || !tps || !tx) {
    const why = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n');
    throw new Error(`pgbench ${args.join(' ')} failed (exit ${r.code}): ${why}`);
  }
  return { tps: Number(tps[1]), transactions: Number(tx[1]) };
}
