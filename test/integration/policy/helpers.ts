/**
 * Shared by the policy integration tests: one PostgreSQL and one Sluice per file, a superuser connection to check
 * the data behind Sluice's back, refusal assertions (SQLSTATE, message naming class/object/rule, audit row) and a
 * raw protocol client for pipelines no driver sends.
 */
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { expect } from 'vitest';
import type { StatementRow } from '../../../src/audit/audit-log.js';
import { parseErrorFields, startupMessage } from '../../../src/protocol/messages.js';
import type { PolicyInput } from '../../../src/policy/model.js';
import { startPostgres, type PgCluster } from '../../harness/postgres.js';
import { startSluice, type RunningSluice } from '../../harness/sluice.js';
import { RawClient, type BackendFrame } from '../../redteam/raw-client.js';

export { serialize };
export { query } from '../../redteam/raw-client.js';

export interface PolicyEnv {
  cluster: PgCluster;
  sluice: RunningSluice;
  /** Superuser on database `app`: sees the data as it really is. */
  admin: pg.Client;
  stop(): Promise<void>;
}

/**
 * A cluster with `setupSql` run as superuser in database `app`, and a Sluice with `policy`. An operator denies every
 * approval request at once unless `operator: 'none'` (then the test decides).
 */
export async function startPolicyEnv(policy: PolicyInput, setupSql: string, opts: { operator?: 'denies' | 'none' } = {}): Promise<PolicyEnv> {
  const cluster = await startPostgres();
  try {
    await cluster.sql(setupSql, 'app');
    const sluice = await startSluice(cluster, { config: { policy } });
    // These tests are about policy, not operators: whatever policy sends to review is denied at once.
    if (opts.operator !== 'none') sluice.broker.events.on((e) => {
      if (e.type === 'approval_requested') sluice.broker.approvals.decide(e.approval.id, { decision: 'deny', reason: 'no operator approves in this test' }, 'test');
    });
    const admin = new pg.Client({ connectionString: cluster.url('postgres', cluster.password, 'app') });
    await admin.connect();
    return {
      cluster,
      sluice,
      admin,
      async stop() {
        await admin.end().catch(() => {});
        await sluice.close();
        await cluster.stop();
      },
    };
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

/** One value from the superuser connection. */
export async function scalar<T = unknown>(env: PolicyEnv, sql: string, params: unknown[] = []): Promise<T> {
  const r = await env.admin.query(sql, params);
  return Object.values(r.rows[0] as Record<string, unknown>)[0] as T;
}

export async function count(env: PolicyEnv, table: string): Promise<number> {
  return Number(await scalar(env, `SELECT count(*) FROM ${table}`));
}

/** Runs `fn` with a node-postgres client through Sluice (or any URL), always ending it. */
export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>, config: Partial<pg.ClientConfig> = {}): Promise<T> {
  const c = new pg.Client({ connectionString: url, ...config });
  c.on('error', () => { /* a FATAL from Sluice ends the client; the test asserts on the query instead */ });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<pg.DatabaseError> {
  try {
    await p;
  } catch (e) {
    return e as pg.DatabaseError;
  }
  throw new Error('expected the statement to be refused, but it ran');
}

export interface Expected {
  code?: string;
  /** The rule the message and the audit name. */
  rule: string;
  /** Statement class the message names. */
  cls?: string;
  /** Object the message names (table, function, construct). */
  object?: string;
  decision?: 'deny' | 'review';
}

/** Checks a policy refusal as the client saw it: SQLSTATE, message naming class/object/rule, a hint. */
export function expectRefusal(err: { code?: string; message: string; hint?: string }, x: Expected): void {
  expect(err.code, err.message).toBe(x.code ?? '42501');
  expect(err.message).toContain(`(rule "${x.rule}")`);
  if (x.cls !== undefined) expect(err.message).toMatch(new RegExp(`Sluice policy (refuses|sends) ${x.cls}\\b`));
  if (x.object !== undefined) {
    // An unqualified relation is named as the server resolves it when Sluice is sure (names.ts), else as written.
    const qualified = x.object.includes('.') || x.object.includes('(') ? '' : '(?:[a-z_][a-z0-9_]*\\.)?';
    expect(err.message).toMatch(new RegExp(` on ${qualified}${x.object.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `));
  }
  if (x.decision === 'review') expect(err.message).toContain('to review');
  if (x.decision === 'deny') expect(err.message).toContain('Sluice policy refuses');
  expect(err.hint ?? '').not.toBe('');
}

/** The latest audit row (any session) whose text is exactly `text`. */
export function auditRow(sluice: RunningSluice, text: string): StatementRow {
  for (const s of sluice.broker.audit.listSessions(10_000)) {
    const rows = sluice.broker.audit.listStatements(s.id).filter((r) => r.text === text);
    if (rows.length > 0) return rows[rows.length - 1]!;
  }
  throw new Error(`no audit row with text ${JSON.stringify(text)}`);
}

/** The latest audit record of `text` (any session): decision, rule and the objects it names (`r:app.orders`). */
export function lastAudit(sluice: RunningSluice, text: string): { decision: string; rule: string; objects: string[] } {
  const r = sluice.broker.db
    .prepare('SELECT decision, rule, objects FROM statements WHERE text = ? ORDER BY id DESC LIMIT 1')
    .get(text) as { decision: string; rule: string; objects: string | null } | undefined;
  if (r === undefined) throw new Error(`no audit row with text ${JSON.stringify(text)}`);
  return { decision: r.decision, rule: r.rule, objects: JSON.parse(r.objects ?? '[]') as string[] };
}

/** Asserts the audit row of `text`: decision and rule (and, for refusals, that the reason is the message sent). */
export function expectAudit(sluice: RunningSluice, text: string, decision: 'allow' | 'deny' | 'review', rule: string, reason?: string): StatementRow {
  const row = auditRow(sluice, text);
  expect({ decision: row.decision, rule: row.rule }, text).toEqual({ decision, rule });
  if (decision === 'allow') expect(row.reason).toBeNull();
  else if (reason !== undefined) expect(reason).toContain(row.reason!);
  return row;
}

/** Runs `sql`, expects a policy refusal and checks message and audit. Returns the error. */
export async function refused(sluice: RunningSluice, c: pg.Client, sql: string, x: Expected): Promise<pg.DatabaseError> {
  const err = await rejection(c.query(sql));
  expectRefusal(err, x);
  // Every refusal is recorded as deny (a review an operator denied too: its reason says so).
  expectAudit(sluice, sql, 'deny', x.rule, err.message);
  return err;
}

/** A raw client logged in through Sluice (cleartext password to Sluice, as every client does). */
export async function rawThroughSluice(sluice: RunningSluice, opts: { user?: string; password?: string; extra?: Record<string, string> } = {}): Promise<RawClient> {
  const c = await RawClient.connect(sluice.port);
  await c.login(opts.user ?? 'agent', opts.password ?? sluice.key, 'app', opts.extra ?? {});
  return c;
}

/** A raw client straight to PostgreSQL as `trustuser` (hba trust), for comparing with what the server itself does. */
export async function rawDirect(cluster: PgCluster): Promise<RawClient> {
  const c = await RawClient.connect(cluster.port);
  c.write(startupMessage({ user: 'trustuser', database: 'app' }));
  const frames = await c.readUntil('Z');
  if (frames.some((f) => f.code === 'E')) throw new Error('direct login failed');
  return c;
}

/** Reads frames until `n` ReadyForQuery have arrived (ErrorResponses included, not thrown). */
export async function readReady(c: RawClient, n = 1): Promise<BackendFrame[]> {
  const out: BackendFrame[] = [];
  let seen = 0;
  while (seen < n) {
    const f = await c.frame();
    out.push(f);
    if (f.code === 'Z') seen++;
  }
  return out;
}

/**
 * Frames as short strings: 'E:42501', 'C:INSERT 0 1', 'D:<first column>', 'Z:I'; other codes as the letter.
 * Asynchronous messages (NoticeResponse, ParameterStatus) are left out.
 */
export function summary(frames: readonly BackendFrame[]): string[] {
  const out: string[] = [];
  for (const { code, frame } of frames) {
    if (code === 'N' || code === 'S') continue;
    if (code === 'E') out.push(`E:${parseErrorFields(frame).C}`);
    else if (code === 'C') out.push(`C:${frame.toString('utf8', 5, frame.length - 1)}`);
    else if (code === 'Z') out.push(`Z:${String.fromCharCode(frame[5]!)}`);
    else if (code === 'D') {
      const n = frame.readInt16BE(5);
      const len = n > 0 ? frame.readInt32BE(7) : -1;
      out.push(`D:${len < 0 ? 'NULL' : frame.toString('utf8', 11, 11 + len)}`);
    } else out.push(code);
  }
  return out;
}

/** The ErrorResponse fields of the first error among `frames`. */
export function firstError(frames: readonly BackendFrame[]): Record<string, string> {
  const f = frames.find((x) => x.code === 'E');
  if (!f) throw new Error(`no ErrorResponse in ${summary(frames).join(' ')}`);
  return parseErrorFields(f.frame);
}

/** Parse + Bind + Execute (+ Sync) of `text`, unnamed unless `name` is given. */
export function pbe(text: string, opts: { name?: string; values?: unknown[]; sync?: boolean } = {}): Buffer {
  const parts = [
    serialize.parse({ name: opts.name ?? '', text }),
    serialize.bind({ statement: opts.name ?? '', values: opts.values ?? [] }),
    serialize.execute({}),
  ];
  if (opts.sync !== false) parts.push(serialize.sync());
  return Buffer.concat(parts);
}

/** Whether backend `pid` is still connected, straight from pg_stat_activity. */
export async function backendAlive(env: PolicyEnv, pid: number): Promise<boolean> {
  return (await env.admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 1;
}
