/**
 * The blast radius shown with an approval: how many rows an UPDATE, DELETE or INSERT ... SELECT would touch, as
 * the planner estimates it. Sluice asks the target with EXPLAIN on its own side connection, never EXPLAIN ANALYZE
 * (which would run the statement), and runs nothing but that EXPLAIN of a statement it has parsed itself.
 *
 * Belt and braces, because planning can evaluate functions (constant folding runs immutable ones, selectivity
 * estimation stable ones): the EXPLAIN runs inside a READ ONLY transaction that is always rolled back, with a short
 * statement_timeout. PostgreSQL skips the read-only check for EXPLAIN without ANALYZE (EXEC_FLAG_EXPLAIN_ONLY),
 * so the plan of a write can still be produced there.
 * https://www.postgresql.org/docs/current/sql-explain.html
 */
import type { ImpactEstimate } from '../contract/api.js';
import type { SideConnection } from '../proxy/side-connection.js';
import { parse } from '../sql/parser.js';

export interface ImpactOptions {
  /** statement_timeout for the EXPLAIN, in ms (default 5000). */
  timeoutMs?: number;
}

type Operation = Extract<ImpactEstimate, { kind: 'estimate' }>['operation'];

/** Which statements get an estimate: exactly one UPDATE, DELETE or INSERT ... SELECT. The span is its text. */
export function estimableStatement(text: string): { ok: true; operation: Operation; text: string } | { ok: false; reason: string } {
  const parsed = parse(text);
  if (!parsed.ok) return { ok: false, reason: `not parsed: ${parsed.message}` };
  const stmts = parsed.tree.stmts ?? [];
  if (stmts.length !== 1) return { ok: false, reason: `an estimate is made for a single statement, this message holds ${stmts.length}` };
  const raw = stmts[0]!;
  const node = (raw.stmt ?? {}) as Record<string, unknown>;
  const kind = Object.keys(node)[0];
  let operation: Operation;
  if (kind === 'UpdateStmt') operation = 'update';
  else if (kind === 'DeleteStmt') operation = 'delete';
  else if (kind === 'InsertStmt') {
    const select = ((node.InsertStmt as { selectStmt?: { SelectStmt?: { valuesLists?: unknown[] } } }).selectStmt)?.SelectStmt;
    if (!select) return { ok: false, reason: 'INSERT ... DEFAULT VALUES writes one row' };
    if (select.valuesLists) return { ok: false, reason: 'INSERT ... VALUES writes the rows it lists' };
    operation = 'insert';
  } else {
    return { ok: false, reason: `estimates are made for UPDATE, DELETE and INSERT ... SELECT, not ${kind ?? 'an empty statement'}` };
  }
  // Locations are UTF-8 byte offsets; a length of 0 means "to the end".
  const bytes = Buffer.from(text, 'utf8');
  const start = raw.stmt_location ?? 0;
  const end = raw.stmt_len ? start + raw.stmt_len : bytes.length;
  return { ok: true, operation, text: bytes.subarray(start, end).toString('utf8') };
}

// One EXPLAIN at a time per side connection: its BEGIN ... ROLLBACK must not interleave with another caller's.
const busy = new WeakMap<SideConnection, Promise<unknown>>();

/** Estimated rows a write would touch. Never throws: failures come back as `unavailable` with the reason. */
export async function estimateImpact(
  conn: SideConnection,
  text: string,
  params: readonly (string | null)[] | null,
  opts: ImpactOptions = {},
): Promise<ImpactEstimate> {
  const target = estimableStatement(text);
  if (!target.ok) return { kind: 'not_applicable', reason: target.reason };
  const previous = busy.get(conn) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => explain(conn, target.text, target.operation, params, opts.timeoutMs ?? 5000));
  busy.set(conn, run);
  try {
    return await run;
  } catch (err) {
    return { kind: 'unavailable', reason: `EXPLAIN failed: ${(err as Error).message}` };
  } finally {
    if (busy.get(conn) === run) busy.delete(conn);
  }
}

async function explain(conn: SideConnection, statement: string, operation: Operation, params: readonly (string | null)[] | null, timeoutMs: number): Promise<ImpactEstimate> {
  await conn.query('BEGIN TRANSACTION READ ONLY');
  try {
    await conn.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
    // Prefixing is safe: `statement` is exactly one statement, as PostgreSQL's own parser delimited it.
    const sql = `EXPLAIN (FORMAT JSON, VERBOSE) ${statement}`;
    const result = params && params.length > 0 ? await conn.query(sql, [...params]) : await conn.query(sql);
    const json = result.rows[0]?.[0];
    if (typeof json !== 'string') return { kind: 'unavailable', reason: 'EXPLAIN returned no plan' };
    return fromPlan(JSON.parse(json) as unknown, operation);
  } finally {
    await conn.query('ROLLBACK');
  }
}

interface PlanNode {
  'Node Type'?: string;
  'Parent Relationship'?: string;
  'Plan Rows'?: number;
  'Relation Name'?: string;
  Schema?: string;
  Plans?: PlanNode[];
}

/** Sums the rows feeding every ModifyTable node (a rule can add plans); their own Plan Rows is 0 without RETURNING. */
export function fromPlan(plans: unknown, operation: Operation): ImpactEstimate {
  if (!Array.isArray(plans)) return { kind: 'unavailable', reason: 'EXPLAIN output is not a list of plans' };
  let rows = 0;
  let found = 0;
  let relation: string | null = null;
  const visit = (node: PlanNode | undefined): void => {
    if (!node || typeof node !== 'object') return;
    if (node['Node Type'] === 'ModifyTable') {
      const source = (node.Plans ?? []).find((p) => p['Parent Relationship'] === 'Outer' || p['Parent Relationship'] === 'Member') ?? node.Plans?.[0];
      rows += source?.['Plan Rows'] ?? node['Plan Rows'] ?? 0;
      found++;
      relation ??= node['Relation Name'] ? (node.Schema ? `${node.Schema}.${node['Relation Name']}` : node['Relation Name']) : null;
      return;
    }
    for (const child of node.Plans ?? []) visit(child);
  };
  for (const p of plans as { Plan?: PlanNode }[]) visit(p?.Plan);
  if (found === 0) return { kind: 'unavailable', reason: 'the plan writes no table (a rule may replace the statement)' };
  return { kind: 'estimate', rows: Math.round(rows), operation, relation, source: 'EXPLAIN (FORMAT JSON)' };
}
