/**
 * A throwaway PostgreSQL 15 cluster for integration tests and benchmarks: its own temp dir, its own port on
 * 127.0.0.1, SCRAM by default, a few roles with known passwords, optional TLS with a throwaway CA.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificates } from './certs.js';
import { freePort } from './net.js';

/** Debian's layout; override with SLUICE_PG_BIN elsewhere. */
export const PG_BIN = process.env['SLUICE_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';

export interface StartPostgresOptions {
  ssl?: boolean;
  maxConnections?: number;
  /** Extra postgresql.conf settings; they win over the harness defaults. */
  settings?: Record<string, string>;
}

export interface RoleCredentials {
  user: string;
  /** Empty for trustuser, which has none. */
  password: string;
}

export interface PgCluster {
  host: '127.0.0.1';
  port: number;
  dataDir: string;
  socketDir: string;
  logFile: string;
  superuser: 'postgres';
  password: string;
  database: 'postgres';
  /**
   * app: SCRAM, LOGIN, owns database `app`. md5user: password stored as MD5, hba method md5.
   * trustuser: hba method trust, no password.
   */
  roles: { app: RoleCredentials; md5user: RoleCredentials; trustuser: RoleCredentials };
  /** Connection URL over TCP; defaults to the superuser and database `postgres`. */
  url(user?: string, password?: string, db?: string): string;
  /** Runs SQL through psql as the superuser (over the unix socket); throws with psql's stderr on failure. */
  sql(query: string, db?: string): Promise<void>;
  /** CA that signed the server certificate, when started with ssl. */
  caFile?: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/** initdb and the postmaster refuse to run as root; when we are root, child processes run as this user. */
const RUN_AS = 'postgres';

export interface Owner {
  uid: number;
  gid: number;
}

/** uid/gid to spawn PostgreSQL-family daemons with (they refuse root), or undefined when we are not root. */
export function ownerForChildren(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(`running as root: the '${RUN_AS}' OS user is needed to run PostgreSQL (initdb refuses root)`);
  }
}

/** PG* variables from the caller's shell (PGHOST, PGOPTIONS, ...) would redirect or alter psql and pg_ctl. */
function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  return { ...env, HOME: home, LC_ALL: 'C' };
}

interface Runner {
  owner: Owner | undefined;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

function run(r: Runner, cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: r.cwd, // the postgres user cannot necessarily read the caller's cwd
      env: r.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(r.owner ?? {}),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim() || out.trim()}`));
    });
    child.stdin.end(input ?? '');
  });
}

/** postgresql.conf quoting: single quotes, doubled inside. Every GUC accepts a quoted value. */
function confLine(key: string, value: string): string {
  return `${key} = '${value.replaceAll("'", "''")}'\n`;
}

// Clusters still running, stopped synchronously if the process exits without calling stop() (crash, forgotten
// afterAll). 'exit' handlers cannot await, hence execFileSync and immediate mode.
const live = new Map<string, { runner: Runner; dataDir: string; dir: string }>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live.values()) {
      try {
        execFileSync(join(PG_BIN, 'pg_ctl'), ['stop', '-D', c.dataDir, '-m', 'immediate', '-w', '-t', '10'], {
          cwd: c.runner.cwd, env: c.runner.env, stdio: 'ignore', ...(c.runner.owner ?? {}),
        });
      } catch {
        // already stopped or never started: nothing to do
      }
      rmSync(c.dir, { recursive: true, force: true });
    }
  });
}

