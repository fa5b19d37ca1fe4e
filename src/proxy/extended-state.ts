import { readCString } from '../protocol/messages.js';

/**
 * Per-connection tables of named statements and portals, so an Execute can be recorded with the text it runs.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 * Updated when the client sends the message; the next issue confirms entries against the server's replies.
 */
export class ExtendedState {
  private readonly statements = new Map<string, string>();
  private readonly portals = new Map<string, string>();

  /** Parse: name, query text. */
  parse(frame: Buffer): { name: string; text: string } | null {
    const name = readCString(frame, 5);
    if (!name) return null;
    const text = readCString(frame, name[1]);
    if (!text) return null;
    this.statements.set(name[0], text[0]);
    return { name: name[0], text: text[0] };
  }

  /** Bind: portal name, statement name. */
  bind(frame: Buffer): boolean {
    const portal = readCString(frame, 5);
    if (!portal) return false;
    const stmt = readCString(frame, portal[1]);
    if (!stmt) return false;
    this.portals.set(portal[0], this.statements.get(stmt[0]) ?? sqlPrepared(stmt[0]));
    return true;
  }

  execute(frame: Buffer): { portal: string; text: string } | null {
    const portal = readCString(frame, 5);
    if (!portal) return null;
    return { portal: portal[0], text: this.portals.get(portal[0]) ?? `-- portal "${portal[0]}" not bound through Sluice` };
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

/** A statement name the client never sent a Parse for was created with SQL PREPARE (recorded as that query). */
function sqlPrepared(name: string): string {
  return `-- prepared statement "${name}" (created with SQL PREPARE)`;
}
