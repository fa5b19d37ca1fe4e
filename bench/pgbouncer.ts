/** PgBouncer 1.18 in session mode in front of the bench database: the baseline every proxy is compared to. */
import { chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../test/harness/net.js';
import type { Owner } from '../test/harness/postgres.js';
import type { Conn } from './pgbench.js';
import { startDaemon, type Daemon } from './proc.js';

export const PGBOUNCER_BIN = process.env['SLUICE_PGBOUNCER'] ?? '/usr/sbin/pgbouncer';

const quote = (s: string): string => `"${s.replaceAll('"', '""')}"`;

/** `dir` must be writable by `owner` (pgbouncer refuses to run as root and writes its log there). */
export async function startPgbouncer(dir: string, upstream: Conn, owner: Owner | undefined): Promise<Daemon & { port: number }> {
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  const userlist = join(dir, 'userlist.txt');
  // A plaintext password in the userlist lets PgBouncer both verify the client's SCRAM exchange and run its own
  // SCRAM exchange with PostgreSQL.
  await writeFile(userlist, `${quote(upstream.user)} ${quote(upstream.password)}\n`, { mode: 0o600 });
  await writeFile(
    ini,
    [
      '[databases]',
      `${upstream.database} = host=${upstream.host} port=${upstream.port} dbname=${upstream.database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${userlist}`,
      'pool_mode = session',
      // Enough server connections that -c 16 never queues inside PgBouncer.
      'default_pool_size = 20',
      'max_client_conn = 100',
      // pgjdbc and some drivers send it; PgBouncer refuses unknown startup parameters otherwise.
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  if (owner) for (const f of [ini, userlist]) await chown(f, owner.uid, owner.gid);
  // Foreground (no -d), spawned directly as the postgres user, so the PID we hold is PgBouncer's own.
  const daemon = await startDaemon('pgbouncer', PGBOUNCER_BIN, [ini], { cwd: dir, port, ...(owner ?? {}) });
  return { ...daemon, port };
}