const secret = (): string => randomBytes(18).toString('hex');

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PgCluster> {
  if (!existsSync(join(PG_BIN, 'initdb'))) {
    throw new Error(`no PostgreSQL at ${PG_BIN} (initdb missing): apt-get install -y postgresql-15, or set SLUICE_PG_BIN`);
  }
  const owner = ownerForChildren();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pg-'));
  if (owner) await chown(dir, owner.uid, owner.gid);
  const runner: Runner = { owner, cwd: dir, env: cleanEnv(dir) };
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const password = secret();
  const roles = {
    app: { user: 'app', password: secret() },
    md5user: { user: 'md5user', password: secret() },
    trustuser: { user: 'trustuser', password: '' },
  };
  installExitHook();
  live.set(dir, { runner, dataDir, dir });

  try {
    const pwfile = join(dir, 'pwfile');
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) await chown(pwfile, owner.uid, owner.gid);
    await run(runner, join(PG_BIN, 'initdb'), [
      '-D', dataDir, '-U', 'postgres', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256',
      '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
    ]);

    // Order matters: first match wins. Only 127.0.0.1 is listened on, so no other host lines are needed.
    await writeFile(
      join(dataDir, 'pg_hba.conf'),
      [
        'local all all trust',
        'host all md5user 127.0.0.1/32 md5',
        'host all trustuser 127.0.0.1/32 trust',
        'host all all 127.0.0.1/32 scram-sha-256',
        '',
      ].join('\n'),
    );

    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
      max_connections: String(opts.maxConnections ?? 120),
      shared_buffers: '64MB',
      // Durability is worthless for a throwaway cluster and fsync makes tests slow and noisy.
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      password_encryption: 'scram-sha-256',
    };
    let caFile: string | undefined;
    if (opts.ssl) {
      const certDir = join(dir, 'certs');
      await mkdir(certDir);
      const certs = await makeCertificates(certDir);
      // PostgreSQL refuses a key not owned by its own user (or root) with group/other access.
      if (owner) {
        await chown(certDir, owner.uid, owner.gid);
        for (const f of await readdir(certDir)) await chown(join(certDir, f), owner.uid, owner.gid);
      }
      await chmod(certs.keyFile, 0o600);
      Object.assign(settings, { ssl: 'on', ssl_cert_file: certs.certFile, ssl_key_file: certs.keyFile });
      caFile = certs.caFile;
    }
    Object.assign(settings, opts.settings ?? {});
    // Our settings live in their own included file so a port retry can rewrite them, and ALTER SYSTEM stays free.
    await appendFile(join(dataDir, 'postgresql.conf'), "\ninclude = 'sluice-harness.conf'\n");

    const pgCtl = join(PG_BIN, 'pg_ctl');
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      let conf = confLine('port', String(port));
      for (const [k, v] of Object.entries(settings)) conf += confLine(k, v);
      await writeFile(join(dataDir, 'sluice-harness.conf'), conf);
      try {
        await run(runner, pgCtl, ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60']);
        break;
      } catch (e) {
        const log = existsSync(logFile) ? await readFile(logFile, 'utf8') : '';
        // freePort can race with another process grabbing the port; anything else is a real failure.
        if (attempt < 4 && /could not bind|Address already in use/.test(log)) continue;
        throw new Error(`${(e as Error).message}\n--- ${logFile} ---\n${log.slice(-4000)}`);
      }
    }

    const psql = async (query: string, db = 'postgres'): Promise<void> => {
      await run(
        runner,
        join(PG_BIN, 'psql'),
        ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', 'postgres', '-d', db, '-f', '-'],
        query,
      );
    };

    // Passwords are hex, so no quoting concerns. md5user's password must be stored as MD5 for the md5 hba line
    // to accept it (a SCRAM verifier cannot answer an MD5 challenge).
    await psql(`
      CREATE ROLE app LOGIN PASSWORD '${roles.app.password}';
      CREATE DATABASE app OWNER app;
      SET password_encryption = 'md5';
      CREATE ROLE md5user LOGIN PASSWORD '${roles.md5user.password}';
      RESET password_encryption;
      CREATE ROLE trustuser LOGIN;
    `);

    const knownPassword = (user: string): string =>
      user === 'postgres' ? password : (Object.values(roles).find((r) => r.user === user)?.password ?? '');
    let stopping: Promise<void> | undefined;
    const cluster: PgCluster = {
      host: '127.0.0.1',
      port,
      dataDir,
      socketDir: dir,
      logFile,
      superuser: 'postgres',
      password,
      database: 'postgres',
      roles,
      url(user = 'postgres', pw = knownPassword(user), db = 'postgres') {
        const auth = pw ? `${encodeURIComponent(user)}:${encodeURIComponent(pw)}` : encodeURIComponent(user);
        return `postgres://${auth}@127.0.0.1:${port}/${encodeURIComponent(db)}`;
      },
      sql: psql,
      ...(caFile ? { caFile } : {}),
      stop() {
        stopping ??= (async () => {
          try {
            await run(runner, pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30']);
          } catch {
            await run(runner, pgCtl, ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '10']).catch(() => {});
          }
          live.delete(dir);
          rmSync(dir, { recursive: true, force: true });
        })();
        return stopping;
      },
      async restart() {
        await run(runner, pgCtl, ['restart', '-D', dataDir, '-l', logFile, '-m', 'fast', '-w', '-t', '60']);
      },
    };
    return cluster;
  } catch (e) {
    // Leave nothing behind when startup fails half way.
    const c = live.get(dir);
    live.delete(dir);
    if (c && existsSync(join(dataDir, 'postmaster.pid'))) {
      await run(runner, join(PG_BIN, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => {});
    }
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
