/**
 * The server half of masking (issue 4 "The wire"): which result each RowDescription and DataRow belongs to, its
 * mask plan, and the rows rewritten under it. Only a session masking applies to has one; every frame of it passes
 * through `onFrame`, but only DataRows of a result with an active plan are decoded and re-encoded.
 *
 * Replies come in the order the client's messages were forwarded
 * (https://www.postgresql.org/docs/current/protocol-flow.html). RowDescription and NoData answer a Describe or a
 * simple Query's statement, so a FIFO of those (tagged with the request cycle they belong to) says whose each one
 * is; entries the server skipped after an error are dropped at their cycle's ReadyForQuery. Before every Execute
 * Sluice sends its own Describe of the portal: its reply gives the plan for exactly the rows that follow (with the
 * formats Bind chose), whether or not the client described, and is swallowed.
 */
import { DataRowError, rewriteDataRow, type MaskPlan, type PlanField, type StatementTaint } from '../masking/index.js';
import { Backend } from '../protocol/codes.js';
import { cstr, parseErrorFields, readCString, typed, type PgError } from '../protocol/messages.js';
import type { MaskSession } from './mask-session.js';

const ROW_DESCRIPTION = 0x54; // T
const NO_DATA = 0x6e; // n
const DATA_ROW = 0x44; // D
const COMMAND_COMPLETE = 0x43; // C
const EMPTY_QUERY = 0x49; // I
const PORTAL_SUSPENDED = 0x73; // s

type Expect =
  /** A simple Query: its statements' results in order. */
  | { kind: 'query'; cycle: number; taints: readonly (StatementTaint | null)[] | null; index: number }
  /** The client's own Describe: its reply passes. */
  | { kind: 'describe'; cycle: number }
  /** Sluice's Describe before an Execute: its reply is swallowed and plans the rows that follow. */
  | { kind: 'own'; cycle: number; taint: StatementTaint | null };

/** What happens to one server frame. */
export type MaskVerdict =
  | { kind: 'pass'; frame: Buffer }
  | { kind: 'drop' }
  /** Refuse the running result: send this error in its place and withhold the rest of the cycle. */
  | { kind: 'refuse'; error: PgError }
  /** The plan needs a catalog reload first: call again with the same frame once `ready` settles. */
  | { kind: 'wait'; ready: Promise<unknown> };

/** A Describe of portal `name`. */
export function describePortal(name: string): Buffer {
  return typed(0x44, Buffer.concat([Buffer.from([0x50]), cstr(name)]));
}

export class MaskResults {
  /** Told how many columns of the current result are masked, when it has a mask plan (for its audit record). */
  onMasked: ((fields: number) => void) | null = null;
  private readonly fifo: Expect[] = [];
  private head = 0;
  /** Cycles (Query or Sync) forwarded, and answered by ReadyForQuery. */
  private sent = 0;
  private answered = 0;
  private plan: MaskPlan | null = null;
  /** Set once a reload was awaited for the current RowDescription: unknown OIDs then stay unknown (masked). */
  private reloaded = false;

  constructor(private readonly session: MaskSession) {}

  // Client side, in forwarding order.
  query(taints: readonly (StatementTaint | null)[] | null): void {
    this.fifo.push({ kind: 'query', cycle: this.sent, taints, index: 0 });
    this.sent++;
  }

  /** A Sync or a refused Query: one ReadyForQuery, no result. */
  cycle(): void {
    this.sent++;
  }

  describe(): void {
    this.fifo.push({ kind: 'describe', cycle: this.sent });
  }

  own(taint: StatementTaint | null): void {
    this.fifo.push({ kind: 'own', cycle: this.sent, taint });
  }

  /** Server side: one frame in, in order. */
  onFrame(f: Buffer): MaskVerdict {
    switch (f[0]) {
      case DATA_ROW: {
        const plan = this.plan;
        if (!plan?.active) return { kind: 'pass', frame: f };
        try {
          return { kind: 'pass', frame: rewriteDataRow(f, plan.maskers) };
        } catch (e) {
          if (!(e instanceof DataRowError)) throw e;
          // A row that does not match its plan is never forwarded.
          this.plan = null;
          return { kind: 'refuse', error: { severity: 'ERROR', code: 'XX000', message: `Sluice withheld the rest of the result: a row did not match its masking plan (${e.message})`, hint: 'Report this to the Sluice operator.' } };
        }
      }
      case ROW_DESCRIPTION:
        return this.onDescription(f);
      case NO_DATA: {
        const e = this.peek();
        if (e && e.kind !== 'query') this.head++;
        this.plan = null;
        return e?.kind === 'own' ? { kind: 'drop' } : { kind: 'pass', frame: f };
      }
      case COMMAND_COMPLETE:
      case EMPTY_QUERY: {
        const e = this.peek();
        if (e?.kind === 'query') e.index++;
        this.plan = null;
        return { kind: 'pass', frame: f };
      }
      case PORTAL_SUSPENDED:
        this.plan = null;
        return { kind: 'pass', frame: f };
      case Backend.ErrorResponse:
      case Backend.NoticeResponse:
        if (f[0] === Backend.ErrorResponse) this.plan = null;
        return { kind: 'pass', frame: scrubEcho(f) };
      case Backend.ReadyForQuery:
        this.answered++;
        this.plan = null;
        while (this.head < this.fifo.length && this.fifo[this.head]!.cycle < this.answered) this.head++;
        this.compact();
        return { kind: 'pass', frame: f };
      default:
        return { kind: 'pass', frame: f };
    }
  }

