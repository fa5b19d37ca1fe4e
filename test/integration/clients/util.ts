/**
 * Helpers shared by the real-client tests: run the same thing directly against PostgreSQL and through Sluice,
 * then compare. "Direct" is role `app` on database `app`; through Sluice it is agent `agent` on target `app`,
 * which Sluice connects upstream as role `app` on database `app`: the same session as far as the server knows.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { StatementRow, SessionRow } from '../../../src/audit/audit-log.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { startSluice, type RunningSluice } from '../../harness/sluice.js';

export const PSQL = '/usr/bin/psql';
export const PGBENCH = '/usr/bin/pgbench';

export interface Env {
  cluster: PgCluster;
  sluice: RunningSluice;
  /** libpq/node-postgres URL straight to PostgreSQL as role app, database app. */
  direct: string;
  /** The same through Sluice: agent key, target app. */
  proxied: string;
  stop(): Promise<void>;
}

export type Side = 'direct' | 'sluice';
export const SIDES: readonly Side[] = ['direct', 'sluice'];

/** One cluster and one Sluice for a test file. */
export async function startEnv(): Promise<Env> {
  const cluster = await startPostgres();
  let sluice: RunningSluice;
  try {
    sluice = await startSluice(cluster);
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return {
    cluster,
    sluice,
    direct: `${cluster.url('app', cluster.roles.app.password, 'app')}?sslmode=disable`,
    proxied: sluice.url(),
    async stop() {
      await sluice.close();
      await cluster.stop();
    },
  };
}

export const urlOf = (env: Env, side: Side): string => (side === 'direct' ? env.direct : env.proxied);

/** The caller's PG* variables (PGHOST, PGOPTIONS, PGSERVICE, ...) would change what libpq tools do. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  return { ...env, LC_ALL: 'C', LANG: 'C', ...extra };
}

export interface ProcResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Spawns a program, feeds it `input`, collects its output as bytes; rejects only if it cannot be started. */
export function runProcess(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {},
): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => { /* the program may exit before reading all input */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** psql with no psqlrc, errors not fatal, as the brief's baseline; `args` come after the connection string. */
export function psql(url: string, args: string[], opts: { cwd?: string; input?: string | Buffer } = {}): Promise<ProcResult> {
  return runProcess(PSQL, ['-X', '-v', 'ON_ERROR_STOP=0', '-d', url, ...args], { ...opts, env: cleanEnv() });
}

/** A scratch directory removed by the returned function. */
export function scratchDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `sluice-clients-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `fn` with a connected node-postgres client, always ending it. */
export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>, config: Partial<pg.ClientConfig> = {}): Promise<T> {
  const c = new pg.Client({ connectionString: url, ...config });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Query options of pg 8.23 that @types/pg does not declare. */
export type PgQueryConfig = pg.QueryConfig & { queryMode?: 'extended'; binary?: boolean; rowMode?: 'array' };

/** Runs a query with options @types/pg does not know (queryMode, binary). */
export function pgQuery(c: pg.Client, config: PgQueryConfig): Promise<pg.QueryResult> {
  return c.query(config as pg.QueryConfig);
}

/** pg.Client members present at runtime (pg 8.23) but missing from @types/pg. */
export interface PgClientInternals {
  processID: number;
  secretKey: number;
  /** Opens a new connection (this client's config) and sends a CancelRequest for `client`'s running `query`. */
  cancel(client: pg.Client, query: pg.Query): void;
  connection: { stream: { destroy(): void } };
}
export const internals = (c: pg.Client): PgClientInternals => c as unknown as PgClientInternals;

/** Sends a raw CancelRequest (protocol 3, code 80877102) and waits until the receiver closes the connection. */
export function sendCancelRequest(port: number, pid: number, secret: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const msg = Buffer.alloc(16);
    msg.writeInt32BE(16, 0);
    msg.writeInt32BE(80877102, 4);
    msg.writeInt32BE(pid, 8);
    msg.writeInt32BE(secret, 12);
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(msg));
    s.on('data', () => { /* nothing is expected; PostgreSQL answers a cancel by closing */ });
    s.on('error', reject);
    s.on('close', () => resolve());
  });
}

/** Polls until `fn` returns (or resolves to) a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Highest session id recorded so far (0 if none): sessions opened later have larger ids. */
export function lastSessionId(s: RunningSluice): number {
  return s.broker.audit.listSessions(1)[0]?.id ?? 0;
}

/** Sessions opened after `afterId`, oldest first. */
export function sessionsAfter(s: RunningSluice, afterId: number): SessionRow[] {
  return s.broker.audit.listSessions(10_000).filter((r) => r.id > afterId).reverse();
}

/** Every statement of the sessions opened after `afterId`, in session then seq order. */
export function statementsAfter(s: RunningSluice, afterId: number): StatementRow[] {
  return sessionsAfter(s, afterId).flatMap((r) => s.broker.audit.listStatements(r.id));
}

/** The single session opened after `afterId` whose statements include `marker` (a unique comment or literal). */
export function sessionWith(s: RunningSluice, afterId: number, marker: string): SessionRow {
  const hits = sessionsAfter(s, afterId).filter((r) => s.broker.audit.listStatements(r.id).some((st) => st.text.includes(marker)));
  if (hits.length !== 1) throw new Error(`expected one session with ${JSON.stringify(marker)}, found ${hits.length}`);
  return hits[0]!;
}

/** Counts by key. */
export function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) {
    const k = key(i);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An error reduced to what a client can observe of it, for comparing direct with Sluice. */
export function errorShape(e: unknown): Record<string, unknown> {
  if (typeof e !== 'object' || e === null || typeof (e as { message?: unknown }).message !== 'string') return { thrown: String(e) };
  const x = e as Record<string, unknown>;
  const pick = ['code', 'severity', 'detail', 'hint', 'position', 'where', 'schema', 'table', 'column', 'constraint', 'routine'];
  const out: Record<string, unknown> = { message: x.message };
  for (const k of pick) if (x[k] !== undefined) out[k] = x[k];
  return out;
}

/** Runs `fn` and returns its value, or the shape of the error it threw. */
export async function outcome<T>(fn: () => Promise<T>): Promise<{ ok: T } | { error: Record<string, unknown> }> {
  try {
    return { ok: await fn() };
  } catch (e) {
    return { error: errorShape(e) };
  }
}
