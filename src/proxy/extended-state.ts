import { readCString } from '../protocol/messages.js';
import type { GateAudit } from './statement-gate.js';

/** What an Execute runs, for its audit record. */
export interface PreparedEntry {
  text: string;
  audit: GateAudit | null;
  /** Bind parameter values as text (binary ones as \x hex), set on portals. */
  params?: readonly (string | null)[];
  /** What its decision depended on (GateVerdict `scope`): a Bind under another scope decides it again. */
  scope?: string | null;
  /** Policy sent it to review: each Bind of it waits for an operator. */
  review?: { approvalTimeoutMs: number | null; policyMessage: string; maskedColumns: string[] };
}

/**
 * Per-connection tables of protocol-level prepared statements and portals, so an Execute is recorded with the
 * statement it runs and the decision taken at its Parse.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 */
export class ExtendedState {
  private readonly statements = new Map<string, PreparedEntry>();
  private readonly portals = new Map<string, PreparedEntry>();

  /** Parse: statement name and the raw query bytes (decoded strictly by the caller). */
  static readParse(frame: Buffer): { name: string; query: Buffer } | null {
    const name = readCString(frame, 5);
    if (!name) return null;
    const end = frame.indexOf(0, name[1]);
    if (end < 0) return null;
    return { name: name[0], query: frame.subarray(name[1], end) };
  }

  /**
   * Records a forwarded Parse at once (a Bind pipelined behind it must find it) and returns how to take it back:
   * the server may refuse it (a named statement that exists, a failed transaction) or skip it after an earlier error.
   */
  define(name: string, entry: PreparedEntry): Undo {
    return this.put(this.statements, name, entry);
  }

  /** A Bind's portal name, statement name and parameter values (as text); null when malformed. */
  static readBind(frame: Buffer): { portal: string; statement: string; params: (string | null)[] } | null {
    const portal = readCString(frame, 5);
    if (!portal) return null;
    const stmt = readCString(frame, portal[1]);
    if (!stmt) return null;
    const params = readBindParams(frame, stmt[1]);
    return params ? { portal: portal[0], statement: stmt[0], params } : null;
  }

  statement(name: string): PreparedEntry | undefined {
    return this.statements.get(name);
  }

  /** Bind (as read by readBind): records the portal; `note` (how its review ended) goes into its Executes' record. */
  bind(b: { portal: string; statement: string; params: (string | null)[] }, note?: string): Undo {
    const entry = this.statements.get(b.statement) ?? { text: sqlPrepared(b.statement), audit: null };
    const audit = note !== undefined && entry.audit ? { ...entry.audit, decision: 'allow' as const, reason: note } : entry.audit;
    return this.put(this.portals, b.portal, { text: entry.text, audit, params: b.params });
  }

  execute(frame: Buffer): { portal: string; entry: PreparedEntry } | null {
    const portal = readCString(frame, 5);
    if (!portal) return null;
    return { portal: portal[0], entry: this.portals.get(portal[0]) ?? { text: `-- portal "${portal[0]}" not bound through Sluice`, audit: null } };
  }

  /** Close: 'S' statement or 'P' portal, then the name. Null when the message is malformed. */
  close(frame: Buffer): { statement: string | null; undo: Undo } | null {
    const kind = frame[5];
    const name = readCString(frame, 6);
    if (!name || (kind !== 0x53 && kind !== 0x50)) return null;
    const table = kind === 0x53 ? this.statements : this.portals;
    return { statement: kind === 0x53 ? name[0] : null, undo: this.put(table, name[0], undefined) };
  }

  private put(table: Map<string, PreparedEntry>, name: string, entry: PreparedEntry | undefined): Undo {
    const prev = table.get(name);
    if (entry) table.set(name, entry);
    else table.delete(name);
    return () => {
      if (prev) table.set(name, prev);
      else table.delete(name);
    };
  }
}

/** Takes back a change the server did not confirm. */
export type Undo = () => void;

/**
 * The parameter values of a Bind, from `at` (after the two names): int16 format-code count and codes, int16 value
 * count, each value int32 length (-1 = NULL) and bytes, then the result format codes.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BIND
 */
function readBindParams(f: Buffer, at: number): (string | null)[] | null {
  if (at + 2 > f.length) return null;
  const nFormats = f.readInt16BE(at);
  at += 2;
  if (nFormats < 0 || at + 2 * nFormats + 2 > f.length) return null;
  const formatAt = at;
  at += 2 * nFormats;
  const n = f.readInt16BE(at);
  at += 2;
  if (n < 0 || (nFormats > 1 && nFormats !== n)) return null;
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    if (at + 4 > f.length) return null;
    const len = f.readInt32BE(at);
    at += 4;
    if (len === -1) { out.push(null); continue; }
    if (len < 0 || at + len > f.length) return null;
    const binary = nFormats > 0 && f.readInt16BE(formatAt + 2 * (nFormats === 1 ? 0 : i)) === 1;
    out.push(binary ? `\\x${f.toString('hex', at, at + len)}` : f.toString('utf8', at, at + len));
    at += len;
  }
  if (at + 2 > f.length) return null;
  const nResults = f.readInt16BE(at);
  return nResults >= 0 && at + 2 + 2 * nResults === f.length ? out : null;
}

/** A statement name the client never sent a Parse for was created with SQL PREPARE (decided there). */
function sqlPrepared(name: string): string {
  return `-- prepared statement "${name}" (created with SQL PREPARE)`;
}
