import { readCString } from '../protocol/messages.js';
import type { GateAudit } from './statement-gate.js';

/** What an Execute runs, for its audit record. */
export interface PreparedEntry {
  text: string;
  audit: GateAudit | null;
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

  /** Records an allowed Parse. */
  define(name: string, entry: PreparedEntry): void {
    this.statements.set(name, entry);
  }

  /** Bind: portal name, statement name. */
  bind(frame: Buffer): boolean {
    const portal = readCString(frame, 5);
    if (!portal) return false;
    const stmt = readCString(frame, portal[1]);
    if (!stmt) return false;
    this.portals.set(portal[0], this.statements.get(stmt[0]) ?? { text: sqlPrepared(stmt[0]), audit: null });
    return true;
  }

  execute(frame: Buffer): { portal: string; entry: PreparedEntry } | null {
    const portal = readCString(frame, 5);
    if (!portal) return null;
    return { portal: portal[0], entry: this.portals.get(portal[0]) ?? { text: `-- portal "${portal[0]}" not bound through Sluice`, audit: null } };
  }

  /** Close: 'S' statement or 'P' portal, then the name. */
  close(frame: Buffer): boolean {
    const kind = frame[5];
    const name = readCString(frame, 6);
    if (!name || (kind !== 0x53 && kind !== 0x50)) return false;
    (kind === 0x53 ? this.statements : this.portals).delete(name[0]);
    return true;
  }
}

/** A statement name the client never sent a Parse for was created with SQL PREPARE (decided there). */
function sqlPrepared(name: string): string {
  return `-- prepared statement "${name}" (created with SQL PREPARE)`;
}
