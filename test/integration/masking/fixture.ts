/**
 * Shared by the masking integration tests: a throwaway PostgreSQL with tables whose masked columns hold unique
 * canary strings, a side connection to it as the target role, and helpers that run a statement the way the
 * proxy will: taint from the parse tree, statement check, RowDescription from the server, plan, DataRows rewritten.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { CatalogSnapshot, loadCatalog } from '../../../src/masking/catalog.js';
import { parseSearchPath, DEFAULT_SEARCH_PATH } from '../../../src/masking/catalog-snapshot.js';
import { buildDataRow, readDataRow, rewriteDataRow } from '../../../src/masking/datarow.js';
import type { MaskingInput } from '../../../src/masking/model.js';
import { MaskingSchema } from '../../../src/masking/model.js';
import { buildMaskPlan, checkStatement, type PlanOutcome, type StatementCheck } from '../../../src/masking/plan.js';
import { bindMasking, MaskResolver } from '../../../src/masking/rules.js';
import { taintText } from '../../../src/masking/taint.js';
import { openSideConnection, type OpenSideConnection } from '../../../src/proxy/side-connection-impl.js';
import type { UpstreamTarget } from '../../../src/proxy/upstream.js';
import type { PgCluster } from '../../harness/postgres.js';

export const CANARY = {
  email1: 'canary-mail-7f3a@example.com',
  email2: 'canary-mail-91bc@example.org',
  ssn1: 'CANARY-SSN-552-19-8841',
  secretBase: 'CANARY-SECRET-BASE-4471',
  secretChild: 'CANARY-SECRET-CHILD-9032',
  payload: 'CANARY-PAYLOAD-3310',
  card: 'CANARY-CARD-4111222233334444',
} as const;

export const SETUP_SQL = `
CREATE TABLE customers (id int PRIMARY KEY, email text, ssn varchar(32), name text);
INSERT INTO customers VALUES (1, '${CANARY.email1}', '${CANARY.ssn1}', 'Alice'), (2, '${CANARY.email2}', NULL, 'Bob');
CREATE TABLE orders (id int, customer_id int, card text, total numeric);
INSERT INTO orders VALUES (10, 1, '${CANARY.card}', 12.5);
CREATE VIEW v_customers AS SELECT id, email AS contact, upper(name) AS uname, ssn || '' AS ssn2 FROM customers;
CREATE VIEW v_contacts AS SELECT contact, id FROM v_customers;
CREATE TABLE events (id int, at date, payload text) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO events VALUES (1, '2024-05-01', '${CANARY.payload}');
CREATE TABLE base (id int, secret text);
CREATE TABLE child (extra int) INHERITS (base);
INSERT INTO base VALUES (1, '${CANARY.secretBase}');
INSERT INTO child VALUES (2, '${CANARY.secretChild}', 7);
CREATE SCHEMA other;
CREATE TABLE other.customers (id int, email text);
INSERT INTO other.customers VALUES (1, 'not-secret@example.com');
CREATE TABLE other.orders (id int, card text);
INSERT INTO other.orders VALUES (1, 'not-a-card');
CREATE FUNCTION public.leak() RETURNS SETOF text LANGUAGE sql AS 'SELECT email FROM customers';
GRANT ALL ON ALL TABLES IN SCHEMA public, other TO app;
GRANT USAGE ON SCHEMA other TO app;
`;

export const MASKING: MaskingInput = {
  rules: [
    { name: 'pii-email', columns: ['public.customers.email'], method: 'email' },
    { name: 'ssn', columns: ['public.customers.ssn'], method: { kind: 'partial', first: 0, last: 4 } },
    // Named on the partition: data read through the parent is masked too.
    { name: 'payload', columns: ['public.events_2024.payload'], method: 'redact' },
    // Named on the inheritance parent: children are masked too.
    { name: 'secret', columns: ['public.base.secret'], method: 'hash' },
    { name: 'card', columns: ['public.orders.card'], method: 'redact', derived: 'deny', predicates: 'deny' },
    { name: 'exempt', columns: ['public.customers.name'], method: 'redact', except: { groups: ['staff'] } },
  ],
};

export function targetOf(cluster: PgCluster, user = 'app'): { target: UpstreamTarget; password: string } {
  const role = user === 'postgres' ? { password: cluster.password } : cluster.roles.app;
  return {
    target: { name: 'app', host: cluster.host, port: cluster.port, database: 'app', user, tls: { mode: 'disable' } },
    password: role.password,
  };
}

export function openSide(cluster: PgCluster, user = 'app'): Promise<OpenSideConnection> {
  const { target, password } = targetOf(cluster, user);
  return openSideConnection(target, password, { timeoutMs: 10_000, maxServerMessageBytes: 1 << 24 });
}

export const KEY = randomBytes(32);

export interface Ran {
  check: StatementCheck;
  plan: PlanOutcome | null;
  /** Every byte the client would see: the masked rows (as frames). */
  frames: Buffer[];
  /** The masked rows as text. */
  rows: (string | null)[][];
}

export class Env {
  readonly resolver: MaskResolver;
  constructor(
    readonly side: OpenSideConnection,
    readonly cat: CatalogSnapshot,
    groups: string[] = [],
  ) {
    const bound = bindMasking(MaskingSchema.parse(MASKING), { identity: { name: 'agent', groups }, target: 'app' });
    this.resolver = new MaskResolver(bound, cat);
  }

  static async open(cluster: PgCluster, groups: string[] = []): Promise<Env> {
    const side = await openSide(cluster);
    return new Env(side, await loadCatalog(side, 1), groups);
  }

  taint(sql: string) {
    const t = taintText(sql, this.cat, { searchPath: parseSearchPath(DEFAULT_SEARCH_PATH, 'app') });
    expect(t, `parses: ${sql}`).not.toBeNull();
    return t![0]!;
  }

  /** Check, describe, plan, run and mask one statement as the proxy would (text format). */
  async run(sql: string): Promise<Ran> {
    const t = this.taint(sql);
    const check = checkStatement(t, this.resolver);
    if (check.verdict === 'deny') return { check, plan: null, frames: [], rows: [] };
    const fields = await this.side.describe(sql);
    const plan = buildMaskPlan(fields.map((f) => ({ ...f, format: 0 as const })), t, this.resolver, KEY);
    if (!plan.ok) return { check, plan, frames: [], rows: [] };
    const result = await this.side.query(sql);
    const frames = result.rows.map((r) => rewriteDataRow(buildDataRow(r), plan.plan.maskers));
    const rows = frames.map((f) => readDataRow(f).map((v) => (v === null ? null : v.toString('utf8'))));
    return { check, plan, frames, rows };
  }
}

/** No canary string appears in any frame, in any letter case (upper()/lower() must not slip through). */
export function expectNoCanary(frames: Buffer[], what: string): void {
  for (const f of frames) {
    const text = f.toString('latin1').toLowerCase();
    for (const c of Object.values(CANARY)) expect(text.includes(c.toLowerCase()), `${what}: leaked ${c}`).toBe(false);
  }
}