  private peek(): Expect | undefined {
    return this.fifo[this.head];
  }

  private compact(): void {
    if (this.head === this.fifo.length) {
      this.fifo.length = 0;
      this.head = 0;
    } else if (this.head > 256) {
      this.fifo.splice(0, this.head);
      this.head = 0;
    }
  }

  private onDescription(f: Buffer): MaskVerdict {
    const e = this.peek();
    if (e?.kind === 'describe') {
      this.head++;
      return { kind: 'pass', frame: f };
    }
    const fields = readRowDescription(f);
    if (!fields) {
      return { kind: 'refuse', error: { severity: 'ERROR', code: 'XX000', message: 'Sluice withheld a result: its row description could not be read', hint: 'Report this to the Sluice operator.' } };
    }
    if (!this.reloaded && this.session.needsReload(fields.map((x) => x.tableOid))) {
      this.reloaded = true;
      return { kind: 'wait', ready: this.session.ensure(fields.map((x) => x.tableOid)) };
    }
    this.reloaded = false;
    // No entry (a reply Sluice cannot place) plans with no taint: every field without provenance is masked.
    const taint = e?.kind === 'own' ? e.taint : e?.kind === 'query' ? e.taints?.[e.index] ?? null : null;
    if (e?.kind === 'own') this.head++;
    const outcome = this.session.plan(fields, taint);
    if (!outcome.ok) {
      this.plan = null;
      const r = outcome.refusal;
      return { kind: 'refuse', error: { severity: 'ERROR', code: r.code, message: r.message, hint: r.hint } };
    }
    this.plan = outcome.plan;
    if (outcome.plan.active) this.onMasked?.(outcome.plan.maskers.reduce((n, m) => n + (m ? 1 : 0), 0));
    return e?.kind === 'own' ? { kind: 'drop' } : { kind: 'pass', frame: f };
  }
}

/**
 * RowDescription: Int16 field count, then per field: name (cstring), table OID (Int32), attnum (Int16), type OID
 * (Int32), type size (Int16), type modifier (Int32), format (Int16).
 */
export function readRowDescription(f: Buffer): PlanField[] | null {
  if (f.length < 7) return null;
  const n = f.readInt16BE(5);
  const out: PlanField[] = [];
  let at = 7;
  for (let i = 0; i < n; i++) {
    const name = readCString(f, at);
    if (!name || name[1] + 18 > f.length) return null;
    at = name[1];
    const format = f.readInt16BE(at + 16);
    if (format !== 0 && format !== 1) return null;
    out.push({ name: name[0], tableOid: f.readUInt32BE(at), attnum: f.readInt16BE(at + 4), typeOid: f.readUInt32BE(at + 6), format });
    at += 18;
  }
  return at === f.length ? out : null;
}

/** SQLSTATE classes whose messages and details quote values: data exceptions (22) and integrity violations (23). */
const ECHO_CLASSES = new Set(['22', '23']);

/**
 * An error or notice that may quote a row or a value ("Failing row contains (...)", "Key (email)=(...) already
 * exists", `invalid input syntax for type integer: "..."`) loses the quoted part: in a session masking applies to,
 * it could be a masked value the client may not see (and the audit records the message).
 */
export function scrubEcho(f: Buffer): Buffer {
  const fields = parseErrorFields(f);
  if (!ECHO_CLASSES.has((fields.C ?? '').slice(0, 2))) return f;
  const withheld = '(withheld by Sluice: masking applies to this session)';
  const out: Buffer[] = [];
  let removed = false;
  for (const [k, v] of Object.entries(fields)) {
    // Detail and context quote rows and values.
    if (k === 'D' || k === 'W') {
      removed = true;
      continue;
    }
    let value = v;
    if (k === 'M') {
      const cut = v.search(/:\s*["(]/);
      value = cut >= 0 ? `${v.slice(0, cut)} ${withheld}` : v;
    }
    out.push(cstr(k + value));
  }
  if (removed) out.push(cstr('D' + `The detail of this error ${withheld}.`));
  out.push(Buffer.from([0]));
  return typed(f[0]!, Buffer.concat(out));
}
